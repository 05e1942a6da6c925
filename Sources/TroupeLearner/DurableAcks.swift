import TroupeProto
import TroupeWire

/// Acks waiting for the run-log records appended before them to be durable: the learner never
/// acknowledges a group its run log could still lose (group commit; `RunLog.commit`, `durableCount`).
package struct DurableAcks {
    private var waiting: [(record: Int, peer: PeerID, ack: Troupe_V1_Ack)] = []

    package init() {}

    package var isEmpty: Bool { waiting.isEmpty }

    /// Holds `acks` until the log's first `record` records are durable.
    package mutating func hold(_ acks: [(PeerID, Troupe_V1_Ack)], untilRecord record: Int) {
        waiting.append(contentsOf: acks.map { (record, $0.0, $0.1) })
    }

    /// The group commit of a turn: holds `decided` until `log` has every record appended so far on disk
    /// (asking it to commit them), and returns the held acks that may leave now, in the order held.
    package mutating func take(_ decided: [(PeerID, Troupe_V1_Ack)], committing log: RunLog) throws -> [(PeerID, Troupe_V1_Ack)] {
        hold(decided, untilRecord: try log.commit())
        // Read every turn, acks held or not: it throws what stopped the run log's writer threads.
        let durable = try log.durableCount()
        return isEmpty ? [] : release(durable: durable)
    }

    /// The acks that may leave now that `durable` records are on disk, in the order they were held.
    package mutating func release(durable: Int) -> [(PeerID, Troupe_V1_Ack)] {
        let n = waiting.prefix { $0.record <= durable }.count
        guard n > 0 else { return [] }
        let ready = waiting.prefix(n).map { ($0.peer, $0.ack) }
        waiting.removeFirst(n)
        return ready
    }
}
