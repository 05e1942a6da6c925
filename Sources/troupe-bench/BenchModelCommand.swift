import ArgumentParser
import Foundation
import TroupeBench
import TroupeCLI
import TroupeJSON
import TroupeModel
import TroupeRuntime
import TroupeTensor

/// `troupe bench model`: training and sampling throughput of the policy model on the standard shapes,
/// against the machine's sgemm rate measured in the same run and the peer systems' figures.
struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Training and sampling tokens/s on the standard shapes, against sgemm peak and the peers.",
        discussion: """
            Per shape: training tokens/s (batch 8 × 256 tokens, forward + backward + AdamW) and its share \
            of the sgemm GFLOP/s measured at the start of the run; sampling tokens/s for batch 8 and \
            batch 1 (16-token prompts, 128 new tokens). Each figure is the median of --repeats runs after \
            one warm-up run. Ratios compare with the peers (PyTorch training, Hugging Face generate at \
            batch 8, llama.cpp at batch 1) measured by bench/peers/run.sh on this machine in the same boot \
            (--peers; no ratio from another machine, an older file than --peers-max-age, or repeats \
            spread beyond --max-spread, and the reason is printed instead) and are marked against \
            the targets: training ≥ 1.0× PyTorch with the environment's OpenBLAS kernel \
            (OPENBLAS_CORETYPE set), ≥ 1.5× with the machine's own (unset); batch 8 ≥ 4× HF; batch 1 \
            ≥ 0.8× llama.cpp. With --bf16, also training with the backward's products on bfloat16 \
            operands (learner.backward_precision bf16): its tokens/s, its speed over fp32 training in the \
            same run, and its gradient's relative error against fp32's on the same batch. A table on a \
            terminal, JSON lines otherwise. See docs/benchmarks.md.
            """)

    @Option(name: .long, help: ArgumentHelp("Shapes, separated by commas (default: all; with --quick: tiny,small).",
                                            valueName: "names"))
    var shapes: String?

    @Option(name: .long, help: "Measured runs per figure, after one warm-up (default 3; with --quick 1).")
    var repeats: Int?

    @Flag(name: .long, help: "One measured run per figure, and only tiny and small unless --shapes is given.")
    var quick = false

    @Option(name: .long, help: ArgumentHelp("OpenBLAS threads (default: OpenBLAS's choice).", valueName: "n"))
    var threads: Int?

    @Flag(name: .long, help: "Also train with the bf16 backward (needs AVX-512 BF16) and compare it with fp32.")
    var bf16 = false

    @Flag(name: .long, help: "JSON lines even on a terminal.")
    var json = false

    @OptionGroup var peerOptions: PeerOptions

    func validate() throws {
        _ = try selectedShapes()
        if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if bf16 && !BF16GEMM.hardwareAvailable { throw ValidationError("--bf16: this CPU has no AVX-512 BF16 (VDPBF16PS)") }
    }

    private func selectedShapes() throws -> [ModelShape] {
        let names = shapes.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            ?? (quick ? ["tiny", "small"] : ModelShape.builtIn.map(\.name))
        guard !names.isEmpty else { throw ValidationError("--shapes is empty") }
        return try names.map { name in
            guard let shape = ModelShape.builtIn.first(where: { $0.name == name }) else {
                throw ValidationError("unknown shape \"\(name)\"; known: \(ModelShape.builtIn.map(\.name).joined(separator: ", "))")
            }
            return shape
        }
    }

    func run() throws {
        if let threads { BLASInfo.setThreads(threads) }
        let runs = repeats ?? (quick ? 1 : 3)
        let mode: OutputMode = json ? .jsonLines : OutputMode.detect()
        let environment = ProcessInfo.processInfo.environment
        let pinnedKernel = environment["OPENBLAS_CORETYPE"]
        let sgemm = ModelBenchmark.sgemmRate(n: 1024, repeats: max(runs, 3))
        let bf16Rate = bf16 ? ModelBenchmark.bf16Rate(n: 1024, repeats: max(runs, 3)) : nil
        let machine: JSONValue = [
            "event": "machine", "openblas_kernel": .string(BLASInfo.coreName), "threads": .integer(BLASInfo.threads),
            "sgemm_gflops": .number(sgemm), "openblas_coretype": pinnedKernel.map(JSONValue.string) ?? .null,
            "openblas_l2_size": environment["OPENBLAS_L2_SIZE"].map(JSONValue.string) ?? .null, "repeats": .integer(runs),
            "kernel_setting": pinnedKernel == nil ? "machine" : "environment",
            "bf16_gflops": bf16Rate.map(JSONValue.number) ?? .null, "decode_kernel": .string(StreamingGEMM.kernel.rawValue),
        ]
        let table = BenchTable(mode: mode)
        try table.machine(machine, text: "OpenBLAS kernel \(BLASInfo.coreName) ("
            + (pinnedKernel.map { "OPENBLAS_CORETYPE=\($0), the environment's" } ?? "OPENBLAS_CORETYPE unset, the machine's own")
            + "), \(BLASInfo.threads) threads, sgemm 1024³ \(String(format: "%.1f", sgemm)) GFLOP/s"
            + (bf16Rate.map { String(format: ", bf16 1024³ %.1f GFLOP/s (%.2f×)", $0, $0 / sgemm) } ?? "")
            + ", decoding kernel \(StreamingGEMM.kernel.rawValue), medians of \(runs) runs")

        let peers = peerOptions.load()
        if let problem = peers.problem { StandardStream.error.write("troupe bench model: no peer ratios: \(problem)\n") }
        for shape in try selectedShapes() {
            let training = try ModelBenchmark.training(shape, batch: 8, length: 256, steps: runs)
            let gflops = training.flopsPerStep / ModelBenchmark.median(training.secondsPerStep) / 1e9
            let batch8Rates = try ModelBenchmark.sampling(shape, batch: 8, promptLength: 16, newTokens: 128, repeats: runs)
            let batch1Rates = try ModelBenchmark.sampling(shape, batch: 1, promptLength: 16, newTokens: 128, repeats: runs)
            let batch8 = BenchStats.median(batch8Rates), batch1 = BenchStats.median(batch1Rates)
            let figures: [(ModelBenchmark.Measure, [Double])] = [
                (.training, training.rates), (.samplingBatch8, batch8Rates), (.samplingBatch1, batch1Rates),
            ]
            let comparisons = figures.map {
                ModelBenchmark.compare($0.0, shape: shape.name, tokensPerSecond: $0.1, peers: peers, maxSpread: peerOptions.maxSpread,
                                       environmentKernel: pinnedKernel != nil)
            }
            var line: [String: JSONValue] = [
                "event": "shape", "shape": .string(shape.name), "parameters": .integer(ParameterLayout(config: shape.config).totalCount),
                "training_tokens_per_s": .number(training.tokensPerSecond), "training_gflops": .number(gflops),
                "training_sgemm_fraction": .number(gflops / sgemm),
                "training_seconds_per_step": .array(training.secondsPerStep.map(JSONValue.number)),
                "sampling_batch8_tokens_per_s": .number(batch8), "sampling_batch1_tokens_per_s": .number(batch1),
            ]
            var versus: [String: JSONValue] = [:]
            for c in comparisons {
                switch c.result {
                case .ratio(let ratio, let peer):
                    versus[c.measure.rawValue] = ["peer": .string(c.measure.peerName), "peer_tokens_per_s": .number(peer),
                                                  "ratio": .number(ratio), "target": .number(c.target), "met": .bool(ratio >= c.target)]
                case .refused(let reason):
                    versus[c.measure.rawValue] = ["peer": .string(c.measure.peerName), "refused": .string(reason), "target": .number(c.target)]
                }
            }
            line["versus_peers"] = .object(versus)
            var bf16Summary: String?
            if bf16 {
                let rounded = try ModelBenchmark.training(shape, batch: 8, length: 256, steps: runs, backwardProducts: .bf16(.hardware))
                let error = try ModelBenchmark.bf16GradientError(shape, batch: 8, length: 256)
                let speedup = rounded.tokensPerSecond / training.tokensPerSecond
                line["bf16_backward"] = [
                    "training_tokens_per_s": .number(rounded.tokensPerSecond), "speedup_over_fp32": .number(speedup),
                    "training_seconds_per_step": .array(rounded.secondsPerStep.map(JSONValue.number)),
                    "gradient_relative_error": .number(error),
                ]
                bf16Summary = String(format: "  bf16 backward: %.0f train tok/s, %.2f× fp32; gradient error %.2e (‖g_bf16 − g_fp32‖ / ‖g_fp32‖)",
                                     rounded.tokensPerSecond, speedup, error)
            }
            try table.row(.object(line), shape: shape.name, training: training.tokensPerSecond, fraction: gflops / sgemm,
                          batch8: batch8, batch1: batch1, comparisons: comparisons, fileProblem: peers.problem, bf16: bf16Summary)
        }
    }
}

/// The terminal table (or JSON lines) of `troupe bench model`, printed a row at a time as shapes finish.
private struct BenchTable {
    let mode: OutputMode

    private static let columns = [("shape", 14), ("train tok/s", 12), ("% sgemm", 8), ("vs PyTorch", 20),
                                  ("b8 tok/s", 10), ("vs HF generate", 20), ("b1 tok/s", 10), ("vs llama.cpp", 20)]

    func machine(_ fields: JSONValue, text: String) throws {
        if mode == .jsonLines { return try JSONOutput.print(fields) }
        print(text)
        print(Self.columns.map { pad($0.0, $0.1) }.joined(separator: " "))
        print(Self.columns.map { String(repeating: "-", count: $0.1) }.joined(separator: " "))
    }

    func row(_ fields: JSONValue, shape: String, training: Double, fraction: Double, batch8: Double, batch1: Double,
             comparisons: [ModelBenchmark.Comparison], fileProblem: String?, bf16: String?) throws {
        if mode == .jsonLines { return try JSONOutput.print(fields) }
        func versus(_ c: ModelBenchmark.Comparison) -> String {
            guard case .ratio(let ratio, _) = c.result else { return "no ratio" }
            return String(format: "%.2f× ", ratio) + (ratio >= c.target ? "met" : "NOT met") + String(format: " (≥%.1f)", c.target)
        }
        let cells = [shape, String(format: "%.0f", training), String(format: "%.1f%%", 100 * fraction), versus(comparisons[0]),
                     String(format: "%.0f", batch8), versus(comparisons[1]), String(format: "%.0f", batch1), versus(comparisons[2])]
        print(zip(cells, Self.columns).map { pad($0, $1.1) }.joined(separator: " "))
        if let bf16 { print(bf16) }
        // A figure-level refusal (missing or noisy); a file-level one was said once above the table.
        for c in comparisons {
            if case .refused(let reason) = c.result, reason != fileProblem { print("  no ratio vs \(c.measure.peerName): \(reason)") }
        }
        fflush(stdout)
    }
}
