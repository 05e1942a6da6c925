import ArgumentParser
import Foundation
import TroupeJSON
import TroupeModel
import TroupeTasks
import TroupeTensor
import TroupeTokenizer

/// `troupe sft`: supervised fine-tuning, loss on completion tokens only (`TroupeModel.SFTTrainer`),
/// on a JSONL file of {prompt, completion} or on a built-in task's training split; saves a model directory.
package struct SFTCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning on {prompt, completion} pairs; loss on completion tokens only.",
        discussion: """
            Examples:

              troupe sft --task arith:add2 --count 4000 --init tiny --out runs/add2-sft --epochs 3 --lr 1e-3 --eval-every 50
              troupe sft --data pairs.jsonl --model DIR --out DIR2 --steps 200 --lr 1e-5 --warmup 20

            Each example is the prompt's tokens, then the completion's tokens and the tokenizer's EOS \
            (so the model learns to stop). The loss of a step is the mean negative log-likelihood over \
            all completion tokens of its --batch-size examples. Learning rate: linear warm-up over \
            --warmup steps, then --schedule (cosine decay to 10% at the last step, or constant). AdamW \
            with decoupled weight decay on matrices, gradient norm clipped to --max-grad-norm; a step \
            with a non-finite gradient is skipped and counted.

            --init tiny|small|smollm2-135m starts from random weights of that shape (see troupe bench \
            model) with the tokenizer's vocabulary: the built-in byte tokenizer (259 ids), or \
            --tokenizer FILE (a tokenizer.json, copied into --out). --init FILE.json takes a config.json.

            Evaluation (--eval-every N, and at the end): mean completion NLL on held-out examples \
            (--eval-data FILE, or --eval-count items of the task's test split) and, for --task, greedy \
            exact-match accuracy on those items. Progress: a status line on a terminal, JSON lines when \
            standard output is not a terminal. --out is written atomically (config.json, \
            model.safetensors, the tokenizer files, sft.json) at the end and every --save-every steps.
            """)

    // Data
    @Option(name: .long, help: ArgumentHelp("JSONL file of {\"prompt\": ..., \"completion\": ...} lines.", valueName: "file"))
    package var data: String?

    @Option(name: .long, help: ArgumentHelp("A built-in task (e.g. arith:add2); trains on its training split.", valueName: "spec"),
            transform: { try TaskSpec(parsing: $0) })
    package var task: TaskSpec?

    @Option(name: .customLong("count"), help: "With --task: training problems to generate (default: 1000).")
    package var countOption: Int?
    package var count: Int { countOption ?? 1000 }

    @Option(name: .long, help: ArgumentHelp("Held-out JSONL for evaluation (with --data).", valueName: "file"))
    package var evalData: String?

    @Option(name: .customLong("eval-count"), help: "With --task: test-split problems for evaluation (default: 32).")
    package var evalCountOption: Int?
    package var evalCount: Int { evalCountOption ?? 32 }

    @Option(name: .long, help: ArgumentHelp("With --task: answer (\" 132\\n\") or worked (the steps left to right, repeated "
                                            + "0-2 times, then \" so 132\\n\"; add, sub and mix specs). See docs/tasks.md.",
                                            valueName: "style"))
    package var completion: CompletionStyle = .answer

    @Flag(name: .long, help: "Prepend the tokenizer's BOS token to every prompt.")
    package var bos = false

    // Model
    @Option(name: .long, help: ArgumentHelp("Start from this model directory.", valueName: "dir"))
    package var model: String?

    @Option(name: .customLong("init"), help: ArgumentHelp("Start from random weights: tiny, small, smollm2-135m, or a config.json.",
                                            valueName: "shape"))
    package var initialize: String?

    @Option(name: .long, help: ArgumentHelp("With --init: a tokenizer.json (default: the built-in byte tokenizer).",
                                            valueName: "file"))
    package var tokenizer: String?

    @Option(name: .long, help: ArgumentHelp("Where to write the trained model directory.", valueName: "dir"))
    package var out: String

    @Flag(name: .long, help: "Replace --out when it already holds files.")
    package var force = false

    // Optimisation
    @Option(name: .long, help: "Passes over the training data (default 1 unless --steps is given).")
    package var epochs: Int?

    @Option(name: .long, help: "Optimizer steps (instead of --epochs).")
    package var steps: Int?

    @Option(name: .long, help: "Examples per optimizer step (at most the number of training examples).")
    package var batchSize = 16

    @Option(name: .long, help: "Peak learning rate.")
    package var lr = 3e-4

    @Option(name: .long, help: "Linear warm-up steps.")
    package var warmup = 0

    @Option(name: .long, help: "After warm-up: cosine (decay to 10% of --lr) or constant.")
    package var schedule: LearningRateSchedule.Decay = .cosine

    @Option(name: .long, help: "AdamW decoupled weight decay (matrices only).")
    package var weightDecay = 0.0

    @Option(name: .long, help: "Clip the global gradient norm to this (0: no clipping).")
    package var maxGradNorm = 1.0

    @Option(name: .long, help: "Tokens per forward/backward micro-batch (memory bound; the gradient is the same).")
    package var microBatchTokens = 8192

    @Option(name: .long, help: "Seed of the initial weights, the data order and the task problems.")
    package var seed: UInt64 = 0

    // Reporting
    @Option(name: .long, help: "Evaluate every N steps (0: only at the end).")
    package var evalEvery = 0

    @Option(name: .long, help: "Save --out every N steps (0: only at the end).")
    package var saveEvery = 0

    @OptionGroup package var threadOptions: ThreadOptions

    package init() {}

    package func validate() throws {
        try validateData()
        try validateModel()
        try validateOptimisation()
    }

    private func validateData() throws {
        switch (data, task) {
        case (nil, nil): throw ValidationError("give --data FILE or --task SPEC")
        case (.some, .some): throw ValidationError("give only one of --data and --task")
        default: break
        }
        if let data, let problem = ReadableFile.problem(at: data) { throw ValidationError("cannot read --data \(data): \(problem)") }
        if let evalData {
            guard data != nil else { throw ValidationError("--eval-data goes with --data; --task evaluates on its test split") }
            if let problem = ReadableFile.problem(at: evalData) { throw ValidationError("cannot read --eval-data \(evalData): \(problem)") }
        }
        if data != nil && evalData == nil && evalEvery > 0 {
            throw ValidationError("--eval-every needs held-out examples: give --eval-data FILE")
        }
        if completion != .answer {
            guard case .arithmetic(let spec)? = task else {
                throw ValidationError("--completion \(completion) goes with --task; a --data file holds its own completions")
            }
            guard !spec.operations.operators.contains(.times) else {
                throw ValidationError("--completion worked needs an add, sub or mix spec: \(task!) has products, "
                                      + "which are not worked left to right")
            }
        }
        if data != nil, let option = [("--count", countOption), ("--eval-count", evalCountOption)].first(where: { $0.1 != nil })?.0 {
            throw ValidationError("\(option) goes with --task; --data trains on every line of its file (and --eval-data evaluates on every line of its own)")
        }
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        guard evalCount >= 1 else { throw ValidationError("--eval-count must be at least 1, got \(evalCount)") }
    }

    private func validateModel() throws {
        switch (model, initialize) {
        case (nil, nil): throw ValidationError("give --model DIR (fine-tune) or --init SHAPE (random weights)")
        case (.some, .some): throw ValidationError("give only one of --model and --init")
        default: break
        }
        if let model { try validateDirectory(model, option: "--model") }
        if let initialize, ModelShape.builtIn.first(where: { $0.name == initialize }) == nil,
           !FileManager.default.isReadableFile(atPath: initialize) {
            let names = ModelShape.builtIn.map(\.name).joined(separator: ", ")
            throw ValidationError("--init \(initialize) is neither a shape (\(names)) nor a readable config.json")
        }
        if let tokenizer {
            guard initialize != nil else { throw ValidationError("--tokenizer goes with --init; --model uses its own tokenizer") }
            guard FileManager.default.isReadableFile(atPath: tokenizer) else { throw ValidationError("cannot read --tokenizer \(tokenizer)") }
        }
        if !force, let contents = try? FileManager.default.contentsOfDirectory(atPath: out), !contents.isEmpty {
            throw ValidationError("--out \(out) already holds files; pass --force to replace it")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) && !isDirectory.boolValue {
            throw ValidationError("--out \(out) is a file, not a directory")
        }
    }

    private func validateOptimisation() throws {
        if epochs != nil && steps != nil { throw ValidationError("give --epochs or --steps, not both") }
        // Bounded so that epochs × steps per epoch cannot overflow, and a typo cannot start an endless job.
        if let epochs, !(1...1_000_000).contains(epochs) { throw ValidationError("--epochs must be in 1 … 1000000, got \(epochs)") }
        if let steps, !(1...1_000_000_000).contains(steps) { throw ValidationError("--steps must be in 1 … 1000000000, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        try requireSettingRange("--lr", .number(lr), shown: "\(lr)", as: "optimizer.learning_rate")
        guard lr > 0 else { throw ValidationError("--lr must be above 0: supervised training with a learning rate of 0 changes nothing") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be ≥ 0, got \(warmup)") }
        if let steps, warmup > steps {
            throw ValidationError("--warmup \(warmup) is longer than --steps \(steps): the learning rate would never reach --lr")
        }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw ValidationError("--weight-decay must be ≥ 0, got \(weightDecay)") }
        guard maxGradNorm.isFinite && maxGradNorm >= 0 else { throw ValidationError("--max-grad-norm must be ≥ 0, got \(maxGradNorm)") }
        guard microBatchTokens >= 1 else { throw ValidationError("--micro-batch-tokens must be at least 1") }
        guard evalEvery >= 0 else { throw ValidationError("--eval-every must be ≥ 0, got \(evalEvery)") }
        guard saveEvery >= 0 else { throw ValidationError("--save-every must be ≥ 0, got \(saveEvery)") }
    }

    package func run() throws {
        threadOptions.apply()
        let start = try startingPoint()
        let eos = try start.model.config.endOfSequence(tokenizer: start.tokenizer)
        let data = try trainingData(tokenizer: start.tokenizer, eos: eos)
        let trainer = try SFTTrainer(model: start.model, optimizer: AdamWOptions(
            learningRate: lr, weightDecay: weightDecay, maxGradNorm: maxGradNorm > 0 ? maxGradNorm : nil),
            microBatchTokens: microBatchTokens)
        for (e, r) in zip(data.train + data.eval, data.trainRecords + data.evalRecords) { try trainer.validate(e, name: r.origin) }

        let plan = SFTPlan(trainExamples: data.train.count, batchSize: batchSize, epochs: epochs, steps: steps, peak: lr,
                           warmupSteps: warmup, decay: schedule, evaluateEvery: evalEvery, saveEvery: saveEvery, seed: seed)
        if warmup > plan.totalSteps {
            throw CommandError("--warmup \(warmup) is longer than the run's \(plan.totalSteps) steps: the learning rate would never reach --lr")
        }
        let progress = ProgressReporter(totalSteps: plan.totalSteps)
        progress.event("start", fields: [
            "train_examples": .integer(data.train.count), "eval_examples": .integer(data.eval.count), "steps": .integer(plan.totalSteps),
            "batch_size": .integer(plan.batchSize), "parameters": .integer(start.model.layout.totalCount),
            "source": .string(start.description), "data": .string(data.description), "out": .string(out), "eos": .integer(Int(eos)),
        ], message: "sft: \(data.description), \(data.train.count) examples → \(plan.totalSteps) steps of \(plan.batchSize); "
            + "\(start.description), \(start.model.layout.totalCount) parameters; eval on \(data.eval.count)")

        var evaluation: [String: JSONValue] = [:]
        let outcome = try SFTLoop(plan: plan).run(trainer, on: data.train, evaluates: !data.eval.isEmpty, onStep: { report in
            let result = report.result
            progress.step(report.step, seconds: report.seconds, tokens: result.totalTokens, fields: [
                "loss": .number(result.loss), "lr": .number(result.learningRate), "grad_norm": .number(result.gradNorm),
                "clipped": .bool(result.clipped), "skipped": .bool(result.skipped), "tokens": .integer(result.totalTokens),
                "completion_tokens": .integer(result.completionTokens), "epoch": .integer(report.epoch),
            ], summary: String(format: "loss %.4f  lr %.2e  |g| %.3f", result.loss, result.learningRate, result.gradNorm)
                + (result.skipped ? "  SKIPPED" : ""))
        }, evaluate: { step in
            evaluation = try evaluate(trainer, data, start, step: step, progress: progress)
        }, save: { step, lastLoss in
            try save(start, trainer: trainer, step: step, plan: plan, lastLoss: lastLoss, evaluation: evaluation, data: data,
                     progress: progress)
        })
        progress.event("done", fields: [
            "steps": .integer(outcome.steps), "skipped_steps": .integer(outcome.skippedSteps), "loss": .number(outcome.lastLoss),
            "seconds": .number(outcome.seconds), "tokens_per_s": .number(progress.tokensPerSecond), "out": .string(out),
        ], message: String(format: "done: %d steps in %@, final loss %.4f, %d skipped steps, %.0f tok/s → %@", outcome.steps,
                           ProgressReporter.duration(outcome.seconds), outcome.lastLoss, outcome.skippedSteps,
                           progress.tokensPerSecond, out))
    }

    // MARK: starting point

    struct Start {
        let model: LlamaModel
        let tokenizer: any Tokenizer
        /// Files copied next to the weights (the source's tokenizer).
        let tokenizerFiles: [String]
        let description: String
    }

    private func startingPoint() throws -> Start {
        if let model {
            let loaded = try ModelDirectory.load(model)
            let tokenizer = try loadTokenizer(modelDirectory: model)
            try loaded.config.check(fits: tokenizer, directory: model)
            let files = ModelOutput.tokenizerFiles.map { URL(fileURLWithPath: model).appendingPathComponent($0).path }
                .filter { FileManager.default.fileExists(atPath: $0) }
            return Start(model: loaded, tokenizer: tokenizer, tokenizerFiles: files, description: "from \(model)")
        }
        guard let shapeName = initialize else { throw CommandError("give --model DIR or --init SHAPE") }
        let tokenizer: any Tokenizer = try self.tokenizer.map { try loadTokenizer(tokenizerFile: $0) } ?? ByteTokenizer()
        let config: ModelConfig
        if let shape = ModelShape.builtIn.first(where: { $0.name == shapeName }) {
            config = shape.config.sized(for: tokenizer)
        } else {
            do {
                config = try ModelConfig.parse(json: try Data(contentsOf: URL(fileURLWithPath: shapeName)), path: shapeName)
                    .checked(for: tokenizer, byteTokenizer: self.tokenizer == nil, source: shapeName)
            } catch let error as ModelError {
                // The file is a config.json by format, whatever its name: say which one.
                throw CommandError("--init \(shapeName): \(error)")
            }
        }
        let model = try LlamaModel.random(config: config, seed: seed)
        var files: [String] = []
        if let file = self.tokenizer {
            files.append(file)
            let sibling = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json").path
            if FileManager.default.fileExists(atPath: sibling) { files.append(sibling) }
        }
        return Start(model: model, tokenizer: tokenizer, tokenizerFiles: files, description: "random \(shapeName) (seed \(seed))")
    }

    // MARK: data

    /// Tokenized training and evaluation examples, with the records they came from.
    struct Examples {
        let train: [SFTExample]
        let trainRecords: [SFTRecord]
        let eval: [SFTExample]
        let evalRecords: [SFTRecord]
        /// Reference answers of the evaluation items, for greedy exact match (built-in tasks only).
        let evalAnswers: [String]?
        let description: String
    }

    private func trainingData(tokenizer: any Tokenizer, eos: Int32) throws -> Examples {
        var trainRecords: [SFTRecord] = [], evalRecords: [SFTRecord] = []
        var answers: [String]?
        let description: String
        if let data {
            trainRecords = try SFTData.parseJSONL(try Data(contentsOf: URL(fileURLWithPath: data)), source: data)
            if let evalData {
                evalRecords = try SFTData.parseJSONL(try Data(contentsOf: URL(fileURLWithPath: evalData)), source: evalData)
            }
            description = data
        } else if case .arithmetic(let arithmetic)? = task, let spec = task {
            let records = { [completion] (problems: [ArithmeticProblem]) throws -> [SFTRecord] in
                try problems.map { SFTRecord(prompt: $0.item.prompt, completion: try completion.completion(of: $0), origin: $0.item.id) }
            }
            trainRecords = try records(TaskSet.generateArithmetic(arithmetic, split: .train, count: count, seed: seed))
            let available = TaskSet.problemCount(spec, split: .test) ?? evalCount
            let tests = try TaskSet.generateArithmetic(arithmetic, split: .test, count: min(evalCount, available), seed: seed)
            evalRecords = try records(tests)
            answers = tests.map { String($0.value) }
            description = "\(spec) train split" + (completion == .answer ? "" : ", \(completion) completions")
        } else {
            throw CommandError("give --data FILE or --task SPEC")
        }
        try requireBos(bos, in: tokenizer, of: model ?? self.tokenizer ?? "the byte tokenizer")
        return Examples(train: try SFTData.tokenize(trainRecords, tokenizer: tokenizer, addBos: bos, eos: eos),
                     trainRecords: trainRecords,
                     eval: try SFTData.tokenize(evalRecords, tokenizer: tokenizer, addBos: bos, eos: eos),
                     evalRecords: evalRecords, evalAnswers: answers, description: description)
    }

    // MARK: evaluation and saving

    private func evaluate(_ trainer: SFTTrainer, _ data: Examples, _ start: Start, step: Int, progress: ProgressReporter) throws -> [String: JSONValue] {
        let (loss, _) = try trainer.evaluate(data.eval)
        var fields: [String: JSONValue] = ["step": .integer(step), "eval_loss": .number(loss), "eval_examples": .integer(data.eval.count)]
        var message = String(format: "eval @ step %d: loss %.4f", step, loss)
        if let answers = data.evalAnswers {
            let correct = try greedyExactMatches(trainer.model, tokenizer: start.tokenizer, data: data, answers: answers)
            let accuracy = Double(correct) / Double(answers.count)
            fields["accuracy"] = .number(accuracy)
            message += String(format: ", greedy exact match %d/%d (%.1f%%)", correct, answers.count, 100 * accuracy)
        }
        progress.event("eval", fields: fields, message: message)
        return fields
    }

    /// Greedy completions of the evaluation prompts; the answer is in the completion's first line (`--completion`).
    private func greedyExactMatches(_ model: LlamaModel, tokenizer: any Tokenizer, data: Examples, answers: [String]) throws -> Int {
        let longest = data.eval.map(\.completion.count).max() ?? 1
        let parameters = SamplingParameters(temperature: 1, topK: 1, maxNewTokens: longest + 8,
                                            stopTokens: model.config.defaultStopTokens(tokenizer: tokenizer),
                                            stopStrings: [TaskFormat.stopSequence])
        let completions = try Sampler(model: model).generate(
            data.eval.enumerated().map { SampleRequest(prompt: $0.element.prompt, seed: UInt64($0.offset)) },
            parameters: parameters, tokenBytes: { tokenizer.bytes(of: $0) })
        var correct = 0
        for (c, answer) in zip(completions, answers) {
            let text = try tokenizer.sampledText(c.tokens)
            let firstLine = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            if AnswerComparison.matches(completion.answer(inLine: firstLine), answer) { correct += 1 }
        }
        return correct
    }

    private func save(_ start: Start, trainer: SFTTrainer, step: Int, plan: SFTPlan, lastLoss: Double,
                      evaluation: [String: JSONValue], data: Examples, progress: ProgressReporter) throws {
        // A model no command could load is never written (nor put in the place of a good one with --force).
        let weights = UnsafeBufferPointer(start: trainer.model.parameters.pointer, count: trainer.model.parameters.count)
        if let bad = weights.firstIndex(where: { !$0.isFinite }) {
            throw CommandError("the weights hold a non-finite value at step \(step) (flat index \(bad)): training diverged, so \(out) is not written; lower --lr (\(lr)) or --max-grad-norm")
        }
        let record: JSONValue = [
            "step": .integer(step), "steps": .integer(plan.totalSteps), "loss": .number(lastLoss), "evaluation": .object(evaluation),
            "source": .string(start.description), "data": .string(data.description), "train_examples": .integer(data.train.count),
            "batch_size": .integer(plan.batchSize), "lr": .number(lr), "warmup": .integer(warmup), "schedule": .string(schedule.rawValue),
            "weight_decay": .number(weightDecay), "max_grad_norm": .number(maxGradNorm),
            "seed": JSONOutput.unsigned(seed), "bos": .bool(bos),
            "skipped_steps": .integer(trainer.optimizer.skippedSteps), "weights_hash": .string(trainer.model.weightsHash()),
        ]
        try ModelOutput.save(trainer.model, to: out, copying: start.tokenizerFiles,
                             extra: ["sft.json": try JSONOutput.data(record, pretty: true)])
        progress.event("saved", fields: ["step": .integer(step), "out": .string(out)], message: "saved \(out) at step \(step)")
    }
}
