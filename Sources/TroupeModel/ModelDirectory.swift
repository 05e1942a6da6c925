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
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.fileMissing(path: directory)
        }
        let config = try loadConfig(directory)
        let model = try LlamaModel(config: config)
        let files = try weightFiles(directory)
        var seen = Set<String>()
        for file in files {
            let st = try SafetensorsFile(path: file)
            for name in st.tensors.keys.sorted() {
                // transformers may store the tied head anyway, or rotary caches in old checkpoints.
                if name.hasSuffix("rotary_emb.inv_freq") { continue }
                if name == "lm_head.weight" && config.tieWordEmbeddings { continue }
                guard let entry = model.layout.entry(named: name) else { throw ModelError.unexpectedTensor(name: name) }
                try st.read(name, into: model.parameters.pointer + entry.offset, expectedShape: entry.shape)
                seen.insert(name)
            }
        }
        for e in model.layout.entries where !seen.contains(e.name) { throw ModelError.tensorMissing(name: e.name) }
        return model
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
