import Foundation
import TroupeJSON
import TroupeTensor

/// The Llama-family configuration, read from and written to a Hugging Face `config.json`
/// (LlamaConfig / Qwen2Config field names; the Codable conformance is in ModelConfigCoding.swift).
public struct ModelConfig: Codable, Equatable, Sendable {
    public var modelType: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    /// RoPE frequency scaling (Llama 3.1 and later, or linear); nil: none.
    public var ropeScaling: RopeScaling?
    public var maxPositions: Int
    /// Attention projection biases: q/k/v always for Qwen2; q/k/v and o for Llama and Qwen3 with
    /// `attention_bias` (`outputProjectionBias`); none for Mistral (transformers' classes).
    public var attentionBias: Bool
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?

    public init(modelType: String = "llama", vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layers: Int,
                heads: Int, kvHeads: Int, headDim: Int? = nil, rmsNormEps: Double = 1e-5, ropeTheta: Double = 10000,
                ropeScaling: RopeScaling? = nil, maxPositions: Int = 2048, attentionBias: Bool = false, tieWordEmbeddings: Bool = true,
                bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil) {
        self.modelType = modelType
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? (heads > 0 ? hiddenSize / heads : 0)
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.maxPositions = maxPositions
        self.attentionBias = attentionBias
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
    }

    public func validate() throws {
        func need(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw ModelError.invalidConfig(field: field, reason: why) }
        }
        try need(vocabularySize > 0, "vocab_size", "must be > 0 (got \(vocabularySize))")
        try need(hiddenSize > 0, "hidden_size", "must be > 0 (got \(hiddenSize))")
        try need(intermediateSize > 0, "intermediate_size", "must be > 0 (got \(intermediateSize))")
        try need(layers > 0, "num_hidden_layers", "must be > 0 (got \(layers))")
        try need(heads > 0, "num_attention_heads", "must be > 0 (got \(heads))")
        try need(kvHeads > 0 && heads % kvHeads == 0, "num_key_value_heads",
                 "must divide num_attention_heads \(heads) (got \(kvHeads))")
        try need(headDim > 0 && headDim % 2 == 0, "head_dim", "must be a positive even number (got \(headDim))")
        try need(rmsNormEps > 0 && rmsNormEps.isFinite, "rms_norm_eps", "must be > 0 (got \(rmsNormEps))")
        try need(ropeTheta > 0 && ropeTheta.isFinite, "rope_theta", "must be > 0 (got \(ropeTheta))")
        try need(maxPositions > 0, "max_position_embeddings", "must be > 0 (got \(maxPositions))")
        if let scaling = ropeScaling { try scaling.validate() }
        // Upper bounds well past every released model of these families, so that no product of sizes
        // overflows and a typo (a position count of 10^13) is an error instead of an allocation failure.
        for (field, value, most) in [("vocab_size", vocabularySize, 1 << 24), ("hidden_size", hiddenSize, 1 << 16),
                                     ("intermediate_size", intermediateSize, 1 << 18), ("num_hidden_layers", layers, 1 << 10),
                                     ("num_attention_heads", heads, 1 << 10), ("head_dim", headDim, 1 << 10),
                                     ("max_position_embeddings", maxPositions, 1 << 21)] {
            try need(value <= most, field, "\(value) is larger than this implementation supports (at most \(most))")
        }
        for id in eosTokenIds {
            try need(id >= 0 && id < vocabularySize, "eos_token_id", "\(id) is outside the vocabulary")
        }
        if let b = bosTokenId { try need(b >= 0 && b < vocabularySize, "bos_token_id", "\(b) is outside the vocabulary") }
    }

    /// Parses a Hugging Face config.json (keys it does not use are ignored) and validates it.
    public static func parse(json data: Data, path: String = "config.json") throws -> ModelConfig {
        let value: JSONValue
        do { value = try JSONValue.parse(data, source: path) } catch let error as JSONError {
            throw ModelError.unreadable(path: path, reason: "not valid JSON (\(error))")
        }
        guard case .object = value else {
            throw ModelError.unreadable(path: path, reason: "top level is not a JSON object")
        }
        let config: ModelConfig
        do {
            config = try JSONValueDecoder(refusesUnknownKeys: false).decode(ModelConfig.self, from: value)
        } catch let error as JSONError {
            throw ModelError.invalidConfig(field: error.path ?? "(top level)", reason: error.problem)
        }
        try config.validate()
        return config
    }

    /// A Hugging Face config.json for this configuration (LlamaForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM).
    public func jsonData() throws -> Data {
        try huggingFaceJSON.serialized()
    }

    var huggingFaceJSON: JSONValue {
        var d: [String: JSONValue] = [
            "architectures": [.string(modelType == "qwen2" ? "Qwen2ForCausalLM" : modelType == "qwen3" ? "Qwen3ForCausalLM" : "LlamaForCausalLM")],
            "model_type": .string(["qwen2", "qwen3"].contains(modelType) ? modelType : "llama"),
            "vocab_size": .integer(vocabularySize), "hidden_size": .integer(hiddenSize),
            "intermediate_size": .integer(intermediateSize), "num_hidden_layers": .integer(layers),
            "num_attention_heads": .integer(heads), "num_key_value_heads": .integer(kvHeads),
            "head_dim": .integer(headDim), "rms_norm_eps": .number(rmsNormEps), "rope_theta": .number(ropeTheta),
            "max_position_embeddings": .integer(maxPositions), "attention_bias": .bool(attentionBias),
            "tie_word_embeddings": .bool(tieWordEmbeddings), "hidden_act": "silu", "mlp_bias": false,
            "torch_dtype": "float32",
        ]
        if let b = bosTokenId { d["bos_token_id"] = .integer(b) }
        if eosTokenIds.count == 1 { d["eos_token_id"] = .integer(eosTokenIds[0]) } else if !eosTokenIds.isEmpty { d["eos_token_id"] = .array(eosTokenIds.map(JSONValue.integer)) }
        if let p = padTokenId { d["pad_token_id"] = .integer(p) }
        if let scaling = ropeScaling { d["rope_scaling"] = scaling.huggingFaceJSON }
        return .object(d)
    }

    /// The angle per position of each pair of head dimensions: θ^(−2i/d), scaled as `ropeScaling` says.
    public var ropeInverseFrequencies: [Double] {
        let unscaled = RopeTable.inverseFrequencies(headDim: headDim, theta: ropeTheta)
        return ropeScaling.map { $0.scale(unscaled) } ?? unscaled
    }

    /// Qwen3: each head's query and key go through an RMSNorm of their own (weights `q_norm`, `k_norm`,
    /// one value per head dimension, shared by the heads) before RoPE.
    public var queryKeyNorm: Bool { modelType == "qwen3" }

    /// transformers' Llama and Qwen3 give `o_proj` a bias with `attention_bias`; Qwen2 never does.
    public var outputProjectionBias: Bool { attentionBias && modelType != "qwen2" }

    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }
}
