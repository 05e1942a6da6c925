import Foundation
import TroupeRuntime
import TroupeTensor

/// One thing that happened in a run, in each form its readers want: the run log's durable record
/// (the source of truth, replayed by `--resume` and `troupe replay`), the log stream's event (monitors)
/// and the metrics file's line (reports). `RunEvents` hands it to every sink.
package struct RunEvent {
    package struct Record {
        package var record: RunRecord
        /// Whether the append waits for the disk; records that a later sync covers need not.
        package var sync = true
    }

    package struct StreamEvent {
        package var kind: String
        package var step = 0
        package var metrics: [String: Double] = [:]
        package var fields: [String: String] = [:]
    }

    package struct MetricsLine {
        package var kind: String
        package var step: Int
        package var metrics: [String: Double]
    }

    package var record: Record?
    package var stream: StreamEvent?
    package var metricsLine: MetricsLine?

    package init(record: Record? = nil, stream: StreamEvent? = nil, metricsLine: MetricsLine? = nil) {
        self.record = record
        self.stream = stream
        self.metricsLine = metricsLine
    }

    /// An event only monitors see.
    package static func stream(_ kind: String, step: Int = 0, metrics: [String: Double] = [:], fields: [String: String] = [:]) -> RunEvent {
        RunEvent(stream: StreamEvent(kind: kind, step: step, metrics: metrics, fields: fields))
    }
}

/// A reader of run events.
package protocol RunEventSink: AnyObject {
    func emit(_ event: RunEvent) throws
}

/// Hands each event to every sink in order; the run log comes first, so nothing is announced that
/// did not reach it.
package final class RunEvents {
    package private(set) var sinks: [any RunEventSink]

    package init(_ sinks: [any RunEventSink]) { self.sinks = sinks }

    package func add(_ sink: any RunEventSink) { sinks.append(sink) }

    package func emit(_ event: RunEvent) throws {
        for sink in sinks { try sink.emit(event) }
    }
}

/// The run log: appends each event's record.
package final class RunLogSink: RunEventSink {
    let log: RunLog
    package init(_ log: RunLog) { self.log = log }
    package func emit(_ event: RunEvent) throws {
        guard let r = event.record else { return }
        try log.append(r.record, sync: r.sync)
    }
}

/// The log stream: publishes each event's stream form.
package final class LogStreamSink: RunEventSink {
    let publisher: any LogStreamPublisher
    package init(_ publisher: any LogStreamPublisher) { self.publisher = publisher }
    package func emit(_ event: RunEvent) throws {
        guard let s = event.stream else { return }
        publisher.publish(kind: s.kind, step: s.step, metrics: s.metrics, fields: s.fields, text: "")
    }
}

/// metrics.jsonl: writes each event's metrics line.
package final class MetricsFileSink: RunEventSink {
    let writer: MetricsWriter
    package init(_ writer: MetricsWriter) { self.writer = writer }
    package func emit(_ event: RunEvent) throws {
        guard let m = event.metricsLine else { return }
        writer.write(kind: m.kind, step: m.step, metrics: m.metrics)
    }
}

/// Keeps every event, for tests.
package final class InMemoryRunEvents: RunEventSink {
    package private(set) var events: [RunEvent] = []
    package init() {}
    package func emit(_ event: RunEvent) throws { events.append(event) }
    package var recordTypes: [String] { events.compactMap { $0.record?.record.type } }
}

// MARK: the learner's events

extension RunEvent {
    /// A new run: what it trains and with which threads and BLAS kernel (replay uses the same).
    package static func runStarted(epoch: UInt64, baseModel: String, baseWeightsHash: String, prompts: Int) -> RunEvent {
        RunEvent(record: Record(record: .runStarted(.init(epoch: String(epoch, radix: 16), baseModel: baseModel,
                                                          baseWeightsHash: baseWeightsHash, prompts: prompts,
                                                          threads: BLASInfo.threads, blasKernel: BLASInfo.coreName))))
    }

    /// A learner process starts on the run (new or resumed), with a new epoch.
    package static func epochStarted(epoch: UInt64, step: Int, weightsHash: String) -> RunEvent {
        RunEvent(record: Record(record: .epochStarted(.init(epoch: String(epoch, radix: 16), step: step, weightsHash: weightsHash,
                                                            threads: BLASInfo.threads, blasKernel: BLASInfo.coreName))))
    }

    package static func actorJoined(actor: String, actorRun: UInt64, build: String, threads: UInt32, rejoined: Bool) -> RunEvent {
        RunEvent(record: Record(record: .actorJoined(.init(actor: actor, actorRun: String(actorRun, radix: 16), build: build,
                                                           threads: Int(threads), rejoined: rejoined))),
                 stream: StreamEvent(kind: "actor_joined", fields: ["actor": actor]))
    }

    /// `reason` goes to the record; `streamReason` (shorter) to monitors.
    package static func actorLeft(actor: String, reason: String, streamReason: String, leases: [LearnerCore.Lease]) -> RunEvent {
        RunEvent(record: Record(record: .actorLeft(.init(actor: actor, reason: reason, leasesReturned: leases.map { Int($0.id) },
                                                         promptsReturned: leases.flatMap(\.prompts).map { Int($0) }))),
                 stream: StreamEvent(kind: "actor_left", fields: ["actor": actor, "reason": streamReason]))
    }

    package static func leaseExpired(_ lease: LearnerCore.Lease, step: Int) -> RunEvent {
        RunEvent(record: Record(record: .leaseExpired(.init(lease: Int(lease.id), actor: lease.actor, prompts: lease.prompts.map { Int($0) }))),
                 stream: StreamEvent(kind: "lease_expired", step: step, fields: ["actor": lease.actor, "lease": String(lease.id)]))
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
                                                             version: Int(group.version.step))), sync: sync))
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
                 stream: StreamEvent(kind: "step", step: step, metrics: metrics, fields: fields),
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
                 stream: StreamEvent(kind: "resumed", step: fromStep, metrics: ["pending": Double(pending)]))
    }

    package static func runEnded(finished: Bool, step: Int, accounting: [String: Double]) -> RunEvent {
        let ended = RunRecord.RunEnded(step: step, accounting: accounting)
        let record: RunRecord = finished ? .runFinished(ended) : .learnerStopped(ended)
        return RunEvent(record: Record(record: record), stream: StreamEvent(kind: record.type, step: step, metrics: accounting))
    }
}
