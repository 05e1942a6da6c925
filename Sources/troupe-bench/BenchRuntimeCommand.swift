import ArgumentParser
import Foundation
import TroupeJSON
import TroupeCLI
import TroupeBench
import TroupeLearner
import TroupeModel
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// `troupe bench runtime`: group ingestion at the learner, weight distribution and end-to-end step
/// time, each against a baseline measured in the same run (docs/benchmarks.md).
struct BenchRuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Group ingestion, weight distribution and step time of the learner/actor runtime, against raw ZeroMQ.",
        discussion: """
            ingestion: 4 simulated actors stream groups of 16 samples × 8–128 tokens under credit into the \
            learner's path (decode, validate, LearnerCore.submit, Ack), with and without the fsynced run-log \
            append, against raw libzmq DEALER→ROUTER with the same frames. weights: the small and \
            smollm2-135m shapes to 1, 2 and 4 fetching actors that verify every tensor hash, through shared \
            memory, chunks from the learner and chunks relayed along a chain of actors, against one raw \
            ZeroMQ transfer of the same bytes. end-to-end: a learner and 2 actors \
            (child processes of this binary) train the tiny model with max_staleness 0 and 1; each step \
            splits into wait for batch, train and publish, and the steady-state idle ratio (steps 2 on) \
            is judged on the max_staleness 1 run. Figures are medians of --repeats trials; everything runs on loopback with \
            random ports, or with --link-rate (ingestion and weights) with the learner and every actor on hosts of their \
            own, joined by emulated links of that rate (network namespaces, tc tbf; root). Targets (docs/benchmarks.md): ingestion overhead ≤ 10% over raw libzmq; weights to 4 \
            actors ≤ 2× one raw transfer; learner idle ratio ≤ 10% when actors keep up. A table on a \
            terminal, JSON lines otherwise. See docs/benchmarks.md.
            """)

    @Flag(name: .long, help: "Fewer groups and repeats, and no smollm2-135m shape.")
    var quick = false

    @Flag(name: .long, help: "JSON lines even on a terminal.")
    var json = false

    @Option(name: .long, help: "Trials per figure (default 5 for ingestion and 3 for weights; with --quick 2).")
    var repeats: Int?

    @Option(name: .long, help: ArgumentHelp("Parts to run, separated by commas: ingestion, weights, e2e (default: all).",
                                            valueName: "names"))
    var parts: String?

    @Option(name: .long, help: ArgumentHelp("Model directory for the end-to-end run.", valueName: "dir"))
    var model = "Tests/Fixtures/llama-tiny"

    @Option(name: .long, help: "Training steps of each end-to-end run (default 24; with --quick 10).")
    var steps: Int?

    @Option(name: [.customLong("e2e-staleness")], help: ArgumentHelp("learner.max_staleness of each end-to-end run, separated by commas (default 0,1).",
                                                                     valueName: "list"))
    var endToEndStaleness: String?

    @Option(name: [.customLong("e2e-set")], help: ArgumentHelp("A learner override for the end-to-end runs, after the built-in ones (repeatable).",
                                                               valueName: "section.key=value"))
    var endToEndOverrides: [String] = []

    @Option(name: .long, help: ArgumentHelp("Ingestion and weights over emulated links of this rate between hosts (network namespaces and tc tbf; needs root), e.g. 1gbit.",
                                            valueName: "rate"))
    var linkRate: String?

    @Flag(name: .long, help: "Weights: encrypt and authenticate the learner's sockets and the relays with CURVE, as troupe learner --key does (the raw baselines stay plaintext).")
    var curve = false

    @Option(name: .long, help: ArgumentHelp("Ingestion: groups each simulated actor may have unacknowledged, the learner's credit (default learner.credit's, \(RunConfig().learner.credit); within its range).",
                                            valueName: "groups"))
    var credit: Int?

    static let partNames = ["ingestion", "weights", "e2e"]

    func validate() throws {
        if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        if let credit {
            // learner.credit's own range and message, declared once with the setting.
            do { _ = try RunConfig.parse(.object([:]), overrides: ["learner.credit=\(credit)"]) } catch let e as ConfigError {
                throw ValidationError("--credit \(credit): \(e.key): \(e.problem)")
            }
        }
        if let steps, steps < 3 { throw ValidationError("--steps must be at least 3 (step 1 holds the start-up), got \(steps)") }
        if let linkRate, !EmulatedLinks.isValidRate(linkRate) {
            throw ValidationError("--link-rate \(linkRate): expected a tc rate such as 1gbit or 500mbit")
        }
        if linkRate != nil && geteuid() != 0 { throw ValidationError("--link-rate needs root (it creates network namespaces)") }
        for o in endToEndOverrides where !o.contains("=") { throw ValidationError("--e2e-set \(o): expected section.key=value") }
        // Checked now, with the built-in ones, not after the parts before the end-to-end runs.
        do {
            let config = try RunConfig.parse(.object([:]), overrides: endToEndSettings(EndToEndBench.Options(executable: "", modelPath: model).overrides))
            _ = try config.backwardProducts(portableAllowed: false)
        } catch {
            throw ValidationError("--e2e-set: \(error)")
        }
        _ = try stalenessValues()
        _ = try selectedParts()
        if try selectedParts().contains("e2e") && !FileManager.default.fileExists(atPath: model + "/config.json") {
            throw ValidationError("--model: \(model) is not a model directory (no config.json); run from the repository root or pass --model")
        }
    }

    private func stalenessValues() throws -> [Int] {
        guard let list = endToEndStaleness else { return [0, 1] }
        guard let values = integerList(list, in: 0...1000) else {
            throw ValidationError("--e2e-staleness \(list): expected values of learner.max_staleness (0…1000) separated by commas, e.g. 0,1,2,4")
        }
        return values
    }

    private func selectedParts() throws -> [String] {
        guard let parts else { return Self.partNames }
        let names = parts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty else { throw ValidationError("--parts is empty") }
        for n in names where !Self.partNames.contains(n) {
            throw ValidationError("unknown part \"\(n)\"; known: \(Self.partNames.joined(separator: ", "))")
        }
        return names
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let out = RuntimeBenchOutput(mode: json ? .jsonLines : OutputMode.detect())
        let selected = try selectedParts()
        let progress: (String) -> Void = { line in StandardStream.error.write("… \(line)\n") }
        let zmq = zmqVersion
        try out.machine([
            "event": "machine", "openblas_kernel": .string(BLASInfo.coreName), "threads": .integer(BLASInfo.threads),
            "cpus": .integer(ProcessInfo.processInfo.activeProcessorCount), "zmq_version": "\(zmq.major).\(zmq.minor).\(zmq.patch)",
            "quick": .bool(quick), "date": .string(ISO8601DateFormatter().string(from: Date())),
        ])
        var verdicts: [Verdict] = []

        if selected.contains("ingestion") {
            var o = IngestionBench.Options()
            o.repeats = repeats ?? (quick ? 2 : 5)
            if quick { o.groupsPerActor = 1500; o.fsyncGroupsPerActor = 500 }
            o.linkRate = linkRate
            if let credit { o.credit = credit }
            let report = try IngestionBench.run(o, progress: progress)
            verdicts += try out.ingestion(report)
        }
        if selected.contains("weights") {
            var o = WeightDistributionBench.Options()
            o.repeats = repeats ?? (quick ? 2 : 3)
            o.linkRate = linkRate
            o.curve = curve
            let names = quick ? ["small"] : ["small", "smollm2-135m"]
            for name in names {
                guard let shape = ModelShape.builtIn.first(where: { $0.name == name }) else { continue }
                let report = try WeightDistributionBench.run(shape: shape, options: o, progress: progress)
                verdicts += try out.weights(report)
            }
        }
        if selected.contains("e2e") {
            var o = EndToEndBench.Options(executable: try Self.executablePath(), modelPath: model)
            o.steps = steps ?? (quick ? 10 : 24)
            o.stalenessValues = try stalenessValues()
            o.overrides = endToEndSettings(o.overrides)
            let report = try EndToEndBench.run(o, progress: progress)
            verdicts += try out.endToEnd(report)
        }
        try out.targets(verdicts)
    }

    /// `builtIn` with the `--e2e-set` overrides: later keys replace the built-in ones, so the list shows each key once.
    private func endToEndSettings(_ builtIn: [String]) -> [String] {
        var settings = builtIn
        for o2 in endToEndOverrides {
            let key = o2.prefix(while: { $0 != "=" })
            settings.removeAll { $0.prefix(while: { $0 != "=" }) == key }
            settings.append(o2)
        }
        return settings
    }

    /// The `troupe` next to this binary, to start the learner and actors from.
    static func executablePath() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        var me = CommandLine.arguments[0]
        if n > 0 { me = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        if !me.hasPrefix("/") { me = FileManager.default.currentDirectoryPath + "/" + me }
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("troupe").path
    }
}

/// A benchmark target and whether it was met (a `target` JSON line).
private struct Verdict: Encodable {
    var event = "target"
    let name: String
    let label: String
    let value: Double
    let target: Double
    let met: Bool
    /// Why no verdict was given (the trials too far apart); absent when judged.
    var refused: String? = nil
}

/// The tables (or JSON lines) of `troupe bench runtime`, a section at a time as parts finish.
private struct RuntimeBenchOutput {
    let mode: OutputMode

    func machine(_ fields: JSONValue) throws {
        if mode == .jsonLines { return try JSONOutput.print(fields) }
        func text(_ key: String) -> String { fields[key].map { $0.string ?? $0.description } ?? "" }
        print("OpenBLAS kernel \(text("openblas_kernel")), \(text("threads")) threads, \(text("cpus")) CPUs, "
              + "libzmq \(text("zmq_version")), loopback tcp\(fields["quick"]?.bool == true ? " (--quick)" : "")")
    }

    func ingestion(_ r: IngestionBench.Report) throws -> [Verdict] {
        let o = r.options
        let overhead = r.overheadPercent(.troupe), overheadFsync = r.overheadPercent(.troupeFsync)
        // A credit other than the learner's default is another configuration: the verdicts' names and labels say so.
        let defaultCredit = IngestionBench.Options().credit
        let over = (o.linkRate.map { " over \($0) links" } ?? "") + (o.credit == defaultCredit ? "" : " (credit \(o.credit), not the default \(defaultCredit))")
        let suffix = (o.linkRate.map { "_\($0)" } ?? "") + (o.credit == defaultCredit ? "" : "_credit\(o.credit)")
        let verdicts: [Verdict] = [
            verdict("ingestion_overhead_percent\(suffix)", "ingestion overhead\(over), learner path without the run log", overhead,
                    RuntimeTargets.ingestionOverheadPercent, met: overhead <= RuntimeTargets.ingestionOverheadPercent, refused: r.noiseProblem(.troupe)),
            verdict("ingestion_overhead_percent_fsync\(suffix)", "ingestion overhead\(over), learner path with the fsynced run log", overheadFsync,
                    RuntimeTargets.ingestionOverheadPercent, met: overheadFsync <= RuntimeTargets.ingestionOverheadPercent,
                    refused: r.noiseProblem(.troupeFsync)),
        ]
        if mode == .jsonLines {
            for m in IngestionBench.Mode.allCases {
                let trials = r.trials.filter { $0.mode == m }
                var line: [String: JSONValue] = [
                    "event": "ingestion", "mode": .string(m.rawValue), "actors": .integer(o.actors), "credit": .integer(o.credit),
                    "groups_per_trial": .integer(trials.first?.groups ?? 0), "samples_per_group": .integer(o.samplesPerGroup),
                    "tokens_per_sample": [.integer(o.tokensPerSample.lowerBound), .integer(o.tokensPerSample.upperBound)],
                    "mean_group_bytes": .number(r.meanGroupBytes), "frames_per_group": .integer(r.frameCount),
                    "groups_per_s": .number(r.medianGroupsPerSecond(m)), "mb_per_s": .number(r.medianMegabytesPerSecond(m)),
                    "trials_groups_per_s": .array(trials.map { .number($0.groupsPerSecond) }), "links": .string(o.linkRate ?? "loopback"),
                    "cpu_us_per_group": .number(r.medianCPUMicrosecondsPerGroup(m)), "cpu_busy_percent": .number(r.medianCPUBusyPercent(m)),
                    "trials_cpu_us_per_group": .array(trials.map { .number($0.cpuMicrosecondsPerGroup) }),
                ]
                if m != .raw {
                    line["overhead_percent_vs_raw"] = .number(r.overheadPercent(m))
                    line["round_trip_ms_p50"] = .number(r.roundTrip(m, quantile: 0.5) * 1000)
                    line["round_trip_ms_p90"] = .number(r.roundTrip(m, quantile: 0.9) * 1000)
                }
                try JSONOutput.print(.object(line))
            }
            try JSONOutput.print(["event": "ingestion_stages", "raw_us_per_group": .number(1e6 / r.medianGroupsPerSecond(.raw)),
                                  "stages": .array(r.stages.map { ["stage": .string($0.name), "us_per_group": .number($0.microsecondsPerGroup)] })])
            return verdicts
        }
        print("")
        print("Ingestion: \(o.actors) actors, credit \(o.credit), groups of \(o.samplesPerGroup) samples × "
              + "\(o.tokensPerSample.lowerBound)–\(o.tokensPerSample.upperBound) tokens "
              + String(format: "(%.1f KB, %d frames)", r.meanGroupBytes / 1000, r.frameCount)
              + ", medians of \(o.repeats)" + (o.linkRate.map { ", every actor on its own emulated host, \($0) links" } ?? ", loopback"))
        let columns = [("path", 34), ("groups/s", 10), ("MB/s", 8), ("round trip p50/p90", 20), ("CPU µs/group (busy)", 20), ("vs raw", 34)]
        header(columns)
        let labels: [IngestionBench.Mode: String] = [.raw: "raw libzmq (no replies)", .rawCredit: "raw libzmq + replies under credit",
                                                     .troupe: "learner path", .troupeFsync: "learner path + fsynced run log"]
        for m in IngestionBench.Mode.allCases {
            var versus = "—"
            if m != .raw {
                let p = r.overheadPercent(m)
                versus = String(format: "%+.1f%% time/group", p)
                if m == .troupe || m == .troupeFsync {
                    versus += (p <= RuntimeTargets.ingestionOverheadPercent ? " met" : " NOT met")
                        + String(format: " (≤%.0f%%)", RuntimeTargets.ingestionOverheadPercent)
                }
            }
            let roundTrip = m == .raw ? "—" : String(format: "%.2f / %.2f ms", r.roundTrip(m, quantile: 0.5) * 1000, r.roundTrip(m, quantile: 0.9) * 1000)
            let cpu = String(format: "%.0f (%.0f%%)", r.medianCPUMicrosecondsPerGroup(m), r.medianCPUBusyPercent(m))
            row([labels[m]!, String(format: "%.0f", r.medianGroupsPerSecond(m)), String(format: "%.1f", r.medianMegabytesPerSecond(m)), roundTrip, cpu,
                 versus], columns)
        }
        print(String(format: "Where the learner's time goes (one thread, no sockets; raw libzmq takes %.1f µs per group):",
                     1e6 / r.medianGroupsPerSecond(.raw)))
        for stage in r.stages { print(String(format: "  %8.1f µs/group  %@", stage.microsecondsPerGroup, stage.name)) }
        return verdicts
    }

    func weights(_ r: WeightDistributionBench.Report) throws -> [Verdict] {
        var verdicts: [Verdict] = []
        let over = r.linkRate.map { " over \($0) links" } ?? ""
        let labels: [WeightDistributionBench.Path: String] = [.sharedMemory: "actors on the learner's host (shared memory)",
                                                               .chunks: "remote actors (chunks from the learner)\(over)",
                                                               .relay: "remote actors (chunks relayed by actors)\(over)"]
        for path in WeightDistributionBench.Path.allCases where r.verifiedSeconds[path]?[4] != nil {
            let ratio = r.ratio(path, clients: 4)
            let suffix = r.linkRate.map { "_\($0)" } ?? ""
            let name = path == .sharedMemory ? "weights_to_4_actors_ratio_\(r.shape)" : "weights_to_4_remote_actors_\(path.rawValue)_ratio_\(r.shape)\(suffix)"
            verdicts.append(verdict(name, "weights of \(r.shape) to 4 \(labels[path]!) / one raw transfer",
                                    ratio, RuntimeTargets.weightsToFourActorsRatio, met: ratio <= RuntimeTargets.weightsToFourActorsRatio,
                                    refused: r.noiseProblem(path)))
        }
        if mode == .jsonLines {
            func numbers(_ values: [Double]) -> JSONValue { .array(values.map(JSONValue.number)) }
            var line: [String: JSONValue] = [
                "event": "weights", "shape": .string(r.shape), "parameters": .integer(r.parameters), "bytes": .integer(r.bytes),
                "chunk_bytes": .integer(r.chunkBytes), "curve": .bool(r.curve), "window": .integer(r.window),
                "snapshot_make_s": .number(ModelBenchmark.median(r.snapshotSeconds)), "raw_transfer_s": .number(r.rawMedian),
                "raw_message_s": .number(ModelBenchmark.median(r.rawSeconds)), "raw_stream_s": .number(ModelBenchmark.median(r.rawStreamSeconds)),
                "raw_message_trials_s": numbers(r.rawSeconds), "raw_stream_trials_s": numbers(r.rawStreamSeconds),
                "links": .string(r.linkRate ?? "loopback"),
            ]
            if let problem = r.sharedMemoryProblem { line["shared_memory_problem"] = .string(problem) }
            for path in WeightDistributionBench.Path.allCases {
                guard let byCount = r.verifiedSeconds[path] else { continue }
                var per: [String: JSONValue] = [:]
                for n in byCount.keys.sorted() {
                    per[String(n)] = ["verified_s": .number(r.medianSeconds(path, clients: n)),
                                      "received_s": .number(r.medianReceivedSeconds(path, clients: n)),
                                      "ratio_to_raw": .number(r.ratio(path, clients: n)), "trials_verified_s": numbers(byCount[n] ?? [])]
                }
                line[path.rawValue] = .object(per)
            }
            try JSONOutput.print(.object(line))
            return verdicts
        }
        print("")
        print(String(format: "Weights %@: %.1f MB in %d KiB chunks, window %d; snapshot build %.3f s; medians of %d",
                     r.shape, Double(r.bytes) / 1e6, r.chunkBytes / 1024, r.window, ModelBenchmark.median(r.snapshotSeconds),
                     r.rawSeconds.count))
        if let problem = r.sharedMemoryProblem { print("shared memory not measured: \(problem)") }
        print((r.linkRate.map { "every actor on its own emulated host, \($0) links up and down" } ?? "loopback, all on this host")
              + (r.curve ? "; learner and relays CURVE-encrypted" : ""))
        let columns = [("to", 40), ("seconds", 9), ("received", 9), ("× raw", 7), ("target", 22)]
        header(columns)
        let message = ModelBenchmark.median(r.rawSeconds), stream = ModelBenchmark.median(r.rawStreamSeconds)
        row(["raw: one message", String(format: "%.3f", message), "", String(format: "%.2f", message / r.rawMedian), ""], columns)
        row(["raw: chunk stream", String(format: "%.3f", stream), "", String(format: "%.2f", stream / r.rawMedian), ""], columns)
        for path in WeightDistributionBench.Path.allCases {
            guard let byCount = r.verifiedSeconds[path] else { continue }
            for n in byCount.keys.sorted() {
                let ratioN = r.ratio(path, clients: n)
                let target = n == 4 ? (ratioN <= RuntimeTargets.weightsToFourActorsRatio ? "met" : "NOT met")
                    + String(format: " (≤%.0f×)", RuntimeTargets.weightsToFourActorsRatio) : ""
                let how = [WeightDistributionBench.Path.sharedMemory: "shared memory", .chunks: "chunks from the learner", .relay: "relayed chain"][path]!
                row(["\(n) actor\(n == 1 ? "" : "s"), \(how)",
                     String(format: "%.3f", r.medianSeconds(path, clients: n)),
                     String(format: "%.3f", r.medianReceivedSeconds(path, clients: n)), String(format: "%.2f", ratioN), target], columns)
            }
        }
        return verdicts
    }

    func endToEnd(_ r: EndToEndBench.Report) throws -> [Verdict] {
        // The target applies when actors keep up: judged on the most asynchronous run.
        var verdicts: [Verdict] = []
        if let run = r.runs.max(by: { $0.staleness < $1.staleness }) {
            verdicts.append(verdict("learner_idle_ratio", "learner idle ratio (steady state, max_staleness \(run.staleness))",
                                    run.steadyIdleRatio, RuntimeTargets.learnerIdleRatio, met: run.steadyIdleRatio <= RuntimeTargets.learnerIdleRatio))
        }
        for run in r.runs where run.staleness > 0 {
            verdicts.append(verdict("stale_share_\(run.staleness)", "groups discarded as stale (max_staleness \(run.staleness))",
                                    run.staleShare, RuntimeTargets.staleShare, met: run.staleShare <= RuntimeTargets.staleShare))
        }
        if mode == .jsonLines {
            for run in r.runs {
                try JSONOutput.print([
                    "event": "end_to_end", "max_staleness": .integer(run.staleness), "steps": .integer(r.steps), "actors": .integer(r.actors),
                    "overrides": .array(r.overrides.map(JSONValue.string)),
                    "median_cycle_s": .number(run.medianCycle), "median_wait_for_batch_s": .number(run.medianWait),
                    "median_train_s": .number(run.medianTrain), "publish_snapshot_s": .number(run.publishSeconds),
                    "steady_idle_ratio": .number(run.steadyIdleRatio), "learner_idle_ratio_whole_run": .number(run.learnerIdleRatio),
                    "wall_s": .number(run.wallSeconds), "weight_sync_ms_median": .number(ModelBenchmark.median(run.weightSyncMilliseconds)),
                    "weight_syncs": .integer(run.weightSyncMilliseconds.count),
                    "actor_idle_ratios": .object(run.actorIdleRatios.mapValues(JSONValue.number)),
                    "accounting_identity_holds": .bool(run.accountingHolds),
                    "groups_produced": .integer(run.groupsProduced), "groups_stale": .integer(run.groupsStale),
                    "stale_share": .number(run.staleShare),
                    "per_step": .array(run.steps.map { ["step": .integer($0.step), "cycle_s": .number($0.cycleSeconds),
                                                        "train_step_s": .number($0.trainStepSeconds)] }),
                ])
            }
            return verdicts
        }
        print("")
        print("End-to-end: learner + \(r.actors) actors (child processes), \(r.steps) steps, \(r.overrides.joined(separator: " ")); "
              + "medians over steps 2–\(r.steps)")
        print("  wait = step − time/train_step (waiting for the batch + bookkeeping between steps); publish = snapshot build; "
              + "sync = an actor's weight fetch; idle = Σ wait / Σ step over steps 2–\(r.steps); idle (run) = the learner's "
              + "trainer/idle_ratio, start-up included")
        let columns = [("max_staleness", 13), ("step s", 8), ("wait s", 8), ("train s", 8), ("publish s", 9), ("sync ms", 8),
                       ("idle", 7), ("idle (run)", 10), ("stale", 11), ("actors idle", 12), ("target", 16)]
        header(columns)
        for run in r.runs {
            let actorsIdle = run.actorIdleRatios.keys.sorted().map { String(format: "%.0f%%", 100 * run.actorIdleRatios[$0]!) }.joined(separator: " ")
            let isJudged = run.staleness == r.runs.map(\.staleness).max()
            let target = isJudged ? (run.steadyIdleRatio <= RuntimeTargets.learnerIdleRatio ? "met" : "NOT met")
                + String(format: " (≤%.0f%%)", 100 * RuntimeTargets.learnerIdleRatio) : ""
            row([String(run.staleness), String(format: "%.3f", run.medianCycle), String(format: "%.3f", run.medianWait),
                 String(format: "%.3f", run.medianTrain), String(format: "%.4f", run.publishSeconds),
                 String(format: "%.1f", ModelBenchmark.median(run.weightSyncMilliseconds)),
                 String(format: "%.0f%%", 100 * run.steadyIdleRatio), String(format: "%.0f%%", 100 * run.learnerIdleRatio),
                 "\(run.groupsStale)/\(run.groupsProduced)",
                 actorsIdle.isEmpty ? "—" : actorsIdle, target], columns)
        }
        return verdicts
    }

    func targets(_ verdicts: [Verdict]) throws {
        if mode == .jsonLines {
            for v in verdicts { try JSONOutput.print(try JSONValueEncoder().encode(v)) }
            return
        }
        print("")
        print("Targets (docs/benchmarks.md):")
        for v in verdicts {
            let text = v.name.contains("percent") ? String(format: "%.1f%% (≤ %.0f%%)", v.value, v.target)
                : v.name.contains("idle") ? String(format: "%.1f%% (≤ %.0f%%)", 100 * v.value, 100 * v.target)
                : String(format: "%.2f× (≤ %.0f×)", v.value, v.target)
            if let reason = v.refused {
                print("  not judged \(v.label): \(text), but \(reason)")
            } else {
                print("  \(v.met ? "met    " : "NOT met") \(v.label): \(text)")
            }
        }
    }

    /// A target's verdict; one `refused` (too noisy) is not met, and says why instead.
    private func verdict(_ name: String, _ label: String, _ value: Double, _ target: Double, met: Bool, refused: String? = nil) -> Verdict {
        Verdict(name: name, label: label, value: value, target: target, met: met && value.isFinite && refused == nil, refused: refused)
    }

    private func header(_ columns: [(String, Int)]) {
        print(columns.map { pad($0.0, $0.1) }.joined(separator: " "))
        print(columns.map { String(repeating: "-", count: $0.1) }.joined(separator: " "))
    }

    private func row(_ cells: [String], _ columns: [(String, Int)]) {
        print(zip(cells, columns).map { pad($0, $1.1) }.joined(separator: " "))
        fflush(stdout)
    }
}
