import ArgumentParser
import Foundation
import TroupeJSON
import TroupeLocalRun
import TroupeModel
import TroupeRuntime
import TroupeTasks
import TroupeTensor
import TroupeTokenizer

/// `troupe eval MODEL --task SPEC --samples k`: pass@1, pass@k and maj@k with 95% intervals, as a
/// table on a terminal or as JSON (docs/eval.md).
package struct EvalCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a model's accuracy on labelled tasks: pass@1, pass@k, maj@k with 95% intervals.",
        discussion: """
            Examples:

              troupe eval models/arith-base --task arith:add2 --samples 16
              troupe eval models/arith-base --file tasks.jsonl --samples 8 --json
              troupe eval --model SmolLM2-135M-Instruct --file math.jsonl --samples 8 --max-new-tokens 512

            Samples k completions per prompt (sample j of prompt i seeded by \
            Xoshiro256(mixing: [seed, i, j])), stopping at the tokenizer's EOS or the end of the answer \
            line, extracts each answer and compares it with the reference. Prints a table on a terminal, \
            JSON otherwise (or with --json); progress goes to standard error when it is a terminal. \
            With the same --task, --count, --split and --seed the prompts are those `troupe run` uses. \
            When the model directory has a chat template (tokenizer_config.json or chat_template.jinja), each \
            prompt is rendered as the user message (after --system-prompt, if given) with the generation prompt; \
            a --file task then samples until the model's end-of-turn token and takes the answer from the whole \
            completion (the last \\boxed{…} first). --chat-template none gives prompts as written. \
            Metrics, estimators and the JSON fields: docs/eval.md; model directories: docs/models.md.
            """)

    @Argument(help: ArgumentHelp("Model directory: config.json, model.safetensors, tokenizer.json (or none: byte tokenizer).",
                                 valueName: "model"))
    package var modelArgument: String?

    @Option(name: .customLong("model"), help: ArgumentHelp("The model directory, instead of the MODEL argument.", valueName: "dir"))
    package var modelOption: String?

    @Option(name: .long, help: ArgumentHelp("auto: render prompts with the model directory's chat template when it has one; none: as written.",
                                            valueName: "auto|none"))
    package var chatTemplate: ChatTemplateChoice = .auto

    @Option(name: .long, help: ArgumentHelp("System message of chat-template prompts (default: none; the template may add its own).",
                                            valueName: "text"))
    package var systemPrompt: String?

    @Option(name: .long, help: ArgumentHelp("The date (YYYY-MM-DD, optionally THH:MM[:SS]) a chat template's strftime_now() writes (default: none, strftime_now undefined).",
                                            valueName: "date"))
    package var chatDate: String?

    /// The model directory, from the argument or --model (validate() requires one).
    package var model: String { modelArgument ?? modelOption ?? "" }

    @Option(name: .long, help: ArgumentHelp("Built-in task, e.g. arith:add2 (docs/tasks.md).", valueName: "spec"),
            transform: { try TaskSpec(parsing: $0) })
    package var task: TaskSpec?

    @Option(name: .long, help: ArgumentHelp("A JSONL task file of {\"prompt\", \"answer\"} lines, instead of --task.",
                                            valueName: "jsonl"))
    package var file: String?

    @Option(name: .customLong("split"), help: ArgumentHelp("Split of the built-in task (default: test).", valueName: "split"))
    package var splitOption: TaskSplit?
    package var split: TaskSplit { splitOption ?? .test }

    @Option(name: .long, help: ArgumentHelp("Prompts to evaluate (default: 64 for --task, every line for --file).",
                                            valueName: "n"))
    package var count: Int?

    @Option(name: .customLong("bad-lines"), help: ArgumentHelp("What to do with bad lines of --file (default: refuse).", valueName: "policy"))
    package var badLinesOption: TaskFile.BadLinePolicy?
    package var badLines: TaskFile.BadLinePolicy { badLinesOption ?? .refuse }

    @Option(name: .long, help: ArgumentHelp("Completions per prompt, the k of pass@k and maj@k.", valueName: "k"))
    package var samples: Int

    @OptionGroup package var sampling: SamplingOptions<EvalDefaults>

    @Option(name: .long, help: ArgumentHelp("Multi-temperature maj@k: comma-separated temperatures; sample j of a prompt is drawn at entry j mod n and all k vote together (replaces --temperature).",
                                            valueName: "t1,t2,…"),
            transform: { text in
                let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--temperatures: an empty list cannot produce a sample; give at least one temperature") }
                return try parts.map { part in
                    // Checked as written against sampling.temperature's range, then used as a Float.
                    guard let written = Double(part), let t = Float(part), t.isFinite else {
                        throw ValidationError("--temperatures: \"\(part)\" is not a number")
                    }
                    try requireSettingRange("--temperatures: each", .number(written), shown: "\"\(part)\"", as: "sampling.temperature")
                    return t
                }
            })
    package var temperatures: [Float]?

    @Option(name: .long, help: ArgumentHelp("Most sequences per sampler call (larger is faster; results do not change).",
                                            valueName: "n"))
    package var batchSize = EvaluationSettings.defaultBatchSize

    @Flag(name: .long, help: "Prepend the tokenizer's BOS token to each prompt (as `troupe sft --bos`).")
    package var bos = false

    @OptionGroup package var threadOptions: ThreadOptions

    @Flag(name: .long, help: "Print JSON even on a terminal.")
    package var json = false

    @Flag(name: .long, help: "Include every prompt's answers and outcome in the JSON (printed then on a terminal too).")
    package var perPrompt = false

    package init() {}

    package static let defaultTaskCount = 64

    package enum EvalDefaults: SamplingDefaults {
        package static let maxNewTokens = 16
        package static let seed: UInt64 = 1
        package static let seedHelp = "Seed of the built-in task set and of the samples."
    }

    package func validate() throws {
        switch (modelArgument, modelOption) {
        case (nil, nil): throw ValidationError("give the model directory (MODEL or --model DIR)")
        case (_?, _?): throw ValidationError("give the model directory once: MODEL or --model, not both")
        default: break
        }
        try validateDirectory(model, option: modelArgument != nil ? "MODEL" : "--model")
        if systemPrompt != nil && chatTemplate == .asWritten {
            throw ValidationError("--system-prompt needs a chat template (--chat-template auto)")
        }
        if let chatDate {
            if chatTemplate == .asWritten { throw ValidationError("--chat-date needs a chat template (--chat-template auto)") }
            do { _ = try ChatDate(parsing: chatDate) } catch { throw ValidationError("--chat-date \(error)") }
        }
        switch (task, file) {
        case (nil, nil): throw ValidationError("give --task SPEC (e.g. --task arith:add2) or --file JSONL")
        case (_?, _?): throw ValidationError("give only one of --task and --file")
        case (_?, nil):
            if badLinesOption != nil { throw ValidationError("--bad-lines applies to the lines of --file; --task has none") }
        case let (nil, path?):
            try requirePath(path, directory: false, missing: "--file \(path) is not a file", wrongKind: "--file \(path) is not a file")
            if splitOption != nil { throw ValidationError("--split chooses a split of --task's built-in problems; --file has none") }
        }
        if let count, count < 1 { throw ValidationError("--count must be at least 1, got \(count)") }
        if let task, let available = TaskSet.problemCount(task, split: split), (count ?? Self.defaultTaskCount) > available {
            throw ValidationError("--count \(count ?? Self.defaultTaskCount): \(task) has only \(available) problems "
                + "in its \(split) split")
        }
        try requireSettingRange("--samples", .integer(samples), shown: "\(samples)", as: "eval.samples")
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if temperatures != nil, let given = sampling.temperatureOption.givenTemperature {
            throw ValidationError("give --temperature \(given) or --temperatures, not both: --temperatures replaces the single temperature")
        }
        if let temperatures, temperatures.count > samples {
            throw ValidationError("--temperatures lists \(temperatures.count) temperatures but --samples is \(samples): each temperature needs a sample")
        }
    }

    package func run() throws {
        let (items, fileContents) = try loadItems()
        let skipped = fileContents?.skipped ?? []
        // How errors name a task: its id, and its line when it comes from --file.
        func task(_ id: String) -> String { "task \(id.debugDescription)" + (fileContents?.location(ofId: id) ?? "") }
        for problem in skipped { StandardStream.error.write("warning: skipped \(file ?? "") \(problem)\n") }
        threadOptions.apply()
        let tokenizer = try loadTokenizer(modelDirectory: model)
        let format = try promptFormat(tokenizer: tokenizer)
        if let notice = format.undatedTemplateNotice { StandardStream.error.write("note: \(notice)\n") }
        try requireBos(bos, in: tokenizer, of: model)
        if bos && format.isChat {
            throw CommandError("--bos applies to prompts given as written; the chat template of \(model) decides the BOS "
                + "(add --chat-template none to give prompts as written)")
        }
        // Rendering every prompt first refuses a bad one before any sampling.
        let renderedPrompts = try items.map { item in
            do { return try format.text(for: item.prompt) } catch {
                throw CommandError("\(task(item.id)): \(error)")
            }
        }
        let loaded = try ModelDirectory.load(model)
        try loaded.config.check(fits: tokenizer, directory: model)
        let evaluator = try Evaluator(model: loaded, tokenizer: tokenizer, promptFormat: format)
        // A chat model ends its turn with its stop token and may write its answer on any line; prompts in
        // the answer-line format (built-in tasks, plain task files) end at the newline.
        let stops = file != nil && format.isChat ? [] : [TaskFormat.stopSequence]
        let settings = EvaluationSettings(samplesPerPrompt: samples, temperature: sampling.temperature, temperatures: temperatures,
                                          maxNewTokens: sampling.maxNewTokens, seed: sampling.seed, batchSize: batchSize,
                                          addBos: bos, stopSequences: stops)
        let progress = EvalProgressLine()
        let evaluation: ModelEvaluation
        do { evaluation = try evaluator.evaluate(items, settings: settings, progress: progress.show) } catch let error as EvaluatorError {
            guard let id = error.itemId, let location = fileContents?.location(ofId: id), !location.isEmpty else { throw error }
            throw CommandError("\(error)\(location)")
        }
        progress.finish()

        if json || perPrompt || OutputMode.detect() == .jsonLines {
            try JSONOutput.print(report(evaluation, skippedLines: skipped.count, format: format, stops: stops,
                                        renderedPrompts: renderedPrompts),
                                 pretty: json && OutputMode.detect() == .terminal)
        } else {
            print(table(evaluation, skippedLines: skipped.count, format: format))
        }
    }

    /// A Float setting as the Double its shortest spelling names.
    private static func written(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }

    /// The model directory's chat template with --system-prompt, or plain prompts.
    private func promptFormat(tokenizer: any Tokenizer) throws -> PromptFormat {
        guard chatTemplate == .auto else { return .plain }
        do {
            return try .of(modelDirectory: model, systemPrompt: systemPrompt, date: try chatDate.map(ChatDate.init(parsing:)),
                           tokenizer: tokenizer)
        } catch let error as NoChatTemplate {
            throw CommandError("\(error.setting == .systemPrompt ? "--system-prompt" : "--chat-date"): \(error)")
        }
    }

    /// The tasks to evaluate, and the --file they come from.
    private func loadItems() throws -> ([TaskItem], TaskFileContents?) {
        if let file {
            let contents: TaskFileContents
            do {
                contents = try TaskFile.load(contentsOf: URL(fileURLWithPath: file), policy: badLines)
            } catch let error as TaskFileError {
                guard case .badLines = error else { throw error }
                throw CommandError("\(error)\n(--bad-lines skip evaluates the good lines)")
            }
            if let count, count > contents.items.count {
                throw CommandError("--count \(count): \(file) holds \(contents.items.count) usable tasks; leave --count out to evaluate them all")
            }
            let items = Array(contents.items.prefix(count ?? contents.items.count))
            if let first = items.firstIndex(where: { $0.answer == nil }) {
                throw CommandError("\(items.count { $0.answer == nil }) of \(items.count) tasks in \(file) have no \"answer\" "
                    + "(the first: line \(contents.lines[first]), id \(items[first].id.debugDescription)); evaluation compares against reference answers")
            }
            return (items, contents)
        }
        guard let task else { return ([], nil) }  // validate() required --task or --file
        let items = try TaskSet.generate(task, split: split, count: count ?? Self.defaultTaskCount, seed: sampling.seed)
        return (items, nil)
    }

    /// The JSON document (docs/eval.md, "JSON").
    private func report(_ evaluation: ModelEvaluation, skippedLines: Int, format: PromptFormat, stops: [String],
                        renderedPrompts: [String]) -> JSONValue {
        let result = evaluation.result
        func estimate(_ e: Estimate) -> JSONValue {
            ["value": .number(e.value), "ci95": [.number(e.interval.lowerBound), .number(e.interval.upperBound)]]
        }
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        var object: [String: JSONValue] = [
            "model": .string(model),
            "task": text(task?.description),
            "file": text(file),
            "split": text(file == nil ? split.rawValue : nil),
            "skipped_lines": .integer(skippedLines),
            "prompt_format": .string(format.isChat ? "chat_template" : "plain"),
            "system_prompt": text(format.isChat ? systemPrompt : nil),
            "chat_date": text(format.isChat ? chatDate.flatMap { try? ChatDate(parsing: $0).description } : nil),
            "stop_sequences": .array(stops.map(JSONValue.string)),
            "k": .integer(result.k),
            // As written (0.7, not the Float's 0.699999988…); null when --temperatures replaced it.
            "temperature": temperatures == nil ? .number(Self.written(sampling.temperature)) : .null,
            "temperatures": temperatures.map { .array($0.map { .number(Self.written($0)) }) } ?? .null,
            "max_new_tokens": .integer(sampling.maxNewTokens),
            "seed": JSONOutput.unsigned(sampling.seed),
            "batch_size": .integer(batchSize),
            "prompts": .integer(evaluation.promptCount),
            "samples": .integer(evaluation.sampleCount),
            "pass_at_1": estimate(result.passAt1),
            "pass_at_k": estimate(result.passAtK),
            "maj_at_k": estimate(result.majorityAtK),
            "valid_answer_fraction": .number(result.validAnswerFraction),
            "length_finished_fraction": .number(Double(evaluation.lengthFinishedSamples) / Double(evaluation.sampleCount)),
            "generated_tokens": .integer(evaluation.generatedTokens),
            "mean_completion_tokens": .number(evaluation.meanCompletionTokens),
            "tokens_per_s": .number(evaluation.tokensPerSecond),
            "sampling_s": .number(evaluation.samplingSeconds),
            "wall_s": .number(evaluation.wallSeconds),
        ]
        if perPrompt {
            object["per_prompt"] = .array(zip(zip(result.prompts, evaluation.samples), renderedPrompts).map { pair, prompt -> JSONValue in
                let (outcome, samples) = pair
                return [
                    "id": .string(outcome.id),
                    "prompt": .string(prompt),
                    "reference": text(samples.referenceAnswer),
                    "answers": .array(samples.sampledAnswers.map(text)),
                    "correct": .integer(outcome.correct),
                    "pass_at_1": .number(outcome.passAt1),
                    "pass_at_k": .number(outcome.passAtK),
                    "majority_answer": text(outcome.majorityAnswer),
                    "majority_correct": .bool(outcome.majorityCorrect),
                ]
            })
        }
        return .object(object)
    }

    private func table(_ evaluation: ModelEvaluation, skippedLines: Int, format: PromptFormat) -> String {
        let result = evaluation.result
        let k = result.k
        let source = file.map { "\($0)" + (skippedLines > 0 ? " (\(skippedLines) bad lines skipped)" : "") }
            ?? "\(task?.description ?? "") \(split) split"
        func percent(_ x: Double, width: Int = 5) -> String { String(format: "%\(width).1f%%", 100 * x) }
        func row(_ name: String, _ e: Estimate) -> String {
            "  \(name.padding(toLength: 10, withPad: " ", startingAt: 0))\(percent(e.value))   "
                + "[\(percent(e.interval.lowerBound, width: 0)), \(percent(e.interval.upperBound, width: 0))]"
        }
        func fact(_ name: String, _ value: String) -> String {
            "  \(name.padding(toLength: 20, withPad: " ", startingAt: 0))\(value)"
        }
        let lengthFraction = Double(evaluation.lengthFinishedSamples) / Double(evaluation.sampleCount)
        let temperatureText = temperatures.map { "temperatures \($0.map { "\($0)" }.joined(separator: ", ")) in turn" }
            ?? "temperature \(sampling.temperature)"
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
                 + " (--max-new-tokens \(sampling.maxNewTokens))"),
            fact("prompts", "\(evaluation.promptCount)" + (format.isChat ? " (through the chat template"
                 + (systemPrompt != nil ? ", with the system prompt)" : ")") : "")),
            fact("samples", "\(evaluation.sampleCount) (\(k) per prompt, \(temperatureText), seed \(sampling.seed))"),
            fact("tokens/completion", String(format: "%.1f (mean, stop tokens included)", evaluation.meanCompletionTokens)),
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
        StandardStream.error.write("\r\u{1B}[K" + text)
        shown = true
    }

    func finish() {
        if shown { StandardStream.error.write("\r\u{1B}[K") }
        shown = false
    }
}
