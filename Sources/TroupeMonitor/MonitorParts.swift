/// The pieces a `MonitorState` is made of: bounded metric histories, per-actor rows, notable events
/// and the learner's accounting. Pure values.

/// The newest `capacity` values of one metric, oldest first (what a sparkline draws).
package struct MetricSeries: Sendable, Equatable {
    package struct Point: Sendable, Equatable {
        package let step: Int
        package let value: Double
    }

    package let name: String
    package let capacity: Int
    package private(set) var points: [Point] = []

    package init(name: String, capacity: Int) {
        self.name = name
        self.capacity = max(1, capacity)
    }

    package var values: [Double] { points.map(\.value) }
    package var last: Double? { points.last?.value }

    /// Appends a finite value (non-finite ones are dropped: a NaN must not poison the plot's scale).
    package mutating func append(step: Int, value: Double) {
        guard value.isFinite else { return }
        points.append(Point(step: step, value: value))
        if points.count > capacity { points.removeFirst(points.count - capacity) }
    }
}

/// One actor as the monitor knows it: what the learner reports of it (`learner_stats` field
/// `actor/<id>`, from the actor's heartbeats, plus groups accepted) and what the actor publishes itself
/// (`actor_stats`, `weights_applied`). Nil means never reported.
package struct ActorRow: Sendable, Equatable {
    package let identity: String
    package var tokensPerSecond: Double?
    /// Fraction of the actor's wall time not spent sampling.
    package var idleRatio: Double?
    package var groupsProduced: Int?
    /// Groups the learner accepted from this actor (learner's count).
    package var groupsAccepted: Int?
    /// Groups sent and not yet acknowledged.
    package var unacked: Int?
    /// The policy step of the weights the actor samples with.
    package var weightsStep: Int?
    /// The last weight sync's duration.
    package var weightSyncMilliseconds: Double?
    /// Where the last weights came from: "shm" (the learner's shared memory), "learner" (chunks from
    /// the learner) or "relay/N" (chunks from another actor, N hops from the learner).
    package var weightsVia: String?
    /// Wall time (Unix seconds) of the newest event the actor published itself (or of its join).
    package var lastSeen: Double?
    /// In the learner's actor list (or joined and not left, before any learner_stats arrived).
    package var connected: Bool
    /// Why it left (Bye reason, "evicted"), while not connected.
    package var leftReason: String?

    package init(identity: String, connected: Bool = false) {
        self.identity = identity
        self.connected = connected
    }
}

/// An event worth a line on the dashboard: actors joining and leaving, expired leases, rejections,
/// the learner starting, restarting and finishing.
package struct NotableEvent: Sendable, Equatable {
    /// Wall time, Unix seconds.
    package let time: Double
    package let source: String
    package let kind: String
    /// One line for people, e.g. "actor a2 left (evicted)".
    package let summary: String

    package init(time: Double, source: String, kind: String, summary: String) {
        self.time = time
        self.source = source
        self.kind = kind
        self.summary = summary
    }
}

/// The learner's group accounting (LearnerCore.Accounting.summary, published in `learner_stats` and
/// with `run_finished`/`learner_stopped`):
/// `produced = trained + rejected (by reason) + duplicates + lost_uncommitted + in_flight`.
package struct AccountingSnapshot: Sendable, Equatable {
    package var produced: Int
    package var trained: Int
    package var rejected: Int
    package var rejectedByReason: [String: Int]
    package var duplicates: Int
    package var lostUncommitted: Int
    package var inFlight: Int
    /// Accepted and waiting for a batch (part of `inFlight`).
    package var pending: Int

    /// Reads the learner's metric names; nil when `produced` is absent (not an accounting event).
    package init?(metrics: [String: Double]) {
        guard let produced = metrics["produced"]?.monitorWholeNumber else { return nil }
        func count(_ key: String) -> Int { metrics[key]?.monitorWholeNumber ?? 0 }
        self.produced = produced
        trained = count("trained")
        rejected = count("rejected")
        duplicates = count("duplicates")
        lostUncommitted = count("lost_uncommitted")
        inFlight = count("in_flight")
        pending = count("pending")
        var reasons: [String: Int] = [:]
        for key in metrics.keys where key.hasPrefix("rejected/") {
            reasons[String(key.dropFirst("rejected/".count))] = count(key)
        }
        rejectedByReason = reasons
    }

    package var identityHolds: Bool { produced == trained + rejected + duplicates + lostUncommitted + inFlight }
}
