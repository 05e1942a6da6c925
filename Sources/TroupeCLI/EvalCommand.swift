import ArgumentParser
import Foundation
import TroupeModel
import TroupeRuntime
import TroupeTasks
import TroupeTensor
import TroupeTokenizer

/// `troupe eval MODEL --task SPEC --samples k`: pass@1, pass@k and maj@k with 95% intervals, as a
/// table on a terminal or as JSON (docs/eval.md).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a model's accuracy on labelled tasks: pass@1, pass@k, maj@k with 95% intervals.",
        discussion: """
            Examples:

              troupe eval models/arith-base --task arith:add2 --samples 16
              troupe eval models/arith-base --file tasks.jsonl --samples 8 --json

            Samples k completions per prompt (sample j of prompt i seeded by \
            Xoshiro256(mixing: [seed, i, j])), stopping at the tokenizer's EOS or the end of the answer \
            line, extracts each answer and compares it with the reference. Prints a table on a terminal, \
            JSON otherwise (or with --json); progress goes to standard error when it is a terminal. \
            With the same --task, --count, --split and --seed the prompts are those `troupe run` uses. \
            Metrics, estimators and the JSON fields: docs/eval.md.
            """)

    @Argument(help: ArgumentHelp("Model directory: config.json, model.safetensors, tokenizer.json (or none: byte tokenizer).",
                                 valueName: "model"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Built-in task, e.g. arith:add2 (docs/tasks.md).", valueName: "spec"))
    var task: String?

    @Option(name: .long, help: ArgumentHelp("A JSONL task file of {\"prompt\", \"answer\"} lines, instead of --task.",
                                            valueName: "jsonl"))
    var file: String?

    @Option(name: .long, help: ArgumentHelp("Split of the built-in task: test or train.", valueName: "split"))
    var split: String = TaskSplit.test.rawValue

    @Option(name: .long, help: ArgumentHelp("Prompts to evaluate (default: 64 for --task, every line for --file).",
                                            valueName: "n"))
    var count: Int?

    @Option(name: .long, help: ArgumentHelp("What to do with bad lines of --file: refuse (the default) or skip.",
                                            valueName: "policy"))
    var badLines: String = TaskFile.BadLinePolicy.refuse.rawValue

    @Option(name: .long, help: ArgumentHelp("Completions per prompt, the k of pass@k and maj@k.", valueName: "k"))
    var samples: Int

    @Option(name: .long, help: "Sampling temperature (> 0).")
    var temperature: Float = 1

    @Option(name: .long, help: ArgumentHelp("Maximum tokens per completion.", valueName: "n"))
    var maxNewTokens = 16

    @Option(name: .long, help: "Seed of the built-in task set and of the samples.")
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Most sequences per sampler call (larger is faster; results do not change).",
                                            valueName: "n"))
    var batchSize = EvaluationSettings.defaultBatchSize

    @Flag(name: .long, help: "Prepend the tokenizer's BOS token to each prompt (as `troupe sft --bos`).")
    var bos = false

    @Option(name: .long, help: ArgumentHelp("OpenBLAS threads (default: OpenBLAS's choice, e.g. OPENBLAS_NUM_THREADS).",
                                            valueName: "n"))
    var threads: Int?

    @Flag(name: .long, help: "Print JSON even on a terminal.")
    var json = false

    @Flag(name: .long, help: "Include every prompt's answers and outcome in the JSON.")
    var perPrompt = false

    static let defaultTaskCount = 64

    func validate() throws {
        try ModelOptions.validateDirectory(model, option: "MODEL")
        switch (task, file) {
        case (nil, nil): throw ValidationError("give --task SPEC (e.g. --task arith:add2) or --file JSONL")
        case (_?, _?): throw ValidationError("give only one of --task and --file")
        case let (spec?, nil):
            do { _ = try TaskSpec(parsing: spec) } catch { throw ValidationError("--task: \(error)") }
            guard TaskSplit(rawValue: split) != nil else {
                throw ValidationError("--split must be test or train, got \(split.debugDescription)")
            }
        case let (nil, path?):
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw ValidationError("--file \(path) is not a file")
            }
            guard TaskFile.BadLinePolicy(rawValue: badLines) != nil else {
                throw ValidationError("--bad-lines must be refuse or skip, got \(badLines.debugDescription)")
            }
        }
        if let count, count < 1 { throw ValidationError("--count must be at least 1, got \(count)") }
        if let taskSpec = task.flatMap({ try? TaskSpec(parsing: $0) }), let split = TaskSplit(rawValue: split),
           let available = TaskSet.problemCount(taskSpec, split: split), (count ?? Self.defaultTaskCount) > available {
            throw ValidationError("--count \(count ?? Self.defaultTaskCount): \(taskSpec) has only \(available) problems "
                + "in its \(split) split")
        }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        guard temperature.isFinite && temperature > 0 else {
            throw ValidationError("--temperature must be finite and > 0, got \(temperature)")
        }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1, got \(maxNewTokens)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        let (items, skipped) = try loadItems()
        for problem in skipped { FileHandle.standardError.write(Data("warning: skipped \(file!) \(problem)\n".utf8)) }
        if let threads { BLASInfo.setThreads(threads) }
        let evaluator = try Evaluator(model: ModelDirectory.load(model), tokenizer: loadTokenizer(modelDirectory: model))
        let settings = EvaluationSettings(samplesPerPrompt: samples, temperature: temperature, maxNewTokens: maxNewTokens,
                                          seed: seed, batchSize: batchSize, addBos: bos)
        let progress = EvalProgressLine()
        let evaluation = try evaluator.evaluate(items, settings: settings, progress: progress.show)
        progress.finish()

        if json || OutputMode.detect() == .jsonLines {
            try JSONOutput.print(report(evaluation, skippedLines: skipped.count), pretty: json && OutputMode.detect() == .terminal)
        } else {
            print(table(evaluation, skippedLines: skipped.count))
        }
    }

    private func loadItems() throws -> ([TaskItem], [TaskFileProblem]) {
        if let file {
            let contents: TaskFileContents
            do {
                contents = try TaskFile.load(contentsOf: URL(fileURLWithPath: file),
                                             policy: TaskFile.BadLinePolicy(rawValue: badLines)!)
            } catch let error as TaskFileError {
                guard case .badLines = error else { throw error }
                throw CommandError("\(error)\n(--bad-lines skip evaluates the good lines)")
            }
            let items = Array(contents.items.prefix(count ?? contents.items.count))
            let unlabeled = items.filter { $0.answer == nil }
            if let first = unlabeled.first {
                throw CommandError("\(unlabeled.count) of \(items.count) tasks in \(file) have no \"answer\" "
                    + "(the first: id \(first.id.debugDescription)); evaluation compares against reference answers")
            }
            return (items, contents.skipped)
        }
        let items = try TaskSet.generate(TaskSpec(parsing: task!), split: TaskSplit(rawValue: split)!,
                                         count: count ?? Self.defaultTaskCount, seed: seed)
        return (items, [])
    }

    /// The JSON document (docs/eval.md, "JSON").
    private func report(_ evaluation: ModelEvaluation, skippedLines: Int) -> [String: Any] {
        let result = evaluation.result
        func estimate(_ e: Estimate) -> [String: Any] {
            ["value": e.value, "ci95": [e.interval.lowerBound, e.interval.upperBound]]
        }
        var object: [String: Any] = [
            "model": model,
            "task": task.flatMap { try? TaskSpec(parsing: $0).description } ?? NSNull(),
            "file": file ?? NSNull(),
            "split": file == nil ? split : NSNull(),
            "skipped_lines": skippedLines,
            "k": result.k,
            "temperature": Double(temperature),
            "max_new_tokens": maxNewTokens,
            "seed": seed,
            "batch_size": batchSize,
            "prompts": evaluation.promptCount,
            "samples": evaluation.sampleCount,
            "pass_at_1": estimate(result.passAt1),
            "pass_at_k": estimate(result.passAtK),
            "maj_at_k": estimate(result.majorityAtK),
            "valid_answer_fraction": result.validAnswerFraction,
            "length_finished_fraction": Double(evaluation.lengthFinishedSamples) / Double(evaluation.sampleCount),
            "generated_tokens": evaluation.generatedTokens,
            "tokens_per_s": evaluation.tokensPerSecond,
            "sampling_s": evaluation.samplingSeconds,
            "wall_s": evaluation.wallSeconds,
        ]
        if perPrompt {
            object["per_prompt"] = zip(result.prompts, evaluation.samples).map { outcome, samples -> [String: Any] in
                [
                    "id": outcome.id,
                    "reference": samples.referenceAnswer,
                    "answers": samples.sampledAnswers.map { $0 ?? NSNull() as Any },
                    "correct": outcome.correct,
                    "pass_at_1": outcome.passAt1,
                    "pass_at_k": outcome.passAtK,
                    "majority_answer": outcome.majorityAnswer ?? NSNull(),
                    "majority_correct": outcome.majorityCorrect,
                ]
            }
        }
        return object
    }

    private func table(_ evaluation: ModelEvaluation, skippedLines: Int) -> String {
        let result = evaluation.result
        let k = result.k
        let source = file.map { "\($0)" + (skippedLines > 0 ? " (\(skippedLines) bad lines skipped)" : "") }
            ?? "\(task.flatMap { try? TaskSpec(parsing: $0).description } ?? "") \(split) split"
        func percent(_ x: Double, width: Int = 5) -> String { String(format: "%\(width).1f%%", 100 * x) }
        func row(_ name: String, _ e: Estimate) -> String {
            "  \(name.padding(toLength: 10, withPad: " ", startingAt: 0))\(percent(e.value))   "
                + "[\(percent(e.interval.lowerBound, width: 0)), \(percent(e.interval.upperBound, width: 0))]"
        }
        func fact(_ name: String, _ value: String) -> String {
            "  \(name.padding(toLength: 20, withPad: " ", startingAt: 0))\(value)"
        }
        let lengthFraction = Double(evaluation.lengthFinishedSamples) / Double(evaluation.sampleCount)
        return [
            "\(model) on \(source)",
            "",
            "  metric     value    95% CI (Wilson)",
            row("pass@1", result.passAt1),
            row("pass@\(k)", result.passAtK),
            row("maj@\(k)", result.majorityAtK),
            "",
            fact("valid answers", percent(result.validAnswerFraction, width: 0) + " of samples"),
            fact("cut at max tokens", percent(lengthFraction, width: 0)
                 + " (--max-new-tokens \(maxNewTokens))"),
            fact("prompts", "\(evaluation.promptCount)"),
            fact("samples", "\(evaluation.sampleCount) (\(k) per prompt, temperature \(temperature), seed \(seed))"),
            fact("tokens/s", String(format: "%.0f", evaluation.tokensPerSecond)),
            fact("wall time", evaluation.wallSeconds < 60 ? String(format: "%.1fs", evaluation.wallSeconds)
                                                          : ProgressReporter.duration(evaluation.wallSeconds)),
        ].joined(separator: "\n")
    }
}

/// A status line on standard error, rewritten in place, only when standard error is a terminal
/// (a log file should not fill with carriage returns).
private final class EvalProgressLine {
    private let enabled = isatty(STDERR_FILENO) != 0
    private var shown = false

    func show(_ progress: EvaluationProgress) {
        guard enabled, progress.promptsDone > 0 else { return }
        let rate = progress.samplingSeconds > 0 ? Double(progress.promptsDone) / progress.samplingSeconds : 0
        let remaining = rate > 0 ? Double(progress.promptsTotal - progress.promptsDone) / rate : .nan
        let text = "eval \(progress.promptsDone)/\(progress.promptsTotal) prompts  "
            + String(format: "%.1f prompts/s  %.0f tok/s", rate, progress.tokensPerSecond)
            + "  ETA \(ProgressReporter.duration(remaining))"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
    }
}
