import Foundation
import TroupeJSON
import TroupeModel
import TroupeRuntime
import TroupeTasks
import TroupeTokenizer

/// `troupe bench rl-step`: one GRPO step of TRL's benchmark workload end to end (docs/benchmarks.md,
/// "`troupe bench rl-step`"): a random-weight `small` Llama (vocabulary 4096, 27.8 M parameters), 8 prompts ×
/// 8 samples × 64 new tokens at temperature 1, group-normalised advantages, no KL, AdamW, one
/// optimizer step over all 64 completions. A learner and actors run as processes (EndToEndBench);
/// each step splits into sampling, scoring, training and publishing, and the whole against the
/// step's arithmetic limit (its matrix FLOPs over the sgemm rate measured in the same run).
package enum RLStepBench {
    /// The workload both sides run: the same weights, tokenizer and prompts, which
    /// `troupe bench rl-step --export-workload DIR` writes for the peers' script.
    package struct Workload: Sendable {
        package var shape = ModelShape.named("small")!
        package var seed: UInt64 = 1
        package var prompts = 8
        package var groupSize = 8
        package var maxNewTokens = 64
        package var temperature = 1.0
        package var learningRate = 1e-6
        package var task = "arith:add2"
        /// The learner's OpenBLAS threads (`learner.threads`): every CPU, as the peers use them. While the
        /// learner trains a synchronous step the actors wait, so the cores are its own.
        package var learnerThreads = ProcessInfo.processInfo.activeProcessorCount
        package init() {}

        /// The byte-level BPE merges that make the tokenizer's vocabulary the shape's 4096 ids: pairs
        /// of digits, letters and the space, in order, after the 256 bytes and before two special tokens.
        static let specialTokens = ["<eos>", "<pad>"]
        func merges() -> [(left: [UInt8], right: [UInt8])] {
            let alphabet = Array("0123456789 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
            let count = shape.config.vocabularySize - 256 - Self.specialTokens.count
            var pairs: [(left: [UInt8], right: [UInt8])] = []
            for a in alphabet { for b in alphabet where pairs.count < count { pairs.append(([a], [b])) } }
            return pairs
        }

        /// Writes `model/` (config.json, model.safetensors, tokenizer.json, tokenizer_config.json),
        /// `tasks.jsonl` (the prompts with their answers) and `workload.json` (the settings) into `directory`.
        package func export(to directory: String) throws {
            let modelDirectory = directory + "/model"
            try FileManager.default.createDirectory(atPath: modelDirectory, withIntermediateDirectories: true)
            let tokenizerJSON = ByteLevelBPEFile.document(merges: merges(), specialTokens: Self.specialTokens)
            try tokenizerJSON.serialized(compact: true).write(to: URL(fileURLWithPath: modelDirectory + "/tokenizer.json"))
            let tokenizerConfig: JSONValue = ["tokenizer_class": "PreTrainedTokenizerFast", "eos_token": .string(Self.specialTokens[0]),
                                              "pad_token": .string(Self.specialTokens[1]), "model_max_length": .integer(shape.config.maxPositions)]
            try tokenizerConfig.serialized(compact: false).write(to: URL(fileURLWithPath: modelDirectory + "/tokenizer_config.json"))
            let tokenizer = try loadTokenizer(tokenizerFile: modelDirectory + "/tokenizer.json",
                                              configFile: modelDirectory + "/tokenizer_config.json")
            let config = shape.config.sized(for: tokenizer)
            guard config.vocabularySize == shape.config.vocabularySize else {
                throw RuntimeBenchError("rl-step", "the workload's tokenizer has \(config.vocabularySize) ids, the shape \(shape.config.vocabularySize)")
            }
            try ModelDirectory.save(try LlamaModel.random(config: config, seed: seed), to: modelDirectory)

            let items = try TaskSet.generate(try TaskSpec(parsing: task), split: .train, count: prompts, seed: seed)
            var lines = ""
            var promptTokens: [JSONValue] = []
            for item in items {
                lines += JSONValue.object(["id": .string(item.id), "prompt": .string(item.prompt), "answer": item.answer.map(JSONValue.string) ?? .null])
                    .serializedString(pretty: false) + "\n"
                promptTokens.append(.integer(tokenizer.encode(item.prompt).count))
            }
            try Data(lines.utf8).write(to: URL(fileURLWithPath: directory + "/tasks.jsonl"))
            let settings: JSONValue = [
                "shape": .string(shape.name), "parameters": .integer(ParameterLayout(config: config).totalCount),
                "vocab_size": .integer(config.vocabularySize), "seed": .integer(Int(seed)), "task": .string(task),
                "prompts": .integer(prompts), "group_size": .integer(groupSize), "max_new_tokens": .integer(maxNewTokens),
                "temperature": .number(temperature), "learning_rate": .number(learningRate), "prompt_tokens": .array(promptTokens),
            ]
            try settings.serialized(compact: false).write(to: URL(fileURLWithPath: directory + "/workload.json"))
        }

        /// The learner's settings for this workload exported at `directory`: GRPO's group-normalised
        /// advantage and clipped ratio with the KL term off, one step over every group.
        package func learnerOverrides(directory: String) -> [String] {
            ["task.spec=null", "task.file=\(directory)/tasks.jsonl", "task.count=\(prompts)", "task.label_free=false",
             "sampling.group_size=\(groupSize)", "sampling.max_new_tokens=\(maxNewTokens)", "sampling.temperature=\(temperature)",
             "learner.batch_groups=\(prompts)", "learner.threads=\(learnerThreads)", "optimizer.learning_rate=\(learningRate)",
             "algorithm.preset=grpo", "algorithm.kl.coefficient=0", "algorithm.sampling.samples_per_prompt=\(groupSize)"]
        }

        /// Matrix FLOPs of one step: training (forward + backward) and sampling (a forward per token)
        /// over `samples` sequences of `sequenceLength` tokens.
        func flops(samples: Int, sequenceLength: Double) -> (training: Double, sampling: Double) {
            let length = max(1, Int(sequenceLength.rounded()))
            let training = ModelBenchmark.trainingFlops(shape.config, tokens: samples * length, sequenceLength: length)
            return (training, training / 3)
        }
    }

    package struct Options: Sendable {
        package var executable: String
        package var workload = Workload()
        package var steps = 10
        /// Actor processes of each run; several counts give the actor scaling.
        package var actorCounts = [2]
        package var stalenessValues = [0, 1]
        /// Times the whole list of runs is repeated, in turn (A B A B …), so that an asynchronous run is compared
        /// with the synchronous run of its own round and the machine's drift falls on both alike.
        package var rounds = 1
        /// Learner overrides after the workload's (`section.key=value`), e.g. `learner.threads=2`.
        package var overrides: [String] = []
        package var timeoutSeconds = 900.0
        package init(executable: String) { self.executable = executable }
    }

    /// One run's step, split (medians over steps 2…N, seconds).
    package struct Split: Sendable {
        /// The actors' sampling time for one step's groups, spread over the actors sampling at once.
        package let sampling: Double
        /// The learner's forward pass over the batch (log-probs and entropies the loss needs).
        package let scoring: Double
        /// Backward pass and AdamW.
        package let training: Double
        /// Snapshotting the new weights for the actors.
        package let publishing: Double
    }

    package struct Run: Sendable {
        /// 1-based: which repetition of the run list this run belongs to.
        package let round: Int
        package let actors: Int
        package let run: EndToEndBench.Run
        package let split: Split
        /// Groups per second the actors sample together, on their own clocks: actors ÷ sampling seconds per group.
        package var samplingGroupsPerSecond: Double { Double(actors) / run.samplingSecondsPerGroup }
        /// Seconds per step over steps 2…N, each.
        package var cycles: [Double] { run.steady.map(\.cycleSeconds) }
        package var secondsPerStep: Double { run.medianCycle }
        package let tokensPerSecond: Double
        package var trainedShare: Double { run.groupsProduced > 0 ? Double(run.groupsTrained) / Double(run.groupsProduced) : .nan }
        /// The step's matrix FLOPs over the sgemm rate, and that over the measured seconds per step.
        /// The step's matrix FLOPs (training and sampling); its limit is these at the report's sgemm rate.
        package let flops: Double
        /// Whether the actors sampled at idle priority (`actors.sampling_priority`).
        package var actorsSampleAtIdlePriority: Bool { run.actorsSampleAtIdlePriority }
    }

    package struct Report: Sendable {
        package let options: Options
        /// The sgemm rate the limits use: the higher of the two measurements, before and after the runs.
        package var sgemmGflops: Double { max(sgemmBeforeGflops, sgemmAfterGflops) }
        package let sgemmBeforeGflops: Double
        package let sgemmAfterGflops: Double

        /// The run's arithmetic limit: its matrix FLOPs at `sgemmGflops`, and that over its seconds per step.
        package func limitSeconds(_ run: Run) -> Double { run.flops / (sgemmGflops * 1e9) }
        package func shareOfLimit(_ run: Run) -> Double { limitSeconds(run) / run.secondsPerStep }

        /// Why the step's share of its limit gets no verdict: the two sgemm measurements disagree by more
        /// than `maxSpread` of the higher, so the machine's speed moved under the runs; or nil.
        package func sgemmProblem(maxSpread: Double) -> String? {
            let change = abs(sgemmBeforeGflops - sgemmAfterGflops) / sgemmGflops
            guard !(change <= maxSpread) else { return nil }
            return String(format: "sgemm measured %.1f GFLOP/s before the runs and %.1f after (%.0f%% apart, beyond the %.0f%% bound): the limit is not known well enough to judge",
                          sgemmBeforeGflops, sgemmAfterGflops, 100 * change, 100 * maxSpread)
        }
        package let runs: [Run]

        /// Actor scaling over the synchronous runs (where the actors have the cores while they sample):
        /// per actor count, the sampled groups per second (median over rounds) and that over linear scaling
        /// from the fewest actors.
        package var scaling: [(actors: Int, groupsPerSecond: Double, efficiency: Double)] {
            let counts = Set(runs.filter { $0.run.staleness == 0 }.map(\.actors)).sorted()
            guard let fewest = counts.first, counts.count > 1 else { return [] }
            func rate(_ actors: Int) -> Double {
                BenchStats.median(runs.filter { $0.run.staleness == 0 && $0.actors == actors }.map(\.samplingGroupsPerSecond))
            }
            let perActor = rate(fewest) / Double(fewest)
            return counts.map { ($0, rate($0), rate($0) / (perActor * Double($0))) }
        }

        /// The synchronous run an asynchronous one is compared with: same actors, same round.
        package func synchronousTwin(of run: Run) -> Run? {
            runs.first { $0.run.staleness == 0 && $0.actors == run.actors && $0.round == run.round }
        }

        /// Per asynchronous setting (actors, max_staleness), its speed over its synchronous twin's in each round.
        package var speedups: [(actors: Int, staleness: Int, ratios: [Double])] {
            var settings: [(Int, Int)] = []
            for run in runs where run.run.staleness > 0 && !settings.contains(where: { $0 == (run.actors, run.run.staleness) }) {
                settings.append((run.actors, run.run.staleness))
            }
            return settings.map { actors, staleness in
                (actors, staleness, runs.filter { $0.actors == actors && $0.run.staleness == staleness }.compactMap { run in
                    synchronousTwin(of: run).map { $0.secondsPerStep / run.secondsPerStep }
                })
            }
        }
    }

    package static func run(_ options: Options, workDirectory: String, progress: (String) -> Void = { _ in }) throws -> Report {
        progress("rl-step: writing the workload (random \(options.workload.shape.name), \(options.workload.prompts) prompts) to \(workDirectory)")
        try options.workload.export(to: workDirectory)
        let sgemmBefore = ModelBenchmark.sgemmRate(n: 1024, repeats: 5)
        var e2e = EndToEndBench.Options(executable: options.executable, modelPath: workDirectory + "/model")
        e2e.steps = options.steps
        e2e.timeoutSeconds = options.timeoutSeconds
        var runs: [Run] = []
        let promptTokens = try promptTokenCounts(workDirectory)
        let settings = options.actorCounts.flatMap { a in options.stalenessValues.map { (a, $0) } }
        for (round, (actors, staleness)) in (1...max(1, options.rounds)).flatMap({ r in settings.map { (r, $0) } }) {
            e2e.actors = actors
            // Each actor leases its share of a step's prompts at once and samples them as one batch, as TRL
            // generates a step's completions together (lease size 1 measured 6% slower per step, 2026-12-05).
            let share = (options.workload.prompts + actors - 1) / actors
            e2e.overrides = options.workload.learnerOverrides(directory: workDirectory) + ["learner.lease_size=\(share)"] + options.overrides
            e2e.stalenessValues = [staleness]
            progress("rl-step: learner + \(actors) actors, \(options.steps) steps, max_staleness \(staleness)"
                     + (options.rounds > 1 ? ", round \(round) of \(options.rounds)" : ""))
            guard let run = try EndToEndBench.run(e2e, progress: progress).runs.first else { continue }
            let steady = run.steady
            func median(_ f: (EndToEndBench.Step) -> Double) -> Double { BenchStats.median(steady.map(f)) }
            let samples = options.workload.prompts * options.workload.groupSize
            let completion = median(\.tokensTrained) / Double(samples)
            let prompt = Double(promptTokens.reduce(0, +)) / Double(max(1, promptTokens.count))
            let flops = options.workload.flops(samples: samples, sequenceLength: prompt + completion)
            let split = Split(sampling: run.samplingSecondsPerGroup * Double(options.workload.prompts) / Double(actors),
                              scoring: median(\.forwardSeconds), training: median { $0.backwardSeconds + $0.optimizerSeconds },
                              publishing: median(\.publishSeconds))
            runs.append(Run(round: round, actors: actors, run: run, split: split, tokensPerSecond: median(\.tokensTrained) / run.medianCycle,
                            flops: flops.training + flops.sampling))
        }
        // Measured again at the end: a machine whose speed moved under the runs gives no limit to judge by.
        return Report(options: options, sgemmBeforeGflops: sgemmBefore, sgemmAfterGflops: ModelBenchmark.sgemmRate(n: 1024, repeats: 5),
                      runs: runs)
    }

    static func promptTokenCounts(_ directory: String) throws -> [Int] {
        guard let data = FileManager.default.contents(atPath: directory + "/workload.json"),
              let counts = try JSONValue.parse(data, source: "workload.json")["prompt_tokens"]?.array?.compactMap(\.int) else {
            throw RuntimeBenchError("rl-step", "\(directory)/workload.json lacks prompt_tokens")
        }
        return counts
    }
}
