import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Faults injected into real `troupe` processes (docs/RELIABILITY.md, docs/testing.md): actor churn,
/// learner kill and resume under churn, frozen actor and learner, a partition and 30% packet loss in a
/// network namespace, backpressure from eight actors on a slowed learner, a frozen log subscriber,
/// clean SIGTERM, a full disk under `troupe run` and its resume, and the authentication cases (AuthenticationFaultTests.swift). Each scenario has a
/// hard bound (its `FaultScenario` kills what it started when the bound passes; `.timeLimit` reports
/// it), and each ends with the accounting identity and `troupe replay --verify`
/// (`FaultScenario.expectSoundEnd`). New scenarios start their processes through `FaultScenario`,
/// passing their own settings and arguments.
///
/// Serialized: the scenarios' timings (evictions after 3 s, recovery bounds) must not compete with
/// one another for the machine's cores; CI also runs this suite apart from the others.
@Suite(.serialized) struct FaultInjectionTests {
    static let heartbeatTimeout = 3.0

    // kill -9 of a random actor every 5 s for two minutes, each replaced by a fresh one: training never
    // stops for a 20 s window, and the run stays accountable and replayable.
    @Test(.timeLimit(.minutes(5))) func actorChurnForTwoMinutes() throws {
        let scenario = try FaultScenario("churn", boundSeconds: 270)
        defer { scenario.finish() }
        let run = scenario.run
        let learner = try scenario.startLearner(maxSteps: 1_000_000)
        let churn = try ActorChurn(scenario, actors: 3, every: 5)
        try run.require(scenario.waitUntil("step_done 1", within: 40) { run.records.stepsDone.contains(1) }, "no first step")

        var stepsPerWindow: [Int] = []
        var previous = run.records.stepsDone.last ?? 0
        let churnStart = Date()
        for _ in 0..<6 {
            churn.run(for: 20)
            let now = run.records.stepsDone.last ?? 0
            stepsPerWindow.append(now - previous)
            previous = now
        }
        let churnSeconds = Date().timeIntervalSince(churnStart)
        run.check(stepsPerWindow.allSatisfy { $0 > 0 }, "training stalled during the churn: steps per 20 s window \(stepsPerWindow)")

        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 30) == .code(0), "the learner did not stop cleanly after the churn")
        churn.stopAll()
        let records = run.records
        let steps = records.stepsDone.last ?? 0
        let evicted = scenario.evictions().count
        run.check(churn.kills >= 23, "only \(churn.kills) actors were killed in \(Int(churnSeconds)) s")
        scenario.record("churn_s", churnSeconds)
        scenario.record("kills", churn.kills)
        scenario.record("evicted", evicted)
        scenario.record("steps", steps)
        scenario.record("steps_per_20s", stepsPerWindow.map(String.init).joined(separator: ","))
        try scenario.expectSoundEnd(steps: steps, finished: false, replayWithin: 150)
    }

    // kill -9 of the learner while actors churn, then `--resume` on the same ports: the new learner
    // continues from its checkpoint with whatever actors are alive, under the same churn.
    @Test(.timeLimit(.minutes(3))) func learnerKilledAndResumedUnderActorChurn() throws {
        let scenario = try FaultScenario("resume-churn", boundSeconds: 170)
        defer { scenario.finish() }
        let run = scenario.run
        let checkpointEvery = 5
        let first = try scenario.startLearner(maxSteps: 1_000_000, ["learner.checkpoint_every=\(checkpointEvery)"])
        let churn = try ActorChurn(scenario, actors: 3, every: 5)
        // Killed between checkpoints (when it can be), so that the resume has steps to void.
        try run.require(scenario.waitUntil("a churn kill, then a step past a checkpoint", within: 60) {
            churn.tick()
            guard churn.kills >= 1, let last = run.records.stepsDone.last else { return false }
            return last > checkpointEvery && last % checkpointEvery != 0
        }, "the first learner did not get past its first checkpoint under churn")
        first.killHard()
        let beforeRestart = run.records
        let stepAtKill = beforeRestart.stepsDone.last ?? 0
        let formedBeforeKill = beforeRestart.survivingSteps.map(\.step)
        let checkpointed = try #require(beforeRestart.latestCheckpointStep, "no checkpoint before the kill")
        churn.run(for: 1)

        let resumedAt = Date()
        let second = try scenario.resumeLearner("learner-resumed")
        let recovery = scenario.secondsUntil("a step of the resumed learner", since: resumedAt, within: 60) {
            churn.tick()
            let all = run.records.all
            guard let resumed = all.first(where: { $0.type == "resumed" }) else { return false }
            return all.contains { $0.type == "step_done" && $0.seq > resumed.seq }
        }
        try run.require(recovery != nil, "the resumed learner trained nothing")
        let stepAfterRecovery = run.records.stepsDone.last ?? 0
        churn.run(for: 20)
        run.check((run.records.stepsDone.last ?? 0) > stepAfterRecovery, "training stopped under churn after the resume")

        second.send(SIGTERM)
        try run.require(run.expectExit(second, .code(0), within: 30) == .code(0), "the resumed learner did not stop cleanly")
        churn.stopAll()
        let records = run.records
        let resumed = try #require(records.of("resumed").first)
        run.check(resumed.int("from_step") == checkpointed, "resumed from step \(resumed.int("from_step") ?? -1), checkpoints/latest was \(checkpointed)")
        let voided = formedBeforeKill.filter { $0 > checkpointed }
        run.check(resumed.ints("voided_steps") == voided, "resumed voided_steps \(resumed.ints("voided_steps")), batches formed after the checkpoint: \(voided)")
        let firstAfter = records.all.first { $0.type == "step_done" && $0.seq > resumed.seq }?.int("step")
        run.check(firstAfter == checkpointed + 1, "the first step after the resume is \(firstAfter ?? -1), expected \(checkpointed + 1)")
        let steps = records.stepsDone.last ?? 0
        scenario.record("killed_after_step", stepAtKill)
        scenario.record("resumed_from", checkpointed)
        scenario.record("voided_steps", resumed.ints("voided_steps").count)
        scenario.record("first_step_after_resume_s", recovery ?? -1)
        scenario.record("kills", churn.kills)
        scenario.record("steps", steps)
        try scenario.expectSoundEnd(steps: steps, finished: false)
    }

    // SIGSTOP of the only actor for twice the heartbeat timeout: the learner evicts it and returns its
    // leases; after SIGCONT it says Hello again and the run can only finish through it.
    @Test(.timeLimit(.minutes(2))) func frozenActorIsEvictedAndRejoins() throws {
        let scenario = try FaultScenario("frozen-actor", boundSeconds: 110)
        defer { scenario.finish() }
        let run = scenario.run
        let maxSteps = 8
        let learner = try scenario.startLearner(maxSteps: maxSteps)
        let actor = try scenario.startActor("frozen")
        try run.require(scenario.waitUntil("step_done 2", within: 40) { run.records.stepsDone.contains(2) }, "no second step")

        actor.send(SIGSTOP)
        let frozenAt = Date()
        let evictedAfter = scenario.secondsUntil("the frozen actor's eviction", since: frozenAt, within: Self.heartbeatTimeout + 7) {
            !scenario.evictions(of: "frozen").isEmpty
        }
        try run.require(evictedAfter != nil, "the frozen actor was not evicted")
        let evictedSeq = run.records.all.last?.seq ?? 0
        Thread.sleep(until: frozenAt.addingTimeInterval(2 * Self.heartbeatTimeout))
        actor.send(SIGCONT)
        let thawedAt = Date()
        let rejoinedAfter = scenario.secondsUntil("the thawed actor's new Hello", since: thawedAt, within: 20) {
            run.records.of("actor_joined").contains { $0.string("actor") == "frozen" && $0.seq > evictedSeq }
        }
        try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the run did not finish after the thaw")
        run.expectExit(actor, .code(0), within: 15)
        scenario.record("frozen_s", 2 * Self.heartbeatTimeout)
        scenario.record("evicted_after_s", evictedAfter ?? -1)
        scenario.record("rejoined_after_thaw_s", rejoinedAfter ?? -1)
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }

    // SIGSTOP of the learner for longer than the actors' patience (6 s of silence) and the ZeroMQ
    // heartbeat timeout (5 s): after SIGCONT the actors reconnect and the run finishes.
    @Test(.timeLimit(.minutes(2))) func frozenLearnerIsRejoinedAfterItThaws() throws {
        let scenario = try FaultScenario("frozen-learner", boundSeconds: 110)
        defer { scenario.finish() }
        let run = scenario.run
        let maxSteps = 10
        let learner = try scenario.startLearner(maxSteps: maxSteps)
        let actors = try ["f1", "f2"].map { try scenario.startActor($0) }
        try run.require(scenario.waitUntil("step_done 2", within: 40) { run.records.stepsDone.contains(2) }, "no second step")

        learner.send(SIGSTOP)
        let frozenFor = 8.0
        Thread.sleep(forTimeInterval: frozenFor)
        let stepAtThaw = run.records.stepsDone.last ?? 0
        learner.send(SIGCONT)
        let thawedAt = Date()
        let recovery = stepAtThaw < maxSteps ? scenario.secondsUntilStep(after: stepAtThaw, since: thawedAt, within: 30) : nil
        try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the run did not finish after the thaw")
        for actor in actors { run.expectExit(actor, .code(0), within: 15) }
        scenario.record("frozen_s", frozenFor)
        scenario.record("step_at_thaw", stepAtThaw)
        scenario.record("next_step_after_thaw_s", recovery ?? -1)
        scenario.record("actors_saying_hello_again", actors.filter { $0.stderr.contains("saying Hello again") }.count)
        // The reconnecting actors' leases return at their Hello: no wait for lease_timeout_s (3 s here).
        run.check(recovery.map { $0 < 2 } ?? true, "the first step after the thaw took \(recovery ?? -1) s: leases waited for their timeout?")
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }

    /// A learner in a namespace of its own with two actors in the root namespace, connected over the
    /// veth pair, authenticated with CURVE keys (as a run across hosts would be);
    /// weights go over the link as chunks when `chunks` (no shared memory).
    static func startAcrossLink(_ scenario: FaultScenario, _ net: NetworkNamespace, maxSteps: Int,
                                chunks: Bool) throws -> (learner: Child, actors: [Child]) {
        let names = ["n1", "n2"]
        let keys = try scenario.makeKeys(actors: names)
        let endpoints = ["endpoints.bind_host=\(net.namespaceAddress)", "endpoints.advertise_host=\(net.namespaceAddress)"]
        let learner = try scenario.startLearner(maxSteps: maxSteps, endpoints + (chunks ? ["learner.shared_memory_dir="] : []),
                                                arguments: keys.learner, launcher: net.launcher)
        let control = "tcp://\(net.namespaceAddress):\(scenario.run.ports.control)"
        let actors = try names.map { try scenario.startActor($0, learner: control, keys.actor($0)) }
        return (learner, actors)
    }

    // Every packet between the learner's namespace and the actors dropped for 8 s (actors evicted,
    // connections timed out), then the link healed: the actors come back and the run finishes.
    @Test(.enabled(if: NetworkLab.shouldRun, Comment(rawValue: NetworkLab.unavailableReason ?? "")), .timeLimit(.minutes(2)))
    func partitionHealsAndTheRunFinishes() throws {
        let net = try NetworkNamespace()
        defer { net.remove() }
        let scenario = try FaultScenario("partition", boundSeconds: 110)
        defer { scenario.finish() }
        let run = scenario.run
        let maxSteps = 12
        let (learner, actors) = try Self.startAcrossLink(scenario, net, maxSteps: maxSteps, chunks: true)
        try run.require(scenario.waitUntil("step_done 3", within: 60) { run.records.stepsDone.contains(3) }, "no third step over the link")

        try net.partition()
        let partitionedFor = 8.0
        let stepAtPartition = run.records.stepsDone.last ?? 0
        Thread.sleep(forTimeInterval: partitionedFor)
        let stepAtHeal = run.records.stepsDone.last ?? 0
        let dropped = net.droppedPackets()
        try net.heal()
        let healedAt = Date()
        let recovery = stepAtHeal < maxSteps ? scenario.secondsUntilStep(after: stepAtHeal, since: healedAt, within: 40) : nil
        try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the run did not finish after the partition")
        for actor in actors { run.expectExit(actor, .code(0), within: 20) }
        let evicted = scenario.evictions().count
        run.check(evicted >= 1, "no actor was evicted during an \(partitionedFor) s partition (heartbeat timeout \(Self.heartbeatTimeout) s)")
        scenario.record("partition_s", partitionedFor)
        scenario.record("steps_during_partition", stepAtHeal - stepAtPartition)
        scenario.record("dropped_packets", dropped)
        scenario.record("evicted", evicted)
        scenario.record("next_step_after_heal_s", recovery ?? -1)
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }

    // 30% of the packets crossing the link dropped, each way, for the whole run, weights included.
    @Test(.enabled(if: NetworkLab.shouldRun, Comment(rawValue: NetworkLab.unavailableReason ?? "")), .timeLimit(.minutes(3)))
    func thirtyPercentPacketLoss() throws {
        let net = try NetworkNamespace()
        defer { net.remove() }
        let scenario = try FaultScenario("loss", boundSeconds: 170)
        defer { scenario.finish() }
        let run = scenario.run
        let maxSteps = 6
        try net.dropRandomly(percent: 30)
        let startedAt = Date()
        let (learner, actors) = try Self.startAcrossLink(scenario, net, maxSteps: maxSteps, chunks: true)
        try run.require(run.expectExit(learner, .code(0), within: 150) == .code(0), "the run did not finish under 30% loss")
        let wall = Date().timeIntervalSince(startedAt)
        for actor in actors { run.expectExit(actor, .code(0), within: 20) }
        scenario.record("loss_percent", 30)
        scenario.record("run_s", wall)
        scenario.record("dropped_packets", net.droppedPackets())
        scenario.record("actor_reconnects", run.records.of("actor_joined").count - 2)
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }

    // Eight actors and a learner that runs 0.1 s of every 0.5 s: the actors' credit bounds what the
    // learner holds for them, so its resident memory stays within its own baseline (one actor, full
    // speed) plus actors × credit × the largest group the run allows, plus 10%.
    @Test(.timeLimit(.minutes(3))) func eightFastActorsAgainstASlowedLearner() throws {
        let scenario = try FaultScenario("backpressure", boundSeconds: 170)
        defer { scenario.finish() }
        let run = scenario.run
        let groupSize = 8, maxNewTokens = 16, actorCount = 8
        let learner = try scenario.startLearner(maxSteps: 1_000_000, ["sampling.group_size=\(groupSize)",
                                                                       "sampling.max_new_tokens=\(maxNewTokens)", "learner.batch_groups=4"])
        var actors = [try scenario.startActor("bp1")]
        try run.require(scenario.waitUntil("step_done 3", within: 60) { run.records.stepsDone.contains(3) }, "no third step")
        // The baseline is the learner's peak over 10 s of training with one actor at full speed: by then
        // it has published, checkpointed and trained at its steady size.
        let warmUpFrom = run.records.stepsDone.last ?? 0
        Thread.sleep(forTimeInterval: 10)
        scenario.record("steps_per_s_one_actor_full_speed", Double((run.records.stepsDone.last ?? 0) - warmUpFrom) / 10)
        let baseline = try #require(ProcessMemory.peakResidentMiB(learner.pid), "no /proc/\(learner.pid)/status")
        for i in 2...actorCount { actors.append(try scenario.startActor("bp\(i)")) }
        try run.require(scenario.waitUntil("all \(actorCount) actors joined", within: 40) {
            Set(run.records.of("actor_joined").compactMap { $0.string("actor") }).count == actorCount
        }, "not every actor joined")

        let stepBefore = run.records.stepsDone.last ?? 0
        let slowedFor = 30.0
        let slow = DutyCycle(learner, running: 0.1, period: 0.5)
        var peak = baseline
        let until = Date().addingTimeInterval(slowedFor)
        while Date() < until && !scenario.expired {
            peak = max(peak, ProcessMemory.residentMiB(learner.pid) ?? 0)
            Thread.sleep(forTimeInterval: 0.1)
        }
        slow.stop()
        let stepsSlowed = (run.records.stepsDone.last ?? 0) - stepBefore
        peak = max(peak, ProcessMemory.peakResidentMiB(learner.pid) ?? 0)

        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 30) == .code(0), "the learner did not stop cleanly")
        for actor in actors { actor.send(SIGTERM) }
        for actor in actors { run.expectExit(actor, .code(0), within: 15) }

        let credit = try Self.frozenSetting(run, "learner", "credit")
        let groupBytes = Self.largestGroupBytes(groupSize: groupSize, maxNewTokens: maxNewTokens)
        let bound = (baseline + Double(actorCount * credit * groupBytes) / 1_048_576) * 1.1
        run.check(peak <= bound, "learner RSS peaked at \(peak) MiB, above the bound \(bound) MiB (baseline \(baseline) MiB + \(actorCount) × \(credit) × \(groupBytes) B, + 10%)")
        scenario.record("baseline_rss_mib", baseline)
        scenario.record("peak_rss_mib", peak)
        scenario.record("bound_mib", bound)
        scenario.record("credit", credit)
        scenario.record("largest_group_bytes", groupBytes)
        scenario.record("steps_per_s_eight_actors_slowed", Double(stepsSlowed) / slowedFor)
        let steps = run.records.stepsDone.last ?? 0
        try scenario.expectSoundEnd(steps: steps, finished: false)
    }

    /// The largest group the run admits, as its GroupSubmit message: per sample at most
    /// `max_new_tokens` token ids (Int32), behaviour log-probs and entropies (Float32), an extracted
    /// answer of at most as many UTF-8 characters (4 bytes each) and 64 bytes of fixed fields and reward
    /// components; 256 bytes of envelope, identity and lease fields per group.
    static func largestGroupBytes(groupSize: Int, maxNewTokens: Int) -> Int {
        groupSize * (maxNewTokens * (4 + 4 + 4) + maxNewTokens * 4 + 64) + 256
    }

    static func frozenSetting(_ run: IntegrationRun, _ section: String, _ key: String) throws -> Int {
        let data = try Data(contentsOf: URL(fileURLWithPath: run.runDirectory + "/config.json"))
        let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(((config[section] as? [String: Any])?[key] as? NSNumber)?.intValue, "config.json has no \(section).\(key)")
    }

    // A `troupe monitor` frozen (SIGSTOP) for the whole run, the slowest subscriber there is, must not
    // slow the learner: the same run with and without it, steps per second compared.
    @Test(.timeLimit(.minutes(3))) func frozenLogSubscriberDoesNotSlowTheLearner() throws {
        let maxSteps = 30
        func timedRun(_ name: String, frozenMonitor: Bool) throws -> (stepsPerSecond: Double, monitorSummary: [String: Any]?) {
            let scenario = try FaultScenario(name, boundSeconds: 80)
            defer { scenario.finish() }
            let run = scenario.run
            let learner = try scenario.startLearner(maxSteps: maxSteps)
            var monitor: Child?
            if frozenMonitor {
                let m = try scenario.start("monitor", ["monitor", "tcp://127.0.0.1:\(run.ports.logs)", "--json", "--until-finished",
                                                       "--duration", "75"] + IntegrationRun.plaintext)
                try run.require(scenario.waitUntil("the monitor's first event", within: 20) { !m.stdout.isEmpty }, "the monitor received nothing")
                m.send(SIGSTOP)
                monitor = m
            }
            let actors = try ["s1", "s2"].map { try scenario.startActor($0) }
            try run.require(scenario.waitUntil("step_done 1", within: 40) { run.records.stepsDone.contains(1) }, "no first step")
            let firstStepAt = Date()
            try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the learner did not finish")
            let rate = Double(maxSteps - 1) / Date().timeIntervalSince(firstStepAt)
            for actor in actors { run.expectExit(actor, .code(0), within: 15) }
            var summary: [String: Any]?
            if let m = monitor {
                m.send(SIGCONT)
                m.waitForExit(within: 80)
                summary = m.stdout.split(separator: "\n").reversed().lazy.compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }.first { $0["kind"] as? String == "monitor_summary" }
                run.check(summary != nil, "the thawed monitor printed no monitor_summary")
                scenario.record("monitor_events", summary?["events"] ?? -1)
                scenario.record("monitor_missing_events", summary?["missing_events"] ?? -1)
            }
            scenario.record("steps_per_s", rate)
            try scenario.expectSoundEnd(steps: maxSteps, finished: true)
            return (rate, summary)
        }
        let without = try timedRun("subscriber-none", frozenMonitor: false)
        let with = try timedRun("subscriber-frozen", frozenMonitor: true)
        // Generous: the machine is shared, the claim is "not stalled or throttled", not a benchmark.
        #expect(with.stepsPerSecond >= 0.5 * without.stepsPerSecond,
                "steps/s with a frozen monitor \(with.stepsPerSecond), without \(without.stepsPerSecond)")
    }

    // SIGTERM to an actor: it leaves with Bye (not by eviction). SIGTERM to the learner mid-run: it
    // finishes the step in progress, checkpoints it, exits 0, and `--resume` goes on from that step
    // with nothing voided; the waiting actors rejoin and the run finishes.
    @Test(.timeLimit(.minutes(2))) func sigtermStopsCleanlyAndTheRunResumes() throws {
        let scenario = try FaultScenario("sigterm", boundSeconds: 110)
        defer { scenario.finish() }
        let run = scenario.run
        let maxSteps = 40
        let learner = try scenario.startLearner(maxSteps: maxSteps, ["learner.checkpoint_every=1000"])
        let stayers = try ["t1", "t2"].map { try scenario.startActor($0) }
        let leaver = try scenario.startActor("t3")
        try run.require(scenario.waitUntil("step_done 3", within: 40) { run.records.stepsDone.contains(3) }, "no third step")

        leaver.send(SIGTERM)
        let leaverStopped = Date()
        run.expectExit(leaver, .code(0), within: 10)
        let byeAfter = scenario.secondsUntil("t3's actor_left", since: leaverStopped, within: 5) {
            run.records.of("actor_left").contains { $0.string("actor") == "t3" }
        }
        let left = run.records.of("actor_left").first { $0.string("actor") == "t3" }
        run.check((left?.string("reason") ?? "").hasPrefix("bye"), "t3 left by \(left?.string("reason") ?? "nothing"), not by its Bye")

        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 20) == .code(0), "the learner did not stop cleanly on SIGTERM")
        let stopped = run.records
        let stoppedAt = stopped.stepsDone.last ?? 0
        try run.require(stoppedAt < maxSteps, "the run finished before the SIGTERM")
        run.check(stopped.of("learner_stopped").count == 1, "no learner_stopped record")
        // The step in progress was finished, not dropped: every batch formed has its step_done.
        run.check(stopped.survivingSteps.last?.step == stoppedAt,
                  "the last batch formed is step \(stopped.survivingSteps.last?.step ?? -1), the last step done \(stoppedAt)")
        run.check(stopped.latestCheckpointStep == stoppedAt, "checkpoints/latest is \(stopped.latestCheckpointStep ?? -1), the learner stopped at step \(stoppedAt)")
        RuntimeIntegrationTests.expectAccountingIdentity(run)
        Thread.sleep(forTimeInterval: 1)
        for actor in stayers { run.check(actor.isRunning, "\(actor.name) exited when the learner stopped (it should wait for a resume)") }

        let resumedAt = Date()
        let second = try scenario.resumeLearner("learner-resumed")
        try run.require(run.expectExit(second, .code(0), within: 60) == .code(0), "the resumed learner did not finish the run")
        for actor in stayers { run.expectExit(actor, .code(0), within: 15) }
        let resumed = try #require(run.records.of("resumed").first)
        run.check(resumed.int("from_step") == stoppedAt, "resumed from \(resumed.int("from_step") ?? -1), the learner stopped at \(stoppedAt)")
        run.check(resumed.ints("voided_steps").isEmpty, "a clean stop voided steps \(resumed.ints("voided_steps"))")
        scenario.record("bye_recorded_after_s", byeAfter ?? -1)
        scenario.record("stopped_at_step", stoppedAt)
        scenario.record("resumed_run_s", Date().timeIntervalSince(resumedAt))
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }

    /// The run directory's disk fills up under a running `troupe run`: the learner stops on the failed
    /// write with an error naming it (no acknowledged group is lost: an ack waits for the fsync that
    /// covers its record), `troupe run` exits 1 naming the disk error and `troupe run --resume RUN`;
    /// once there is room that resume finishes the run, replayable bit for bit. The disk is a 48 MiB
    /// tmpfs mounted on the run directory (root only).
    @Test(.enabled(if: getuid() == 0 || NetworkLab.inCI, "mounting a small disk needs root"), .timeLimit(.minutes(3)))
    func aFullDiskStopsTheRunAndItsResumeFinishesIt() throws {
        let scenario = try FaultScenario("full-disk", boundSeconds: 160)
        defer { scenario.finish() }
        let run = scenario.run
        try FileManager.default.createDirectory(atPath: run.runDirectory, withIntermediateDirectories: true)
        let mount = try #require(NetworkLab.tool("mount"), "no mount command"), umount = try #require(NetworkLab.tool("umount"), "no umount command")
        let (mounted, mountOutput) = try Command.run([mount, "-t", "tmpfs", "-o", "size=48m", "tmpfs", run.runDirectory], within: 10)
        try run.require(mounted == 0, "cannot mount a tmpfs on the run directory: \(mountOutput)")
        // Lazily: whatever still holds a file there does not keep the disk mounted.
        defer { _ = try? Command.run([umount, "-l", run.runDirectory], within: 10) }

        let maxSteps = 60
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(FaultScenario.builtInModel)", "run.max_steps=\(maxSteps)", "eval.every=0",
                        "eval.samples=2", "task.count=16", "learner.checkpoint_every=5"] + run.ports.overrides
        let first = try scenario.start("run", ["run"] + settings.flatMap { ["--set", $0] })
        try run.require(scenario.waitUntil("step_done 12", within: 60) { run.records.stepsDone.contains(12) }, "no twelfth step")
        let filler = run.runDirectory + "/filler"
        let written = Self.fillDisk(at: filler)
        scenario.record("filler_mib", written >> 20)
        try run.require(run.expectExit(first, .code(1), within: 60) == .code(1), "troupe run did not fail on the full disk")
        run.check(first.stderr.contains("No space left on device"), "the error does not name the full disk: \(first.stderr.suffix(600))")
        run.check(first.stderr.contains("troupe run --resume \(run.runDirectory)"), "the error does not say how to go on")
        let stoppedAt = run.records.stepsDone.last ?? 0
        scenario.record("stopped_at_step", stoppedAt)

        unlink(filler)
        let resume = try scenario.start("resume", ["run", "--resume", run.runDirectory])
        try run.require(run.expectExit(resume, .code(0), within: 90) == .code(0), "the resume did not finish the run")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.runDirectory + "/summary.json"))) as? [String: Any]
        run.check(summary?["steps"] as? Int == maxSteps, "summary.json: steps \(summary?["steps"] ?? "nil")")
        let from = summary?["resumed_from_step"] as? Int ?? -1
        run.check(from > 0 && from <= stoppedAt, "resumed from step \(from); the learner stopped at \(stoppedAt)")
        scenario.record("resumed_from_step", from)
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }

    /// Writes zeros to `path` until the disk refuses (ENOSPC); returns the bytes written.
    static func fillDisk(at path: String) -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return total }
            total += n
        }
    }
}
