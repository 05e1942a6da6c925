import Foundation
import Testing
import TroupeLearner
import TroupeModel
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// What resume does with damaged checkpoints: every byte of a checkpoint is covered by a hash, a
/// damaged newest one gives way to the newest intact one (with a warning), and errors name the file.
@Suite(.serialized) struct CheckpointRecoveryTests {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoints-\(UUID().uuidString)").path

    func model() throws -> LlamaModel { try ModelDirectory.load(LearnerHarness.repositoryRoot + "/models/arith-base") }

    /// Checkpoints of steps 1 and 2 whose moments differ from step to step.
    func saveTwo() throws -> (hashes: [String], optimizer: AdamW) {
        let m = try model()
        let optimizer = AdamW(parameterCount: m.parameters.count, options: RunConfig().optimizer)
        var hashes: [String] = []
        for step in 1...2 {
            let grad = FloatBuffer(count: m.parameters.count)
            for i in 0..<grad.count { grad.pointer[i] = Float((i * 7 + step) % 13) * 1e-3 }
            optimizer.update(params: m.parameters, grad: grad)
            try Checkpoint.save(Checkpoint(step: step, logRecords: step, optimizerStep: optimizer.step, skippedSteps: 0,
                                           trainedGroups: step, weightsHash: m.weightsHash()), model: m, optimizer: optimizer, runDirectory: run)
            hashes.append(m.weightsHash())
        }
        return (hashes, optimizer)
    }

    func file(step: Int) -> String { Checkpoint.directory(run) + String(format: "/step-%08d.safetensors", step) }

    /// Flips the lowest mantissa bit of the file's last float: the last tensor written, `adam.v`.
    func alterSecondMoment(step: Int) throws {
        let handle = try #require(FileHandle(forUpdatingAtPath: file(step: step)))
        let end = handle.seekToEndOfFile()
        handle.seek(toFileOffset: end - 4)
        var byte = handle.readData(ofLength: 1)
        byte[byte.startIndex] ^= 0x01
        handle.seek(toFileOffset: end - 4)
        handle.write(byte)
        handle.closeFile()
    }

    @Test func anAlteredSecondMomentIsFoundAndTheRunFallsBackToThePreviousCheckpoint() throws {
        defer { try? FileManager.default.removeItem(atPath: run) }
        let (hashes, _) = try saveTwo()
        try alterSecondMoment(step: 2)
        let m = try model()
        let optimizer = AdamW(parameterCount: m.parameters.count, options: RunConfig().optimizer)
        var warnings: [String] = []
        let loaded = try #require(try Checkpoint.loadLatest(runDirectory: run, model: m, optimizer: optimizer, warn: { warnings.append($0) }))
        #expect(loaded.step == 1)
        #expect(m.weightsHash() == hashes[0])
        #expect(optimizer.step == 1)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains(file(step: 2)) == true && warnings.first?.contains("adam.v") == true, "\(warnings)")
    }

    /// `latest` naming anything but a step file of the directory (a path out of it, garbage) is passed
    /// over with a warning; the newest intact step file is loaded.
    @Test func aLatestThatNamesNoStepFileIsPassedOver() throws {
        defer { try? FileManager.default.removeItem(atPath: run) }
        let (hashes, _) = try saveTwo()
        for named in ["../../elsewhere/step-00000009.safetensors", "garbage"] {
            try Data((named + "\n").utf8).write(to: URL(fileURLWithPath: Checkpoint.directory(run) + "/latest"))
            let m = try model()
            var warnings: [String] = []
            let loaded = try #require(try Checkpoint.loadLatest(runDirectory: run, model: m,
                                                               optimizer: AdamW(parameterCount: m.parameters.count, options: RunConfig().optimizer),
                                                               warn: { warnings.append($0) }))
            #expect(loaded.step == 2 && m.weightsHash() == hashes[1])
            #expect(warnings == ["\(Checkpoint.directory(run))/latest names \(named.debugDescription), not a checkpoint file of this directory; passed over"])
        }
    }

    /// Temporary files a writer that died mid-save left are removed (under the run's lock), nothing else.
    @Test func halfWrittenCheckpointFilesAreRemoved() throws {
        defer { try? FileManager.default.removeItem(atPath: run) }
        _ = try saveTwo()
        let dir = Checkpoint.directory(run)
        for name in ["step-00000003.safetensors.tmp-999999", "latest.tmp-999998"] {
            try Data(count: 64).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        let before = try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.contains(".tmp-") }.sorted()
        #expect(Checkpoint.removeStaleTemporaries(runDirectory: run) == ["latest.tmp-999998", "step-00000003.safetensors.tmp-999999"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == before)
    }

    @Test func aTruncatedOnlyCheckpointIsAnErrorNamingTheFile() throws {
        defer { try? FileManager.default.removeItem(atPath: run) }
        _ = try saveTwo()
        try FileManager.default.removeItem(atPath: file(step: 1))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file(step: 2))[.size] as? Int)
        #expect(truncate(file(step: 2), off_t(size / 2)) == 0)
        let m = try model()
        let optimizer = AdamW(parameterCount: m.parameters.count, options: RunConfig().optimizer)
        #expect { try Checkpoint.loadLatest(runDirectory: run, model: m, optimizer: optimizer) } throws: {
            // Named as the damaged checkpoint it is, not as damage to the run log.
            "\($0)".contains("checkpoint \(file(step: 2)):") && "\($0)".contains("truncated") && !"\($0)".contains("run log")
        }
    }

    @Test func resumeFallsBackThroughTheLearnerAndVoidsTheLaterSteps() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        try a.hello()
        try h.turn()
        _ = try a.welcome()
        for _ in 0..<2 {
            for _ in 0..<2 {
                try a.askForLease()
                try h.turn()
                let lease = try a.lease()
                try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
                try h.turn()
            }
            try h.trainPendingStep()
        }
        let directory = h.directory
        h.kill()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let newest = Checkpoint.directory(directory) + "/step-00000002.safetensors"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: newest)[.size] as? Int)
        #expect(truncate(newest, off_t(size - 100)) == 0)
        let resumed = try LearnerHarness(directory: directory)
        #expect(resumed.learner.core.step == 1)
        let record = try #require(try resumed.records("resumed").first)
        #expect(record.body["from_step"]?.int == 1)
        #expect(record.body["voided_steps"] == [.integer(2)])
    }

    @Test func resumeWithoutTheFrozenConfigurationIsRefused() throws {
        let h = try LearnerHarness()
        let directory = h.directory
        h.kill()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.removeItem(atPath: directory + "/config.json")
        #expect { try LearnerHarness(directory: directory) } throws: { "\($0)".contains("config.json is missing") }
    }

    @Test func aRunWhoseLearnerAuthenticatedIsNotResumedInPlaintext() throws {
        let h = try LearnerHarness()
        let directory = h.directory
        let config = h.learner.config
        h.kill()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let endpointsFile = directory + "/" + LearnerEndpointsFile.fileName
        try LearnerEndpointsFile(endpoints: config.endpoints, epoch: 1, learnerPublicKey: try CurveKeyPair.generate().publicKey.z85)
            .write(to: endpointsFile)
        #expect { try LearnerHarness(directory: directory) } throws: { "\($0)".contains("resume it with --key and --allow") }
        // A learner that ran in plaintext leaves no key there: its run resumes in plaintext.
        try LearnerEndpointsFile(endpoints: config.endpoints, epoch: 1, learnerPublicKey: nil).write(to: endpointsFile)
        #expect(try LearnerHarness(directory: directory).learner.core.step == 0)
    }
}
