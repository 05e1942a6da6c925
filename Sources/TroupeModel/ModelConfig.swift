import Foundation

/// The Llama-family configuration, read from and written to a Hugging Face `config.json`
/// (LlamaConfig / Qwen2Config field names).
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
    public var maxPositions: Int
    /// q/k/v projection biases (Qwen2).
    public var attentionBias: Bool
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?

    public init(modelType: String = "llama", vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layers: Int,
                heads: Int, kvHeads: Int, headDim: Int? = nil, rmsNormEps: Double = 1e-5, ropeTheta: Double = 10000,
                maxPositions: Int = 2048, attentionBias: Bool = false, tieWordEmbeddings: Bool = true,
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
        for id in eosTokenIds {
            try need(id >= 0 && id < vocabularySize, "eos_token_id", "\(id) is outside the vocabulary")
        }
        if let b = bosTokenId { try need(b >= 0 && b < vocabularySize, "bos_token_id", "\(b) is outside the vocabulary") }
    }

    /// Parses a Hugging Face config.json. Accepts `rope_theta` at top level or under `rope_parameters`.
    public static func parse(json data: Data, path: String = "config.json") throws -> ModelConfig {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError.unreadable(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let d = object as? [String: Any] else {
            throw ModelError.unreadable(path: path, reason: "top level is not a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let v = d[key] else { throw ModelError.invalidConfig(field: key, reason: "missing") }
            guard let n = JSONNumber.int(v) else {
                throw ModelError.invalidConfig(field: key, reason: "must be an integer (got \(v))")
            }
            return n
        }
        func optInt(_ key: String) throws -> Int? { d[key] == nil || d[key] is NSNull ? nil : try int(key) }
        func double(_ key: String, in dict: [String: Any]) throws -> Double? {
            guard let v = dict[key], !(v is NSNull) else { return nil }
            guard let n = JSONNumber.double(v) else {
                throw ModelError.invalidConfig(field: key, reason: "must be a number (got \(v))")
            }
            return n
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let v = d[key], !(v is NSNull) else { return value }
            guard let b = JSONNumber.bool(v) else { throw ModelError.invalidConfig(field: key, reason: "must be true or false") }
            return b
        }
        let modelType = (d["model_type"] as? String) ?? "llama"
        let supported = ["llama", "qwen2", "mistral", "troupe"]
        guard supported.contains(modelType) else {
            throw ModelError.invalidConfig(field: "model_type", reason: "\(modelType) is not a Llama-family model (supported: \(supported.joined(separator: ", ")))")
        }
        if let act = d["hidden_act"] as? String, act != "silu" {
            throw ModelError.invalidConfig(field: "hidden_act", reason: "\(act) is not supported (only silu)")
        }
        if try bool("mlp_bias", default: false) {
            throw ModelError.invalidConfig(field: "mlp_bias", reason: "MLP biases are not supported")
        }
        if let sw = d["use_sliding_window"].flatMap(JSONNumber.bool), sw {
            throw ModelError.invalidConfig(field: "use_sliding_window", reason: "sliding-window attention is not supported")
        }
        var theta = try double("rope_theta", in: d)
        if let rp = d["rope_parameters"] as? [String: Any] {
            if let t = rp["rope_type"] as? String, t != "default" {
                throw ModelError.invalidConfig(field: "rope_parameters.rope_type", reason: "\(t) is not supported (only default)")
            }
            theta = try double("rope_theta", in: rp) ?? theta
        }
        if let rs = d["rope_scaling"], !(rs is NSNull) {
            throw ModelError.invalidConfig(field: "rope_scaling", reason: "RoPE scaling is not supported")
        }
        let heads = try int("num_attention_heads")
        let hidden = try int("hidden_size")
        var eos: [Int] = []
        if let e = d["eos_token_id"] {
            if let n = JSONNumber.int(e) { eos = [n] }
            else if let list = e as? [Any], list.allSatisfy({ JSONNumber.int($0) != nil }) { eos = list.compactMap(JSONNumber.int) }
            else if !(e is NSNull) { throw ModelError.invalidConfig(field: "eos_token_id", reason: "must be an integer or a list") }
        }
        let qwen = modelType == "qwen2"
        let config = ModelConfig(
            modelType: modelType,
            vocabularySize: try int("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try int("intermediate_size"),
            layers: try int("num_hidden_layers"),
            heads: heads,
            kvHeads: try optInt("num_key_value_heads") ?? heads,
            headDim: try optInt("head_dim") ?? (heads > 0 ? hidden / heads : 0),
            rmsNormEps: try double("rms_norm_eps", in: d) ?? 1e-6,
            ropeTheta: theta ?? 10000,
            maxPositions: try optInt("max_position_embeddings") ?? 2048,
            attentionBias: try bool("attention_bias", default: qwen),
            tieWordEmbeddings: try bool("tie_word_embeddings", default: !qwen),
            bosTokenId: try optInt("bos_token_id"),
            eosTokenIds: eos,
            padTokenId: try optInt("pad_token_id"))
        try config.validate()
        return config
    }

    /// A Hugging Face config.json for this configuration (LlamaForCausalLM or Qwen2ForCausalLM).
    public func jsonData() throws -> Data {
        var d: [String: Any] = [
            "architectures": [modelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
            "model_type": modelType == "qwen2" ? "qwen2" : "llama",
            "vocab_size": vocabularySize, "hidden_size": hiddenSize, "intermediate_size": intermediateSize,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kvHeads,
            "head_dim": headDim, "rms_norm_eps": rmsNormEps, "rope_theta": ropeTheta,
            "max_position_embeddings": maxPositions, "attention_bias": attentionBias,
            "tie_word_embeddings": tieWordEmbeddings, "hidden_act": "silu", "mlp_bias": false,
            "torch_dtype": "float32",
        ]
        if let b = bosTokenId { d["bos_token_id"] = b }
        if eosTokenIds.count == 1 { d["eos_token_id"] = eosTokenIds[0] } else if !eosTokenIds.isEmpty { d["eos_token_id"] = eosTokenIds }
        if let p = padTokenId { d["pad_token_id"] = p }
        return try JSONSerialization.data(withJSONObject: d, options: [.prettyPrinted, .sortedKeys])
    }

    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }
}
