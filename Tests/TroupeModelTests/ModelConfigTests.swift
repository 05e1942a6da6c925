import Foundation
import Testing
import TroupeModel

/// ModelConfig read from Hugging Face config.json files: their optional keys, defaults and refusals.
@Suite struct ModelConfigTests {
    private let base = #""vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4"#

    private func parse(_ extra: String, modelType: String = "llama") throws -> ModelConfig {
        try ModelConfig.parse(json: Data("{\(base), \"model_type\": \"\(modelType)\"\(extra.isEmpty ? "" : ", " + extra)}".utf8))
    }

    @Test func defaultsOfLlamaAndQwen2() throws {
        let llama = try parse("")
        #expect(llama.kvHeads == 4 && llama.headDim == 4 && llama.rmsNormEps == 1e-6 && llama.ropeTheta == 10000)
        #expect(llama.maxPositions == 2048 && !llama.attentionBias && !llama.tieWordEmbeddings && llama.eosTokenIds.isEmpty)
        let qwen = try parse("", modelType: "qwen2")
        #expect(qwen.attentionBias && !qwen.tieWordEmbeddings && !qwen.queryKeyNorm)
        let qwen3 = try parse("", modelType: "qwen3")
        #expect(!qwen3.attentionBias && !qwen3.tieWordEmbeddings && qwen3.queryKeyNorm && !llama.queryKeyNorm)
        #expect(qwen3.headDim == 128 && llama.headDim == 4, "Qwen3Config's head_dim default, not hidden ÷ heads")
        #expect(try ModelConfig.parse(json: qwen3.jsonData()) == qwen3, "written back as qwen3")
    }

    /// `attention_bias` as transformers' classes read it: Llama and Qwen3 bias all four projections,
    /// Qwen2 always q/k/v and never o, Mistral never (neither reads the key).
    @Test func attentionBiasPerModelType() throws {
        for type in ["llama", "qwen3"] {
            let biased = try parse(#""attention_bias": true"#, modelType: type)
            #expect(biased.attentionBias && biased.outputProjectionBias, "\(type)")
            #expect(ParameterLayout(config: biased).entry(named: "model.layers.1.self_attn.o_proj.bias")?.shape == [16])
            #expect(try !parse("", modelType: type).outputProjectionBias)
        }
        for setting in ["", #""attention_bias": false"#, #""attention_bias": true"#] {
            let qwen2 = try parse(setting, modelType: "qwen2")
            #expect(qwen2.attentionBias && !qwen2.outputProjectionBias, "qwen2 with \(setting)")
            #expect(ParameterLayout(config: qwen2).entry(named: "model.layers.0.self_attn.o_proj.bias") == nil)
            #expect(try !parse(setting, modelType: "mistral").attentionBias, "mistral with \(setting)")
        }
    }

    @Test func optionalKeysAndQuirks() throws {
        let config = try parse(#""num_key_value_heads": 2, "eos_token_id": [1, 2], "bos_token_id": null, "rope_scaling": null, "rope_parameters": {"rope_type": "default", "rope_theta": 500000}, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_sliding_window": false, "rms_norm_eps": 1e-5"#)
        #expect(config.kvHeads == 2 && config.eosTokenIds == [1, 2] && config.bosTokenId == nil)
        #expect(config.ropeTheta == 500000 && !config.tieWordEmbeddings && config.rmsNormEps == 1e-5)
        #expect(try parse(#""eos_token_id": 3"#).eosTokenIds == [3])
    }

    @Test(arguments: [
        (#""rope_scaling": {"type": "dynamic", "factor": 2}"#, ModelError.invalidConfig(field: "rope_scaling.type", reason: "dynamic is not supported (only default, linear and llama3)")),
        (#""rope_scaling": {"factor": 2}"#, .invalidConfig(field: "rope_scaling.rope_type", reason: "missing")),
        (#""rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4}, "original_max_position_embeddings": 0"#,
         .invalidConfig(field: "original_max_position_embeddings", reason: "must be > 0 (got 0)")),
        (#""rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4, "original_max_position_embeddings": 8192}"#,
         .invalidConfig(field: "rope_scaling.high_freq_factor", reason: "must be larger than low_freq_factor 4.0 (got 4.0)")),
        (#""rope_scaling": {"rope_type": "linear", "factor": 0}"#, .invalidConfig(field: "rope_scaling.factor", reason: "must be > 0 (got 0.0)")),
        (#""rope_scaling": {"rope_type": "linear"}"#, .invalidConfig(field: "rope_scaling.factor", reason: "missing (linear scaling needs it)")),
        (#""rope_scaling": 2"#, .invalidConfig(field: "rope_scaling", reason: "expected an object")),
        (#""hidden_act": "gelu""#, .invalidConfig(field: "hidden_act", reason: "gelu is not supported (only silu)")),
        (#""mlp_bias": true"#, .invalidConfig(field: "mlp_bias", reason: "MLP biases are not supported")),
        (#""use_sliding_window": true"#, .invalidConfig(field: "use_sliding_window", reason: "sliding-window attention is not supported")),
        (#""rope_parameters": {"rope_type": "yarn"}"#, .invalidConfig(field: "rope_parameters.rope_type", reason: "yarn is not supported (only default, linear and llama3)")),
        (#""eos_token_id": "x""#, .invalidConfig(field: "eos_token_id", reason: "must be an integer or a list")),
        (#""num_key_value_heads": 2.5"#, .invalidConfig(field: "num_key_value_heads", reason: "expected an integer, got 2.5")),
        (#""tie_word_embeddings": 1"#, .invalidConfig(field: "tie_word_embeddings", reason: "expected true or false, got 1")),
        (#""num_key_value_heads": 3"#, .invalidConfig(field: "num_key_value_heads", reason: "must divide num_attention_heads 4 (got 3)")),
        // A switch of another type is refused, not read as absent.
        (#""hidden_act": 5"#, .invalidConfig(field: "hidden_act", reason: "expected a string, got 5")),
        (#""use_sliding_window": "true""#, .invalidConfig(field: "use_sliding_window", reason: "expected true or false, got \"true\"")),
        (#""layer_types": "sliding_attention""#, .invalidConfig(field: "layer_types", reason: "expected an array, got \"sliding_attention\"")),
        (#""rope_parameters": "x""#, .invalidConfig(field: "rope_parameters", reason: "expected an object")),
        (#""rope_parameters": {"rope_type": 5}"#, .invalidConfig(field: "rope_parameters.rope_type", reason: "expected a string, got 5")),
        // Sizes past any released model: an error, not an overflowing product or a failed allocation.
        (#""max_position_embeddings": 10000000000000"#, .invalidConfig(field: "max_position_embeddings", reason: "10000000000000 is larger than this implementation supports (at most 2097152)")),
        (#""head_dim": 4096"#, .invalidConfig(field: "head_dim", reason: "4096 is larger than this implementation supports (at most 1024)")),
    ])
    func refusals(extra: String, error: ModelError) {
        #expect(throws: error) { try parse(extra) }
    }

    @Test(arguments: [("num_hidden_layers", "10000000", "at most 1024"), ("vocab_size", "4611686018427387904", "at most 16777216")])
    func sizesPastAnyReleasedModelAreRefused(key: String, value: String, bound: String) {
        let json = base.replacingOccurrences(of: #""\#(key)": "#, with: #""\#(key)": \#(value), "unused_\#(key)": "#)
        #expect(throws: ModelError.invalidConfig(field: key, reason: "\(value) is larger than this implementation supports (\(bound))")) {
            try ModelConfig.parse(json: Data("{\(json)}".utf8))
        }
    }

    @Test func aModelTypeOfAnotherTypeIsRefused() {
        #expect(throws: ModelError.invalidConfig(field: "model_type", reason: "expected a string, got [\"gemma\"]")) {
            try ModelConfig.parse(json: Data("{\(base), \"model_type\": [\"gemma\"]}".utf8))
        }
    }

    @Test func refusesOtherArchitecturesAndBrokenFiles() {
        #expect(throws: ModelError.invalidConfig(field: "model_type", reason: "bert is not a Llama-family model (supported: llama, qwen2, qwen3, mistral, troupe)")) {
            try parse("", modelType: "bert")
        }
        #expect(throws: ModelError.invalidConfig(field: "num_attention_heads", reason: "missing")) {
            try ModelConfig.parse(json: Data(#"{"hidden_size": 16}"#.utf8))
        }
        #expect(throws: ModelError.unreadable(path: "config.json", reason: "not valid JSON (config.json:1:20: hidden_size: duplicate key \"hidden_size\")")) {
            try ModelConfig.parse(json: Data(#"{"hidden_size": 1, "hidden_size": 2}"#.utf8))
        }
    }

    /// What jsonData() writes reads back as the same configuration, through Codable too.
    @Test func roundTrips() throws {
        let config = ModelConfig(modelType: "qwen2", vocabularySize: 64, hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 4,
                                 kvHeads: 2, ropeTheta: 1e6, attentionBias: true, tieWordEmbeddings: false, bosTokenId: 1, eosTokenIds: [2, 3])
        #expect(try ModelConfig.parse(json: config.jsonData()) == config)
        #expect(try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(config)) == config)
        var scaled = config
        scaled.ropeScaling = RopeScaling(kind: .llama3, factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 8192)
        #expect(try ModelConfig.parse(json: scaled.jsonData()) == scaled)
    }

    /// Llama 3.2's scaling as its config.json declares it (older `rope_scaling`, and transformers 5's
    /// `rope_parameters`), and the frequencies it gives: high ones kept, low ones divided by the factor,
    /// the ones between blended (transformers' `_compute_llama3_parameters`, worked by hand below).
    @Test func llama3AndLinearRopeScalingScaleTheFrequencies() throws {
        let llama3 = #""factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192"#
        let old = try parse(#""head_dim": 4, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", \#(llama3)}"#)
        let new = try parse(#""head_dim": 4, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, \#(llama3)}"#)
        #expect(old == new && old.ropeScaling?.kind == .llama3 && old.ropeTheta == 500000)
        // head_dim 4: frequencies 1 (wavelength 2π: kept) and 500000^(−1/2) (wavelength 4443: between
        // 8192/4 and 8192/1, so blended with smooth = (8192/4443 − 1)/3).
        let f = old.ropeInverseFrequencies, slow = 1 / 500000.0.squareRoot()
        let smooth = (8192 / (2 * Double.pi / slow) - 1) / 3
        #expect(f[0] == 1 && abs(f[1] - ((1 - smooth) * slow / 32 + smooth * slow)) < 1e-18)
        // A frequency slower than 8192 positions per turn is divided by the factor.
        let slower = try parse(#""head_dim": 4, "rope_theta": 1e9, "rope_scaling": {"rope_type": "llama3", \#(llama3)}"#)
        #expect(abs(slower.ropeInverseFrequencies[1] - 1 / 1e9.squareRoot() / 32) < 1e-20)
        let linear = try parse(#""head_dim": 4, "rope_scaling": {"type": "linear", "factor": 2}"#)
        #expect(linear.ropeInverseFrequencies == [0.5, 0.01 / 2])
        // "default" in either place is no scaling. As in transformers 5, rope_scaling, when it holds
        // anything, is read instead of rope_parameters, and its rope_theta (else the top level's) counts.
        #expect(try parse(#""rope_scaling": {"rope_type": "default"}"#).ropeScaling == nil)
        let both = try parse(#""rope_theta": 7.0, "rope_scaling": {"type": "linear", "factor": 2}, "rope_parameters": {"rope_type": "linear", "factor": 4, "rope_theta": 9.0}"#)
        #expect(both.ropeScaling?.factor == 2 && both.ropeTheta == 7)
        #expect(try parse(#""rope_scaling": {}, "rope_parameters": {"rope_type": "linear", "factor": 4, "rope_theta": 9.0}"#).ropeTheta == 9)
        #expect(throws: ModelError.invalidConfig(field: "rope_scaling.type", reason: "yarn is not supported (only default, linear and llama3)")) {
            try parse(#""rope_scaling": {"type": "yarn"}, "rope_parameters": {"rope_type": "default"}"#)
        }
        #expect(try parse(#""rope_parameters": {"rope_theta": 9.0}"#).ropeScaling == nil)
        // Llama 3's pretraining context: a top-level key wins (transformers' Phi-3 rule), else the
        // object's, else max_position_embeddings.
        let scaling = #""rope_parameters": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 64}"#
        #expect(try parse(scaling).ropeScaling?.originalMaxPositions == 64)
        #expect(try parse(scaling + #", "original_max_position_embeddings": 32"#).ropeScaling?.originalMaxPositions == 32)
        let withoutOriginal = #""max_position_embeddings": 4096, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4}"#
        #expect(try parse(withoutOriginal).ropeScaling?.originalMaxPositions == 4096)
        #expect(throws: ModelError.invalidConfig(field: "rope_parameters.factor", reason: "must be > 0 (got 0.0)")) {
            try parse(#""rope_parameters": {"rope_type": "linear", "factor": 0}"#)
        }
        #expect(throws: ModelError.invalidConfig(field: "rope_scaling.type", reason: "yarn is not supported (only default, linear and llama3)")) {
            try parse(#""rope_scaling": {"type": "yarn", "factor": 2}"#)
        }
    }
}
