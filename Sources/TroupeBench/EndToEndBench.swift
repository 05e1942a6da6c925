import Foundation
import TroupeJSON
import TroupeLearner
import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWeights
import TroupeWire

/// End-to-end step time (docs/benchmarks.md): a real learner and real actors, each a child process
/// of the `troupe` binary on loopback, train a small model for a few steps. The step timings come
/// from the learner's metrics.jsonl (`time_s` when each step finished, `time/train_step`,
/// `trainer/idle_ratio`) and learner-summary.json; the actors' weight-sync times and idle ratios
/// from the log stream, to which this process subscribes.
///
/// Each step's cycle (from the previous step's end to this one's) splits into
/// - wait for batch: cycle − `time/train_step`, the trainer not computing: actors fetching weights
///   or sampling, groups in transit, and the I/O loop's bookkeeping between two steps (run-log
///   fsyncs, metrics), which the learner's own `trainer/idle_ratio` does not count as idle,
/// - train: `time/train_step` − publish (forward, backward, AdamW),
/// - publish: building the new version's snapshot (copy + hash of every tensor), measured on the same
///   model in this process, since `time/train_step` includes it when a version is published.
/// Step 1 also holds the start-up (actors joining and fetching the first weights) and is left out
/// of the steady-state figures; the learner's own idle ratio covers the whole run. The steady-state
/// idle ratio (Σ wait / Σ cycle over steps 2…N) is the stricter of the two and is the one judged.
package enum EndToEndBench {
    package struct Options: Sendable {
        /// The `troupe` binary to start the learner and actors from.
        package var executable: String
        /// A model directory (the tiny fixture by default).
        package var modelPath: String
        package var steps = 24
        package var actors = 2
        /// Runs to make, one per `learner.max_staleness` value.
        package var stalenessValues = [0, 1]
        /// Further `--set` overrides for the learner (task and batch shape).
        /// Big enough that a step is not all fixed latencies (4 groups × 8 samples × up to 24 tokens).
        package var overrides = ["task.spec=arith:add2", "task.count=64", "sampling.group_size=8", "learner.batch_groups=4",
                                "sampling.max_new_tokens=24"]
        package var timeoutSeconds = 240.0
        package init(executable: String, modelPath: String) {
            self.executable = executable
            self.modelPath = modelPath
        }
    }

    package struct Step: Sendable {
        package let step: Int
        package var cycleSeconds: Double
        package let trainStepSeconds: Double
        /// The trainer's own split of `trainStepSeconds` (metrics.jsonl; 0 where a line lacks it):
        /// the forward pass that scores the batch, the backward pass, AdamW, the published snapshot.
        package var forwardSeconds = 0.0, backwardSeconds = 0.0, optimizerSeconds = 0.0, publishSeconds = 0.0
        /// Completion tokens trained in the step.
        package var tokensTrained = 0.0
        package var waitSeconds: Double { max(0, cycleSeconds - trainStepSeconds) }
    }

    package struct Run: Sendable {
        package let staleness: Int
        package let steps: [Step]
        package let publishSeconds: Double
        /// `trainer_idle_ratio` of learner-summary.json: the whole run, start-up included.
        package let learnerIdleRatio: Double
        package let wallSeconds: Double
        package let weightSyncMilliseconds: [Double]
        /// Each actor's last reported idle ratio (share of its time not sampling).
        package let actorIdleRatios: [String: Double]
        package let accountingHolds: Bool
        /// Groups the actors produced, those the learner trained on and those it discarded as stale
        /// (learner-summary.json).
        package let groupsProduced: Int
        package let groupsTrained: Int
        package let groupsStale: Int
        /// Seconds the actors spent sampling, per group they produced (their last reports).
        package let samplingSecondsPerGroup: Double
        /// Whether the actors sampled at idle priority (`actors.sampling_priority`, resolved at this staleness).
        package let actorsSampleAtIdlePriority: Bool
        /// `OPENBLAS_THREAD_TIMEOUT` as the learner got it; nil: OpenBLAS's default (its workers spin).
        package let learnerBLASThreadTimeout: String?
        /// The learner's `learner.threads` and `learner.backward_precision`, as resolved.
        package let learnerThreads: Int
        package let backwardPrecision: String
        package var staleShare: Double { groupsProduced > 0 ? Double(groupsStale) / Double(groupsProduced) : .nan }

        package var steady: [Step] { steps.filter { $0.step >= 2 } }
        package var medianCycle: Double { BenchStats.median(steady.map(\.cycleSeconds)) }
        package var medianWait: Double { BenchStats.median(steady.map(\.waitSeconds)) }
        package var medianTrain: Double { max(0, BenchStats.median(steady.map(\.trainStepSeconds)) - publishSeconds) }
        /// Trainer idle time over wall time, from step 2 on.
        package var steadyIdleRatio: Double {
            let cycles = steady.reduce(0) { $0 + $1.cycleSeconds }
            return cycles > 0 ? steady.reduce(0) { $0 + $1.waitSeconds } / cycles : .nan
        }
    }

    package struct Report: Sendable {
        package let runs: [Run]
        package let steps: Int
        package let actors: Int
        package let overrides: [String]
    }

    package static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> Report {
        guard FileManager.default.isExecutableFile(atPath: options.executable) else {
            throw RuntimeBenchError("end-to-end", "no executable at \(options.executable)")
        }
        guard FileManager.default.fileExists(atPath: options.modelPath + "/config.json") else {
            throw RuntimeBenchError("end-to-end", "\(options.modelPath) is not a model directory (no config.json)")
        }
        guard options.steps >= 3, options.actors >= 1 else { throw RuntimeBenchError("end-to-end", "needs at least 3 steps and 1 actor") }
        // Publishing cost on the same model, measured here (the learner does it inside its step).
        let model = try ModelDirectory.load(options.modelPath)
        var makes: [Double] = []
        for _ in 0..<5 {
            let t0 = monotonicSeconds()
            _ = WeightSnapshot.make(model: model, version: PolicyVersion(epoch: 1, step: 1),
                                    sharedMemoryDirectory: RunConfig().learner.sharedMemoryDirectory)
            makes.append(monotonicSeconds() - t0)
        }
        let publish = BenchStats.median(makes)
        var runs: [Run] = []
        for staleness in options.stalenessValues {
            progress("end-to-end: learner + \(options.actors) actors, \(options.steps) steps, max_staleness \(staleness)")
            runs.append(try oneRun(options, staleness: staleness, publishSeconds: publish))
        }
        return Report(runs: runs, steps: options.steps, actors: options.actors, overrides: options.overrides)
    }

    static func oneRun(_ options: Options, staleness: Int, publishSeconds: Double) throws -> Run {
        let phase = "end-to-end (max_staleness \(staleness))"
        let work = NSTemporaryDirectory() + "troupe-bench-e2e-\(getpid())-\(staleness)"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let base = 20_000 + Int.random(in: 0..<8_000) * 5
        let ports = (control: base, weights: base + 1, announce: base + 2, logs: base + 3, logsIn: base + 4)
        let runDirectory = work + "/run"
        // The benchmark measures the plaintext path on loopback, which each process takes only when asked.
        var learnerArgs = ["learner", "--insecure-plaintext", "--set", "model.path=\(options.modelPath)", "--set", "run.directory=\(runDirectory)",
                           "--set", "run.max_steps=\(options.steps)", "--set", "learner.max_staleness=\(staleness)",
                           "--set", "learner.checkpoint_every=1000000",
                           "--set", "endpoints.control_port=\(ports.control)", "--set", "endpoints.weights_port=\(ports.weights)",
                           "--set", "endpoints.announce_port=\(ports.announce)", "--set", "endpoints.logs_port=\(ports.logs)",
                           "--set", "endpoints.logs_in_port=\(ports.logsIn)"]
        for o in options.overrides { learnerArgs += ["--set", o] }

        let deadline = monotonicSeconds() + options.timeoutSeconds
        let listener = LogListener(port: ports.logs, deadline: deadline, phase: phase)
        var children: [Process] = []
        defer {
            listener.stop()
            stopAll(children)
        }
        // The run's settings as the learner resolves them, and its environment as `troupe run` gives it
        // (its actors share these cores).
        let resolved = try RunConfig.parse(.object([:]), overrides: options.overrides + ["learner.max_staleness=\(staleness)"])
        let learnerEnvironment = resolved.learnerEnvironment(ProcessInfo.processInfo.environment)
        // Should the benchmark die (Ctrl-C twice, SIGKILL), its learner and actors stop on their own.
        let learner = try Shutdown.launchChild(options.executable, learnerArgs, log: work + "/learner.log", environment: learnerEnvironment)
        children.append(learner)
        for a in 0..<options.actors {
            children.append(try Shutdown.launchChild(
                options.executable, ["actor", "--learner", "tcp://127.0.0.1:\(ports.control)", "--insecure-plaintext",
                                     "--identity", "bench-\(a + 1)", "--connect-timeout", "60"],
                log: work + "/actor-\(a + 1).log"))
        }
        while learner.isRunning && monotonicSeconds() < deadline { usleep(50_000) }
        if learner.isRunning {
            throw RuntimeBenchError(phase, "the learner did not finish \(options.steps) steps within \(Int(options.timeoutSeconds)) s; logs in \(work)")
        }
        guard learner.terminationStatus == 0 else {
            throw RuntimeBenchError(phase, "the learner exited with status \(learner.terminationStatus): \(tail(work + "/learner.log"))")
        }
        // Actors leave on the learner's Bye; give them a moment to report their last stats.
        let actorsDeadline = monotonicSeconds() + 10
        while children.dropFirst().contains(where: \.isRunning) && monotonicSeconds() < actorsDeadline { usleep(50_000) }
        listener.stop()
        let events = try listener.finish()

        let steps = try readSteps(runDirectory + "/metrics.jsonl", phase: phase)
        guard steps.count == options.steps else {
            throw RuntimeBenchError(phase, "metrics.jsonl holds \(steps.count) steps, expected \(options.steps)")
        }
        let summary: LearnerSummary
        do { summary = try LearnerSummary.read(runDirectory: runDirectory) } catch { throw RuntimeBenchError(phase, "\(error)") }
        try? FileManager.default.removeItem(atPath: work)
        return Run(staleness: staleness, steps: steps, publishSeconds: publishSeconds, learnerIdleRatio: summary.trainerIdleRatio,
                   wallSeconds: summary.wallTimeSeconds, weightSyncMilliseconds: events.weightSync, actorIdleRatios: events.actorIdle,
                   accountingHolds: summary.accountingIdentityHolds,
                   groupsProduced: summary.accounting["produced"] ?? 0,
                   groupsTrained: summary.accounting["trained"] ?? 0,
                   groupsStale: summary.accounting["rejected/stale"] ?? 0,
                   samplingSecondsPerGroup: events.samplingSecondsPerGroup,
                   actorsSampleAtIdlePriority: resolved.sampleAtIdlePriority,
                   learnerBLASThreadTimeout: learnerEnvironment[RunConfig.blasThreadTimeoutVariable],
                   learnerThreads: resolved.learner.threads, backwardPrecision: resolved.learner.backwardPrecision)
    }

    /// The `train` lines of metrics.jsonl as steps with their cycle times.
    package static func readSteps(_ path: String, phase: String) throws -> [Step] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw RuntimeBenchError(phase, "cannot read \(path)") }
        var rows: [(time: Double, step: Step)] = []
        for (n, line) in text.split(separator: "\n").enumerated() {
            guard let object = (try? JSONValue.parse(Array(line.utf8)))?.object else {
                throw RuntimeBenchError(phase, "\(path) line \(n + 1) is not a JSON object")
            }
            guard object["kind"]?.string == "train" else { continue }
            guard let step = object["step"]?.int, let time = object["time_s"]?.double, let train = object["time/train_step"]?.double else {
                throw RuntimeBenchError(phase, "\(path) line \(n + 1) lacks step, time_s or time/train_step")
            }
            var row = Step(step: step, cycleSeconds: 0, trainStepSeconds: train)
            row.forwardSeconds = object["time/forward"]?.double ?? 0
            row.backwardSeconds = object["time/backward"]?.double ?? 0
            row.optimizerSeconds = object["time/optimizer"]?.double ?? 0
            row.publishSeconds = object["time/publish"]?.double ?? 0
            row.tokensTrained = object["tokens_trained"]?.double ?? 0
            rows.append((time, row))
        }
        rows.sort { $0.step.step < $1.step.step }
        var previous = 0.0
        return rows.map { r in
            defer { previous = r.time }
            var step = r.step
            step.cycleSeconds = r.time - previous
            return step
        }
    }

    /// Stops the children this benchmark started: SIGTERM (a clean checkpoint), SIGKILL after 10 s.
    static func stopAll(_ children: [Process]) {
        for p in children where p.isRunning { p.terminate() }
        let until = monotonicSeconds() + 10
        while children.contains(where: \.isRunning) && monotonicSeconds() < until { usleep(50_000) }
        for p in children where p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }

    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(5).joined(separator: " | ")
    }
}

/// Subscribes to the learner's log stream on its own thread and keeps the actors' weight-sync
/// times and last idle ratios.
final class LogListener {
    struct Events {
        var weightSync: [Double] = []
        var actorIdle: [String: Double] = [:]
        /// Each actor's last report: (seconds spent sampling, groups produced).
        var actorSampling: [String: (seconds: Double, groups: Double)] = [:]
        var samplingSecondsPerGroup: Double {
            let groups = actorSampling.values.reduce(0) { $0 + $1.groups }
            return groups > 0 ? actorSampling.values.reduce(0) { $0 + $1.seconds } / groups : .nan
        }
    }

    private let stopFlag = StopFlag()
    private let thread: BenchThread
    private let result = Mailbox<Events>()
    private let phase: String

    init(port: Int, deadline: Double, phase: String) {
        self.phase = phase
        let stopFlag = self.stopFlag
        let result = self.result
        thread = BenchThread(name: "log-listener") {
            var events = Events()
            defer { result.put(events) }
            let context = try ZMQContext(ioThreads: 1)
            let sub = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
            defer { sub.close() }
            try sub.set(SocketProfile.subscriber())
            try sub.connect(Endpoint(parsing: "tcp://127.0.0.1:\(port)"))
            while !stopFlag.isRaised && monotonicSeconds() < deadline {
                guard case .message(let m) = try sub.receiveMessage(deadline: .afterMilliseconds(50), limits: .headerOnly),
                      case .logEvent(let e) = m.body else { continue }
                if e.kind == "weights_applied", let ms = e.metrics["weight_sync_ms"] { events.weightSync.append(ms) }
                if e.kind == "actor_stats", let idle = e.metrics["actor/idle_ratio"] { events.actorIdle[e.source] = idle }
                if e.kind == "actor_stats", let seconds = e.metrics["sampling_s"], let groups = e.metrics["groups_produced"] {
                    events.actorSampling[e.source] = (seconds, groups)
                }
                if e.kind == "learner_stats" {
                    // "actor/<id>" = "k=v,k=v,…": the stats of each actor's last heartbeat.
                    for (key, value) in e.fields where key.hasPrefix("actor/") {
                        for pair in value.split(separator: ",") where pair.hasPrefix("idle_ratio=") {
                            if let idle = Double(pair.dropFirst("idle_ratio=".count)) { events.actorIdle[key] = idle }
                        }
                    }
                }
            }
        }
    }

    func stop() { stopFlag.raise() }

    func finish() throws -> Events {
        stop()
        try thread.join(timeoutSeconds: 5, phase: phase)
        return try result.take(deadline: monotonicSeconds() + 1, phase: phase, what: "log events")
    }
}
