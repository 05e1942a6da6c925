import TroupeProto

/// What a monitor knows about a run, built only from the log stream's `LogEvent`s (kinds and names
/// in docs/monitor.md). Pure: no I/O and no clock — times come from the events (`wall_time_unix_ns`)
/// and the caller passes `now` where an age is needed. Feed it with `ingest`; read it or hand it to
/// `DashboardRenderer`.
package struct MonitorState: Sendable {
    /// The metrics kept as histories, in display order (from learner `step` events; `eval/…` from any
    /// learner event).
    package static let defaultSeries = ["reward/mean", "ttrl/majority_ratio", "label_accuracy", "loss/total",
                                       "tokens_per_s", "mismatch_kl", "trainer/idle_ratio", "eval/pass@1"]
    /// The series computed here from the "labels" field and the answer key.
    package static let labelAccuracySeries = "label_accuracy"
    package static let learnerSource = "learner"

    package enum LearnerStatus: String, Sendable {
        /// No learner event seen yet.
        case unknown
        case running
        /// `run_finished`: max_steps reached.
        case finished
        /// `learner_stopped`: shut down before max_steps (signal, failure).
        case stopped
    }

    package let seriesNames: [String]
    package let seriesCapacity: Int
    package let eventCapacity: Int

    // Stream health.
    package private(set) var sequences = SequenceTracker()
    /// Events ingested.
    package private(set) var eventCount = 0
    package private(set) var eventsByKind: [String: Int] = [:]
    /// Messages on the log socket that were not valid LogEvents, by reason.
    package private(set) var malformedMessages: [String: Int] = [:]
    /// Log events with a malformed field (e.g. "labels"), by field.
    package private(set) var malformedFields: [String: Int] = [:]
    package private(set) var firstEventTime: Double?
    package private(set) var lastEventTime: Double?

    // Learner.
    package private(set) var learnerStatus = LearnerStatus.unknown
    package private(set) var learnerRunId: UInt64?
    /// When the current learner process started (its `learner_started`, or the `started_unix` of its `learner_stats`).
    package private(set) var learnerStartTime: Double?
    package private(set) var lastLearnerEventTime: Double?
    /// The run directory and epoch the learner announced.
    package private(set) var runDirectory: String?
    package private(set) var epoch: String?
    /// The latest step the learner reported (a resumed learner may report a lower one).
    package private(set) var step = 0
    package private(set) var maxSteps: Int?
    /// The newest `step` event's metrics and fields.
    package private(set) var latestStepMetrics: [String: Double] = [:]
    package private(set) var latestStepFields: [String: String] = [:]
    /// The newest `learner_stats` metrics (queue, leases, actors, rss_mb, staleness histogram, …).
    package private(set) var learnerStats: [String: Double] = [:]
    /// The newest accounting: from `run_finished`/`learner_stopped` once seen, else `learner_stats`.
    package private(set) var accounting: AccountingSnapshot?

    package private(set) var series: [String: MetricSeries]
    package private(set) var actors: [String: ActorRow] = [:]
    /// The newest `eventCapacity` notable events, oldest first.
    package private(set) var recentEvents: [NotableEvent] = []
    /// Present when an answer key was given.
    package private(set) var labelAccuracy: LabelAccuracy?

    /// (wall time, step) of recent `step` events of the current learner process, for the step rate.
    private var stepTimes: [(time: Double, step: Int)] = []
    private static let stepRateWindow = 20

    /// - Parameters:
    ///   - answerKey: prompt id -> true answer; enables `labelAccuracy` and the "label_accuracy" series.
    ///   - seriesCapacity: points kept per series.
    ///   - eventCapacity: notable events kept.
    package init(answerKey: [UInt64: String]? = nil, seriesNames: [String] = MonitorState.defaultSeries,
                seriesCapacity: Int = 120, eventCapacity: Int = 50) {
        self.seriesNames = seriesNames
        self.seriesCapacity = max(1, seriesCapacity)
        self.eventCapacity = max(1, eventCapacity)
        series = Dictionary(uniqueKeysWithValues: seriesNames.map { ($0, MetricSeries(name: $0, capacity: seriesCapacity)) })
        labelAccuracy = answerKey.map(LabelAccuracy.init(answerKey:))
    }

    // MARK: reading

    /// Actors sorted by identity.
    package var actorRows: [ActorRow] { actors.values.sorted { $0.identity < $1.identity } }

    /// True once the learner said `run_finished` or `learner_stopped`.
    package var runEnded: Bool { learnerStatus == .finished || learnerStatus == .stopped }

    /// Steps per second over the last few steps of the current learner process.
    package var stepRate: Double? {
        guard let first = stepTimes.first, let last = stepTimes.last,
              last.time > first.time, last.step > first.step else { return nil }
        return Double(last.step - first.step) / (last.time - first.time)
    }

    /// Seconds until max_steps at the recent step rate.
    package var etaSeconds: Double? {
        guard let maxSteps, let rate = stepRate, rate > 0 else { return nil }
        return Double(max(0, maxSteps - step)) / rate
    }

    /// Seconds since the current learner process started; nil until its `learner_started`, or a
    /// `learner_stats` naming its start, has arrived.
    package func elapsedSeconds(now: Double) -> Double? {
        learnerStartTime.map { max(0, now - $0) }
    }

    // MARK: ingesting

    /// Counts a message on the log socket that was not a valid LogEvent.
    package mutating func recordMalformedMessage(reason: String) {
        malformedMessages[reason, default: 0] += 1
    }

    /// Takes one event into the state. `receivedAt` (Unix seconds) stands in for an event without a
    /// wall time.
    package mutating func ingest(_ event: Troupe_V1_LogEvent, receivedAt: Double? = nil) {
        let time = event.wallTimeUnixNs > 0 ? Double(event.wallTimeUnixNs) / 1e9 : (receivedAt ?? lastEventTime ?? 0)
        eventCount += 1
        eventsByKind[event.kind, default: 0] += 1
        if firstEventTime == nil { firstEventTime = time }
        lastEventTime = max(lastEventTime ?? time, time)

        let observation = sequences.observe(source: event.source, runId: event.sourceRunID, sequence: event.sequence)
        if case .restart = observation {
            note(time, event.source, "restarted", "\(event.source) restarted (new process)")
            // A new actor process counts its groups from zero again.
            if event.source.hasPrefix("actor/") { actors[actorIdentity(event)]?.groupsProduced = nil }
        }
        if event.source == Self.learnerSource {
            ingestLearner(event, time: time, observation: observation)
        } else if event.source.hasPrefix("actor/") {
            ingestActor(event, identity: actorIdentity(event), time: time)
        }
    }

    private func actorIdentity(_ event: Troupe_V1_LogEvent) -> String {
        event.fields["actor"] ?? String(event.source.dropFirst("actor/".count))
    }

    private mutating func ingestLearner(_ event: Troupe_V1_LogEvent, time: Double, observation: SequenceTracker.Observation) {
        switch observation {
        case .first, .restart:
            learnerRunId = event.sourceRunID
            learnerStartTime = nil
            stepTimes.removeAll()
            learnerStatus = .running
        case .outOfOrder:
            // A late event of an earlier learner process says nothing about the current one.
            if event.sourceRunID != learnerRunId { return }
        default: break
        }
        lastLearnerEventTime = max(lastLearnerEventTime ?? time, time)
        let step = Int(clamping: event.step)
        for (name, value) in event.metrics where name.hasPrefix("eval/") && event.kind != "step" {
            series[name]?.append(step: step, value: value)
        }

        switch event.kind {
        case "learner_started":
            learnerStatus = .running
            learnerStartTime = time
            self.step = step
            runDirectory = event.fields["run"] ?? runDirectory
            epoch = event.fields["epoch"] ?? epoch
            note(time, event.source, event.kind, "learner started at step \(step)" + (event.fields["run"].map { " (\($0))" } ?? ""))
        case "step":
            ingestStep(event, step: step, time: time)
        case "learner_stats":
            if learnerStatus == .unknown { learnerStatus = .running }
            // Every learner_stats names the process's start, run and epoch: a monitor that missed
            // learner_started (it joined in the learner's first second) learns them here.
            if learnerStartTime == nil, let started = event.fields["started_unix"].flatMap(Double.init), started.isFinite, started > 0 {
                learnerStartTime = started
            }
            runDirectory = event.fields["run"] ?? runDirectory
            epoch = event.fields["epoch"] ?? epoch
            learnerStats = event.metrics
            if let s = event.metrics["step"]?.monitorWholeNumber, s >= 0 { self.step = s }
            if let m = event.metrics["max_steps"]?.monitorWholeNumber, m >= 1 { maxSteps = m }
            if !runEnded, let a = AccountingSnapshot(metrics: event.metrics) { accounting = a }
            updateActorsFromLearner(event.fields, time: time)
        case "run_finished", "learner_stopped":
            learnerStatus = event.kind == "run_finished" ? .finished : .stopped
            self.step = step
            if let a = AccountingSnapshot(metrics: event.metrics) { accounting = a }
            note(time, event.source, event.kind, (event.kind == "run_finished" ? "run finished" : "learner stopped") + " at step \(step)")
        case "actor_joined", "actor_left":
            ingestMembership(event, time: time)
        case "lease_expired":
            note(time, event.source, event.kind,
                 "lease \(event.fields["lease"] ?? "?") of \(event.fields["actor"] ?? "?") expired; prompts back in the queue")
        case "rejection":
            let reason = event.fields["reason"] ?? "?"
            let from = event.fields["actor"].map { " from \($0)" } ?? ""
            let detail = event.fields["detail"].flatMap { $0.isEmpty ? nil : ": \($0)" } ?? ""
            note(time, event.source, event.kind, "rejected\(from): \(reason)\(detail)")
        case "allowlist_changed":
            let parts = ["added", "removed", "replaced"].compactMap { key in
                event.fields[key].flatMap { $0.isEmpty ? nil : "\(key) \($0)" }
            }
            note(time, event.source, event.kind, "allowlist changed: " + (parts.isEmpty ? "nothing" : parts.joined(separator: "; ")))
        case "allowlist_refused":
            note(time, event.source, event.kind, "allowlist directory refused, unchanged: \(event.fields["problem"] ?? "?")")
        case "log":
            noteLog(event, time: time)
        default:
            break
        }
    }

    /// A trained step: its metrics, the step rate, and label accuracy when an answer key is held.
    private mutating func ingestStep(_ event: Troupe_V1_LogEvent, step: Int, time: Double) {
        learnerStatus = .running
        self.step = step
        latestStepMetrics = event.metrics
        latestStepFields = event.fields
        for (name, value) in event.metrics { series[name]?.append(step: step, value: value) }
        stepTimes.append((time, step))
        if stepTimes.count > Self.stepRateWindow { stepTimes.removeFirst(stepTimes.count - Self.stepRateWindow) }
        guard labelAccuracy != nil, let text = event.fields["labels"] else { return }
        do {
            let labels = try StepLabels.parse(text)
            if let fraction = labelAccuracy!.record(step: step, labels: labels) {
                series[Self.labelAccuracySeries]?.append(step: step, value: fraction)
            }
        } catch {
            malformedFields["labels", default: 0] += 1
            note(time, event.source, "malformed", "step \(step): \(error)")
        }
    }

    /// An actor joined or left, as the learner saw it.
    private mutating func ingestMembership(_ event: Troupe_V1_LogEvent, time: Double) {
        let id = event.fields["actor"] ?? "?"
        var row = actors[id] ?? ActorRow(identity: id)
        if event.kind == "actor_joined" {
            row.connected = true
            row.leftReason = nil
            row.lastSeen = time
            note(time, event.source, event.kind, "actor \(id) joined")
        } else {
            let reason = event.fields["reason"].flatMap { $0.isEmpty ? nil : $0 } ?? "left"
            row.connected = false
            row.leftReason = reason
            note(time, event.source, event.kind, "actor \(id) left (\(reason))")
        }
        actors[id] = row
    }

    /// A warning or error a process logged (its console line, through the log stream).
    private mutating func noteLog(_ event: Troupe_V1_LogEvent, time: Double) {
        note(time, event.source, event.kind, "\(event.fields["level"] ?? "warn"): \(event.text)")
    }

    private mutating func ingestActor(_ event: Troupe_V1_LogEvent, identity: String, time: Double) {
        var row = actors[identity] ?? ActorRow(identity: identity)
        row.lastSeen = max(row.lastSeen ?? time, time)
        let m = event.metrics
        switch event.kind {
        case "actor_stats":
            if let v = m["tokens_per_s"] { row.tokensPerSecond = v }
            if let v = m["actor/idle_ratio"] { row.idleRatio = v }
            if let v = Self.count(m["groups_produced"]) { row.groupsProduced = max(v, row.groupsProduced ?? 0) }
            if let v = Self.count(m["unacked"]) { row.unacked = v }
            if let v = Self.count(m["weights_step"]) { row.weightsStep = v }
        case "weights_applied":
            if let v = m["weight_sync_ms"] { row.weightSyncMilliseconds = v }
            row.weightsStep = Int(clamping: event.step)
            switch event.fields["via"] {
            case "shared_memory": row.weightsVia = "shm"
            case "chunks": row.weightsVia = "learner"
            case "relay": row.weightsVia = "relay/" + (event.fields["depth"] ?? "?")
            default: break
            }
        case "weights_relay_fallback":
            note(time, event.source, event.kind, "actor \(identity): relay \(event.fields["upstream"] ?? "?") stopped serving "
                 + "(\(event.fields["reason"] ?? "?")); the learner serves the rest")
        case "log":
            noteLog(event, time: time)
        default:
            break
        }
        actors[identity] = row
    }

    /// `learner_stats` fields "actor/<id>" = "k=v,k=v,…": the learner's list of live actors.
    private mutating func updateActorsFromLearner(_ fields: [String: String], time: Double) {
        var listed = Set<String>()
        for (key, value) in fields where key.hasPrefix("actor/") {
            let id = String(key.dropFirst("actor/".count))
            listed.insert(id)
            var stats: [String: Double] = [:]
            for pair in value.split(separator: ",") {
                guard let eq = pair.firstIndex(of: "="), let v = Double(pair[pair.index(after: eq)...]), v.isFinite else { continue }
                stats[String(pair[..<eq])] = v
            }
            var row = actors[id] ?? ActorRow(identity: id)
            row.connected = true
            row.leftReason = nil
            // The same heartbeat numbers the actor publishes itself: whichever arrives last wins, so a
            // row stays fresh when one of the two streams drops events.
            if let v = stats["tokens_per_s"] { row.tokensPerSecond = v }
            if let v = stats["idle_ratio"] { row.idleRatio = v }
            // Heartbeats lag: a count only grows within one actor process (reset on its restart).
            if let v = Self.count(stats["groups_produced"]) { row.groupsProduced = max(v, row.groupsProduced ?? 0) }
            if let v = Self.count(stats["unacked"]) { row.unacked = v }
            if let v = Self.count(stats["weights_step"]) { row.weightsStep = v }
            if let v = Self.count(stats["accepted"]) { row.groupsAccepted = v }
            actors[id] = row
        }
        for (id, row) in actors where row.connected && !listed.contains(id) {
            actors[id]!.connected = false
            if row.leftReason == nil { actors[id]!.leftReason = "gone" }
        }
    }

    private static func count(_ value: Double?) -> Int? {
        guard let n = value?.monitorWholeNumber, n >= 0 else { return nil }
        return n
    }

    private mutating func note(_ time: Double, _ source: String, _ kind: String, _ summary: String) {
        recentEvents.append(NotableEvent(time: time, source: source, kind: kind, summary: summary))
        if recentEvents.count > eventCapacity { recentEvents.removeFirst(recentEvents.count - eventCapacity) }
    }
}
