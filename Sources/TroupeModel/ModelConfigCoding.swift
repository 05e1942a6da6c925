import TroupeJSON

/// ModelConfig as a Hugging Face config.json: LlamaConfig / Qwen2Config key names, their defaults
/// (Qwen2 has attention biases and untied embeddings unless it says otherwise), and a refusal naming
/// the key for every feature the model does not implement.
extension ModelConfig {
    enum HFKey: String, CodingKey {
        case modelType = "model_type", hiddenAct = "hidden_act", mlpBias = "mlp_bias"
        case useSlidingWindow = "use_sliding_window", slidingWindow = "sliding_window", layerTypes = "layer_types"
        case ropeTheta = "rope_theta", ropeParameters = "rope_parameters"
        case ropeType = "rope_type", ropeScaling = "rope_scaling", type, factor
        case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
        case originalMaxPositions = "original_max_position_embeddings", partialRotaryFactor = "partial_rotary_factor"
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case layers = "num_hidden_layers", heads = "num_attention_heads", kvHeads = "num_key_value_heads"
        case headDim = "head_dim", rmsNormEps = "rms_norm_eps", maxPositions = "max_position_embeddings"
        case attentionBias = "attention_bias", tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
    }

    static let supportedModelTypes = ["llama", "qwen2", "qwen3", "mistral", "troupe"]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: HFKey.self)
        let modelType = try Self.supportedModelType(c)
        let maxPositions = try c.decodeIfPresent(Int.self, forKey: .maxPositions) ?? 2048
        let (theta, scaling) = try Self.rope(c, maxPositions: maxPositions)
        let heads = try c.decode(Int.self, forKey: .heads)
        let hidden = try c.decode(Int.self, forKey: .hiddenSize)
        let qwen = modelType == "qwen2"
        self.init(
            modelType: modelType,
            vocabularySize: try c.decode(Int.self, forKey: .vocabSize),
            hiddenSize: hidden,
            intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
            layers: try c.decode(Int.self, forKey: .layers),
            heads: heads,
            kvHeads: try c.decodeIfPresent(Int.self, forKey: .kvHeads) ?? heads,
            // Qwen3Config's own default is 128; the others divide the hidden size among the heads.
            headDim: try c.decodeIfPresent(Int.self, forKey: .headDim) ?? (modelType == "qwen3" ? 128 : heads > 0 ? hidden / heads : 0),
            rmsNormEps: try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6,
            ropeTheta: theta ?? 10000,
            ropeScaling: scaling,
            maxPositions: maxPositions,
            // transformers' Qwen2 and Mistral classes do not read the key: q/k/v biases always, and none.
            attentionBias: qwen ? true : modelType == "mistral" ? false : try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false,
            // transformers' default for every one of these types: an lm_head of its own.
            tieWordEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false,
            bosTokenId: try c.decodeIfPresent(Int.self, forKey: .bosTokenId),
            eosTokenIds: try Self.eosTokenIds(c),
            padTokenId: try c.decodeIfPresent(Int.self, forKey: .padTokenId))
    }

    public func encode(to encoder: any Encoder) throws {
        try huggingFaceJSON.encode(to: encoder)
    }

    /// The model type (default llama), after refusing the architectures and features not implemented.
    private static func supportedModelType(_ c: KeyedDecodingContainer<HFKey>) throws -> String {
        let modelType = try c.strict(String.self, .modelType) ?? "llama"
        guard supportedModelTypes.contains(modelType) else {
            throw refusal(.modelType, "\(modelType) is not a Llama-family model (supported: \(supportedModelTypes.joined(separator: ", ")))")
        }
        if let act = try c.strict(String.self, .hiddenAct), act != "silu" {
            throw refusal(.hiddenAct, "\(act) is not supported (only silu)")
        }
        if try c.strict(Bool.self, .mlpBias) == true {
            throw refusal(.mlpBias, "MLP biases are not supported")
        }
        if try c.strict(Bool.self, .useSlidingWindow) == true {
            throw refusal(.useSlidingWindow, "sliding-window attention is not supported")
        }
        // Mistral applies sliding_window whenever it is set (Qwen2 only with use_sliding_window); a window
        // as long as the context is full attention.
        if modelType == "mistral", let window = try c.strict(Int.self, .slidingWindow),
           window < (try c.strict(Int.self, .maxPositions) ?? 2048) {
            throw refusal(.slidingWindow, "\(window): sliding-window attention is not supported (only full attention)")
        }
        if let types = try c.strict([String].self, .layerTypes),
           let other = types.first(where: { $0 != "full_attention" }) {
            throw refusal(.layerTypes, "\(other) layers are not supported (only full_attention)")
        }
        return modelType
    }

    /// `rope_theta` and the RoPE scaling, as transformers 5 reads them: the object `rope_scaling` when it
    /// holds anything, else `rope_parameters` (where transformers 5 writes them); `rope_theta` from that
    /// object, else from the top level.
    private static func rope(_ c: KeyedDecodingContainer<HFKey>, maxPositions: Int) throws -> (theta: Double?, scaling: RopeScaling?) {
        let topTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        var chosen: (parameters: KeyedDecodingContainer<HFKey>, field: String)?
        if try !c.decodeNil(forKey: .ropeScaling, default: true) {
            let scaling = try object(c, .ropeScaling)
            if !scaling.allKeys.isEmpty { chosen = (scaling, "rope_scaling") }
        }
        if chosen == nil, try !c.decodeNil(forKey: .ropeParameters, default: true) {
            chosen = (try object(c, .ropeParameters), "rope_parameters")
        }
        guard let (parameters, field) = chosen else { return (topTheta, nil) }
        let theta = try parameters.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? topTheta
        // An object that only moves rope_theta names no scaling.
        if !parameters.contains(.ropeType) && !parameters.contains(.type)
            && parameters.allKeys.allSatisfy({ $0 == .ropeTheta || $0 == .partialRotaryFactor }) {
            return (theta, nil)
        }
        return (theta, try ropeScaling(parameters, field: field, top: c, maxPositions: maxPositions))
    }

    private static func object(_ c: KeyedDecodingContainer<HFKey>, _ key: HFKey) throws -> KeyedDecodingContainer<HFKey> {
        do { return try c.nestedContainer(keyedBy: HFKey.self, forKey: key) } catch { throw refusal(key, "expected an object") }
    }

    /// The scaling an object with `rope_type` (older files: `type`) declares; nil for `default`. Only the
    /// kinds that change nothing but the frequencies are implemented; the others are refused by name.
    /// Llama 3's pretraining context comes from the top-level `original_max_position_embeddings` when there
    /// is one (transformers gives it priority, for Phi-3's sake), else from the object, else it is
    /// `max_position_embeddings`.
    private static func ropeScaling(_ p: KeyedDecodingContainer<HFKey>, field: String,
                                    top c: KeyedDecodingContainer<HFKey>, maxPositions: Int) throws -> RopeScaling? {
        let typeKey: HFKey = p.contains(.ropeType) ? .ropeType : .type
        guard let type = try p.strict(String.self, typeKey) else {
            throw ModelError.invalidConfig(field: "\(field).rope_type", reason: "missing")
        }
        if type == "default" { return nil }
        guard let kind = RopeScaling.Kind(rawValue: type) else {
            throw ModelError.invalidConfig(field: "\(field).\(typeKey.rawValue)", reason: "\(type) is not supported (only default, linear and llama3)")
        }
        func required<T: Decodable>(_ key: HFKey) throws -> T {
            guard let value = try p.strict(T.self, key) else {
                throw ModelError.invalidConfig(field: "\(field).\(key.rawValue)", reason: "missing (\(type) scaling needs it)")
            }
            return value
        }
        let factor: Double = try required(.factor)
        guard kind == .llama3 else {
            let scaling = RopeScaling(kind: kind, factor: factor)
            try scaling.validate(field: field)
            return scaling
        }
        // The value and the key it came from, named if it is refused.
        let (original, originalField) = try c.strict(Int.self, .originalMaxPositions).map { ($0, "original_max_position_embeddings") }
            ?? p.strict(Int.self, .originalMaxPositions).map { ($0, "\(field).original_max_position_embeddings") }
            ?? (maxPositions, "max_position_embeddings")
        let scaling = RopeScaling(kind: kind, factor: factor, lowFrequencyFactor: try required(.lowFreqFactor),
                                  highFrequencyFactor: try required(.highFreqFactor), originalMaxPositions: original)
        try scaling.validate(field: field, originalMaxPositionsField: originalField)
        return scaling
    }

    /// `eos_token_id`: one id, a list of them, or null.
    private static func eosTokenIds(_ c: KeyedDecodingContainer<HFKey>) throws -> [Int] {
        if try c.decodeNil(forKey: .eosTokenId, default: true) { return [] }
        if let id = try? c.decode(Int.self, forKey: .eosTokenId) { return [id] }
        if let ids = try? c.decode([Int].self, forKey: .eosTokenId) { return ids }
        throw refusal(.eosTokenId, "must be an integer or a list")
    }

    private static func refusal(_ key: HFKey, _ reason: String) -> ModelError {
        .invalidConfig(field: key.rawValue, reason: reason)
    }
}

private extension KeyedDecodingContainer where Key == ModelConfig.HFKey {
    /// `key`'s value when present and not null; of another type, the decoder's error naming the key (a
    /// feature switch such as `use_sliding_window: "true"` must not read as absent).
    func strict<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        try decodeNil(forKey: key, default: true) ? nil : try decode(T.self, forKey: key)
    }
}

private extension KeyedDecodingContainer {
    /// Whether `key` is null, or `missing` when absent.
    func decodeNil(forKey key: Key, default missing: Bool) throws -> Bool {
        contains(key) ? try decodeNil(forKey: key) : missing
    }
}
