import ArgumentParser
import Foundation
import TroupeBench
import TroupeCLI
import TroupeJSON
import TroupeRuntime
import TroupeTensor

/// `troupe bench rl-step`: TRL's GRPO benchmark workload, one step at a time, with a learner and
/// actors as processes, split into its parts and set against its arithmetic limit and TRL's
/// GRPOTrainer measured in the same sitting.
struct BenchRLStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rl-step",
        abstract: "TRL's GRPO workload end to end: seconds per step, its parts, its arithmetic limit, and TRL's time.",
        discussion: """
            The workload: a random-weight small Llama (vocabulary 4096, 27.8 M parameters), 8 prompts × 8 \
            samples × 64 new tokens at temperature 1, GRPO's group-normalised advantages, no KL, AdamW, one \
            optimizer step over all 64 completions. A learner and --actors actors (child processes of the \
            troupe next to this binary, loopback, plaintext) run --steps steps at each --staleness value. \
            Per run, medians over steps 2 on: seconds per step, completion tokens trained per second, the \
            trainer's idle ratio, the share of produced groups that were trained, and the step's parts: \
            sampling (the actors' time for one step's groups, over the actors sampling at once), scoring \
            (the learner's forward pass), training (backward and AdamW), publishing (the weights' \
            snapshot). The arithmetic limit is the step's matrix FLOPs over the sgemm rate measured at the \
            start. Ratios to TRL's GRPOTrainer come from bench/peers/run.sh's results (see --peers). \
            --export-workload DIR writes the workload (model/, tasks.jsonl, workload.json) and stops: \
            bench/peers/run.sh runs TRL on it. See docs/benchmarks.md.
            """)

    @Option(name: .long, help: "Training steps per run; step 1 holds the start-up (default 10).")
    var steps = 10

    @Option(name: .long, help: ArgumentHelp("Actor processes of each run, separated by commas (default 2); several counts add the actor scaling of the synchronous runs.",
                                            valueName: "list"))
    var actors = "2"

    @Option(name: .long, help: ArgumentHelp("learner.max_staleness of each run, separated by commas (default 0,1).", valueName: "list"))
    var staleness = "0,1"

    @Option(name: .long, help: ArgumentHelp("Repeat the whole list of runs this many times, in turn (default 1): each asynchronous run is compared with the synchronous run of its round, and every round's ratio is reported.",
                                            valueName: "n"))
    var rounds = 1

    @Option(name: .customLong("set"), help: ArgumentHelp("A learner override after the workload's, e.g. learner.threads=2 (repeatable).",
                                                         valueName: "section.key=value"))
    var overrides: [String] = []

    @Option(name: .customLong("export-workload"), help: ArgumentHelp("Write the workload into this directory and stop.", valueName: "dir"))
    var exportDirectory: String?

    @Flag(name: .long, help: "JSON lines even on a terminal.")
    var json = false

    @OptionGroup var peerOptions: PeerOptions

    func validate() throws {
        if steps < 3 { throw ValidationError("--steps must be at least 3 (step 1 holds the start-up), got \(steps)") }
        if !(1...20).contains(rounds) { throw ValidationError("--rounds must be in 1 … 20, got \(rounds)") }
        _ = try actorCounts()
        _ = try stalenessValues()
        for o in overrides where !o.contains("=") { throw ValidationError("--set \(o): expected section.key=value") }
        // The export writes model/ and tasks.jsonl: into a new or empty directory, or over an earlier export.
        if let exportDirectory, let entries = try? FileManager.default.contentsOfDirectory(atPath: exportDirectory),
           !entries.isEmpty, !entries.contains("workload.json") {
            throw ValidationError("--export-workload: \(exportDirectory) holds other files (\(entries.sorted().prefix(3).joined(separator: ", "))); give a new or empty directory")
        }
        // Checked now against the workload's settings, not after the model has been exported.
        do {
            let config = try RunConfig.parse(.object([:]), overrides: RLStepBench.Workload().learnerOverrides(directory: "workload") + overrides)
            _ = try config.backwardProducts(portableAllowed: false)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    private func actorCounts() throws -> [Int] {
        guard let values = integerList(actors, in: 1...64) else {
            throw ValidationError("--actors \(actors): expected actor counts (1…64) separated by commas, e.g. 1,2,4")
        }
        return values
    }

    private func stalenessValues() throws -> [Int] {
        guard let values = integerList(staleness, in: 0...1000) else {
            throw ValidationError("--staleness \(staleness): expected values of learner.max_staleness (0…1000) separated by commas, e.g. 0,1")
        }
        return values
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        if let exportDirectory {
            try RLStepBench.Workload().export(to: exportDirectory)
            print("wrote the rl-step workload to \(exportDirectory)")
            return
        }
        let mode: OutputMode = json ? .jsonLines : OutputMode.detect()
        let environmentKernel = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil
        let peers = peerOptions.load()
        var options = RLStepBench.Options(executable: try BenchRuntimeCommand.executablePath())
        options.steps = steps
        options.actorCounts = try actorCounts()
        options.stalenessValues = try stalenessValues()
        options.rounds = rounds
        options.overrides = overrides
        let work = NSTemporaryDirectory() + "troupe-bench-rl-step-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let report = try RLStepBench.run(options, workDirectory: work) { StandardStream.error.write("… \($0)\n") }
        try RLStepOutput(mode: mode, environmentKernel: environmentKernel, peers: peers, maxSpread: peerOptions.maxSpread).print(report)
    }
}

/// The table (or JSON lines) of `troupe bench rl-step`.
private struct RLStepOutput {
    let mode: OutputMode
    let environmentKernel: Bool
    let peers: (results: PeerResults?, problem: String?)
    let maxSpread: Double

    static let peerKey = "rl_step/trl_grpo"

    func print(_ r: RLStepBench.Report) throws {
        let w = r.options.workload
        let kernel = "OpenBLAS kernel \(BLASInfo.coreName) (" + (environmentKernel ? "OPENBLAS_CORETYPE set, the environment's" : "OPENBLAS_CORETYPE unset, the machine's own") + ")"
        let comparisons = r.runs.map {
            PeerComparison.compare(ours: $0.cycles, peers: peers.results, unavailable: peers.problem ?? "no peer results",
                                   key: Self.peerKey, maxSpread: maxSpread)
        }
        let limitTarget = RuntimeTargets.rlStepShareOfLimit(environmentKernel: environmentKernel)
        /// The synchronous run with the same actors (and round), which an asynchronous one is compared with.
        func synchronous(_ run: RLStepBench.Run) -> RLStepBench.Run? { r.synchronousTwin(of: run) }
        /// Each asynchronous setting's speed over synchronous across rounds: the ratios, their median, and
        /// the verdict on "never slower" (every round at the target).
        func speedupSummary(_ s: (actors: Int, staleness: Int, ratios: [Double])) -> (median: Double, atTarget: Int, met: Bool) {
            let atTarget = s.ratios.filter { $0 >= RuntimeTargets.asyncOverSync }.count
            return (BenchStats.median(s.ratios), atTarget, !s.ratios.isEmpty && atTarget == s.ratios.count)
        }
        /// Why this run's targets are not judged (its steps, or its synchronous twin's, too far apart), or nil.
        func noise(_ run: RLStepBench.Run) -> String? {
            var lists = [("this run's steps", run.cycles)]
            if let sync = synchronous(run), run.run.staleness > 0 { lists.append(("the synchronous run's steps", sync.cycles)) }
            return RuntimeTargets.noiseProblem(lists, maxSpread: maxSpread)
        }
        if mode == .jsonLines {
            try JSONOutput.print(["event": "machine", "openblas_kernel": .string(BLASInfo.coreName), "threads": .integer(BLASInfo.threads),
                                  "kernel_setting": environmentKernel ? "environment" : "machine", "sgemm_gflops": .number(r.sgemmGflops),
                                  "sgemm_gflops_before": .number(r.sgemmBeforeGflops), "sgemm_gflops_after": .number(r.sgemmAfterGflops),
                                  "cpus": .integer(ProcessInfo.processInfo.activeProcessorCount),
                                  "decode_kernel": .string(StreamingGEMM.kernel.rawValue)])
            for (run, versus) in zip(r.runs, comparisons) {
                var line: [String: JSONValue] = [
                    "event": "rl_step", "round": .integer(run.round),
                    "shape": .string(w.shape.name), "prompts": .integer(w.prompts), "group_size": .integer(w.groupSize),
                    "max_new_tokens": .integer(w.maxNewTokens), "actors": .integer(run.actors), "steps": .integer(r.options.steps),
                    "sampling_groups_per_s": .number(run.samplingGroupsPerSecond),
                    "max_staleness": .integer(run.run.staleness), "seconds_per_step": .number(run.secondsPerStep),
                    "per_step_s": .array(run.cycles.map(JSONValue.number)), "tokens_per_s": .number(run.tokensPerSecond),
                    "trainer_idle_ratio": .number(run.run.steadyIdleRatio), "groups_produced": .integer(run.run.groupsProduced),
                    "groups_trained": .integer(run.run.groupsTrained), "groups_stale": .integer(run.run.groupsStale),
                    "trained_share": .number(run.trainedShare),
                    "sampling_s": .number(run.split.sampling), "scoring_s": .number(run.split.scoring),
                    "training_s": .number(run.split.training), "publishing_s": .number(run.split.publishing),
                    "limit_s": .number(r.limitSeconds(run)), "share_of_limit": .number(r.shareOfLimit(run)),
                    "share_of_limit_target": .number(limitTarget),
                ]
                line["actors_priority"] = .string(run.actorsSampleAtIdlePriority ? "idle" : "normal")
                line["learner_openblas_thread_timeout"] = run.run.learnerBLASThreadTimeout.map(JSONValue.string) ?? .null
                line["learner_threads"] = .integer(run.run.learnerThreads)
                line["backward_precision"] = .string(run.run.backwardPrecision)
                if let sync = synchronous(run), run.run.staleness > 0 { line["speed_vs_synchronous"] = .number(sync.secondsPerStep / run.secondsPerStep) }
                if let problem = noise(run) { line["targets_not_judged"] = .string(problem) }
                if let problem = r.sgemmProblem(maxSpread: maxSpread) { line["share_of_limit_not_judged"] = .string(problem) }
                switch versus {
                case .ratio(let ratio, let peer): line["vs_trl"] = ["trl_seconds_per_step": .number(peer), "ratio": .number(ratio)]
                case .refused(let reason): line["vs_trl"] = ["refused": .string(reason)]
                }
                try JSONOutput.print(.object(line))
            }
            for speedup in r.speedups {
                let summary = speedupSummary(speedup)
                try JSONOutput.print(["event": "async_vs_sync", "actors": .integer(speedup.actors), "max_staleness": .integer(speedup.staleness),
                                      "ratios": .array(speedup.ratios.map(JSONValue.number)), "median": .number(summary.median),
                                      "rounds_at_target": .integer(summary.atTarget), "target": .number(RuntimeTargets.asyncOverSync),
                                      "met": .bool(summary.met)])
            }
            for point in r.scaling {
                try JSONOutput.print(["event": "actor_scaling", "actors": .integer(point.actors), "sampling_groups_per_s": .number(point.groupsPerSecond),
                                      "efficiency": .number(point.efficiency)])
            }
            return
        }
        Swift.print("\(kernel), \(BLASInfo.threads) threads, sgemm 1024³ " + String(format: "%.1f GFLOP/s before the runs, %.1f after (the limits use the higher)",
                                                                                   r.sgemmBeforeGflops, r.sgemmAfterGflops)
                    + "; the actors' decoding kernel \(StreamingGEMM.kernel.rawValue)")
        let sgemmProblem = r.sgemmProblem(maxSpread: maxSpread)
        if let sgemmProblem { Swift.print("Share of the limit not judged: \(sgemmProblem)") }
        let learner = r.runs.first.map { ", the learner on \($0.run.learnerThreads) OpenBLAS thread\($0.run.learnerThreads == 1 ? "" : "s"), its backward in \($0.run.backwardPrecision)" } ?? ""
        Swift.print("RL step: random \(w.shape.name), \(w.prompts) prompts × \(w.groupSize) samples × \(w.maxNewTokens) new tokens, "
                    + "learner + actors\(learner), medians over steps 2–\(r.options.steps)")
        if let problem = peers.problem { Swift.print("No ratio to TRL: \(problem)") }
        let columns = (r.options.rounds > 1 ? [("round", 5)] : []) + [("actors", 6), ("staleness", 9), ("s/step", 7), ("tok/s", 7), ("idle", 5), ("trained", 9), ("sample s", 8), ("score s", 7),
                       ("train s", 7), ("publ. s", 7), ("limit s", 7), ("of limit", 15), ("vs TRL", 14)]
        Swift.print(columns.map { pad($0.0, $0.1) }.joined(separator: " "))
        Swift.print(columns.map { String(repeating: "-", count: $0.1) }.joined(separator: " "))
        for (run, versus) in zip(r.runs, comparisons) {
            var trl = "no ratio"
            if case .ratio(let ratio, _) = versus { trl = String(format: "%.2f×", ratio) }
            let problem = noise(run)
            func judged(_ met: Bool) -> String { problem != nil ? "not judged" : met ? "met" : "NOT met" }
            let limit = String(format: "%.0f%% ", 100 * r.shareOfLimit(run))
                + (sgemmProblem != nil ? "not judged" : judged(r.shareOfLimit(run) >= limitTarget))
                + String(format: " ≥%.0f%%", 100 * limitTarget)
            let cells = (r.options.rounds > 1 ? [String(run.round)] : []) + [String(run.actors), String(run.run.staleness), String(format: "%.2f", run.secondsPerStep), String(format: "%.0f", run.tokensPerSecond),
                         String(format: "%.0f%%", 100 * run.run.steadyIdleRatio), "\(run.run.groupsTrained)/\(run.run.groupsProduced)",
                         String(format: "%.2f", run.split.sampling), String(format: "%.2f", run.split.scoring),
                         String(format: "%.2f", run.split.training), String(format: "%.2f", run.split.publishing),
                         String(format: "%.2f", r.limitSeconds(run)), limit, trl]
            Swift.print(zip(cells, columns).map { pad($0, $1.1) }.joined(separator: " "))
            if case .refused(let reason) = versus, reason != peers.problem { Swift.print("  no ratio to TRL: \(reason)") }
            if let sync = synchronous(run), run.run.staleness > 0 {
                let speed = sync.secondsPerStep / run.secondsPerStep
                let stale = run.run.staleShare
                let priority = run.actorsSampleAtIdlePriority ? ", actors at idle priority" : ", actors at normal priority"
                Swift.print(String(format: "  max_staleness %d%@: %.2f× synchronous speed (%@ ≥ %.1f×), %.1f%% of produced groups stale (%@ ≤ %.0f%%)",
                                   run.run.staleness, priority, speed, judged(speed >= RuntimeTargets.asyncOverSync), RuntimeTargets.asyncOverSync,
                                   100 * stale, stale <= RuntimeTargets.staleShare ? "met" : "NOT met", 100 * RuntimeTargets.staleShare))
            }
            if let problem { Swift.print("  targets not judged: \(problem)") }
        }
        if r.options.rounds > 1 {
            for speedup in r.speedups {
                let summary = speedupSummary(speedup)
                Swift.print(String(format: "max_staleness %d, %d actors, against synchronous round by round: %@; median %.2f×, at least %.1f× in %d of %d rounds (every round: %@)",
                                   speedup.staleness, speedup.actors, speedup.ratios.map { String(format: "%.2f×", $0) }.joined(separator: ", "),
                                   summary.median, RuntimeTargets.asyncOverSync, summary.atTarget, speedup.ratios.count, summary.met ? "met" : "NOT met"))
            }
        }
        if !r.scaling.isEmpty {
            Swift.print("Actor scaling (synchronous runs; groups sampled per second on the actors' own clocks):")
            for point in r.scaling {
                Swift.print(String(format: "  %2d actors: %.2f groups/s, %.0f%% of linear", point.actors, point.groupsPerSecond, 100 * point.efficiency))
            }
        }
        fflush(stdout)
    }
}
