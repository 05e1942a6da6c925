/// Gap counting for the lossy log stream (docs/ARCHITECTURE.md §2, Protos/troupe/v1/logs.proto): every source
/// numbers its events 1, 2, 3, … per process start (`source_run_id`), and PUB/SUB drops events for a
/// slow subscriber instead of slowing the publisher. A subscriber therefore counts what it missed
/// from the holes in the numbering. Pure.
package struct SequenceTracker: Sendable, Equatable {
    /// What one source's numbering looked like so far, summed over its process starts.
    package struct Source: Sendable, Equatable {
        package let name: String
        /// The run id of the newest process start seen.
        package fileprivate(set) var runId: UInt64
        /// The highest sequence number seen from `runId`.
        package fileprivate(set) var lastSequence: UInt64
        /// Events received, all runs together.
        package fileprivate(set) var received = 0
        /// Sequence numbers skipped between events received: the gaps, all runs together.
        package fileprivate(set) var missing = 0
        /// Events a run published before the first one received from it (the monitor joined late, or
        /// was still reconnecting to a restarted source): not gaps, counted apart.
        package fileprivate(set) var beforeJoin = 0
        /// Times the source came back with a new run id (a restarted process).
        package fileprivate(set) var restarts = 0
        /// Events that repeated or went behind the numbering, or came from an earlier run after a
        /// newer one was seen. They are still shown; they are not counted as gaps.
        package fileprivate(set) var outOfOrder = 0
        /// Every run id seen, so a late event of an earlier run is not taken for another restart.
        fileprivate var knownRunIds: Set<UInt64>

        fileprivate init(name: String, runId: UInt64, sequence: UInt64) {
            self.name = name
            self.runId = runId
            self.lastSequence = sequence
            self.received = 1
            self.beforeJoin = SequenceTracker.unseenBefore(sequence)
            self.knownRunIds = [runId]
        }
    }

    /// How one event fitted into its source's numbering.
    package enum Observation: Sendable, Equatable {
        /// The first event seen from this source; `unseen` events came before it.
        case first(unseen: Int)
        /// The next number, as expected.
        case inOrder
        /// `missing` numbers were skipped just before this event.
        case gap(missing: Int)
        /// A new run id: the source restarted (its numbering starts again at 1); `unseen` events of the
        /// new run came before this one.
        case restart(unseen: Int)
        /// Repeated, older, or from an earlier run.
        case outOfOrder
    }

    package private(set) var sources: [String: Source] = [:]

    package init() {}

    package var missingTotal: Int { sources.values.reduce(0) { $0 + $1.missing } }
    package var beforeJoinTotal: Int { sources.values.reduce(0) { $0 + $1.beforeJoin } }
    package var restartsTotal: Int { sources.values.reduce(0) { $0 + $1.restarts } }
    package var outOfOrderTotal: Int { sources.values.reduce(0) { $0 + $1.outOfOrder } }
    package var receivedTotal: Int { sources.values.reduce(0) { $0 + $1.received } }

    /// Records one event's numbering and says how it fitted.
    @discardableResult
    package mutating func observe(source name: String, runId: UInt64, sequence: UInt64) -> Observation {
        guard var source = sources[name] else {
            sources[name] = Source(name: name, runId: runId, sequence: sequence)
            return .first(unseen: Self.unseenBefore(sequence))
        }
        defer { sources[name] = source }
        source.received += 1
        if runId != source.runId {
            if source.knownRunIds.contains(runId) {
                source.outOfOrder += 1
                return .outOfOrder
            }
            // Sequence numbers start at 1 for every process start. The ones below the first we see
            // went out while our connection to the new process was still being made: like a late
            // join, not a gap.
            let unseen = Self.unseenBefore(sequence)
            source.knownRunIds.insert(runId)
            source.runId = runId
            source.lastSequence = sequence
            source.restarts += 1
            source.beforeJoin += unseen
            return .restart(unseen: unseen)
        }
        guard sequence > source.lastSequence else {
            source.outOfOrder += 1
            return .outOfOrder
        }
        let missed = Int(clamping: sequence - source.lastSequence - 1)
        source.lastSequence = sequence
        source.missing += missed
        return missed == 0 ? .inOrder : .gap(missing: missed)
    }

    fileprivate static func unseenBefore(_ sequence: UInt64) -> Int { Int(clamping: sequence > 0 ? sequence - 1 : 0) }
}
