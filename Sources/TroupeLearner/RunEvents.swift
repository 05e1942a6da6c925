import Foundation
import TroupeRuntime
import TroupeTensor

/// A run-log record and whether its append waits for the disk (records that a later sync covers
/// need not).
package struct RunLogEntry {
    package var record: RunRecord
    package var sync = true
}

/// The learner's events: each carries its run-log record (the source of truth, replayed by
/// `--resume` and `troupe replay`) besides its log-stream event and metrics line.
package typealias RunEvent = ProcessEvent<RunLogEntry>
package typealias RunEvents = ProcessEvents<RunLogEntry>
package typealias InMemoryRunEvents = InMemoryProcessEvents<RunLogEntry>

/// The run log: appends each event's record.
package final class RunLogSink: ProcessEventSink {
    let log: RunLog
    package init(_ log: RunLog) { self.log = log }
    package func emit(_ event: RunEvent) throws {
        guard let r = event.record else { return }
        try log.append(r.record, sync: r.sync)
    }
}

extension InMemoryProcessEvents where Record == RunLogEntry {
    package var recordTypes: [String] { events.compactMap { $0.record?.record.type } }
}

// MARK: the learner's events

extension ProcessEvent where Record == RunLogEntry {
    /// A new run: what it trains and with which threads and BLAS kernel (replay uses the same).
    package static func runStarted(epoch: UInt64, baseModel: String, baseWeightsHash: String, prompts: Int,
                                   configDigest: String? = nil) -> RunEvent {
        RunEvent(record: Record(record: .runStarted(.init(epoch: String(epoch, radix: 16), baseModel: baseModel,
                                                          baseWeightsHash: baseWeightsHash, prompts: prompts,
                                                          threads: BLASInfo.threads, blasKernel: BLASInfo.coreName,
                                                          configDigest: configDigest))))
    }

    /// A learner process starts on the run (new or resumed), with a new epoch.
    package static func epochStarted(epoch: UInt64, step: Int, weightsHash: String) -> RunEvent {
        RunEvent(record: Record(record: .epochStarted(.init(epoch: String(epoch, radix: 16), step: step, weightsHash: weightsHash,
                                                            threads: BLASInfo.threads, blasKernel: BLASInfo.coreName))))
    }

    package static func actorJoined(actor: String, actorRun: UInt64, build: String, threads: UInt32, rejoined: Bool) -> RunEvent {
        RunEvent(record: Record(record: .actorJoined(.init(actor: actor, actorRun: String(actorRun, radix: 16), build: build,
                                                           threads: Int(threads), rejoined: rejoined))),
                 stream: Stream(kind: "actor_joined", fields: ["actor": actor]))
    }

    /// `reason` goes to the record; `streamReason` (shorter) to monitors.
    package static func actorLeft(actor: String, reason: String, streamReason: String, leases: [LearnerCore.Lease]) -> RunEvent {
        RunEvent(record: Record(record: .actorLeft(.init(actor: actor, reason: reason, leasesReturned: leases.map { Int($0.id) },
                                                         promptsReturned: leases.flatMap(\.prompts).map { Int($0) }))),
                 stream: Stream(kind: "actor_left", fields: ["actor": actor, "reason": streamReason]))
    }

    package static func leaseExpired(_ lease: LearnerCore.Lease, step: Int) -> RunEvent {
        RunEvent(record: Record(record: .leaseExpired(.init(lease: Int(lease.id), actor: lease.actor, prompts: lease.prompts.map { Int($0) }))),
                 stream: Stream(kind: "lease_expired", step: step, fields: ["actor": lease.actor, "lease": String(lease.id)]))
    }

    /// An accepted group: everything needed to train on it again (`GroupAccepted`). Written
    /// without waiting; the group commit syncs before the ack leaves.
    package static func groupAccepted(_ group: RolloutGroup) -> RunEvent {
        RunEvent(record: Record(record: .groupAccepted(group), sync: false))
    }

    /// A group `LearnerCore` refused (stale, old epoch, unknown lease…), or one a resume finds sampled
    /// with weights that died with the crash.
    package static func groupRejected(_ group: RolloutGroup, reason: String, detail: String, sync: Bool = false) -> RunEvent {
        RunEvent(record: Record(record: .groupRejected(.init(group: group.key.description, reason: reason, detail: detail,
                                                             version: Int(clamping: group.version.step))), sync: sync))
    }

    /// A pending group that aged past `max_staleness` before a batch could take it.
    package static func staleAtBatch(_ group: RolloutGroup) -> RunEvent {
        groupRejected(group, reason: "stale", detail: "too old when the batch formed")
    }

    /// Step records need not be on disk before anything leaves: a crash voids every step after the
    /// last checkpoint anyway, and the checkpoint's own record syncs all before it.
    package static func batchFormed(step: Int, groups: [RolloutGroup]) -> RunEvent {
        RunEvent(record: Record(record: .batchFormed(.init(step: step, groups: groups.map(\.key.description))), sync: false))
    }

    package static func stepFailed(step: Int, error: String) -> RunEvent {
        RunEvent(record: Record(record: .stepFailed(.init(step: step, error: error))))
    }

    package static func stepDone(step: Int, weightsHash: String, loss: Double, skipped: Bool, groups: Int,
                                 metrics: [String: Double], fields: [String: String]) -> RunEvent {
        RunEvent(record: Record(record: .stepDone(.init(step: step, weightsHash: weightsHash, loss: loss, skipped: skipped, groups: groups)),
                                sync: false),
                 stream: Stream(kind: "step", step: step, metrics: metrics, fields: fields),
                 metricsLine: MetricsLine(kind: "train", step: step, metrics: metrics))
    }

    package static func published(step: Int, epoch: UInt64) -> RunEvent {
        RunEvent(record: Record(record: .published(.init(step: step, epoch: String(epoch, radix: 16))), sync: false))
    }

    package static func checkpoint(step: Int, weightsHash: String) -> RunEvent {
        RunEvent(record: Record(record: .checkpoint(.init(step: step, weightsHash: weightsHash))))
    }

    /// A learner resumed the run from the checkpoint of `fromStep`: the steps after it are void.
    package static func resumed(fromStep: Int, voidedSteps: [Int], pending: Int, trained: Int) -> RunEvent {
        RunEvent(record: Record(record: .resumed(.init(fromStep: fromStep, voidedSteps: voidedSteps, pending: pending, trained: trained))),
                 stream: Stream(kind: "resumed", step: fromStep, metrics: ["pending": Double(pending)]))
    }

    package static func runEnded(finished: Bool, step: Int, accounting: [String: Double]) -> RunEvent {
        let ended = RunRecord.RunEnded(step: step, accounting: accounting)
        let record: RunRecord = finished ? .runFinished(ended) : .learnerStopped(ended)
        return RunEvent(record: Record(record: record), stream: Stream(kind: record.type, step: step, metrics: accounting))
    }
}
