import Foundation
import Testing

/// The reference reward worker (rewards/python/troupe_reward_worker.py) in the virtualenv
/// scripts/rewards-venv.sh makes. CI makes it (scripts/bootstrap.sh test) and sets CI, so there a
/// missing one fails; elsewhere the tests are skipped with a message.
enum RewardWorkerVenv {
    static let venv = ProcessInfo.processInfo.environment["TROUPE_REWARDS_VENV"] ?? ClusterRecipes.repository + "/.build/venv-rewards"
    static let python = venv + "/bin/python"
    static let worker = ClusterRecipes.repository + "/rewards/python/troupe_reward_worker.py"
    static let installed = FileManager.default.isExecutableFile(atPath: python)
        && (try? ClusterRecipes.run([python, worker, "--self-test"]).status) == 0
}

extension IntegrationRun {
    /// Starts a reference worker on a port of its choosing (in plaintext unless `keys` give its
    /// `--key` and `--allow`); returns it and the address it bound.
    func startRewardWorker(_ name: String, kind: String = "math_verify", fault: String? = nil, keys: [String] = []) throws -> (Child, String) {
        let child = try startProgram(name, [RewardWorkerVenv.python, RewardWorkerVenv.worker, "--bind", "tcp://127.0.0.1:0", "--kind", kind,
                                            "--version", "v1"] + (fault.map { ["--fault", $0] } ?? []) + (keys.isEmpty ? Self.plaintext : keys))
        var endpoint: String?
        waitUntil("\(name) says where it listens", within: 30) {
            guard let line = child.stdout.split(separator: "\n").first(where: { $0.contains("\"listening\"") }),
                  let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return false }
            endpoint = object["listening"] as? String
            return endpoint != nil
        }
        guard let endpoint else { throw HarnessError("\(name) never said where it listens: \(child.tail())") }
        return (child, endpoint)
    }

    /// The learner's settings for reward workers at `endpoints` (a labelled task: references reach the workers).
    static func rewardSettings(_ endpoints: [String], _ extra: [String] = []) -> [String] {
        let list = "[" + endpoints.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        return ["reward_workers.endpoints=\(list)", "reward_workers.version=v1", "algorithm.reward.kind=external",
                "task.label_free=false"] + extra
    }

    /// A worker's last line after SIGTERM: requests answered and connections its allowlist refused.
    func stoppedRewardWorker(_ child: Child) -> (answered: Int, refused: Int)? {
        child.send(SIGTERM)
        guard child.waitForExit(within: 10) == .code(0),
              let line = child.stdout.split(separator: "\n").last(where: { $0.contains("\"stopped\"") }),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let answered = (object["answered"] as? NSNumber)?.intValue,
              let refused = (object["refused_connections"] as? NSNumber)?.intValue else { return nil }
        return (answered, refused)
    }

    var rewardCounters: [String: Int] {
        (records.summary?["reward_workers"] as? [String: Any])?.compactMapValues { ($0 as? NSNumber)?.intValue } ?? [:]
    }

    /// Every accepted sample's reward and its `base` component (the workers' score, or the fallback).
    var acceptedSamples: [(reward: Double, base: Double?, fallback: Bool)] {
        records.of("group_accepted").flatMap { record -> [(reward: Double, base: Double?, fallback: Bool)] in
            (record.body["samples"] as? [[String: Any]] ?? []).map { s in
                let components = s["components"] as? [String: Any] ?? [:]
                return ((s["reward"] as? NSNumber)?.doubleValue ?? .nan, (components["base"] as? NSNumber)?.doubleValue,
                        components["reward_fallback"] != nil)
            }
        }
    }
}

extension RuntimeIntegrationTests {
    /// A learner and an actor scored by two Python math workers, with the built-in model (which gets
    /// some sums right): the workers' scores are the rewards in the run log and the steps train on
    /// them; replay verifies with the workers gone.
    @Test(.enabled(if: RewardWorkerVenv.installed || ClusterRecipes.required,
                   "the reward worker's venv is missing (bash scripts/rewards-venv.sh); reward worker runs skipped"),
          .timeLimit(.minutes(4)))
    func aRunIsScoredByThePythonMathWorkers() throws {
        try #require(RewardWorkerVenv.installed, "CI is set but \(RewardWorkerVenv.venv) cannot run the worker: run bash scripts/rewards-venv.sh")
        let run = try IntegrationRun("reward-workers")
        defer { run.finish() }
        let (w1, e1) = try run.startRewardWorker("worker-1")
        let (w2, e2) = try run.startRewardWorker("worker-2")
        let model = TroupeBinary.repository.appendingPathComponent("models/arith-base").path
        let learner = try run.startLearner(maxSteps: 4, IntegrationRun.rewardSettings([e1, e2], ["model.path=\(model)", "sampling.max_new_tokens=8"]))
        let actor = try run.startActor("a1")
        try run.require(run.expectExit(learner, .code(0), within: 150) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 10)
        w1.send(SIGTERM)
        w2.send(SIGTERM)
        Self.expectConsistentEnd(run, steps: 4)
        let counters = run.rewardCounters
        let samples = run.acceptedSamples
        run.check(!samples.isEmpty, "no accepted samples")
        run.check(samples.allSatisfy { ($0.reward == 0 || $0.reward == 1) && $0.base == $0.reward && !$0.fallback },
                  "rewards are not math_verify's 0/1 scores: \(samples.prefix(8))")
        let correct = samples.filter { $0.reward == 1 }.count
        run.check(correct > 0 && correct < samples.count, "\(correct) of \(samples.count) samples scored 1: the workers' verdicts should vary")
        run.check((counters["scored"] ?? 0) >= samples.count && (counters["calls"] ?? 0) + (counters["cache_hits"] ?? 0) >= samples.count,
                  "reward_workers counters \(counters) do not cover \(samples.count) samples")
        run.check(counters["failed"] == 0 && counters["timeouts"] == 0 && counters["garbage"] == 0, "problems with healthy workers: \(counters)")
        run.check(learner.stderr.contains("its reward workers are asked in plaintext too"), "the plaintext learner did not warn that its workers are asked in plaintext")
        let metrics = (try? String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8)) ?? ""
        run.check(metrics.contains("\"kind\":\"reward_workers\"") && metrics.contains("\"reward_workers/calls\""), "metrics.jsonl has no reward_workers line")
        print("[reward-workers] healthy: samples=\(samples.count) correct=\(samples.filter { $0.reward == 1 }.count) counters=\(counters) learner_s=\(String(format: "%.1f", learner.secondsSinceStart))")
        try Self.expectReplayVerifies(run, steps: 4)
    }

    /// The step-scoring kind (`tiny_scorer`: step scores aggregated by their minimum) on a label-free
    /// run: every reward is a score in (0, 1), and they differ from sample to sample.
    @Test(.enabled(if: RewardWorkerVenv.installed || ClusterRecipes.required,
                   "the reward worker's venv is missing (bash scripts/rewards-venv.sh); reward worker runs skipped"),
          .timeLimit(.minutes(3)))
    func aStepScoringWorkerScoresALabelFreeRun() throws {
        try #require(RewardWorkerVenv.installed, "CI is set but \(RewardWorkerVenv.venv) cannot run the worker: run bash scripts/rewards-venv.sh")
        let run = try IntegrationRun("reward-worker-steps")
        defer { run.finish() }
        let (worker, endpoint) = try run.startRewardWorker("worker-prm", kind: "tiny_scorer")
        let learner = try run.startLearner(maxSteps: 2, IntegrationRun.rewardSettings([endpoint], ["task.label_free=true"]))
        let actor = try run.startActor("a1")
        try run.require(run.expectExit(learner, .code(0), within: 120) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 10)
        worker.send(SIGTERM)
        Self.expectConsistentEnd(run, steps: 2)
        let rewards = run.acceptedSamples.map(\.reward)
        run.check(!rewards.isEmpty && rewards.allSatisfy { $0 > 0 && $0 < 1 }, "step scores are sigmoids in (0, 1): \(rewards)")
        run.check(Set(rewards).count > 1, "every sample got the same score: \(rewards)")
        run.check(run.rewardCounters["failed"] == 0, "samples went unscored: \(run.rewardCounters)")
    }

    /// Workers that crash mid-run, answer garbage or never answer, next to one healthy worker: every
    /// problem is counted and reported (summary, metrics, log), none is fatal, and the run finishes.
    @Test(.enabled(if: RewardWorkerVenv.installed || ClusterRecipes.required,
                   "the reward worker's venv is missing (bash scripts/rewards-venv.sh); reward worker runs skipped"),
          .timeLimit(.minutes(4)))
    func crashingGarbageAndSilentWorkersAreCountedAndTheRunFinishes() throws {
        try #require(RewardWorkerVenv.installed, "CI is set but \(RewardWorkerVenv.venv) cannot run the worker: run bash scripts/rewards-venv.sh")
        let run = try IntegrationRun("reward-worker-faults")
        defer { run.finish() }
        let (crashing, e1) = try run.startRewardWorker("worker-crashing", fault: "crash-after:3")
        let (garbage, e2) = try run.startRewardWorker("worker-garbage", fault: "garbage")
        let (silent, e3) = try run.startRewardWorker("worker-silent", fault: "silent")
        let (healthy, e4) = try run.startRewardWorker("worker-healthy")
        let learner = try run.startLearner(maxSteps: 4, IntegrationRun.rewardSettings([e1, e2, e3, e4], [
            "reward_workers.deadline_s=1", "reward_workers.attempts=4", "reward_workers.max_in_flight=2"]))
        let actor = try run.startActor("a1")
        try run.require(run.expectExit(learner, .code(0), within: 180) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 10)
        run.check(crashing.exitStatus == .code(3), "the crashing worker should have crashed: \(crashing.exitStatus?.description ?? "running")")
        for w in [garbage, silent, healthy] { w.send(SIGTERM) }
        Self.expectConsistentEnd(run, steps: 4)
        let counters = run.rewardCounters
        run.check((counters["garbage"] ?? 0) > 0, "no garbage counted: \(counters)")
        run.check((counters["timeouts"] ?? 0) > 0, "no timeout counted: \(counters)")
        run.check((counters["unreachable"] ?? 0) > 0, "sends to the crashed worker were not counted as unreachable: \(counters)")
        run.check(run.acceptedSamples.allSatisfy { $0.reward == 0 || $0.reward == 1 }, "a reward that no healthy worker gave")
        // The learner kept serving while groups waited: its actor was never evicted for silence.
        let evictions = run.records.of("actor_left").filter { ($0.string("reason") ?? "").hasPrefix("evicted") }
        run.check(evictions.isEmpty, "the actor was evicted while groups waited for scores: \(evictions.map(\.body))")
        run.check(learner.stderr.contains("reward workers:"), "the learner did not report the workers' problems in its log")
        let metrics = (try? String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8)) ?? ""
        let lastLine = metrics.split(separator: "\n").last { $0.contains("\"kind\":\"reward_workers\"") }
        let exported = lastLine.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        run.check((exported["reward_workers/garbage"] as? NSNumber)?.intValue == counters["garbage"]
                  && (exported["reward_workers/timeouts"] as? NSNumber)?.intValue ?? 0 > 0,
                  "metrics.jsonl's last reward_workers line \(exported) does not report the workers' problems (summary \(counters))")
        let rejected = run.records.of("group_rejected").filter { $0.string("reason") == "reward_unavailable" }.count
        print("[reward-workers] faults: counters=\(counters) reward_unavailable=\(rejected) learner_s=\(String(format: "%.1f", learner.secondsSinceStart))")
        try Self.expectReplayVerifies(run, steps: 4)
    }

    /// Reward workers over CURVE, with real processes: a learner with keys is refused at start when it
    /// names no worker keys; `troupe doctor` with the keys passes only the good worker; then, of three
    /// workers, only the one whose key it names and whose allowlist admits it is asked. The impostor (another key pair at that address) and the closed
    /// worker (its allowlist lacks the learner) answer nothing, and every sample is still scored.
    @Test(.enabled(if: RewardWorkerVenv.installed || ClusterRecipes.required,
                   "the reward worker's venv is missing (bash scripts/rewards-venv.sh); reward worker runs skipped"),
          .timeLimit(.minutes(4)))
    func aLearnerWithKeysAsksOnlyTheWorkersItAuthenticates() throws {
        try #require(RewardWorkerVenv.installed, "CI is set but \(RewardWorkerVenv.venv) cannot run the worker: run bash scripts/rewards-venv.sh")
        let run = try IntegrationRun("reward-workers-curve")
        defer { run.finish() }
        let keys = run.directory + "/keys"
        try run.makeKeys([("learner", "learner", keys), ("a1", "actor", keys + "/allowed"), ("other", "learner", keys + "/other"),
                                     ("w-keyed", "reward-worker", keys + "/workers"), ("w-impostor", "reward-worker", keys + "/workers"),
                                     ("w-closed", "reward-worker", keys + "/workers")])
        let learnerKeys = ["--key", keys + "/learner.key_secret", "--allow", keys + "/allowed"]
        let (keyed, e1) = try run.startRewardWorker("worker-keyed", keys: ["--key", keys + "/workers/w-keyed.key_secret", "--allow", keys + "/learner.key"])
        let (impostor, e2) = try run.startRewardWorker("worker-impostor", keys: ["--key", keys + "/workers/w-impostor.key_secret", "--allow", keys + "/learner.key"])
        let (closed, e3) = try run.startRewardWorker("worker-closed", keys: ["--key", keys + "/workers/w-closed.key_secret", "--allow", keys + "/other/other.key"])

        let plaintextAsked = try run.runToCompletion("learner-no-worker-keys", ["learner"] + learnerKeys + run.learnerSettings(maxSteps: 1,
            IntegrationRun.rewardSettings([e1], ["run.directory=\(run.directory)/refused"])), within: 30)
        run.check(plaintextAsked.status == .code(1) && plaintextAsked.child.stderr.contains("reward_workers.server_keys"),
                  "a learner with keys and no worker keys should be refused naming reward_workers.server_keys: \(plaintextAsked.child.tail())")

        let workerKeys = "[\"\(keys)/workers/w-keyed.key\",\"\(keys)/workers/w-keyed.key\",\"\(keys)/workers/w-closed.key\"]"
        // troupe doctor, given the same keys, tells the three apart before the run.
        let doctor = try run.runToCompletion("doctor", ["doctor"] + (IntegrationRun.rewardSettings([e1, e2, e3], [
            "reward_workers.server_keys=\(workerKeys)", "reward_workers.client_key=\(keys)/learner.key_secret"]).flatMap { ["--set", $0] }), within: 60)
        let verdicts = doctor.child.stdout.split(separator: "\n").filter { $0.contains("reward_worker_") }.map { String($0.prefix(4)) }
        run.check(doctor.status == .code(1) && verdicts == ["ok  ", "FAIL", "FAIL"],
                  "doctor's reward worker verdicts \(verdicts), exit \(String(describing: doctor.status)): expected ok, FAIL, FAIL and exit 1\n\(doctor.child.tail())")
        let learner = try run.start("learner", ["learner"] + learnerKeys + run.learnerSettings(maxSteps: 3, IntegrationRun.rewardSettings([e1, e2, e3], [
            "reward_workers.server_keys=\(workerKeys)", "reward_workers.deadline_s=1", "reward_workers.attempts=3"])))
        let actor = try run.startActor("a1", ["--key", keys + "/allowed/a1.key_secret", "--learner-key", keys + "/learner.key"])
        try run.require(run.expectExit(learner, .code(0), within: 150) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 10)
        Self.expectConsistentEnd(run, steps: 3)
        let counters = run.rewardCounters
        let samples = run.acceptedSamples
        run.check(!samples.isEmpty && samples.allSatisfy { ($0.reward == 0 || $0.reward == 1) && !$0.fallback },
                  "rewards are not the keyed worker's 0/1 scores: \(samples.prefix(8))")
        run.check(counters["failed"] == 0 && (counters["scored"] ?? 0) >= samples.count, "samples went unscored: \(counters)")
        let (k, i, c) = (run.stoppedRewardWorker(keyed), run.stoppedRewardWorker(impostor), run.stoppedRewardWorker(closed))
        run.check((k?.answered ?? 0) > 0, "the keyed worker answered nothing: \(String(describing: k)) \(keyed.tail())")
        run.check(i.map { $0.answered == 0 } ?? false, "the impostor answered the learner: \(String(describing: i)) \(impostor.tail())")
        run.check(c.map { $0.answered == 0 && $0.refused > 0 } ?? false,
                  "the closed worker should have refused the learner's connection and answered nothing: \(String(describing: c)) \(closed.tail())")
        print("[reward-workers] curve: counters=\(counters) keyed=\(String(describing: k)) impostor=\(String(describing: i)) closed=\(String(describing: c))")
    }
}
