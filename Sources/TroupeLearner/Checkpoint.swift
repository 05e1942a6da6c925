import Foundation
import TroupeModel
import TroupeRuntime
import TroupeTensor

/// A learner checkpoint: the state after step `step`, which is the state described by the run log's
/// first `logRecords` records. Parameters and AdamW moments in one safetensors file, the counters in
/// its metadata; written to a temporary file, fsynced and renamed, then `latest` points at it.
package struct Checkpoint {
    package var step: Int
    package var logRecords: Int
    package var optimizerStep: Int
    package var skippedSteps: Int
    package var trainedGroups: Int
    package var weightsHash: String

    package static func directory(_ run: String) -> String { run + "/checkpoints" }

    package static func save(_ c: Checkpoint, model: LlamaModel, optimizer: AdamW, runDirectory: String) throws {
        let dir = directory(runDirectory)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let n = model.parameters.count
        let name = String(format: "step-%08d.safetensors", c.step)
        try SafetensorsFile.write(tensors: [
            (name: "params", shape: [n], values: UnsafeBufferPointer(start: model.parameters.pointer, count: n)),
            (name: "adam.m", shape: [n], values: UnsafeBufferPointer(start: optimizer.m.pointer, count: n)),
            (name: "adam.v", shape: [n], values: UnsafeBufferPointer(start: optimizer.v.pointer, count: n)),
        ], metadata: [
            "step": String(c.step), "log_records": String(c.logRecords), "optimizer_step": String(c.optimizerStep),
            "skipped_steps": String(c.skippedSteps), "trained_groups": String(c.trainedGroups), "weights_hash": c.weightsHash,
        ], to: dir + "/" + name)
        try AtomicFile.write(Data(name.utf8), to: dir + "/latest")
        // Keep the two newest: the one just written and its predecessor.
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted()
        for old in all.dropLast(2) { try? FileManager.default.removeItem(atPath: dir + "/" + old) }
    }

    /// Loads the newest checkpoint into `model` and `optimizer`; nil when the run has none.
    package static func loadLatest(runDirectory: String, model: LlamaModel, optimizer: AdamW) throws -> Checkpoint? {
        let dir = directory(runDirectory)
        guard let nameData = FileManager.default.contents(atPath: dir + "/latest"),
              let name = String(data: nameData, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !name.isEmpty else {
            return nil
        }
        let file = try SafetensorsFile(path: dir + "/" + name)
        let n = model.parameters.count
        try file.read("params", into: model.parameters.pointer, expectedShape: [n])
        let m = try file.floats("adam.m"), v = try file.floats("adam.v")
        func meta(_ key: String) throws -> Int {
            guard let s = file.metadata[key], let x = Int(s) else { throw RuntimeError.corruptLog("checkpoint \(name) lacks \(key)") }
            return x
        }
        let c = Checkpoint(step: try meta("step"), logRecords: try meta("log_records"), optimizerStep: try meta("optimizer_step"),
                           skippedSteps: try meta("skipped_steps"), trainedGroups: try meta("trained_groups"),
                           weightsHash: file.metadata["weights_hash"] ?? "")
        try optimizer.restore(step: c.optimizerStep, skippedSteps: c.skippedSteps, m: m, v: v)
        guard model.weightsHash() == c.weightsHash else {
            throw RuntimeError.corruptLog("checkpoint \(name): weights hash does not match its metadata")
        }
        return c
    }
}
