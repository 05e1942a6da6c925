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

    package init(step: Int, logRecords: Int, optimizerStep: Int, skippedSteps: Int, trainedGroups: Int, weightsHash: String) {
        self.step = step
        self.logRecords = logRecords
        self.optimizerStep = optimizerStep
        self.skippedSteps = skippedSteps
        self.trainedGroups = trainedGroups
        self.weightsHash = weightsHash
    }

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
            "adam_m_hash": WeightsHash.hex(of: optimizer.m), "adam_v_hash": WeightsHash.hex(of: optimizer.v),
        ], to: dir + "/" + name)
        try AtomicFile.write(Data(name.utf8), to: dir + "/latest")
        // Keep the two newest: the one just written and its predecessor.
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted()
        for old in all.dropLast(2) { try? FileManager.default.removeItem(atPath: dir + "/" + old) }
    }

    /// Removes the temporary files of checkpoints whose writer died before renaming them (a crash mid-save
    /// leaves one the size of a checkpoint); the caller holds the run directory's lock, so none is being
    /// written. Returns the names removed.
    @discardableResult
    package static func removeStaleTemporaries(runDirectory: String) -> [String] {
        let dir = directory(runDirectory)
        let stale = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }.sorted()
        return stale.filter { unlink(dir + "/" + $0) == 0 }
    }

    /// Loads the newest intact checkpoint into `model` and `optimizer`: the one `latest` names, else
    /// (when that one is damaged) the newest older one, with a warning naming what was passed over.
    /// Nil when the run has none; an error naming every file when none is intact.
    package static func loadLatest(runDirectory: String, model: LlamaModel, optimizer: AdamW,
                                   warn: (String) -> Void = { _ in }) throws -> Checkpoint? {
        let dir = directory(runDirectory)
        let latest = FileManager.default.contents(atPath: dir + "/latest")
            .flatMap { String(data: $0, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
        func isStepFile(_ name: String) -> Bool { name.hasPrefix("step-") && name.hasSuffix(".safetensors") && !name.contains("/") }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter(isStepFile).sorted(by: >)
        if let latest, !isStepFile(latest) { warn("\(dir)/latest names \(latest.debugDescription), not a checkpoint file of this directory; passed over") }
        let named = latest.flatMap { isStepFile($0) ? $0 : nil }
        // `latest` first, then the step files newest first (a crash between a file's rename and
        // `latest`'s can leave a newer intact file that `latest` does not name yet).
        let candidates = (named.map { [$0] } ?? []) + files.filter { $0 != named }
        guard !candidates.isEmpty else { return nil }
        var problems: [String] = []
        for name in candidates {
            do {
                let c = try load(path: dir + "/" + name, model: model, optimizer: optimizer, warn: warn)
                if !problems.isEmpty { warn("resuming from \(dir)/\(name) (step \(c.step)); passed over: \(problems.joined(separator: "; "))") }
                return c
            } catch {
                problems.append("\(error)")
            }
        }
        throw RuntimeError.corruptCheckpoint("no intact checkpoint in \(dir): \(problems.joined(separator: "; "))")
    }

    /// Loads one checkpoint file, checking the parameters' and both AdamW moments' hashes; every
    /// error names the file.
    static func load(path: String, model: LlamaModel, optimizer: AdamW, warn: (String) -> Void) throws -> Checkpoint {
        func fail(_ problem: String) -> RuntimeError { RuntimeError.corruptCheckpoint("checkpoint \(path): \(problem)") }
        let n = model.parameters.count
        let file: SafetensorsFile
        let m: [Float], v: [Float]
        do {
            file = try SafetensorsFile(path: path)
            try file.read("params", into: model.parameters.pointer, expectedShape: [n])
            m = try file.floats("adam.m")
            v = try file.floats("adam.v")
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw fail("\(error)")
        }
        func meta(_ key: String) throws -> Int {
            guard let s = file.metadata[key], let x = Int(s) else { throw fail("lacks \(key)") }
            return x
        }
        let c = Checkpoint(step: try meta("step"), logRecords: try meta("log_records"), optimizerStep: try meta("optimizer_step"),
                           skippedSteps: try meta("skipped_steps"), trainedGroups: try meta("trained_groups"),
                           weightsHash: file.metadata["weights_hash"] ?? "")
        guard model.weightsHash() == c.weightsHash else { throw fail("the parameters' hash does not match its metadata") }
        for (name, values) in [("adam.m", m), ("adam.v", v)] {
            let key = name == "adam.m" ? "adam_m_hash" : "adam_v_hash"
            guard let stated = file.metadata[key] else {
                warn("checkpoint \(path) predates optimizer-moment hashes: its \(name) moments cannot be verified")
                continue
            }
            let actual = values.withUnsafeBytes { WeightsHash.hex(bytes: $0) }
            guard actual == stated else { throw fail("the \(name) moments' hash does not match its metadata") }
        }
        do {
            try optimizer.restore(step: c.optimizerStep, skippedSteps: c.skippedSteps, m: m, v: v)
        } catch {
            throw fail("\(error)")
        }
        return c
    }
}
