import Foundation
import Testing
import TroupeJSON
import TroupeProto
import TroupeMonitor
import TroupeRuntime
import TroupeWire

/// A log event as a learner or actor would publish it; `time` in Unix seconds.
private func event(_ kind: String, source: String = "learner", run: UInt64 = 0xA, sequence: UInt64, step: Int = 0,
                   time: Double = 1_000, metrics: [String: Double] = [:], fields: [String: String] = [:]) -> Troupe_V1_LogEvent {
    var e = Troupe_V1_LogEvent()
    e.source = source
    e.sourceRunID = run
    e.sequence = sequence
    e.kind = kind
    e.step = UInt64(step)
    e.wallTimeUnixNs = Int64(time * 1e9)
    e.metrics = metrics
    e.fields = fields
    return e
}

// MARK: gaps

@Test func gapsAreTheMissingSequenceNumbers() {
    var state = MonitorState()
    for seq: UInt64 in [1, 2, 5] { state.ingest(event("learner_stats", sequence: seq)) }
    #expect(state.sequences.missingTotal == 2)
    #expect(state.sequences.sources["learner"]?.lastSequence == 5)
    #expect(state.sequences.restartsTotal == 0)

    // A new run id is a restarted process: its numbering starts again at 1 without a gap.
    state.ingest(event("learner_started", run: 0xB, sequence: 1))
    state.ingest(event("learner_stats", run: 0xB, sequence: 2))
    #expect(state.sequences.missingTotal == 2)
    #expect(state.sequences.restartsTotal == 1)
    #expect(state.sequences.sources["learner"]?.runId == 0xB)
    #expect(state.recentEvents.contains { $0.summary.contains("learner restarted") })

    // A late event of the earlier process is neither a restart nor a gap.
    state.ingest(event("learner_stats", run: 0xA, sequence: 6))
    #expect(state.sequences.restartsTotal == 1)
    #expect(state.sequences.outOfOrderTotal == 1)
    #expect(state.sequences.missingTotal == 2)
    #expect(state.eventCount == 6)
}

@Test func sourcesAreNumberedIndependentlyAndAJoinIsNotAGap() {
    var tracker = SequenceTracker()
    // The monitor joined late: the first number seen is 57; the 56 before it are not gaps.
    #expect(tracker.observe(source: "actor/a1", runId: 1, sequence: 57) == .first(unseen: 56))
    #expect(tracker.observe(source: "learner", runId: 2, sequence: 3) == .first(unseen: 2))
    #expect(tracker.observe(source: "actor/a1", runId: 1, sequence: 58) == .inOrder)
    #expect(tracker.observe(source: "actor/a1", runId: 1, sequence: 61) == .gap(missing: 2))
    #expect(tracker.observe(source: "actor/a1", runId: 1, sequence: 61) == .outOfOrder)
    // A restart seen from its third event: the first two went out while we were reconnecting.
    #expect(tracker.observe(source: "learner", runId: 9, sequence: 3) == .restart(unseen: 2))
    #expect(tracker.observe(source: "learner", runId: 9, sequence: 5) == .gap(missing: 1))
    #expect(tracker.sources["actor/a1"]?.missing == 2)
    #expect(tracker.sources["learner"]?.missing == 1)
    #expect(tracker.sources["learner"]?.beforeJoin == 4)
    #expect(tracker.missingTotal == 3)
    #expect(tracker.beforeJoinTotal == 60)
    #expect(tracker.receivedTotal == 7)
}

// MARK: label accuracy

@Test func labelAccuracyComparesMajorityLabelsWithTheAnswerKey() throws {
    var state = MonitorState(answerKey: [1: "4", 2: "7", 3: "10", 4: "1/2"])
    // 1 right, 2 wrong, 3 right (10.0 == 10), 4 no majority (wrong), 9 not in the key.
    state.ingest(event("step", sequence: 1, step: 1, metrics: ["reward/mean": 0.5],
                       fields: ["labels": "1=4,2=8,3=10.0,4=,9=5"]))
    let accuracy = try #require(state.labelAccuracy)
    #expect(accuracy.judged == 4)
    #expect(accuracy.correct == 2)
    #expect(accuracy.unknownPrompts == 1)
    #expect(accuracy.fraction == 0.5)
    #expect(state.series["label_accuracy"]?.last == 0.5)

    state.ingest(event("step", sequence: 2, step: 2, fields: ["labels": "4=0.5,2=7"]))
    #expect(state.labelAccuracy?.correct == 4)
    #expect(state.labelAccuracy?.judged == 6)
    #expect(state.labelAccuracy?.lastStep == LabelAccuracy.StepResult(step: 2, judged: 2, correct: 2))
    #expect(state.series["label_accuracy"]?.values == [0.5, 1.0])

    // Without a key nothing is judged.
    var plain = MonitorState()
    plain.ingest(event("step", sequence: 1, step: 1, fields: ["labels": "1=4"]))
    #expect(plain.labelAccuracy == nil)
    #expect(plain.series["label_accuracy"]?.points.isEmpty == true)
}

@Test func stepLabelsKeepCommasInsideLabelsAndRejectGarbage() throws {
    #expect(try StepLabels.parse("1=1,234,2=5") == [.init(promptId: 1, label: "1,234"), .init(promptId: 2, label: "5")])
    #expect(try StepLabels.parse("7=x=y") == [.init(promptId: 7, label: "x=y")])
    #expect(try StepLabels.parse("") == [])
    #expect(throws: MonitorInputError.self) { try StepLabels.parse("abc,1=2") }

    var state = MonitorState(answerKey: [1: "2"])
    state.ingest(event("step", sequence: 1, step: 3, fields: ["labels": "garbage"]))
    #expect(state.malformedFields["labels"] == 1)
    #expect(state.labelAccuracy?.judged == 0)
    #expect(state.recentEvents.last?.summary.contains("labels") == true)
}

// MARK: state

/// A learner at step 7 of 10 with two actors, one evicted, several steps of history.
private func syntheticState() -> MonitorState {
    var state = MonitorState(answerKey: [0: "3", 1: "5"])
    var seq: UInt64 = 0
    func next() -> UInt64 { seq += 1; return seq }
    state.ingest(event("learner_started", sequence: next(), time: 1_000, fields: ["run": "runs/demo", "epoch": "ab"]))
    state.ingest(event("actor_joined", sequence: next(), time: 1_001, fields: ["actor": "a1"]))
    state.ingest(event("actor_joined", sequence: next(), time: 1_001, fields: ["actor": "a2"]))
    for step in 1...7 {
        state.ingest(event("step", sequence: next(), step: step, time: 1_000 + Double(step) * 2,
                           metrics: ["reward/mean": Double(step) / 10, "ttrl/majority_ratio": 0.5 + Double(step % 3) / 10,
                                     "loss/total": 1 / Double(step), "tokens_per_s": 800 + Double(step),
                                     "trainer/idle_ratio": 0.05],
                           fields: ["labels": step % 2 == 0 ? "0=3,1=4" : "0=3,1=5"]))
    }
    state.ingest(event("actor_stats", source: "actor/a1", run: 0x1, sequence: 1, time: 1_014,
                       metrics: ["groups_produced": 20, "tokens_per_s": 812.5, "actor/idle_ratio": 0.12, "unacked": 1,
                                 "weights_step": 7],
                       fields: ["actor": "a1"]))
    state.ingest(event("weights_applied", source: "actor/a1", run: 0x1, sequence: 2, step: 7, time: 1_014,
                       metrics: ["weight_sync_ms": 4.5], fields: ["actor": "a1", "via": "relay", "depth": "2"]))
    state.ingest(event("weights_relay_fallback", source: "actor/a1", run: 0x1, sequence: 3, time: 1_014,
                       fields: ["actor": "a1", "upstream": "tcp://10.0.0.5:4100", "reason": "no chunk for 3.0 s"]))
    state.ingest(event("actor_left", sequence: next(), time: 1_014, fields: ["actor": "a2", "reason": "evicted"]))
    state.ingest(event("learner_stats", sequence: next(), step: 7, time: 1_015,
                       metrics: ["produced": 30, "trained": 14, "rejected": 3, "rejected/stale": 2, "rejected/non_finite": 1,
                                 "duplicates": 1, "lost_uncommitted": 2, "in_flight": 10, "pending": 4, "actors": 1,
                                 "leases": 2, "queue": 5, "step": 7, "max_steps": 10, "trainer/idle_ratio": 0.05,
                                 "rss_mb": 312, "off_policy/staleness_hist/0": 12, "off_policy/staleness_hist/1": 2],
                       fields: ["actor/a1": "accepted=12,groups_produced=20,idle_ratio=0.1,tokens_per_s=800,unacked=1,weights_step=7"]))
    return state
}

@Test func stateKeepsProgressSeriesActorsAndAccounting() throws {
    let state = syntheticState()
    #expect(state.learnerStatus == .running)
    #expect(state.step == 7)
    #expect(state.maxSteps == 10)
    #expect(state.runDirectory == "runs/demo")
    // One step every 2 s: 0.5 step/s, 3 steps left.
    #expect(state.stepRate == 0.5)
    #expect(state.etaSeconds == 6)
    #expect(state.elapsedSeconds(now: 1_020) == 20)
    #expect(state.series["reward/mean"]?.values.count == 7)
    #expect(state.series["reward/mean"]?.last == 0.7)
    #expect(state.latestStepMetrics["loss/total"] == 1.0 / 7)

    let a1 = try #require(state.actors["a1"])
    #expect(a1.connected)
    #expect(a1.groupsAccepted == 12)
    #expect(a1.groupsProduced == 20)
    #expect(a1.weightSyncMilliseconds == 4.5)
    #expect(a1.weightsVia == "relay/2")
    #expect(state.recentEvents.contains { $0.summary == "actor a1: relay tcp://10.0.0.5:4100 stopped serving (no chunk for 3.0 s); the learner serves the rest" })
    #expect(a1.weightsStep == 7)
    #expect(a1.tokensPerSecond == 800)  // the learner's copy of the heartbeat arrived after the actor's own
    #expect(a1.idleRatio == 0.1)
    #expect(a1.lastSeen == 1_014)
    let a2 = try #require(state.actors["a2"])
    #expect(!a2.connected)
    #expect(a2.leftReason == "evicted")

    let accounting = try #require(state.accounting)
    #expect(accounting.produced == 30)
    #expect(accounting.rejectedByReason == ["stale": 2, "non_finite": 1])
    #expect(accounting.identityHolds)  // 30 = 14 + 3 + 1 + 2 + 10
    // 4 odd steps got both right, 3 even steps one of two.
    #expect(state.labelAccuracy?.correct == 11)
    #expect(state.labelAccuracy?.judged == 14)
}

@Test func anActorMissingFromTheLearnersListIsNoLongerConnected() {
    var state = MonitorState()
    state.ingest(event("learner_stats", sequence: 1, fields: ["actor/a1": "accepted=1", "actor/a2": "accepted=2"]))
    #expect(state.actorRows.map(\.identity) == ["a1", "a2"])
    #expect(state.actorRows.allSatisfy { $0.connected })
    state.ingest(event("learner_stats", sequence: 2, fields: ["actor/a1": "accepted=3"]))
    #expect(state.actors["a1"]?.connected == true)
    #expect(state.actors["a1"]?.groupsAccepted == 3)
    #expect(state.actors["a2"]?.connected == false)
    #expect(state.actors["a2"]?.leftReason == "gone")
}

@Test func theRunEndsWithTheLearnersFinalAccounting() {
    var state = syntheticState()
    #expect(!state.runEnded)
    state.ingest(event("run_finished", sequence: 100, step: 10, time: 1_030,
                       metrics: ["produced": 40, "trained": 20, "rejected": 3, "duplicates": 1, "lost_uncommitted": 2,
                                 "in_flight": 14]))
    #expect(state.runEnded)
    #expect(state.learnerStatus == .finished)
    #expect(state.step == 10)
    #expect(state.accounting?.trained == 20)
    // The gap 12 -> 100 is counted.
    #expect(state.sequences.missingTotal == 87)
    // A later stats event (still in flight when the run ended) does not override the final numbers.
    state.ingest(event("learner_stats", sequence: 101, metrics: ["produced": 1, "trained": 1]))
    #expect(state.accounting?.trained == 20)
}

@Test func seriesAreBoundedAndDropNonFiniteValues() {
    var series = MetricSeries(name: "x", capacity: 3)
    for i in 1...5 { series.append(step: i, value: Double(i)) }
    series.append(step: 6, value: .nan)
    #expect(series.values == [3, 4, 5])
    #expect(series.points.first?.step == 3)

    var state = MonitorState(seriesCapacity: 4, eventCapacity: 2)
    for i in 1...10 { state.ingest(event("step", sequence: UInt64(i), step: i, metrics: ["loss/total": Double(i)])) }
    for i in 1...5 { state.ingest(event("actor_joined", sequence: UInt64(10 + i), fields: ["actor": "a\(i)"])) }
    #expect(state.series["loss/total"]?.values == [7, 8, 9, 10])
    #expect(state.recentEvents.map(\.summary) == ["actor a4 joined", "actor a5 joined"])
}

// MARK: rendering

@Test func sparklinesScaleBetweenMinimumAndMaximum() {
    #expect(Sparkline.render([0, 1], width: 2) == "▁█")
    // Only the newest `width` values are drawn and scaled: the old 9 would flatten the rest.
    #expect(Sparkline.render([9, 0, 1], width: 2) == "▁█")
    #expect(Sparkline.render([1, 2, 3, 4, 5, 6, 7, 8], width: 8) == "▁▂▃▄▅▆▇█")
    #expect(Sparkline.render([5, 5, 5], width: 10) == "▄▄▄")
    #expect(Sparkline.render([1, 2, 3], width: 0) == "")
    #expect(Sparkline.render([], width: 5) == "")
}

@Test func dashboardShowsProgressSparklinesActorsAndAccounting() {
    let state = syntheticState()
    let renderer = DashboardRenderer(width: 120, height: 40, title: "troupe monitor tcp://127.0.0.1:5558")
    let text = renderer.render(state, now: 1_016)
    #expect(text.contains("step 7/10"))
    #expect(text.contains("70%"))
    #expect(text.contains("ETA 6s"))
    #expect(text.contains("reward/mean"))
    #expect(text.contains("▁") && text.contains("█"))
    #expect(text.contains("label_accuracy"))
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let a1 = lines.first { $0.hasPrefix("a1 ") }
    #expect(a1?.contains("800.0") == true)  // the learner's copy arrived last
    #expect(a1?.contains("4.500") == true)  // weight sync ms
    #expect(lines.first { $0.hasPrefix("a2 ") }?.contains("left (evicted)") == true)
    #expect(text.contains("produced 30 = trained 14 + rejected 3 (non_finite 1, stale 2) + duplicates 1 + lost 2"))
    #expect(text.contains("in flight 10 (identity holds)"))
    #expect(text.contains("staleness 0:12 1:2"))
    #expect(text.contains("labels  accuracy 79% (11/14 prompts)"))
    #expect(text.contains("actor a2 left (evicted)"))
    #expect(lines.allSatisfy { $0.count <= 120 })
    #expect(lines.count <= 40)
}

@Test func dashboardRespectsWidthAndHeight() {
    let state = syntheticState()
    for (width, height) in [(40, 10), (40, 12), (60, 20), (80, 24), (200, 60)] {
        let renderer = DashboardRenderer(width: width, height: height)
        let lines = renderer.lines(state, now: 1_016)
        #expect(lines.count <= height, "height \(height)")
        #expect(lines.allSatisfy { $0.count <= width }, "width \(width): \(lines.filter { $0.count > width })")
        #expect(lines.contains { $0.contains("step 7") })
        #expect(lines.contains { $0.hasPrefix("groups") }, "\(width)×\(height):\n\(lines.joined(separator: "\n"))")
    }
    // Below 40 × 10 the renderer draws 40 × 10 (the terminal cuts it).
    #expect(DashboardRenderer(width: 10, height: 3).lines(state, now: 1_016).count == 10)
    // A frame erases to the end of every line and below the last.
    let frame = DashboardRenderer(width: 80, height: 24).frame(state, now: 1_016)
    #expect(frame.hasPrefix("\u{1B}[H"))
    #expect(frame.hasSuffix("\u{1B}[J"))
}

@Test func aNarrowDashboardDropsTheLeastImportantActorColumns() throws {
    let state = syntheticState()
    let wide = DashboardRenderer(width: 120, height: 40).lines(state, now: 1_016)
    let narrow = DashboardRenderer(width: 56, height: 40).lines(state, now: 1_016)
    let wideHeader = try #require(wide.first { $0.hasPrefix("actor ") })
    let narrowHeader = try #require(narrow.first { $0.hasPrefix("actor ") })
    #expect(wideHeader.contains("sync ms") && wideHeader.contains("unacked"))
    #expect(!narrowHeader.contains("sync ms") && !narrowHeader.contains("unacked"))
    #expect(narrowHeader.contains("tok/s") && narrowHeader.contains("accepted"))
}

@Test func aMidStepAccountingGapIsShownAndOnlyTheFinalOneIsAnError() {
    var state = MonitorState()
    // Two groups are in the batch being trained: neither pending nor trained yet.
    state.ingest(event("learner_stats", sequence: 1, metrics: ["produced": 10, "trained": 6, "in_flight": 2]))
    let running = DashboardRenderer(width: 120, height: 30).render(state, now: 1_000)
    #expect(running.contains("(off by 2 now)"))
    state.ingest(event("learner_stopped", sequence: 2, metrics: ["produced": 10, "trained": 6, "in_flight": 2]))
    #expect(DashboardRenderer(width: 120, height: 30).render(state, now: 1_000).contains("IDENTITY BROKEN: off by 2"))
}

@Test func withoutTheLearnersStartTheHeaderSaysHowLongItHasWatched() {
    var state = MonitorState()
    state.ingest(event("learner_stats", sequence: 9, time: 1_000, metrics: ["step": 3, "max_steps": 10]))
    #expect(state.elapsedSeconds(now: 1_030) == nil)
    let text = DashboardRenderer(width: 100, height: 30).render(state, now: 1_030)
    #expect(text.contains("watching 30s"))
    #expect(text.contains("step 3/10"))
}

/// A monitor that joined after `learner_started` learns the start, run and epoch from `learner_stats`.
@Test func learnerStatsStandInForAMissedStart() {
    var state = MonitorState()
    state.ingest(event("learner_stats", sequence: 9, time: 1_000, metrics: ["step": 3, "max_steps": 10],
                       fields: ["started_unix": "990.500", "run": "/runs/r1", "epoch": "1a"]))
    #expect(state.elapsedSeconds(now: 1_030) == 39.5)
    #expect(state.runDirectory == "/runs/r1" && state.epoch == "1a")
    #expect(!DashboardRenderer(width: 100, height: 30).render(state, now: 1_030).contains("watching"))
}

@Test func controlCharactersFromTheStreamAreNotPassedToTheTerminal() {
    var state = MonitorState()
    state.ingest(event("actor_joined", sequence: 1, fields: ["actor": "evil\u{1B}[2Jname\nx"]))
    let text = DashboardRenderer(width: 100, height: 30).render(state, now: 1_000)
    #expect(!text.contains("\u{1B}"))
    #expect(text.contains("evil?[2Jname?x"))
}

@Test func dashboardBeforeAnyEventSaysItIsWaiting() {
    let lines = DashboardRenderer(width: 80, height: 24).lines(MonitorState(), now: 5)
    #expect(lines[0].contains("waiting for the log stream"))
    #expect(lines.contains("groups  no accounting yet"))
}

@Test func absurdNumbersInEventsNeverTrap() {
    var state = MonitorState(answerKey: [1: "2"])
    let weird: [Double] = [.nan, .infinity, -.infinity, 1e300, -1e300, 1e308, -1e308]
    var seq: UInt64 = 0
    for (i, v) in weird.enumerated() {
        seq += 1
        var m: [String: Double] = [:]
        for key in ["produced", "trained", "rejected", "rejected/stale", "in_flight", "actors", "leases", "queue", "pending",
                    "rss_mb", "step", "max_steps", "trainer/idle_ratio", "off_policy/staleness_hist/0", "wire_rejected/x"] {
            m[key] = v
        }
        state.ingest(event("learner_stats", sequence: seq, metrics: m, fields: ["actor/x": "tokens_per_s=\(v),unacked=\(v),accepted=1e300"]))
        seq += 1
        state.ingest(event("step", sequence: seq, step: i, metrics: ["loss/total": v, "reward/mean": v, "tokens_per_s": v]))
        state.ingest(event("actor_stats", source: "actor/x", run: 1, sequence: UInt64(i + 1),
                           metrics: ["groups_produced": v, "tokens_per_s": v, "weights_step": v]))
    }
    var huge = event("step", sequence: UInt64.max, metrics: ["loss/total": 1])
    huge.step = UInt64.max
    state.ingest(huge)
    for (w, h) in [(40, 10), (100, 40)] {
        let lines = DashboardRenderer(width: w, height: h).lines(state, now: .greatestFiniteMagnitude)
        #expect(lines.count <= h && lines.allSatisfy { $0.count <= w })
    }
    // Only finite values were kept for plotting.
    #expect(state.series["loss/total"]?.values.allSatisfy(\.isFinite) == true)
}

// MARK: JSON

@Test func eventsAndTheSummaryAreValidJSON() throws {
    var e = event("step", sequence: 3, step: 2, time: 1_500.25, metrics: ["loss/total": 0.5, "bad": .nan], fields: ["labels": "1=2"])
    e.sourceRunID = 0xABC
    // Written as `troupe monitor --json` writes it (non-finite numbers become null) and parsed back.
    let back = try JSONValue.parse(try e.json.serialized(compact: true))
    #expect(back["source_run_id"] == "abc", "as the run log writes an epoch: no leading zeros")
    #expect(back["kind"] == "step")
    #expect(back["sequence"] == 3)
    #expect(back["time"] == 1_500.25)
    #expect(back["metrics"]?["bad"] == .null)

    var state = MonitorState(answerKey: [1: "2"])
    state.ingest(e)
    state.ingest(event("step", run: 0xABC, sequence: 6, step: 3))
    state.recordMalformedMessage(reason: "checksum_mismatch")
    let summary = try JSONValue.parse(try MonitorJSON.summary(state).serialized(compact: true))
    #expect(summary["missing_events"] == 2)
    #expect(summary["events"] == 2)
    #expect(summary["malformed_messages"] == ["checksum_mismatch": 1])
    #expect(summary["label_accuracy"]?["fraction"] == 1)
}

// MARK: subscriber on loopback

/// A PUB socket on a random loopback port, as the learner's log proxy would be.
private func publisher(_ context: ZMQContext, sendQueue: Int32 = 1000) throws -> (ZMQSocket, Endpoint) {
    let socket = try ZMQSocket(context, type: .publish, linger: .discardUnsent)
    try socket.set(.sendHighWaterMark(sendQueue))
    let endpoint = try socket.bind(.tcp(host: "127.0.0.1", port: 0))
    return (socket, endpoint)
}

/// Publishes numbered probe events until the subscriber has one (the slow joiner), within 10 s.
/// Returns the next sequence number to use.
private func waitForSubscription(_ pub: ZMQSocket, _ sub: MonitorSubscriber, _ state: inout MonitorState) throws -> UInt64 {
    var seq: UInt64 = 0
    let deadline = Deadline.after(.seconds(10))
    while state.eventCount == 0 && !deadline.hasPassed {
        seq += 1
        _ = try pub.send(WireMessage(.logEvent(event("learner_stats", sequence: seq))))
        try sub.receive(into: &state, until: .afterMilliseconds(20))
    }
    // Drain probes still on their way, so the next test events start cleanly.
    try sub.receive(into: &state, until: .afterMilliseconds(100))
    return seq + 1
}

@Test func subscriberReceivesEventsCountsGapsAndStopsWhenTheRunEnds() throws {
    let context = try ZMQContext()
    defer { context.shutdown() }
    let (pub, endpoint) = try publisher(context)
    defer { pub.close() }
    let sub = try MonitorSubscriber(context: context, endpoint: endpoint)
    defer { sub.close() }
    var state = MonitorState()
    var seq = try waitForSubscription(pub, sub, &state)
    try #require(state.eventCount > 0, "no event within 10 s")
    let before = state.sequences.missingTotal

    // step, (one number skipped), run_finished, and garbage on the socket.
    _ = try pub.send(WireMessage(.logEvent(event("step", sequence: seq, step: 1, metrics: ["reward/mean": 0.25]))))
    seq += 2
    _ = try pub.send(WireMessage(.logEvent(event("run_finished", sequence: seq, step: 1, metrics: ["produced": 2, "trained": 2]))))
    _ = try pub.send([Frame([1, 2, 3])])

    var seen: [String] = []
    var updates = 0
    let reason = try sub.run(into: &state, options: .init(updatesPerSecond: 4, deadline: .after(.seconds(10)), stopWhenRunEnds: true),
                             onEvent: { seen.append($0.kind) }, onUpdate: { _ in updates += 1 })
    #expect(reason == .runEnded)
    #expect(seen.contains("step") && seen.contains("run_finished"))
    #expect(state.sequences.missingTotal == before + 1)
    #expect(state.series["reward/mean"]?.last == 0.25)
    #expect(state.learnerStatus == .finished)
    #expect(updates >= 1)

    // The garbage frame arrives after run_finished: take it and check it is counted, not fatal.
    try sub.receive(into: &state, until: .afterMilliseconds(300))
    #expect(state.malformedMessages.values.reduce(0, +) == 1)
}

@Test func aSlowSubscriberLosesEventsButCountsEveryOne() throws {
    let context = try ZMQContext()
    defer { context.shutdown() }
    let (pub, endpoint) = try publisher(context, sendQueue: 50)
    defer { pub.close() }
    let sub = try MonitorSubscriber(context: context, endpoint: endpoint, receiveQueue: 50)
    defer { sub.close() }
    var state = MonitorState()
    let first = try waitForSubscription(pub, sub, &state)
    try #require(state.eventCount > 0, "no event within 10 s")
    let receivedBefore = state.sequences.receivedTotal
    let missingBefore = state.sequences.missingTotal

    // 20 MB while nobody reads: more than the queues and the loopback socket buffers hold. The
    // publisher never waits: every send returns at once.
    let padding = String(repeating: "x", count: 4096)
    let count: UInt64 = 5000
    let started = ContinuousClock.now
    for seq in first..<(first + count) {
        var e = event("learner_stats", sequence: seq)
        e.text = padding
        #expect(try pub.send(WireMessage(.logEvent(e))) == .sent)
    }
    #expect(ContinuousClock.now - started < .seconds(10))
    // The last event arrives (the queues drain), so every number up to it is either received or missing.
    var last = first + count - 1
    let deadline = Deadline.after(.seconds(10))
    while state.sequences.sources["learner"]?.lastSequence != last && !deadline.hasPassed {
        last += 1
        _ = try pub.send(WireMessage(.logEvent(event("learner_stats", sequence: last))))
        try sub.receive(into: &state, until: .afterMilliseconds(50))
    }
    try sub.receive(into: &state, until: .afterMilliseconds(100))
    let source = try #require(state.sequences.sources["learner"])
    let received = source.received - receivedBefore
    let missing = source.missing - missingBefore
    #expect(missing > 0)
    #expect(received + missing == Int(source.lastSequence - first + 1))
}

// MARK: logged problems

@Test func warningsFromAnyProcessShowAsNotableEvents() {
    var state = MonitorState()
    var warning = event("log", sequence: 1, fields: ["level": "warn", "role": "learner"])
    warning.text = "evicted silent actor"
    state.ingest(warning)
    var actorError = event("log", source: "actor/a1", run: 0xB, sequence: 1, fields: ["level": "error", "role": "actor a1"])
    actorError.text = "cannot apply weights"
    state.ingest(actorError)
    #expect(state.recentEvents.map(\.summary) == ["warn: evicted silent actor", "error: cannot apply weights"])
}

@Test func allowlistChangesShowAsEvents() {
    var state = MonitorState()
    state.ingest(event("allowlist_changed", sequence: 1, fields: ["added": "a3,a4", "removed": "", "replaced": "a1"]))
    state.ingest(event("allowlist_refused", sequence: 2, fields: ["problem": "keys/broken.key: not a key file"]))
    #expect(state.recentEvents.map(\.summary) == ["allowlist changed: added a3,a4; replaced a1",
                                                  "allowlist directory refused, unchanged: keys/broken.key: not a key file"])
}
