import Foundation
import TroupeModel

/// Small random-weight model directories in the exact layout of Hugging Face instruct checkpoints, so
/// that the tests run real directory formats without downloading weights:
///
/// - `qwen2Chat`: a Qwen2.5-Instruct-shaped directory: `model_type` qwen2 with its implicit q/k/v
///   biases (non-zero here), untied embeddings, `rope_theta` 1e6, `rms_norm_eps` 1e-6, the sliding-window
///   fields a Qwen2 config carries (switched off), BF16 weights in two shards with
///   `model.safetensors.index.json`, the Qwen2-style byte-level BPE tokenizer (NFC, Split regex,
///   `<|endoftext|>` `<|im_start|>` `<|im_end|>`), and Qwen2.5-Instruct's chat template.
/// - `llamaChat`: a SmolLM2-Instruct-shaped directory: `model_type` llama, tied embeddings (no
///   `lm_head.weight` stored), `rope_theta` 1e5, one F32 `model.safetensors`, a GPT-2-style byte-level
///   BPE tokenizer with `<|im_start|>` and `<|im_end|>` added, and SmolLM2-Instruct's chat template.
/// - `qwen3Chat`: a Qwen3-shaped directory: `model_type` qwen3 with its per-head query and key norms
///   (`q_norm`, `k_norm`, weights far from 1), no biases, `head_dim` 32 (not hidden ÷ heads), tied
///   embeddings as Qwen3-0.6B, one F32 `model.safetensors`, the Qwen2-style tokenizer, and Qwen2.5-Instruct's
///   chat template (the ChatML prompt Qwen3's own template renders for a system and a user message).
/// - `llama2Chat`: a TinyLlama-shaped directory: `model_type` llama, untied embeddings, `rope_theta` 1e4,
///   one F32 `model.safetensors`, the SentencePiece-style tokenizer of Llama 2 (byte fallback, "▁" for
///   spaces, `<s>` and `</s>`), and an `[INST]` chat template in Llama 2's format.
///
/// The tokenizers are the committed ones of Tests/TroupeTokenizerTests/Goldens (trained with Hugging Face
/// `tokenizers`); the ChatML templates are copied verbatim from those models' tokenizer_config.json.
enum TinyHuggingFaceModel {
    case qwen2Chat
    case llamaChat
    case qwen3Chat
    case llama2Chat

    var name: String {
        switch self {
        case .qwen2Chat: "hf-qwen2"
        case .llamaChat: "hf-llama"
        case .qwen3Chat: "hf-qwen3"
        case .llama2Chat: "hf-llama2"
        }
    }

    /// Llama 2's chat format: the system message inside the first instruction.
    static let instTemplate = "{{ bos_token }}{% for message in messages %}{% if message.role == 'user' %}{{ '[INST] ' }}"
        + "{% if loop.index0 == 1 and messages[0].role == 'system' %}{{ '<<SYS>>\\n' + messages[0].content | trim + '\\n<</SYS>>\\n\\n' }}{% endif %}"
        + "{{ message.content | trim + ' [/INST]' }}{% endif %}{% endfor %}"

    static var goldens: URL { TroupeBinary.repository.appendingPathComponent("Tests/TroupeTokenizerTests/Goldens") }

    var chatTemplate: String {
        get throws {
            if self == .llama2Chat { return Self.instTemplate }
            let name = self == .llamaChat ? "smollm2-instruct" : "qwen2.5-instruct"
            return try String(contentsOf: Self.goldens.appendingPathComponent("chat-templates/\(name).jinja"), encoding: .utf8)
        }
    }

    /// The prompt text the model must be given for `prompt` with `system` as system message (nil: none),
    /// written out by hand from the template's semantics.
    func expectedPrompt(_ prompt: String, system: String?) -> String {
        if self == .llama2Chat {
            return "<s>[INST] " + (system.map { "<<SYS>>\n\($0)\n<</SYS>>\n\n" } ?? "") + prompt + " [/INST]"
        }
        let defaultSystem = self == .llamaChat ? "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
                                               : "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
        return "<|im_start|>system\n\(system ?? defaultSystem)<|im_end|>\n<|im_start|>user\n\(prompt)<|im_end|>\n<|im_start|>assistant\n"
    }

    /// Writes the directory (created if needed); weights are drawn from `seed`.
    func write(to directory: String, seed: UInt64 = 7) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func put(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: directory).appendingPathComponent(name))
        }
        func json(_ object: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
        }
        let configText: String
        let tokenizerFolder = self == .llamaChat ? "gpt2-style" : self == .llama2Chat ? "llama2-style" : "qwen2-style"
        var tokenizer = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.goldens.appendingPathComponent(
            tokenizerFolder + "/tokenizer.json"))) as! [String: Any]
        switch self {
        case .llama2Chat:
            configText = try json([
                "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1,
                "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 176,
                "max_position_embeddings": 512, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
                "num_key_value_heads": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": NSNull(), "rope_theta": 10000.0,
                "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.35.0", "use_cache": true,
                "vocab_size": 1024,
            ] as [String: Any])
            try put("tokenizer_config.json", try json([
                "add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "chat_template": try chatTemplate,
                "clean_up_tokenization_spaces": false, "eos_token": "</s>", "legacy": true, "model_max_length": 512,
                "pad_token": NSNull(), "padding_side": "right", "sp_model_kwargs": [:] as [String: Any],
                "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>", "use_default_system_prompt": false,
            ] as [String: Any]))
        case .qwen2Chat, .qwen3Chat:
            configText = self == .qwen3Chat ? try json([
                "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 0,
                "eos_token_id": 2, "head_dim": 32, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
                "intermediate_size": 160, "layer_types": ["full_attention", "full_attention"], "max_position_embeddings": 512,
                "max_window_layers": 2, "model_type": "qwen3", "num_attention_heads": 4, "num_hidden_layers": 2,
                "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": NSNull(), "rope_theta": 1000000,
                "sliding_window": NSNull(), "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
                "use_cache": true, "use_sliding_window": false, "vocab_size": 1024,
            ] as [String: Any]) : try json([
                "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 2,
                "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 160,
                "max_position_embeddings": 512, "max_window_layers": 2, "model_type": "qwen2", "num_attention_heads": 4,
                "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                "sliding_window": 512, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.43.1",
                "use_cache": true, "use_sliding_window": false, "vocab_size": 1024,
            ] as [String: Any])
            try put("tokenizer_config.json", try json([
                "add_bos_token": false, "bos_token": NSNull(), "chat_template": try chatTemplate, "clean_up_tokenization_spaces": false,
                "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 512, "pad_token": "<|endoftext|>",
                "split_special_tokens": false, "tokenizer_class": "Qwen2Tokenizer", "unk_token": NSNull(),
            ] as [String: Any]))
            try put("generation_config.json", try json(["bos_token_id": 0, "eos_token_id": [2, 0], "do_sample": true,
                                                        "temperature": 0.7, "top_p": 0.8]))
        case .llamaChat:
            var added = tokenizer["added_tokens"] as! [[String: Any]]
            for (id, content) in [(1007, "<|im_start|>"), (1008, "<|im_end|>")] {
                added.append(["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false, "special": true])
            }
            tokenizer["added_tokens"] = added
            configText = try json([
                "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1007,
                "eos_token_id": 1008, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.041666666666666664,
                "intermediate_size": 192, "is_llama_config": true, "max_position_embeddings": 512, "mlp_bias": false,
                "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
                "pad_token_id": 1008, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": false,
                "rope_scaling": NSNull(), "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "float32",
                "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 1024,
            ] as [String: Any])
            try put("tokenizer_config.json", try json([
                "add_prefix_space": false, "bos_token": "<|im_start|>", "chat_template": try chatTemplate,
                "clean_up_tokenization_spaces": false, "eos_token": "<|im_end|>", "model_max_length": 512,
                "pad_token": "<|im_end|>", "tokenizer_class": "GPT2Tokenizer", "unk_token": "<|endoftext|>", "vocab_size": 1009,
            ] as [String: Any]))
        }
        try put("config.json", configText)
        // Qwen2.5's tokenizer.json is 7 MB, more than the 4 MiB header an actor once accepted in a Welcome
        // (which carries it): the Qwen2 model's is padded to that size with JSON whitespace.
        try put("tokenizer.json", try json(tokenizer) + (self == .qwen2Chat ? String(repeating: " ", count: 7_000_000) : ""))

        // Weights: every tensor the configuration needs, under its Hugging Face name.
        let layout = ParameterLayout(config: try ModelConfig.parse(json: Data(configText.utf8)))
        var random = SplitMix(seed: seed)
        let tensors = layout.entries.map { entry -> (name: String, shape: [Int], values: [Float]) in
            let values = (0..<entry.count).map { _ -> Float in
                if entry.name.hasSuffix("q_norm.weight") || entry.name.hasSuffix("k_norm.weight") { return 1 + 0.5 * random.symmetric() }
                if entry.name.hasSuffix("norm.weight") { return 1 + 0.1 * random.symmetric() }
                if entry.name.hasSuffix(".bias") { return 0.1 * random.symmetric() }
                return 0.08 * random.symmetric()
            }
            return (entry.name, entry.shape, values)
        }
        if self == .qwen2Chat {
            let half = tensors.count / 2
            let shards = [Array(tensors[..<half]), Array(tensors[half...])]
            var weightMap: [String: String] = [:]
            var total = 0
            for (i, shard) in shards.enumerated() {
                let name = "model-0000\(i + 1)-of-00002.safetensors"
                total += try Self.writeSafetensors(shard, bf16: true, to: directory + "/" + name)
                for t in shard { weightMap[t.name] = name }
            }
            try put("model.safetensors.index.json", try json(["metadata": ["total_size": total], "weight_map": weightMap]))
        } else {
            _ = try Self.writeSafetensors(tensors, bf16: false, to: directory + "/model.safetensors")
        }
    }

    /// A safetensors file as `safetensors.torch.save_file` writes it (header padded to 8 bytes); BF16
    /// rounds to nearest even. Returns the data bytes.
    static func writeSafetensors(_ tensors: [(name: String, shape: [Int], values: [Float])], bf16: Bool, to path: String) throws -> Int {
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var data = Data()
        for t in tensors {
            let begin = data.count
            for v in t.values {
                if bf16 {
                    let bits = v.bitPattern
                    let rounded = UInt16((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
                    withUnsafeBytes(of: rounded.littleEndian) { data.append(contentsOf: $0) }
                } else {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
                }
            }
            header[t.name] = ["dtype": bf16 ? "BF16" : "F32", "shape": t.shape, "data_offsets": [begin, data.count]] as [String: Any]
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(headerBytes)
        file.append(data)
        try file.write(to: URL(fileURLWithPath: path))
        return data.count
    }
}

/// SplitMix64, for test weights that are the same on every machine.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func symmetric() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
