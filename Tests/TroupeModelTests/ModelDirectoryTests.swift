import Foundation
import Testing
import TroupeModel

/// `ModelDirectory.check` and `load` on Hugging Face directory layouts: sharded weights with an index,
/// and the refusals a run relies on to stop before it writes anything.
@Suite struct ModelDirectoryTests {
    private static let config = ModelConfig(modelType: "qwen2", vocabularySize: 40, hiddenSize: 16, intermediateSize: 24, layers: 2,
                                            heads: 4, kvHeads: 2, attentionBias: true, tieWordEmbeddings: false)

    /// A directory with `config` in `shards` safetensors files and its index; returns it and the model.
    private func sharded(shards: Int = 3, config: ModelConfig = Self.config,
                         edit: ((inout [(name: String, shape: [Int], values: [Float])]) -> Void)? = nil) throws
        -> (String, LlamaModel) {
        let model = try LlamaModel.random(config: config, seed: 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-hfdir-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try config.jsonData().write(to: URL(fileURLWithPath: dir + "/config.json"))
        var tensors = model.layout.entries.map { e in
            (name: e.name, shape: e.shape, values: Array(UnsafeBufferPointer(start: model.parameters.pointer + e.offset, count: e.count)))
        }
        edit?(&tensors)
        var map: [String: String] = [:]
        let size = (tensors.count + shards - 1) / shards
        for s in 0..<shards {
            let name = "model-0000\(s + 1)-of-0000\(shards).safetensors"
            let part = Array(tensors[min(s * size, tensors.count)..<min((s + 1) * size, tensors.count)])
            let buffers = part.map { t in (name: t.name, shape: t.shape, values: t.values) }
            try withBuffers(buffers) { try SafetensorsFile.write(tensors: $0, to: dir + "/" + name) }
            for t in part { map[t.name] = name }
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
        try index.write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        return (dir, model)
    }

    private func failure(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func shardedWeightsLoadBitForBit() throws {
        let (dir, model) = try sharded()
        #expect(try ModelDirectory.check(dir) == Self.config)
        let loaded = try ModelDirectory.load(dir)
        #expect(loaded.weightsHash() == model.weightsHash())
    }

    @Test func missingShardsTensorsAndWrongShapesAreNamedWithoutReadingWeights() throws {
        let (dir, _) = try sharded()
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        #expect(failure { try ModelDirectory.check(dir) } == "missing file: \(dir)/model-00002-of-00003.safetensors")

        let (missing, _) = try sharded { $0.removeAll { $0.name == "model.layers.1.self_attn.k_proj.bias" } }
        #expect(failure { try ModelDirectory.check(missing) } == "\(missing): tensor model.layers.1.self_attn.k_proj.bias is missing from the weights")

        let (extra, _) = try sharded { $0.append((name: "model.layers.0.mlp.gate_proj.bias", shape: [24], values: [Float](repeating: 0, count: 24))) }
        #expect(failure { try ModelDirectory.check(extra) } == "\(extra): tensor model.layers.0.mlp.gate_proj.bias is not part of this model configuration")

        let (shape, _) = try sharded {
            let i = $0.firstIndex { $0.name == "model.norm.weight" }!
            $0[i] = (name: "model.norm.weight", shape: [8], values: [Float](repeating: 1, count: 8))
        }
        #expect(failure { try ModelDirectory.check(shape) } == "\(shape): tensor model.norm.weight has shape [8], the config needs [16]")
    }

    /// Llama's `o_proj.bias` (with `attention_bias`) loads, and where a checkpoint leaves it out it is
    /// zero, as transformers starts it; Qwen2 has none, so one stored is refused.
    @Test func anOutputProjectionBiasLoadsOrStartsAtZero() throws {
        var llama = Self.config
        llama.modelType = "llama"
        let name = "model.layers.1.self_attn.o_proj.bias"
        let bias: [Float] = (0..<16).map { Float($0) / 4 - 2 }
        let (dir, model) = try sharded(config: llama) { tensors in
            let i = tensors.firstIndex { $0.name == name }!
            tensors[i].values = bias
        }
        let e = try #require(model.layout.entry(named: name))
        func loadedBias(_ directory: String) throws -> [Float] {
            let loaded = try ModelDirectory.load(directory)
            return Array(UnsafeBufferPointer(start: loaded.parameters.pointer + e.offset, count: e.count))
        }
        #expect(try loadedBias(dir) == bias)

        let (without, _) = try sharded(config: llama) { $0.removeAll { $0.name == name } }
        #expect(try loadedBias(without) == [Float](repeating: 0, count: 16))
        #expect(failure { try ModelDirectory.load(self.sharded { $0.removeAll { $0.name == "model.layers.1.self_attn.q_proj.bias" } }.0) }
                    .hasSuffix("tensor model.layers.1.self_attn.q_proj.bias is missing from the weights"))

        let (qwen, _) = try sharded { $0.append((name: name, shape: [16], values: [Float](repeating: 0, count: 16))) }
        #expect(failure { try ModelDirectory.check(qwen) } == "\(qwen): tensor \(name) is not part of this model configuration")
    }

    /// A tied model's `lm_head.weight`, as transformers reads it: equal to the embedding, it is the same
    /// tensor; different, transformers would use it untied, so it is refused naming the key to change;
    /// stored without the embedding, it is the embedding.
    @Test func aTiedModelsStoredHeadIsTheEmbeddingOrRefused() throws {
        var tied = Self.config
        tied.tieWordEmbeddings = true
        func withHead(_ edit: @escaping ([Float]) -> [Float], dropEmbedding: Bool = false) throws -> (String, LlamaModel) {
            try sharded(config: tied) { tensors in
                let embedding = tensors.first { $0.name == "model.embed_tokens.weight" }!
                tensors.append((name: "lm_head.weight", shape: embedding.shape, values: edit(embedding.values)))
                if dropEmbedding { tensors.removeAll { $0.name == "model.embed_tokens.weight" } }
            }
        }
        let (same, model) = try withHead { $0 }
        #expect(try ModelDirectory.load(same).weightsHash() == model.weightsHash())

        let (different, _) = try withHead { $0.map { $0 + 1 } }
        #expect(failure { try ModelDirectory.check(different) }.contains("tie_word_embeddings: true, but the stored lm_head.weight differs"),
                "a run meets it before it writes anything")

        // Equal in the dtype transformers loads them in (config.json's dtype) is tied; in F32, not.
        // bfloat16 by rounding to nearest, ties to even (torch's cast).
        func bfloat16(_ x: Float) -> Float { Float(bitPattern: (x.bitPattern &+ 0x7FFF &+ ((x.bitPattern >> 16) & 1)) & 0xFFFF_0000) }
        let (rounded, _) = try withHead { $0.map(bfloat16) }
        #expect(failure { try ModelDirectory.check(rounded) }.contains("differs"))
        let configPath = rounded + "/config.json"
        var declared = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
        declared["torch_dtype"] = "bfloat16"
        try JSONSerialization.data(withJSONObject: declared).write(to: URL(fileURLWithPath: configPath))
        #expect(try ModelDirectory.check(rounded) == tied)
        declared["torch_dtype"] = "float16"
        try JSONSerialization.data(withJSONObject: declared).write(to: URL(fileURLWithPath: configPath))
        #expect(failure { try ModelDirectory.check(rounded) }.contains("differs"), "float16 keeps bits bfloat16 drops")

        let (alone, _) = try withHead({ $0.map { $0 * 2 } }, dropEmbedding: true)
        let loaded = try ModelDirectory.load(alone)
        let e = try #require(model.layout.entry(named: "model.embed_tokens.weight"))
        let doubled = Array(UnsafeBufferPointer(start: model.parameters.pointer + e.offset, count: e.count)).map { $0 * 2 }
        #expect(Array(UnsafeBufferPointer(start: loaded.parameters.pointer + e.offset, count: e.count)) == doubled)
    }

    /// An index that names a shard outside the directory, or puts a tensor in another shard than the one
    /// holding it, and a tensor stored in two shards, are refused naming the files.
    @Test func shardsAreTheIndexsOwnFilesEachTensorInOne() throws {
        func rewriteIndex(_ dir: String, _ edit: (inout [String: String]) -> Void) throws {
            let url = URL(fileURLWithPath: dir + "/model.safetensors.index.json")
            var index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            var map = try #require(index["weight_map"] as? [String: String])
            edit(&map)
            index["weight_map"] = map
            try JSONSerialization.data(withJSONObject: index).write(to: url)
        }
        let (outside, _) = try sharded()
        try rewriteIndex(outside) { $0["model.norm.weight"] = "../elsewhere/model.safetensors" }
        #expect(failure { try ModelDirectory.check(outside) }
                == "cannot read \(outside)/model.safetensors.index.json: weight_map[model.norm.weight] is not a file name of this directory")

        let (moved, _) = try sharded()
        try rewriteIndex(moved) { $0["model.norm.weight"] = "model-00001-of-00003.safetensors" }
        #expect(failure { try ModelDirectory.check(moved) }.hasSuffix("holds tensor model.norm.weight, which model.safetensors.index.json's weight_map puts in model-00001-of-00003.safetensors"))

        // The same tensor in the first shard too (the index still says the third).
        let (twice, model) = try sharded()
        let norm = model.layout.entries.first { $0.name == "model.norm.weight" }!
        let first = twice + "/model-00001-of-00003.safetensors"
        let kept = try SafetensorsFile(path: first)
        var tensors = try kept.tensors.keys.sorted().map { (name: $0, shape: kept.tensors[$0]!.shape, values: try kept.floats($0)) }
        tensors.append((name: norm.name, shape: norm.shape, values: Array(UnsafeBufferPointer(start: model.parameters.pointer + norm.offset, count: norm.count))))
        try withBuffers(tensors) { try SafetensorsFile.write(tensors: $0, to: first) }
        #expect(failure { try ModelDirectory.check(twice) }.contains("model.norm.weight"))
    }

    @Test(arguments: [
        ("{\"model_type\": \"gemma\"}", "config.json field model_type: gemma is not a Llama-family model (supported: llama, qwen2, qwen3, mistral, troupe)"),
        ("{\"model_type\": \"mistral\", \"sliding_window\": 4096, \"max_position_embeddings\": 32768}",
         "config.json field sliding_window: 4096: sliding-window attention is not supported (only full attention)"),
        ("{\"model_type\": \"qwen2\", \"layer_types\": [\"full_attention\", \"sliding_attention\"]}",
         "config.json field layer_types: sliding_attention layers are not supported (only full_attention)"),
        ("{\"model_type\": \"qwen2\", \"use_sliding_window\": true}", "config.json field use_sliding_window: sliding-window attention is not supported"),
        ("{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}", "config.json field rope_scaling.rope_type: yarn is not supported (only default, linear and llama3)"),
    ])
    func unsupportedArchitecturesAreRefused(patch: String, message: String) throws {
        var object = try #require(try JSONSerialization.jsonObject(with: Self.config.jsonData()) as? [String: Any])
        for (key, value) in try #require(try JSONSerialization.jsonObject(with: Data(patch.utf8)) as? [String: Any]) { object[key] = value }
        #expect(failure { try ModelConfig.parse(json: try JSONSerialization.data(withJSONObject: object)) } == message)
    }

    @Test func fullAttentionMistralAndQwen2SlidingFieldsAreAccepted() throws {
        var object = try #require(try JSONSerialization.jsonObject(with: Self.config.jsonData()) as? [String: Any])
        object["sliding_window"] = 32768  // Qwen2.5's configs carry it with use_sliding_window false
        object["use_sliding_window"] = false
        object["layer_types"] = ["full_attention", "full_attention"]
        #expect(try ModelConfig.parse(json: try JSONSerialization.data(withJSONObject: object)).modelType == "qwen2")
        object["model_type"] = "mistral"
        object["sliding_window"] = NSNull()
        #expect(try ModelConfig.parse(json: try JSONSerialization.data(withJSONObject: object)).modelType == "mistral")
    }
}

/// Calls `body` with `tensors` as the buffers `SafetensorsFile.write` takes.
private func withBuffers<T>(_ tensors: [(name: String, shape: [Int], values: [Float])],
                            _ body: ([(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)]) throws -> T) throws -> T {
    var pointers: [UnsafeMutableBufferPointer<Float>] = []
    defer { pointers.forEach { $0.deallocate() } }
    let buffers = tensors.map { t -> (name: String, shape: [Int], values: UnsafeBufferPointer<Float>) in
        let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.values.count)
        _ = p.initialize(from: t.values)
        pointers.append(p)
        return (t.name, t.shape, UnsafeBufferPointer(p))
    }
    return try body(buffers)
}
