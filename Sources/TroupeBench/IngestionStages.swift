import Foundation
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// Where the ingestion time goes: the learner's per-group steps timed one by one.
extension IngestionBench {
    /// Each step of the learner's group intake (`GroupIntake.receive`) timed over all `groups` on this
    /// thread, without sockets: what the learner's path costs beyond receiving the bytes.
    static func stageCosts(_ groups: [GroupContent], fsyncGroups: Int, logDirectory: String) throws -> [Stage] {
        let phase = "ingestion (stages)"
        let n = groups.count
        let epoch: UInt64 = 0xBE7C4
        let core = LearnerCore(prompts: (1...UInt64(n + 64)).map { PromptEntry(id: $0, text: "p", tokens: (0..<24).map { Int32($0) }) },
                               epoch: epoch, batchGroups: 16, maxStaleness: 1_000_000, leaseSize: 64, leaseTimeout: 3600,
                               heartbeatTimeout: 3600, credit: 4, leaseCap: .max)   // every group leased up front: no lease cap
        _ = core.hello(identity: "stages", runId: 1, now: 0)
        var slots: [(UInt64, UInt64)] = []
        while slots.count < n {
            guard let lease = core.grantLease(to: "stages", maxPrompts: 64, now: 0) else { throw RuntimeBenchError(phase, "no lease") }
            slots += lease.prompts.map { (lease.id, $0) }
        }
        let encoded = try groups.enumerated().map { i, g in
            try message(for: g, lease: slots[i].0, prompt: slots[i].1, sequence: UInt64(i + 1), runId: 1, epoch: epoch).encode()
        }
        var stages: [Stage] = []
        func timed<T>(_ name: String, count: Int = n, _ body: () throws -> T) rethrows -> T {
            let t0 = monotonicSeconds()
            let result = try body()
            stages.append(Stage(name: name, microsecondsPerGroup: (monotonicSeconds() - t0) / Double(count) * 1e6))
            return result
        }
        let messages = try timed("decode (WireMessage.decode: protobuf, checksum)") {
            try encoded.map { frames -> WireMessage in
                do { return try WireMessage.decode(frames, limits: .control) } catch { throw RuntimeBenchError(phase, "\(error)") }
            }
        }
        let submissions = try timed("validate (GroupSubmission(validating:))") {
            try messages.map { m -> GroupSubmission in
                do { return try GroupSubmission(validating: m) } catch { throw RuntimeBenchError(phase, "\(error)") }
            }
        }
        let rollouts = timed("RolloutGroup (per-sample arrays)") {
            submissions.map { RolloutGroup(submission: $0, actor: "stages", promptTokens: core.prompts[$0.header.promptID]!.tokens) }
        }
        let admission = admission(samples: groups.first?.tokenCounts.count ?? 1, maxTokens: groups.flatMap(\.tokenCounts).max() ?? 1)
        try timed("GroupAdmission.review (every limit; no re-scoring)") {
            for g in rollouts {
                if case .failure(let refusal) = admission.review(g) { throw RuntimeBenchError(phase, "group \(g.key) refused: \(refusal.detail)") }
            }
        }
        try timed("LearnerCore.submit (+ batch formation)") {
            for g in rollouts {
                guard case .accepted = core.submit(g, from: "stages", now: 0) else { throw RuntimeBenchError(phase, "group \(g.key) not accepted") }
                if core.pending.count >= core.batchGroups, let taken = core.takeBatch() { core.stepCompleted(trainedGroups: taken.batch.count) }
            }
        }
        let bodies = try timed("run-log record: RunRecord.groupAccepted body (its members; the samples are written at encoding)") {
            try rollouts.map { try RunRecord.groupAccepted($0).body() }
        }
        // Into one reused buffer, as the run log's writer encodes a batch: no fresh pages per line.
        let buffer = LineBuffer(capacity: 1 << 16)
        try timed("run-log record: RecordEncoder into a reused buffer (JSON, the samples' base64 included)") {
            for body in bodies {
                buffer.removeAll()
                try RecordEncoder.encode(body, into: buffer)
            }
        }
        let lines = try bodies.map { Data(try RecordEncoder.encode($0)) }
        timed("run-log record: XXH64 of the line (the chain's hash)") {
            for line in lines { _ = line.withUnsafeBytes { ChainHash.xxh64.hex($0) } }
        }
        timed("run-log record: BLAKE2b-256 of the line (the chain's hash before)") {
            for line in lines { _ = line.withUnsafeBytes { ChainHash.blake2b256.hex($0) } }
        }
        let log = try RunLog(path: logDirectory + "/stages.log")
        try timed("run-log append without fsync (record + write)") {
            for g in rollouts { try log.append(.groupAccepted(g), sync: false) }
        }
        let fsynced = Array(rollouts.prefix(fsyncGroups))
        try timed("run-log append with an fsync each (record + write + fsync)", count: fsynced.count) {
            for g in fsynced { try log.append(.groupAccepted(g)) }
        }
        timed("Ack (encode)") {
            for s in submissions {
                var ack = Troupe_V1_Ack()
                ack.sequence = s.header.sequence
                ack.status = .accepted
                ack.creditGranted = 1
                ack.currentVersion = PolicyVersion(epoch: epoch, step: 3).proto
                _ = try? WireMessage(.ack(ack)).encode()
            }
        }
        return stages
    }
}
