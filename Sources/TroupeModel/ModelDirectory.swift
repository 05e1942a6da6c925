import Foundation
import TroupeJSON
import TroupeTensor

/// Reads and writes Hugging Face style model directories: `config.json` plus `model.safetensors`
/// (or shards listed in `model.safetensors.index.json`).
public enum ModelDirectory {
    public static func loadConfig(_ directory: String) throws -> ModelConfig {
        try readConfig(directory).config
    }

    /// config.json parsed, and its bytes (`checkTiedHead` reads the dtype it declares).
    private static func readConfig(_ directory: String) throws -> (config: ModelConfig, json: Data) {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.fileMissing(path: path) }
        if let problem = ReadableFile.problem(at: path) { throw ModelError.unreadable(path: path, reason: problem) }
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError.unreadable(path: path, reason: "cannot be read") }
        do { return (try ModelConfig.parse(json: data, path: path), data) } catch let error as ModelError {
            throw error.naming(directory)
        }
    }

    /// Loads config and weights. Every tensor the config needs must be present with the right shape;
    /// a tensor the config does not know is an error too (it means config and weights disagree).
    public static func load(_ directory: String) throws -> LlamaModel {
        let (config, plan) = try checkedPlan(directory)
        let model = try LlamaModel(config: config)
        do {
            for (file, reads) in plan {
                for read in reads {
                    let entry = model.layout.entry(named: read.into)!
                    try file.read(read.tensor, into: model.parameters.pointer + entry.offset, expectedShape: entry.shape)
                }
            }
        } catch let error as ModelError {
            throw error.naming(directory)
        }
        return model
    }

    /// A tied model that stores its head beside the embedding: transformers ties the two only when they
    /// are equal in the dtype it loads them in (config.json's `dtype`, or `torch_dtype`; F32 without
    /// one), and otherwise uses the stored head, untied. A different head is refused, not dropped. This
    /// reads both tensors, so a run meets it before it writes anything.
    private static func checkTiedHead(_ plan: [(SafetensorsFile, [TensorRead])], config: ModelConfig, configJSON: Data) throws {
        guard config.tieWordEmbeddings,
              let headFile = plan.first(where: { $0.0.tensors["lm_head.weight"] != nil })?.0,
              let embeddingFile = plan.first(where: { $0.0.tensors["model.embed_tokens.weight"] != nil })?.0 else { return }
        let shape = [config.vocabularySize, config.hiddenSize], count = shape.reduce(1, *)
        let head = FloatBuffer(count: count, zeroed: false), embedding = FloatBuffer(count: count, zeroed: false)
        try headFile.read("lm_head.weight", into: head.pointer, expectedShape: shape)
        try embeddingFile.read("model.embed_tokens.weight", into: embedding.pointer, expectedShape: shape)
        let declared = try? JSONValue.parse(configJSON)
        let dtype = declared?["dtype"]?.string ?? declared?["torch_dtype"]?.string ?? "float32"
        let rounded: (Float) -> Float = switch dtype {
        // Nearest, ties to even, as torch casts.
        case "bfloat16": { Float(bitPattern: ($0.bitPattern &+ 0x7FFF &+ (($0.bitPattern >> 16) & 1)) & 0xFFFF_0000) }
        case "float16": { Float(Float16($0)) }
        default: { $0 }
        }
        for i in 0..<count where rounded(head.pointer[i]) != rounded(embedding.pointer[i]) {
            throw ModelError.invalidConfig(field: "tie_word_embeddings",
                                           reason: "true, but the stored lm_head.weight differs from model.embed_tokens.weight "
                                           + "(transformers would use the stored head, untied): set tie_word_embeddings to false")
        }
    }

    /// Checks a model directory without reading its weights (but for a tied model that stores its head
    /// too: `checkTiedHead`): config.json is a supported model, and the safetensors headers (every
    /// shard's) hold exactly the tensors it needs, with their shapes, in a supported dtype. Returns the
    /// configuration. A run checks this before it writes anything.
    @discardableResult
    public static func check(_ directory: String) throws -> ModelConfig {
        try checkedPlan(directory).config
    }

    /// `check`'s work, keeping the weight files it opened and what to read from each, so `load` reads
    /// the headers once.
    private static func checkedPlan(_ directory: String) throws -> (config: ModelConfig, plan: [(SafetensorsFile, [TensorRead])]) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.fileMissing(path: directory)
        }
        let (config, json) = try readConfig(directory)
        do {
            let plan = try tensorPlan(directory, layout: ParameterLayout(config: config), config: config)
            try checkTiedHead(plan, config: config, configJSON: json)
            return (config, plan)
        } catch let error as ModelError {
            throw error.naming(directory)
        }
    }

    /// A stored tensor and the layout entry it fills: its own, or the embedding for a tied head stored alone.
    struct TensorRead {
        let tensor: String, into: String
    }

    /// Each weight file with the tensors to read from it, after checking names, shapes and dtypes.
    private static func tensorPlan(_ directory: String, layout: ParameterLayout, config: ModelConfig) throws
        -> [(SafetensorsFile, [TensorRead])] {
        var plan: [(SafetensorsFile, [TensorRead])] = []
        var storedIn: [String: String] = [:], filled: Set<String> = []
        let (paths, map) = try weightFiles(directory)
        for path in paths {
            let file: SafetensorsFile
            // Errors about one tensor name the file it is in (a sharded model has several).
            do { file = try SafetensorsFile(path: path) } catch ModelError.tensorData(let name, let reason) {
                throw ModelError.safetensorsHeader(path: path, reason: "tensor \(name): \(reason)")
            }
            var reads: [TensorRead] = []
            for name in file.tensors.keys.sorted() {
                if let other = storedIn[name] { throw ModelError.safetensorsHeader(path: path, reason: "tensor \(name) is stored here and in \(other)") }
                if let map, let listed = map[name], listed != (path as NSString).lastPathComponent {
                    throw ModelError.safetensorsHeader(path: path, reason: "holds tensor \(name), which model.safetensors.index.json's weight_map puts in \(listed)")
                }
                // Rotary caches in old checkpoints are not weights.
                if name.hasSuffix("rotary_emb.inv_freq") { continue }
                // A tied model's stored head is the embedding when stored alone, and checked against it otherwise.
                let tiedHead = name == "lm_head.weight" && config.tieWordEmbeddings
                guard let entry = layout.entry(named: tiedHead ? "model.embed_tokens.weight" : name) else {
                    throw ModelError.unexpectedTensor(name: name)
                }
                storedIn[name] = path
                let info = file.tensors[name]!
                guard info.shape == entry.shape else {
                    throw ModelError.tensorShape(name: name, expected: entry.shape, got: info.shape)
                }
                guard ["F32", "F16", "BF16"].contains(info.dtype) else {
                    throw ModelError.tensorDtype(name: name, dtype: info.dtype)
                }
                reads.append(TensorRead(tensor: name, into: entry.name))
                filled.insert(entry.name)
            }
            plan.append((file, reads))
        }
        // A tied head stored beside the embedding is not read into it: `checkTiedHead` compares the two.
        if config.tieWordEmbeddings && storedIn["lm_head.weight"] != nil && storedIn["model.embed_tokens.weight"] != nil {
            plan = plan.map { file, reads in (file, reads.filter { $0.tensor != "lm_head.weight" }) }
        }
        // transformers starts a missing o_proj bias at zero, as `LlamaModel(config:)` does.
        for e in layout.entries where !filled.contains(e.name) && !e.name.hasSuffix(".self_attn.o_proj.bias") {
            throw ModelError.tensorMissing(name: e.name)
        }
        return plan
    }

    /// The weight files, and for a sharded model its index's `weight_map` (tensor → shard file name).
    static func weightFiles(_ directory: String) throws -> (paths: [String], map: [String: String]?) {
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single) { return ([single], nil) }
        let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        guard let data = FileManager.default.contents(atPath: index) else { throw ModelError.fileMissing(path: single) }
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(data, source: index) } catch { throw ModelError.unreadable(path: index, reason: "not valid JSON (\(error))") }
        guard let entries = parsed["weight_map"]?.object else { throw ModelError.unreadable(path: index, reason: "no weight_map object") }
        var map: [String: String] = [:]
        for (tensor, value) in entries {
            // A shard is a file of this directory: a name with a path in it could read weights from anywhere.
            guard let file = value.string, !file.isEmpty, !file.contains("/"), file != ".", file != ".." else {
                throw ModelError.unreadable(path: index, reason: "weight_map[\(tensor)] is not a file name of this directory")
            }
            map[tensor] = file
        }
        return (Set(map.values).sorted().map { (directory as NSString).appendingPathComponent($0) }, map)
    }

    /// Writes config.json and model.safetensors (F32) atomically into `directory`, creating it.
    public static func save(_ model: LlamaModel, to directory: String, metadata: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tensors = model.layout.entries.map { e in
            (name: e.name, shape: e.shape, values: UnsafeBufferPointer(start: model.parameters.pointer + e.offset, count: e.count))
        }
        var meta = metadata
        meta["format"] = "pt"
        try SafetensorsFile.write(tensors: tensors, metadata: meta,
                                  to: (directory as NSString).appendingPathComponent("model.safetensors"))
        try AtomicFile.write(try model.config.jsonData(), to: (directory as NSString).appendingPathComponent("config.json"))
    }
}

extension ModelError {
    /// The error with `path` added when it names no file of its own, so a user with two model
    /// directories in play (a run's, a checkpoint's) knows which one is wrong.
    func naming(_ path: String) -> ModelError {
        switch self {
        case .invalidConfig, .tensorMissing, .tensorShape, .tensorDtype, .tensorData, .unexpectedTensor: return .inModel(path: path, self)
        default: return self
        }
    }
}
