import ArgumentParser
import Foundation
import Testing
import TroupeCLI
import TroupeModel
import TroupeTasks

/// `generate`, `score`, `eval` and `sft`: the commands that run a model, and their shared options.
@Suite struct ModelCommandTests {
    let scratch: Scratch
    init() throws { scratch = try Scratch() }

    // MARK: generate

    @Test func generateDefaults() throws {
        let command = try parse(["generate", "--model", scratch.model, "--prompt", "Q:"], as: GenerateCommand.self)
        #expect(command.modelOptions.model == scratch.model)
        #expect(command.modelOptions.threadOptions.threads == nil)
        #expect(command.prompt == ["Q:"])
        #expect(command.samples == 1)
        #expect(command.sampling.temperature == 1)
        #expect(command.sampling.maxNewTokens == 64)
        #expect(command.sampling.seed == 0)
        #expect(command.topK == 0 && command.topP == 1)
        #expect(command.stop.isEmpty && !command.ignoreEos && !command.bos && !command.entropy && !command.json)
    }

    @Test func generateReadsEveryOption() throws {
        let command = try parse(["generate", "--model", scratch.model, "--prompt", "a", "--prompt", "b", "--samples", "3",
                                 "--temperature", "0.5", "--top-k", "5", "--top-p", "0.9", "--max-new-tokens", "7",
                                 "--seed", "9", "--stop", "\n", "--threads", "2", "--ignore-eos", "--json"], as: GenerateCommand.self)
        #expect(command.prompt == ["a", "b"] && command.samples == 3 && command.topK == 5 && command.topP == 0.9)
        #expect(command.sampling.temperature == 0.5 && command.sampling.maxNewTokens == 7 && command.sampling.seed == 9)
        #expect(command.stop == ["\n"] && command.modelOptions.threadOptions.threads == 2 && command.ignoreEos && command.json)
    }

    @Test func generateRefusals() {
        let model = ["generate", "--model", scratch.model]
        expectUsageError(["generate", "--prompt", "x"], "Missing expected argument '--model <dir>'")
        expectUsageError(["generate", "--model", scratch.missing, "--prompt", "x"], "--model \(scratch.missing) does not exist")
        expectUsageError(["generate", "--model", scratch.pairs, "--prompt", "x"], "is not a directory")
        expectUsageError(model, "give at least one --prompt (or --prompt-ids)")
        expectUsageError(model + ["--prompt", "x", "--prompt-ids", "1,2"], "give prompts as --prompt (text) or --prompt-ids, not both")
        expectUsageError(model + ["--prompt-ids", "1,,2"], "--prompt-ids: entry 2 of \"1,,2\" is empty")
        expectUsageError(model + ["--prompt-ids", "1,2", "--bos"], "--bos applies to text; put the BOS id in --prompt-ids")
        expectUsageError(model + ["--prompt", "a", "--prompt", ""], "--prompt 2 is empty")
        #expect(refusal(model + ["--prompt", "", "--bos"]) == nil)
        expectUsageError(model + ["--prompt", "x", "--samples", "0"], "--samples must be in 1 … 4096 (as eval.samples), got 0")
        expectUsageError(model + ["--prompt", "x", "--samples", "100000000"], "--samples must be in 1 … 4096 (as eval.samples), got 100000000")
        expectUsageError(model + ["--prompt", "x", "--samples", "two"], "The value 'two' is invalid for '--samples")
        expectUsageError(model + ["--prompt", "x", "--temperature", "0"], "--temperature must be in 0.01 … 10 (as sampling.temperature), got 0.0")
        #expect(refusal(model + ["--prompt", "x", "--temperature", "0.01"]) == nil && refusal(model + ["--prompt", "x", "--temperature", "10"]) == nil,
                "the range's own ends are accepted")
        expectUsageError(model + ["--prompt", "x", "--temperature", "1e-45"], "--temperature must be in 0.01 … 10 (as sampling.temperature), got 1e-45")
        expectUsageError(model + ["--prompt", "x", "--temperature", "nan"], "--temperature must be in 0.01 … 10")
        // Negative numbers go as --option=-1: a lone -1 reads as an option name.
        expectUsageError(model + ["--prompt", "x", "--top-k=-1"], "--top-k must be ≥ 0, got -1")
        expectUsageError(model + ["--prompt", "x", "--top-p", "0"], "--top-p must be in (0, 1], got 0.0")
        expectUsageError(model + ["--prompt", "x", "--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5")
        expectUsageError(model + ["--prompt", "x", "--max-new-tokens", "0"], "--max-new-tokens must be in 1 … 65536 (as sampling.max_new_tokens), got 0")
        expectUsageError(model + ["--prompt", "x", "--max-new-tokens", "9223372036854775807"], "--max-new-tokens must be in 1 … 65536")
        expectUsageError(model + ["--prompt", "x", "--seed=-1"], "The value '-1' is invalid for '--seed")
        expectUsageError(model + ["--prompt", "x", "--stop", ""], "--stop must not be empty")
        expectUsageError(model + ["--prompt", "x", "--threads", "0"], "--threads must be at least 1, got 0")
    }

    // MARK: score

    @Test func scoreDefaults() throws {
        let text = try parse(["score", "--model", scratch.model, "--prompt", "Q:", "--completion", " 2"], as: ScoreCommand.self)
        #expect(text.prompt == "Q:" && text.completion == " 2" && text.ids == nil && text.scoreFrom == nil)
        #expect(text.temperature == 1 && !text.bos && !text.entropy)
        let ids = try parse(["score", "--model", scratch.model, "--ids", "1, 2,3", "--score-from", "2"], as: ScoreCommand.self)
        #expect(ids.ids == "1, 2,3" && ids.scoreFrom == 2)
    }

    @Test func scoreRefusals() {
        let model = ["score", "--model", scratch.model]
        expectUsageError(model, "give --prompt and --completion (text), or --ids (token ids)")
        expectUsageError(model + ["--prompt", "a"], "give --prompt and --completion")
        expectUsageError(model + ["--ids", "1,2", "--prompt", "a"], "give either --ids or --prompt/--completion, not both")
        expectUsageError(model + ["--ids", "1"], "--ids needs at least two tokens")
        expectUsageError(model + ["--ids", "1,x"], "--ids: \"x\" is not a token id")
        expectUsageError(model + ["--ids", "1,2,3", "--score-from", "3"], "--score-from must be in 1...2 for 3 ids, got 3")
        expectUsageError(model + ["--ids", "1,2", "--score-from", "0"], "--score-from must be in 1...1")
        expectUsageError(model + ["--ids", "1,2", "--bos"], "--bos applies to text")
        expectUsageError(model + ["--prompt", "a", "--completion", "b", "--score-from", "1"], "--score-from applies to --ids")
        expectUsageError(model + ["--prompt", "", "--completion", "b"], "--prompt is empty")
        #expect(refusal(model + ["--prompt", "", "--completion", "b", "--bos"]) == nil)
        expectUsageError(model + ["--prompt", "a", "--completion", ""], "--completion is empty")
        expectUsageError(model + ["--ids", "1,2", "--temperature=-1"], "--temperature must be in 0.01 … 10 (as sampling.temperature), got -1.0")
    }

    // MARK: eval

    @Test func evalDefaults() throws {
        let command = try parse(["eval", scratch.model, "--task", "arith:add2", "--samples", "4"], as: EvalCommand.self)
        #expect(command.model == scratch.model)
        #expect(command.task?.description == "arith:add2" && command.file == nil)
        #expect(command.split == .test && command.badLines == .refuse && command.count == nil)
        #expect(command.samples == 4)
        #expect(command.sampling.temperature == 1 && command.sampling.maxNewTokens == 16 && command.sampling.seed == 1)
        #expect(command.batchSize == 64)  // docs/eval.md
        #expect(!command.bos && !command.json && !command.perPrompt && command.threadOptions.threads == nil)
    }

    @Test func evalChoices() throws {
        let base = ["eval", scratch.model, "--task", "arith:add2", "--samples", "1"]
        #expect(try parse(base + ["--split", "train"], as: EvalCommand.self).split == .train)
        #expect(try parse(base + ["--split", "test"], as: EvalCommand.self).split == .test)
        expectUsageError(base + ["--split", "dev"], "The value 'dev' is invalid for '--split <split>'. Please provide one of 'train' and 'test'.")
        let file = ["eval", scratch.model, "--file", scratch.pairs, "--samples", "1"]
        #expect(try parse(file + ["--bad-lines", "skip"], as: EvalCommand.self).badLines == .skip)
        #expect(try parse(file + ["--bad-lines", "refuse"], as: EvalCommand.self).badLines == .refuse)
        // An option that does not apply to the chosen source is refused rather than ignored.
        expectUsageError(file + ["--split", "train"], "--split chooses a split of --task's built-in problems; --file has none")
        expectUsageError(base + ["--bad-lines", "skip"], "--bad-lines applies to the lines of --file; --task has none")
        expectUsageError(file + ["--bad-lines", "ignore"], "The value 'ignore' is invalid for '--bad-lines <policy>'. Please provide one of 'refuse' and 'skip'.")
        expectUsageError(["eval", scratch.model, "--task", "arith:zz", "--samples", "1"], "The value 'arith:zz' is invalid for '--task <spec>': invalid task spec")
    }

    @Test func evalRefusals() {
        let samples = ["--samples", "2"]
        expectUsageError(["eval", scratch.missing, "--task", "arith:add2"] + samples, "MODEL \(scratch.missing) does not exist")
        expectUsageError(["eval", scratch.model] + samples, "give --task SPEC (e.g. --task arith:add2) or --file JSONL")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--file", scratch.pairs] + samples, "give only one of --task and --file")
        expectUsageError(["eval", scratch.model, "--file", scratch.model] + samples, "--file \(scratch.model) is not a file")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2"], "Missing expected argument '--samples <k>'")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--samples", "100000000000"], "--samples must be in 1 … 4096 (as eval.samples)")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--samples", "0"], "--samples must be in 1 … 4096 (as eval.samples), got 0")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--count", "0"] + samples, "--count must be at least 1, got 0")
        expectUsageError(["eval", scratch.model, "--task", "arith:add1"] + samples, "--count 64: arith:add1 has only 11 problems in its test split")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--batch-size", "0"] + samples, "--batch-size must be at least 1")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--max-new-tokens", "0"] + samples, "--max-new-tokens must be in 1 … 65536")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--temperature", "inf"] + samples, "--temperature must be in 0.01 … 10")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--threads=-2"] + samples, "--threads must be at least 1, got -2")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--chat-date", "yesterday"] + samples,
                         "--chat-date \"yesterday\": expected a date YYYY-MM-DD")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--chat-date", "2026-02-30"] + samples,
                         "--chat-date \"2026-02-30\": 2026-02 has no day 30")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--chat-template", "none", "--chat-date", "2026-12-06"] + samples,
                         "--chat-date needs a chat template (--chat-template auto)")
        #expect(refusal(["eval", scratch.model, "--task", "arith:add2", "--chat-date", "2026-12-06T22:00"] + samples) == nil)
        // --temperatures: each entry in sampling.temperature's range, as written.
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--temperatures", "0.5,11"] + samples,
                         "--temperatures: each must be in 0.01 … 10 (as sampling.temperature), got \"11\"")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--temperatures", "0.5,hot"] + samples,
                         "--temperatures: \"hot\" is not a number")
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--temperatures", " "] + samples,
                         "--temperatures: an empty list cannot produce a sample")
        #expect(refusal(["eval", scratch.model, "--task", "arith:add2", "--temperatures", "0.01,10"] + samples) == nil)
        expectUsageError(["eval", scratch.model, "--task", "arith:add2", "--temperature", "0.7", "--temperatures", "0.6,1"] + samples,
                         "give --temperature 0.7 or --temperatures, not both")
    }

    // MARK: sft

    private var sft: [String] { ["sft", "--task", "arith:add2", "--init", "tiny", "--out", scratch.root + "/out"] }

    @Test func sftDefaults() throws {
        let command = try parse(sft, as: SFTCommand.self)
        #expect(command.task?.description == "arith:add2" && command.data == nil && command.initialize == "tiny")
        #expect(command.count == 1000 && command.evalCount == 32 && command.evalData == nil && !command.bos)
        #expect(command.model == nil && command.tokenizer == nil && !command.force)
        #expect(command.epochs == nil && command.steps == nil && command.batchSize == 16)
        #expect(command.lr == 3e-4 && command.warmup == 0 && command.schedule == .cosine)
        #expect(command.weightDecay == 0 && command.maxGradNorm == 1 && command.microBatchTokens == 8192 && command.seed == 0)
        #expect(command.evalEvery == 0 && command.saveEvery == 0 && command.threadOptions.threads == nil)
    }

    @Test func sftChoices() throws {
        #expect(try parse(sft + ["--schedule", "constant"], as: SFTCommand.self).schedule == .constant)
        #expect(try parse(sft + ["--schedule", "cosine"], as: SFTCommand.self).schedule == .cosine)
        expectUsageError(sft + ["--schedule", "linear"], "The value 'linear' is invalid for '--schedule <schedule>'. Please provide one of 'constant' and 'cosine'.")
        for shape in ModelShape.builtIn.map(\.name) {
            #expect(try parse(["sft", "--task", "arith:add2", "--init", shape, "--out", scratch.root + "/out"], as: SFTCommand.self).initialize == shape)
        }
        expectUsageError(["sft", "--task", "arith:add2", "--init", "huge", "--out", scratch.root + "/out"],
                         "--init huge is neither a shape (tiny, small, smollm2-135m) nor a readable config.json")
        let out = ["--init", "tiny", "--out", scratch.root + "/out"]
        #expect(try parse(["sft", "--task", "arith:add1x4", "--completion", "worked"] + out, as: SFTCommand.self).completion == .worked)
        #expect(try parse(["sft", "--task", "arith:add1x4"] + out, as: SFTCommand.self).completion == .answer)
        expectUsageError(["sft", "--data", scratch.pairs, "--completion", "worked"] + out,
                         "--completion worked goes with --task; a --data file holds its own completions")
        expectUsageError(["sft", "--task", "arith:all1", "--completion", "worked"] + out,
                         "--completion worked needs an add, sub or mix spec: arith:all1 has products")
        expectUsageError(["sft", "--task", "arith:add2", "--completion", "steps"] + out, "Please provide one of 'answer' and 'worked'")
    }

    @Test func sftExclusiveAndRequiredOptions() throws {
        let out = ["--out", scratch.root + "/out"]
        expectUsageError(["sft", "--task", "arith:add2", "--init", "tiny"], "Missing expected argument '--out <dir>'")
        expectUsageError(["sft", "--init", "tiny"] + out, "give --data FILE or --task SPEC")
        expectUsageError(["sft", "--data", scratch.pairs, "--task", "arith:add2", "--init", "tiny"] + out, "give only one of --data and --task")
        expectUsageError(["sft", "--data", scratch.missing, "--init", "tiny"] + out, "cannot read --data \(scratch.missing)")
        expectUsageError(["sft", "--task", "arith:add2", "--eval-data", scratch.pairs, "--init", "tiny"] + out, "--eval-data goes with --data")
        expectUsageError(["sft", "--data", scratch.pairs, "--eval-every", "5", "--init", "tiny"] + out, "--eval-every needs held-out examples")
        expectUsageError(["sft", "--data", scratch.pairs, "--count", "5", "--init", "tiny"] + out, "--count goes with --task")
        expectUsageError(["sft", "--data", scratch.pairs, "--eval-count", "5", "--init", "tiny"] + out, "--eval-count goes with --task")
        expectUsageError(["sft", "--task", "arith:add2"] + out, "give --model DIR (fine-tune) or --init SHAPE (random weights)")
        expectUsageError(["sft", "--task", "arith:add2", "--model", scratch.model, "--init", "tiny"] + out, "give only one of --model and --init")
        expectUsageError(["sft", "--task", "arith:add2", "--model", scratch.missing] + out, "--model \(scratch.missing) does not exist")
        expectUsageError(["sft", "--task", "arith:add2", "--model", scratch.model, "--tokenizer", scratch.pairs] + out, "--tokenizer goes with --init")
        expectUsageError(sft + ["--epochs", "2", "--steps", "3"], "give --epochs or --steps, not both")
        expectUsageError(sft + ["--epochs", "4611686018427387904"], "--epochs must be in 1 … 1000000")
        expectUsageError(sft + ["--steps", "9223372036854775807"], "--steps must be in 1 … 1000000000")
        expectUsageError(sft + ["--lr", "1e300"], "--lr must be in 0 … 1 (as optimizer.learning_rate), got 1e+300")
        #expect(try parse(["sft", "--task", "arith:add2", "--model", scratch.model] + out, as: SFTCommand.self).model == scratch.model)
    }

    @Test func sftRefusesAnOccupiedOut() throws {
        let occupied = ["sft", "--task", "arith:add2", "--init", "tiny", "--out", scratch.run]
        expectUsageError(occupied, "--out \(scratch.run) already holds files; pass --force to replace it")
        #expect(try parse(occupied + ["--force"], as: SFTCommand.self).force)
        expectUsageError(["sft", "--task", "arith:add2", "--init", "tiny", "--out", scratch.pairs], "--out \(scratch.pairs) is a file")
    }

    @Test func sftBadNumbers() {
        expectUsageError(sft + ["--lr", "0"], "--lr must be above 0: supervised training with a learning rate of 0 changes nothing")
        expectUsageError(sft + ["--lr", "fast"], "The value 'fast' is invalid for '--lr")
        expectUsageError(sft + ["--epochs", "0"], "--epochs must be in 1 … 1000000, got 0")
        expectUsageError(sft + ["--steps", "0"], "--steps must be in 1 … 1000000000, got 0")
        expectUsageError(sft + ["--batch-size", "0"], "--batch-size must be at least 1, got 0")
        expectUsageError(sft + ["--warmup=-1"], "--warmup must be ≥ 0, got -1")
        expectUsageError(sft + ["--steps", "2", "--warmup", "3"], "--warmup 3 is longer than --steps 2")
        expectUsageError(sft + ["--weight-decay=-0.1"], "--weight-decay must be ≥ 0")
        expectUsageError(sft + ["--max-grad-norm", "nan"], "--max-grad-norm must be ≥ 0")
        expectUsageError(sft + ["--micro-batch-tokens", "0"], "--micro-batch-tokens must be at least 1")
        expectUsageError(sft + ["--eval-every=-1"], "--eval-every must be ≥ 0, got -1")
        expectUsageError(sft + ["--save-every=-1"], "--save-every must be ≥ 0, got -1")
        expectUsageError(sft + ["--count", "0"], "--count must be at least 1, got 0")
        expectUsageError(sft + ["--eval-count", "0"], "--eval-count must be at least 1, got 0")
        expectUsageError(sft + ["--threads", "0"], "--threads must be at least 1, got 0")
    }

    // MARK: errors while running

    /// A command that fails after validation reports `Error: <description>` and exits with status 1.
    @Test func runFailureIsReportedWithStatusOne() throws {
        let command = try parse(["score", "--model", scratch.model, "--ids", "1,2"], as: ScoreCommand.self)
        #expect(throws: (any Error).self) { try command.run() }
        do {
            try command.run()
        } catch {
            #expect(Troupe.exitCode(for: error) == .failure)
            #expect(Troupe.fullMessage(for: error).hasPrefix("Error: "))
            #expect(Troupe.message(for: error).contains("config.json"), "message: \(Troupe.message(for: error))")
        }
    }

    /// Errors of a run name the option at fault: which --prompt is too long, which --init file is bad.
    @Test func runErrorsNameTheOption() throws {
        let arithBase = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models/arith-base").path
        let long = try parse(["generate", "--model", arithBase, "--prompt", "1+1=", "--prompt", String(repeating: "7", count: 600)],
                             as: GenerateCommand.self)
        #expect(failure { try long.run() }.hasPrefix("--prompt 2 is 60"), "\(failure { try long.run() })")
        let shape = scratch.root + "/shape.json"
        try Data("{\"num_attention_heads\": 0}".utf8).write(to: URL(fileURLWithPath: shape))
        let sft = try parse(["sft", "--task", "arith:add2", "--init", shape, "--out", scratch.root + "/sft-out", "--steps", "1"], as: SFTCommand.self)
        #expect(failure { try sft.run() }.hasPrefix("--init \(shape): "), "\(failure { try sft.run() })")
        // --bos asks for a token a Qwen2-style tokenizer does not have: refused, not ignored.
        let qwen2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TroupeTokenizerTests/Goldens/qwen2-style/tokenizer.json").path
        let bos = try parse(["tokenize", "--tokenizer", qwen2, "--bos", "hi"], as: TokenizeCommand.self)
        #expect(failure { try bos.run() } == "--bos: the tokenizer of \(qwen2) has no BOS token")
    }

    private func failure(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return Troupe.message(for: error) }
    }

    /// A task file's task without an answer is named by its line: a generated id alone would not find it.
    @Test func anUnansweredTaskIsNamedByItsLine() throws {
        let file = scratch.root + "/half-labelled.jsonl"
        try Data("{\"prompt\": \"1+1=\", \"answer\": 2}\n\n{\"prompt\": \"2+2=\"}\n".utf8).write(to: URL(fileURLWithPath: file))
        let command = try parse(["eval", scratch.model, "--file", file, "--samples", "1"], as: EvalCommand.self)
        do {
            try command.run()
            Issue.record("a task without an answer was evaluated")
        } catch {
            #expect(Troupe.exitCode(for: error) == .failure)
            #expect(Troupe.message(for: error).contains("1 of 2 tasks in \(file) have no \"answer\" (the first: line 3, id \"prompt-"),
                    "message: \(Troupe.message(for: error))")
        }
    }
}
