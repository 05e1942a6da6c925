import Foundation
import TroupeJSON
import TroupeTensor

/// Reads and writes Hugging Face style model directories: `config.json` plus `model.safetensors`
/// (or shards listed in `model.safetensors.index.json`).
public enum ModelDirectory {
    public static func loadConfig(_ directory: String) throws -> ModelConfig {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.fileMissing(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.unreadable(path: path, reason: "permission denied or not a file")
        }
        return try ModelConfig.parse(json: data, path: path)
    }

    /// Loads config and weights. Every tensor the config needs must be present with the right shape;
    /// a tensor the config does not know is an error too (it means config and weights disagree).
    public static func load(_ directory: String) throws -> LlamaModel {
        let config = try check(directory)
        let model = try LlamaModel(config: config)
        for (file, names) in try tensorPlan(directory, layout: model.layout, config: config) {
            for name in names {
                let entry = model.layout.entry(named: name)!
                try file.read(name, into: model.parameters.pointer + entry.offset, expectedShape: entry.shape)
            }
        }
        return model
    }

    /// Checks a model directory without reading its weights: config.json is a supported model, and the
    /// safetensors headers (every shard's) hold exactly the tensors it needs, with their shapes, in a
    /// supported dtype. Returns the configuration. A run checks this before it writes anything.
    @discardableResult
    public static func check(_ directory: String) throws -> ModelConfig {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.fileMissing(path: directory)
        }
        let config = try loadConfig(directory)
        _ = try tensorPlan(directory, layout: ParameterLayout(config: config), config: config)
        return config
    }

    /// Each weight file with the names of the tensors to read from it, after checking names, shapes and dtypes.
    private static func tensorPlan(_ directory: String, layout: ParameterLayout, config: ModelConfig) throws
        -> [(SafetensorsFile, [String])] {
        var plan: [(SafetensorsFile, [String])] = []
        var seen = Set<String>()
        for path in try weightFiles(directory) {
            let file = try SafetensorsFile(path: path)
            var names: [String] = []
            for name in file.tensors.keys.sorted() {
                // transformers may store the tied head anyway, or rotary caches in old checkpoints.
                if name.hasSuffix("rotary_emb.inv_freq") { continue }
                if name == "lm_head.weight" && config.tieWordEmbeddings { continue }
                guard let entry = layout.entry(named: name) else { throw ModelError.unexpectedTensor(name: name) }
                let info = file.tensors[name]!
                guard info.shape == entry.shape else {
                    throw ModelError.tensorShape(name: name, expected: entry.shape, got: info.shape)
                }
                guard ["F32", "F16", "BF16"].contains(info.dtype) else {
                    throw ModelError.tensorDtype(name: name, dtype: info.dtype)
                }
                names.append(name)
                seen.insert(name)
            }
            plan.append((file, names))
        }
        for e in layout.entries where !seen.contains(e.name) { throw ModelError.tensorMissing(name: e.name) }
        return plan
    }

    static func weightFiles(_ directory: String) throws -> [String] {
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single) { return [single] }
        let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        guard let data = FileManager.default.contents(atPath: index) else { throw ModelError.fileMissing(path: single) }
        guard let map = (try? JSONValue.parse(data))?["weight_map"]?.object, map.values.allSatisfy({ $0.string != nil }) else {
            throw ModelError.unreadable(path: index, reason: "no weight_map object")
        }
        return Set(map.values.compactMap(\.string)).sorted().map { (directory as NSString).appendingPathComponent($0) }
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
