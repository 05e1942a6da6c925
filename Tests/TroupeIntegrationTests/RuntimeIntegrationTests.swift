import Foundation
import Testing
import TroupeRuntime
import TroupeTensor
#if canImport(Glibc)
import Glibc
#endif

/// Real `troupe learner` and `troupe actor` processes on loopback (docs/testing.md). One test at a time:
/// they share two busy cores, and their timing assertions (join within 10 s) must not compete.
@Suite(.serialized) struct RuntimeIntegrationTests {
    /// Checks every finished run shares: the summary agrees with the run log, the accounting identity
    /// holds, and the surviving history trains each group once with weights it may use.
    static func expectConsistentEnd(_ run: IntegrationRun, steps: Int, finished: Bool = true, maxStaleness: Int = 0,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        expectSummary(run, steps: steps, finished: finished, sourceLocation: sourceLocation)
        expectAccountingIdentity(run, sourceLocation: sourceLocation)
        for problem in run.records.chainProblems { run.fail("run log chain: \(problem)", sourceLocation: sourceLocation) }
        for problem in run.records.historyProblems(maxStaleness: maxStaleness) {
            run.fail("run log history: \(problem)", sourceLocation: sourceLocation)
        }
    }

    static func expectSummary(_ run: IntegrationRun, steps: Int, finished: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        let records = run.records
        let summary = records.summary
        run.check(summary != nil, "no learner-summary.json in \(run.runDirectory)", sourceLocation: sourceLocation)
        run.check((summary?["steps"] as? NSNumber)?.intValue == steps, "summary steps \(summary?["steps"] ?? "nil"), expected \(steps)",
                  sourceLocation: sourceLocation)
        run.check((summary?["finished"] as? NSNumber)?.boolValue == finished, "summary finished \(summary?["finished"] ?? "nil"), expected \(finished)",
                  sourceLocation: sourceLocation)
        let trainedInLog = records.survivingSteps.reduce(0) { $0 + $1.groups.count }
        run.check(records.accounting?["trained"] == trainedInLog,
                  "accounting trained \(records.accounting?["trained"] ?? -1) != \(trainedInLog) groups in the run log's surviving batches",
                  sourceLocation: sourceLocation)
        let end = records.of(finished ? "run_finished" : "learner_stopped").last
        run.check(end != nil, "no \(finished ? "run_finished" : "learner_stopped") record", sourceLocation: sourceLocation)
    }

    /// produced = trained + rejected(by reason) + duplicates + lost_uncommitted + in_flight, from the
    /// summary's numbers, and the summary's own verdict.
    static func expectAccountingIdentity(_ run: IntegrationRun, sourceLocation: SourceLocation = #_sourceLocation) {
        let records = run.records
        for problem in accountingProblems(records.accounting) {
            run.fail("accounting identity: \(problem) (summary \(records.accounting ?? [:]))", sourceLocation: sourceLocation)
        }
        let holds = records.summary?["accounting_identity_holds"]
        run.check((holds as? NSNumber)?.boolValue == true, "learner-summary.json says accounting_identity_holds = \(holds ?? "nil")",
                  sourceLocation: sourceLocation)
    }

    /// A copy of the run directory (in the test's directory, as `name`) whose frozen `config.json` has
    /// `section` changed by `edit`: for replays that must not match.
    static func copyOfRun(_ run: IntegrationRun, named name: String, section: String,
                          _ edit: (inout [String: Any]) -> Void) throws -> String {
        let copy = run.directory + "/" + name
        try FileManager.default.copyItem(atPath: run.runDirectory, toPath: copy)
        let configPath = copy + "/config.json"
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        var values = try #require(config[section] as? [String: Any])
        edit(&values)
        config[section] = values
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: configPath))
        return copy
    }

    /// `troupe replay RUN --verify` re-runs the surviving steps and must match every weights hash.
    static func expectReplayVerifies(_ run: IntegrationRun, steps: Int, name: String = "replay", within seconds: Double = 60,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (status, child) = try run.runToCompletion(name, ["replay", run.runDirectory, "--verify"], within: seconds,
                                                      sourceLocation: sourceLocation)
        run.check(status == .code(0), "replay --verify: \(status?.description ?? "timeout")", sourceLocation: sourceLocation)
        run.check(child.stdout.contains("replay verified: \(steps) steps"), "replay --verify did not verify \(steps) steps: \(child.stdout)",
                  sourceLocation: sourceLocation)
    }

    // 1 (and 5, 7): one learner, two actors, four steps.
    @Test func twoActorsTrainFourStepsAndReplayVerifies() throws {
        let run = try IntegrationRun("train")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 4)
        let a1 = try run.startActor("a1")
        let a2 = try run.startActor("a2")
        try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the learner did not finish the run")
        run.expectExit(a1, .code(0), within: 10)
        run.expectExit(a2, .code(0), within: 10)

        let records = run.records
        run.check(records.stepsDone == [1, 2, 3, 4], "step_done records \(records.stepsDone), expected [1, 2, 3, 4]")
        for s in records.survivingSteps {
            run.check(s.groups.count == 2, "step \(s.step) trained \(s.groups.count) groups, learner.batch_groups is 2")
        }
        let joined = Set(records.of("actor_joined").compactMap { $0.string("actor") })
        run.check(joined == ["a1", "a2"], "actor_joined records for \(joined.sorted()), expected a1 and a2")
        // Actors on the learner's host take weights from its shared memory, and the learner leaves no file behind.
        // (An actor that joined as the short run ended may have applied no weights at all.)
        let logs = [a1, a2].map(\.stderr)
        run.check(logs.contains { $0.contains("\"via\":\"shared_memory\"") }, "no actor mapped the learner's weights")
        run.check(!logs.contains { $0.contains("\"via\":\"chunks\"") }, "an actor on the learner's host fetched chunks")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: run.sharedMemoryDirectory)) ?? ["?"]
        run.check(left.isEmpty, "weight files left after the learner finished: \(left)")
        Self.expectConsistentEnd(run, steps: 4)
        try Self.expectReplayVerifies(run, steps: 4)

        // The verification can fail: replaying with another learning rate must not match, and replay says
        // the frozen configuration was edited.
        let tampered = try Self.copyOfRun(run, named: "tampered", section: "optimizer") { optimizer in
            optimizer["learning_rate"] = ((optimizer["learning_rate"] as? NSNumber)?.doubleValue ?? 1e-3) * 3
        }
        let (status, child) = try run.runToCompletion("replay-tampered", ["replay", tampered, "--verify"], within: 60)
        run.check(status == .code(1) && child.stdout.contains("replay FAILED") && child.stdout.contains("is not the configuration this run started with"),
                  "replay --verify with a changed learning rate: \(status?.description ?? "timeout"), expected exit 1: \(child.stdout.suffix(400))")
    }

    // Weight distribution to remote actors: with no shared memory every actor fetches chunks, and the
    // learner chains them (learner.relay_fanout 1), so all but the first take each version from another actor.
    @Test func actorsWithoutSharedMemoryRelayWeightsToOneAnother() throws {
        let run = try IntegrationRun("relay")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 6, ["learner.shared_memory_dir="])
        let actors = try ["r1", "r2", "r3"].map { try run.startActor($0) }
        try run.require(run.expectExit(learner, .code(0), within: 90) == .code(0), "the learner did not finish the run")
        for a in actors { run.expectExit(a, .code(0), within: 10) }
        let logs = actors.map(\.stderr)
        run.check(!logs.contains { $0.contains("\"via\":\"shared_memory\"") }, "an actor mapped shared memory the learner did not offer")
        run.check(logs.contains { $0.contains("\"via\":\"relay\"") }, "no actor took its weights from another actor's relay")
        run.check(logs.contains { $0.contains("\"via\":\"chunks\"") }, "no actor took its weights from the learner")
        run.check(!logs.contains { $0.contains("stopped serving") }, "a relay stalled on loopback")
        Self.expectConsistentEnd(run, steps: 6)
    }

    // kill -9 of an actor in the relay chain: the others get every later version (from the learner or
    // from each other) and the run finishes.
    @Test func killingARelayingActorStopsNobodyElse() throws {
        let run = try IntegrationRun("relay-kill")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 14, ["learner.shared_memory_dir=", "learner.heartbeat_timeout_s=3", "learner.lease_timeout_s=3"])
        let actors = try ["k1", "k2", "k3"].map { try run.startActor($0) }
        try run.require(run.waitUntil("step_done 3", within: 60) { run.records.stepsDone.contains(3) }, "no third step")
        actors[0].killHard()
        let stepAtKill = run.records.stepsDone.last ?? 0
        try run.require(run.expectExit(learner, .code(0), within: 90) == .code(0), "the learner did not finish the run after the kill")
        for a in actors.dropFirst() { run.expectExit(a, .code(0), within: 10) }
        let records = run.records
        run.check(records.stepsDone == Array(1...14), "step_done records \(records.stepsDone), expected 1...14")
        // Groups sampled with weights published after the kill: the survivors got those versions.
        let later = records.accepted.filter { $0.actor != "k1" && $0.versionStep > stepAtKill + 1 }
        run.check(!later.isEmpty, "no group of k2 or k3 was sampled with weights published after the kill")
        Self.expectConsistentEnd(run, steps: 14)
    }

    // 2: an actor started mid-run gets an accepted group within 10 s of its start.
    @Test func actorJoiningMidRunContributesWithinTenSeconds() throws {
        let run = try IntegrationRun("join")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 200)
        let a1 = try run.startActor("a1")
        let a2 = try run.startActor("a2")
        try run.require(run.waitUntil("step_done 1", within: 30) { run.records.stepsDone.contains(1) }, "no first step")
        let late = try run.startActor("late")
        var acceptedAfter: Double?
        run.waitUntil("an accepted group from the late actor", within: 10 - late.secondsSinceStart) {
            if run.records.accepted.contains(where: { $0.actor == "late" }) { acceptedAfter = late.secondsSinceStart; return true }
            return false
        }
        if let t = acceptedAfter { print("[join] the late actor's first group was accepted \(String(format: "%.2f", t)) s after its start") }
        run.check(run.records.of("actor_joined").contains { $0.string("actor") == "late" }, "no actor_joined record for the late actor")

        // SIGTERM: the learner finishes the step in progress, checkpoints, says Bye, exits 0. Its Bye says
        // "learner stopping", not "run finished", so the actors stay, waiting for a learner to resume the run.
        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 20) == .code(0), "the learner did not stop cleanly on SIGTERM")
        usleep(1_500_000)
        for actor in [a1, a2, late] { run.check(actor.isRunning, "an actor exited when the learner stopped (it should wait for a resume)") }
        for actor in [a1, a2, late] { actor.send(SIGTERM) }
        for actor in [a1, a2, late] { run.expectExit(actor, .code(0), within: 10) }
        let steps = run.records.stepsDone.last ?? 0
        run.check(steps < 200, "the run finished before the test stopped it")
        run.check(run.records.latestCheckpointStep == steps, "checkpoints/latest is step \(run.records.latestCheckpointStep ?? -1), the learner stopped at \(steps)")
        Self.expectConsistentEnd(run, steps: steps, finished: false)
    }

    // 3: kill -9 of an actor: it is evicted after the heartbeat timeout, the leases it held go back to the
    // queue (by expiry or by the eviction) and another actor trains their prompts; training goes on.
    @Test func killedActorsLeasesAreReassigned() throws {
        let run = try IntegrationRun("kill-actor")
        defer { run.finish() }
        // A long run, stopped by the test: a release build trains fast enough to finish a short one
        // before the heartbeat timeout could evict anybody.
        let learner = try run.startLearner(maxSteps: 10_000, ["learner.lease_timeout_s=3", "learner.heartbeat_timeout_s=3"])
        let victim = try run.startActor("victim")
        try run.require(run.waitUntil("step_done 1", within: 30) { run.records.stepsDone.contains(1) }, "the victim alone did not train step 1")
        let afterStep = run.records.all.last?.seq ?? 0
        try run.require(run.waitUntil("an accepted group from the victim after step 1", within: 20) {
            run.records.accepted.contains { $0.actor == "victim" && $0.seq > afterStep }
        }, "the victim stopped contributing")
        victim.killHard()
        let killedAtSeq = run.records.all.last?.seq ?? 0
        let stepAtKill = run.records.stepsDone.last ?? 0
        let survivor = try run.startActor("survivor")
        try run.require(run.waitUntil("the victim's eviction", within: 20) {
            run.records.of("actor_left").contains { $0.string("actor") == "victim" && ($0.string("reason") ?? "").contains("evicted") }
        }, "the victim was not evicted")
        let evictedAtSeq = run.records.all.last?.seq ?? 0
        try run.require(run.waitUntil("five more steps after the eviction", within: 30) {
            run.records.stepsDone.contains { $0 >= stepAtKill + 5 } && (run.records.all.last?.seq ?? 0) > evictedAtSeq
        }, "training did not go on after the kill")
        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 20) == .code(0), "the learner did not stop cleanly")
        survivor.send(SIGTERM)
        run.expectExit(survivor, .code(0), within: 10)

        let records = run.records
        // Every prompt the victim held when it died comes back and is trained from the survivor.
        let expired = records.of("lease_expired").filter { $0.string("actor") == "victim" && $0.seq > killedAtSeq }
        let returned = records.of("actor_left").filter { $0.string("actor") == "victim" }.flatMap { $0.ints("prompts_returned") }
        for prompt in expired.flatMap({ $0.ints("prompts") }) + returned {
            run.check(records.accepted.contains { $0.promptId == prompt && $0.seq > killedAtSeq && $0.actor == "survivor" },
                      "prompt \(prompt) the victim held was never accepted from the survivor")
        }
        run.check(!records.accepted.contains { $0.actor == "victim" && $0.seq > killedAtSeq }, "a group of the dead victim was accepted after its death")
        run.check(records.accepted.contains { $0.actor == "survivor" }, "the survivor contributed nothing")
        Self.expectConsistentEnd(run, steps: records.stepsDone.last ?? 0, finished: false)
    }

    // 6: an actor that never takes new weights: its groups are rejected as stale and counted.
    @Test func staleActorsGroupsAreRejectedAndCounted() throws {
        let run = try IntegrationRun("stale")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 5, ["learner.max_staleness=0"])
        let fresh = try run.startActor("fresh")
        let laggard = try run.startActor("laggard", ["--test-ignore-new-weights"])
        try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the run did not finish")
        run.expectExit(fresh, .code(0), within: 10)
        run.expectExit(laggard, .code(0), within: 10)

        let records = run.records
        let laggardRejections = records.of("group_rejected").filter { LogRecord.actor(ofGroup: $0.string("group") ?? "") == "laggard" }
        run.check(!laggardRejections.isEmpty, "no group of the laggard was rejected")
        for r in laggardRejections {
            run.check(["stale", "old_epoch"].contains(r.string("reason") ?? ""), "laggard group \(r.string("group") ?? "") rejected as \(r.string("reason") ?? "nil")")
        }
        let accounting = records.accounting ?? [:]
        let byReason = records.rejectionsByReason
        run.check((accounting["rejected/stale"] ?? 0) >= 1, "accounting rejected/stale is \(accounting["rejected/stale"] ?? 0)")
        for (reason, n) in byReason {
            run.check(accounting["rejected/\(reason)"] == n, "run log has \(n) group_rejected records with reason \(reason), accounting says \(accounting["rejected/\(reason)"] ?? 0)")
        }
        run.check(accounting["rejected"] == byReason.values.reduce(0, +), "accounting rejected \(accounting["rejected"] ?? -1) != \(byReason.values.reduce(0, +)) group_rejected records")
        Self.expectConsistentEnd(run, steps: 5, maxStaleness: 0)
    }

    // actors.sampling_priority auto in an asynchronous run: the actor's sampling threads move to
    // SCHED_IDLE; its main thread (heartbeats, leases) and ZeroMQ's stay normal.
    @Test func asynchronousRunsActorSamplesAtIdlePriority() throws {
        let run = try IntegrationRun("idle-priority")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 200, ["learner.max_staleness=1"])
        // Without the harness's OPENBLAS_NUM_THREADS=1, so OpenBLAS starts its workers as it does for a user.
        let actor = try run.start("actor-a1", ["actor", "--learner", run.controlEndpoint, "--identity", "a1", "--connect-timeout", "30"]
                                  + IntegrationRun.plaintext, launcher: ["/usr/bin/env", "-u", "OPENBLAS_NUM_THREADS"])
        try run.require(run.waitUntil("step_done 2", within: 60) { run.records.stepsDone.contains(2) }, "no second step")
        let threads = Self.threads(of: actor.pid)
        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 20) == .code(0), "the learner did not stop cleanly on SIGTERM")
        actor.send(SIGTERM)
        run.expectExit(actor, .code(0), within: 10)

        let main = threads.first { $0.id == actor.pid }
        try run.require(main != nil, "no main thread in /proc/\(actor.pid)/task: \(threads)")
        run.check(main!.policy == 0, "the actor's main thread (heartbeats, leases) has policy \(main!.policy), expected SCHED_OTHER (0)")
        for t in threads where t.name.hasPrefix("ZMQbg") {
            run.check(t.policy == 0, "ZeroMQ's thread \(t.name) has policy \(t.policy), expected SCHED_OTHER (0)")
        }
        // The sampler, the matrix products' helper ("paired-worker") and OpenBLAS's workers (not named).
        let sampling = threads.filter { ["sampler", "paired-worker"].contains($0.name) || ($0.id != actor.pid && $0.name == main!.name) }
        for t in sampling {
            run.check(t.policy == 5, "sampling thread \(t.id) (\(t.name)) has policy \(t.policy), expected SCHED_IDLE (5)")
        }
        // With two CPUs or more, the sampler's helper and at least one OpenBLAS worker exist besides the sampler.
        let expected = ProcessInfo.processInfo.activeProcessorCount > 1 ? 3 : 1
        run.check(sampling.count >= expected, "\(sampling.count) sampling threads, expected at least \(expected): \(threads)")
        run.check(actor.stderr.contains("sampling at idle priority") || actor.stdout.contains("sampling at idle priority"),
                  "the actor did not say it samples at idle priority")
        Self.expectConsistentEnd(run, steps: run.records.stepsDone.last ?? 0, finished: false, maxStaleness: 1)
    }

    // A learner on one OpenBLAS thread splits its matrix products' rows over two threads; the same run
    // with the split turned off (TROUPE_GEMM_ROW_SPLIT=off, learner and actor) has every weights hash.
    @Test func splittingMatrixProductsChangesNoWeights() throws {
        var hashes: [[Int: String]] = []
        for split in [true, false] {
            let run = try IntegrationRun(split ? "row-split-on" : "row-split-off")
            defer { run.finish() }
            let launcher = split ? [] : ["/usr/bin/env", "TROUPE_GEMM_ROW_SPLIT=off"]
            // The built-in base model with the main job's groups: products well above the split's minimum.
            let settings = run.learnerSettings(maxSteps: 4, ["model.path=\(TroupeBinary.repository.path)/models/arith-base",
                                                             "task.count=64", "sampling.group_size=16", "learner.batch_groups=8",
                                                             "sampling.max_new_tokens=8"])
            let learner = try run.start("learner", ["learner"] + IntegrationRun.plaintext + settings, launcher: launcher)
            let actor = try run.start("actor-a1", ["actor", "--learner", run.controlEndpoint, "--identity", "a1", "--connect-timeout", "30"]
                                      + IntegrationRun.plaintext, launcher: launcher)
            try run.require(run.expectExit(learner, .code(0), within: 90) == .code(0), "the run did not finish")
            run.expectExit(actor, .code(0), within: 10)
            let said = split ? "rows split over 2 threads" : "1 thread"
            run.check(learner.stderr.contains(said) || learner.stdout.contains(said), "the learner did not say its products run on \(said)")
            var steps: [Int: String] = [:]
            for r in run.records.of("step_done") { if let step = r.int("step"), let hash = r.string("weights_hash") { steps[step] = hash } }
            run.check(steps.count == 4, "\(steps.count) steps in the run log, expected 4")
            hashes.append(steps)
        }
        #expect(hashes.count == 2 && hashes[0] == hashes[1], "weights hashes with the split \(hashes.first ?? [:]), without \(hashes.last ?? [:])")
    }

    /// The threads of process `pid`: kernel id, name and scheduling policy.
    static func threads(of pid: Int32) -> [(id: Int32, name: String, policy: Int)] {
        ProcessThreads.all(process: pid).map { ($0.id, $0.name, Int(ThreadScheduling.policy(thread: $0.id))) }
    }

    // 8a: an actor pointed at a port where nothing listens gives up after --connect-timeout.
    @Test func actorWithoutLearnerGivesUpAfterConnectTimeout() throws {
        let run = try IntegrationRun("no-learner")
        defer { run.finish() }
        let (status, child) = try run.runToCompletion("actor", ["actor", "--learner", run.controlEndpoint, "--identity", "lonely",
                                                               "--connect-timeout", "2"] + IntegrationRun.plaintext, within: 15)
        run.check(status != nil && status != .code(0), "an actor with no learner ended with \(status?.description ?? "a timeout")")
        run.check(child.secondsSinceStart < 2 + 8, "the actor took \(child.secondsSinceStart) s to give up with --connect-timeout 2")
        run.check(child.stderr.contains("no learner answered") && child.stderr.contains("\(run.ports.control)"),
                  "the actor's message does not say that no learner answered at port \(run.ports.control): \(child.stderr)")
    }

    // 8b: an unknown configuration key, or a value the runtime would not honour, is refused by name,
    // before anything binds or writes.
    @Test func learnerRefusesUnknownKey() throws {
        let run = try IntegrationRun("bogus-key")
        defer { run.finish() }
        let (status, child) = try run.runToCompletion("learner", ["learner"] + IntegrationRun.plaintext + run.learnerSettings(maxSteps: 2, ["learner.bogus=1"]), within: 20)
        run.check(status != nil && status != .code(0), "learner with learner.bogus=1 ended with \(status?.description ?? "a timeout")")
        run.check(child.stderr.contains("learner.bogus"), "the error does not name learner.bogus: \(child.stderr)")
        run.check(!FileManager.default.fileExists(atPath: run.runDirectory + "/run.log"), "a refused configuration still created run.log")

        // A value that the runtime would not honour is refused too, naming the key that does it.
        let (mismatch, refused) = try run.runToCompletion("learner-samples", ["learner"] + IntegrationRun.plaintext + run.learnerSettings(
            maxSteps: 2, ["algorithm.sampling.samples_per_prompt=32"]), within: 20)
        run.check(mismatch != nil && mismatch != .code(0), "learner with samples_per_prompt 32 ≠ group_size ended with \(mismatch?.description ?? "a timeout")")
        run.check(refused.stderr.contains("algorithm.sampling.samples_per_prompt") && refused.stderr.contains("sampling.group_size"),
                  "the error does not name both keys: \(refused.stderr)")
    }


    /// `troupe bench` runs troupe-bench, an executable of its own: its refusals reach the user as they are.
    @Test func benchRefusesBadArgumentsThroughTroupe() throws {
        let run = try IntegrationRun("bench-refusals")
        defer { run.finish() }
        // Peer results from another machine: troupe bench gives no ratio from them.
        let elsewhere = run.directory + "/peers-elsewhere.json"
        try Data(#"""
            {"format": "troupe-peers/1", "unix_time": \#(Date().timeIntervalSince1970),
             "machine": {"cpu_model": "Another CPU", "cpus": 2, "machine_id": "x", "boot_id": "y"},
             "figures": {"rl_step/trl_grpo": {"peer": "TRL GRPOTrainer", "unit": "seconds_per_step", "values": [10.0]}}}
            """#.utf8).write(to: URL(fileURLWithPath: elsewhere))
        let cases: [([String], String)] = [
            (["model", "--shapes", "huge"], "unknown shape \"huge\"; known: tiny, small, smollm2-135m"),
            (["model", "--repeats", "0"], "--repeats must be at least 1, got 0"),
            (["model", "--threads", "0"], "--threads must be at least 1, got 0"),
            (["runtime", "--repeats", "0"], "--repeats must be at least 1, got 0"),
            (["runtime", "--steps", "2"], "--steps must be at least 3"),
            (["runtime", "--parts", "nothing"], "unknown part \"nothing\""),
            (["runtime", "--credit", "0"], "--credit 0: learner.credit: 0 is outside 1...1024"),
            // Refused before any part runs, not after the parts that come before the end-to-end runs.
            (["runtime", "--parts", "weights,e2e", "--e2e-set", "foo.bar=1"], "--e2e-set: --set foo.bar=1: foo: unknown key"),
            (["rl-step", "--set", "learner.bogus=1"], "--set learner.bogus=1: learner.bogus: unknown key"),
            (["rl-step", "--export-workload", run.directory], "--export-workload: \(run.directory) holds other files"),
            (["rl-step", "--steps", "2"], "--steps must be at least 3"),
            (["rl-step", "--staleness", "0,x"], "--staleness 0,x: expected values of learner.max_staleness"),
            (["rl-step", "--actors", "1,0"], "--actors 1,0: expected actor counts (1…64) separated by commas"),
            (["rl-step", "--peers", run.directory + "/none.json"], "peer results \(run.directory)/none.json: cannot read the file"),
            (["rl-step", "--peers", elsewhere], "was written on another machine (CPU \"Another CPU\""),
            (["model", "--peers", elsewhere, "--max-spread=-1"], "--max-spread must be a fraction ≥ 0"),
        ]
        for (n, (arguments, message)) in cases.enumerated() {
            let (status, child) = try run.runToCompletion("bench-\(n)", ["bench"] + arguments, within: 20)
            run.check(status != nil && status != .code(0), "troupe bench \(arguments) ended with \(status?.description ?? "a timeout")")
            run.check(child.stderr.contains(message), "troupe bench \(arguments) does not say \"\(message)\": \(child.stderr)")
        }
        let (help, child) = try run.runToCompletion("bench-help", ["bench", "--help"], within: 20)
        run.check(help == .code(0) && child.stdout.contains("SUBCOMMANDS") && child.stdout.contains("runtime") && child.stdout.contains("model")
                  && child.stdout.contains("rl-step"),
                  "troupe bench --help does not list the benchmarks: \(help?.description ?? "a timeout") \(child.stdout)")
    }

    // 8c: a second learner on a run directory that holds a run refuses, with or without --resume while
    // the first is alive, and leaves run.log intact.
    @Test func secondLearnerOnSameRunDirectoryRefuses() throws {
        let run = try IntegrationRun("twice")
        defer { run.finish() }
        let first = try run.startLearner("learner-1", maxSteps: 3)
        try run.require(run.waitUntil("the first learner's epoch_started record", within: 30) {
            !run.records.of("epoch_started").isEmpty
        }, "the first learner did not start")
        let before = run.records.all.count
        let (whileRunning, second) = try run.runToCompletion("learner-2", ["learner"] + IntegrationRun.plaintext + run.learnerSettings(maxSteps: 3), within: 20)
        run.check(whileRunning != nil && whileRunning != .code(0), "a second learner on a live run ended with \(whileRunning?.description ?? "a timeout")")
        run.check(second.stderr.contains("--resume"), "the refusal does not point to --resume: \(second.stderr)")
        run.check(run.records.all.count == before, "the refused learner wrote to run.log (\(before) → \(run.records.all.count) records)")

        let (resumeWhileRunning, _) = try run.runToCompletion("learner-resume-live", ["learner", "--resume", run.runDirectory] + IntegrationRun.plaintext, within: 20)
        run.check(resumeWhileRunning != nil && resumeWhileRunning != .code(0),
                  "--resume on a live run ended with \(resumeWhileRunning?.description ?? "a timeout")")
        let afterResumeAttempt = run.records.all.count
        run.check(first.isRunning, "the first learner died when the others started")

        first.send(SIGTERM)
        run.expectExit(first, .code(0), within: 20)
        let after = run.records.all.count
        let (whenStopped, third) = try run.runToCompletion("learner-3", ["learner"] + IntegrationRun.plaintext + run.learnerSettings(maxSteps: 3), within: 20)
        run.check(whenStopped != nil && whenStopped != .code(0), "a new learner on a stopped run ended with \(whenStopped?.description ?? "a timeout")")
        run.check(third.stderr.contains("--resume"), "the refusal does not point to --resume: \(third.stderr)")
        run.check(run.records.all.count == after, "the refused learner wrote to run.log (\(after) → \(run.records.all.count) records)")
        run.check(afterResumeAttempt == before, "--resume on a live run wrote \(afterResumeAttempt - before) records to its run.log")
        for problem in run.records.chainProblems { run.fail("run log chain: \(problem)") }
    }
}
