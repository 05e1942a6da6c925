import Foundation
import Testing
import TroupeModel
import TroupeTokenizer

/// `troupe run` and `troupe eval` on Hugging Face instruct-model directories (random weights in the
/// real layout, TinyHuggingFaceModel) with a JSONL task of `\boxed{}` math prompts: the prompts the
/// model saw are the chat template's rendering, the sampler's and the learner's log-probs agree, and
/// unsupported directories are refused before anything is written.
extension RuntimeIntegrationTests {
    static let boxedSystemPrompt = "Please reason step by step, and put your final answer within \\boxed{}."

    static let mathTasks = [
        (id: "sum", prompt: "What is 2+3?", answer: "5"),
        (id: "half", prompt: "What is half of 18?", answer: "9"),
        (id: "frac", prompt: "Simplify 6/8.", answer: "\\frac{3}{4}"),
        (id: "square", prompt: "What is 7 squared?", answer: "49"),
    ]

    static func writeMathTasks(to path: String) throws {
        let lines = try mathTasks.map { task in
            String(decoding: try JSONSerialization.data(withJSONObject: ["id": task.id, "prompt": task.prompt, "answer": task.answer],
                                                        options: [.sortedKeys]), as: UTF8.self)
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
    }

    @Test(arguments: [TinyHuggingFaceModel.qwen2Chat, .llamaChat, .qwen3Chat, .llama2Chat])
    func huggingFaceChatModelRunsAndEvaluates(model: TinyHuggingFaceModel) throws {
        let run = try IntegrationRun(model.name)
        defer { run.finish() }
        let modelDirectory = run.directory + "/model", tasks = run.directory + "/math.jsonl"
        try model.write(to: modelDirectory)
        try Self.writeMathTasks(to: tasks)
        // The Qwen2 and Llama 2 runs give the system prompt; the Llama run lets the template write its default one.
        let system: String? = model == .qwen2Chat || model == .llama2Chat ? Self.boxedSystemPrompt : nil
        let settings = ["run.directory=\(run.runDirectory)", "run.max_steps=3", "sampling.group_size=4", "learner.batch_groups=2",
                        "sampling.max_new_tokens=12", "eval.samples=2", "eval.every=0",
                        "learner.shared_memory_dir=\(run.sharedMemoryDirectory)"]
            + (system.map { ["task.system_prompt=\($0)"] } ?? []) + run.ports.overrides
        let (status, child) = try run.runToCompletion("run", ["run", "--model", modelDirectory, "--file", tasks, "--actors", "2",
                                                             "--insecure-plaintext"] + settings.flatMap { ["--set", $0] },
                                                      within: 300)
        try run.require(status == .code(0), "troupe run ended with \(status?.description ?? "a timeout"): \(child.stderr.suffix(2000))")
        Self.expectConsistentEnd(run, steps: 3)

        // The prompts the model saw: the run log's prompt tokens are the template's rendering, with the
        // ChatML markers (Llama 2's <s>) as special tokens, not spelled out as text.
        let tokenizer = try loadTokenizer(modelDirectory: modelDirectory)
        let marker = try #require(tokenizer.id(forSpecial: model == .llama2Chat ? "<s>" : "<|im_start|>"))
        let accepted = run.records.of("group_accepted")
        try run.require(!accepted.isEmpty, "no accepted groups")
        for record in accepted {
            let promptId = try #require(record.int("prompt_id"))
            let tokens = Self.int32s(base64: try #require(record.string("prompt")))
            var expected = model.expectedPrompt(Self.mathTasks[promptId].prompt, system: system)
            // Llama 2's normalizer starts the text after <s> with "▁", which decodes to a space (as in transformers).
            if model == .llama2Chat { expected = "<s> " + expected.dropFirst(3) }
            let seen = try tokenizer.decode(tokens)
            run.check(seen == expected, "prompt \(promptId) as the model saw it: \(seen.debugDescription)")
            run.check(tokens.filter { $0 == marker }.count == (model == .llama2Chat ? 1 : 3),
                      "prompt \(promptId): the template's marker is not a special token in \(tokens)")
        }

        // Sampler and learner agree: on-policy steps recompute the actors' log-probs at the same weights.
        let steps = Self.metricLines(run.runDirectory + "/metrics.jsonl").filter { $0["mismatch_kl"] != nil }
        run.check(steps.count == 3, "metrics.jsonl has \(steps.count) step lines with mismatch_kl, expected 3")
        for line in steps {
            let kl = (line["mismatch_kl"] as? NSNumber)?.doubleValue ?? .nan
            let ratioMax = (line["ratio_max"] as? NSNumber)?.doubleValue ?? .nan
            let ratioMin = (line["ratio_min"] as? NSNumber)?.doubleValue ?? .nan
            run.check(abs(kl) <= 1e-5, "mismatch_kl \(kl) at step \(line["step"] ?? "?")")
            run.check(abs(ratioMax - 1) <= 1e-3 && abs(ratioMin - 1) <= 1e-3, "importance ratios [\(ratioMin), \(ratioMax)] at step \(line["step"] ?? "?")")
        }
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.runDirectory + "/summary.json")))
            as? [String: Any])
        run.check(summary["before"] != nil && summary["after"] != nil, "the run was not evaluated before and after: \(summary)")
        run.check(FileManager.default.fileExists(atPath: run.runDirectory + "/model/tokenizer_config.json"),
                  "the trained model directory lacks the tokenizer_config.json (and its chat template)")

        // troupe eval on the same directory: the same rendering, no newline stop, answers from the whole completion.
        // The Qwen3 run gives a chat date, which this template does not write: the prompts stay the same.
        let date: String? = model == .qwen3Chat ? "2026-12-06" : nil
        let (evalStatus, evalChild) = try run.runToCompletion("eval", ["eval", "--model", modelDirectory, "--file", tasks, "--samples", "2",
                                                                       "--max-new-tokens", "12", "--json", "--per-prompt"]
                                                                  + (system.map { ["--system-prompt", $0] } ?? [])
                                                                  + (date.map { ["--chat-date", $0] } ?? []), within: 120)
        try run.require(evalStatus == .code(0), "troupe eval ended with \(evalStatus?.description ?? "a timeout")")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(evalChild.stdout.utf8)) as? [String: Any])
        run.check(report["prompt_format"] as? String == "chat_template", "eval prompt_format \(report["prompt_format"] ?? "nil")")
        run.check((report["stop_sequences"] as? [String]) == [], "eval stop_sequences \(report["stop_sequences"] ?? "nil")")
        run.check(report["chat_date"] as? String == date.map { $0 + "T00:00:00" }, "eval chat_date \(report["chat_date"] ?? "nil")")
        let perPrompt = try #require(report["per_prompt"] as? [[String: Any]])
        run.check(perPrompt.map { $0["prompt"] as? String } == Self.mathTasks.map { model.expectedPrompt($0.prompt, system: system) },
                  "eval prompts: \(perPrompt.map { $0["prompt"] ?? "nil" })")
    }

    /// `task.bad_lines = "skip"`: the run goes on without the bad lines, and says which it left out, on the
    /// terminal and in the learner's log.
    @Test func skippedTaskFileLinesAreNamed() throws {
        let run = try IntegrationRun("skipped-lines")
        defer { run.finish() }
        let tasks = run.directory + "/tasks.jsonl"
        try Data("{\"prompt\": \"What is 2+3?\\n\", \"answer\": \"5\"}\nnot json\n{\"prompt\": \"What is 4+4?\\n\", \"answer\": \"8\"}\n".utf8)
            .write(to: URL(fileURLWithPath: tasks))
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(TroupeBinary.repository.path)/models/arith-base",
                        "run.max_steps=1", "task.bad_lines=skip",
                        "learner.shared_memory_dir=\(run.sharedMemoryDirectory)"] + run.ports.overrides
        let (status, child) = try run.runToCompletion("run", ["run", "--file", tasks, "--no-eval", "--insecure-plaintext"]
                                                          + settings.flatMap { ["--set", $0] }, within: 120)
        try run.require(status == .code(0), "troupe run ended with \(status?.description ?? "a timeout"): \(child.stderr.suffix(2000))")
        let named = "line 2: broken JSON"
        run.check(child.stderr.contains("skipped a bad line of the task file") && child.stderr.contains(named),
                  "troupe run did not name the skipped line: \(child.stderr.suffix(2000))")
        let learnerLog = (try? String(contentsOfFile: run.runDirectory + "/logs/learner.log", encoding: .utf8)) ?? ""
        run.check(learnerLog.contains(named), "the learner's log does not name the skipped line")
    }

    /// Refusals: each unsupported directory or setting stops `troupe run` with a message naming the
    /// problem and a non-zero status, before the run directory is written; `troupe eval` refuses too.
    @Test func unsupportedHuggingFaceDirectoriesAreRefusedBeforeAnythingIsWritten() throws {
        let run = try IntegrationRun("hf-refusals")
        defer { run.finish() }
        let good = run.directory + "/good", tasks = run.directory + "/math.jsonl"
        try TinyHuggingFaceModel.qwen2Chat.write(to: good)
        try Self.writeMathTasks(to: tasks)

        func variant(_ name: String, _ change: (String) throws -> Void) throws -> String {
            let path = run.directory + "/" + name
            try FileManager.default.copyItem(atPath: good, toPath: path)
            try change(path)
            return path
        }
        func editJSON(_ file: String, _ edit: (inout [String: Any]) -> Void) throws {
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as! [String: Any]
            edit(&object)
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: file))
        }
        let cases: [(name: String, directory: String, extra: [String], message: String)] = [
            ("gemma", try variant("gemma") { try editJSON($0 + "/config.json") { $0["model_type"] = "gemma" } }, [],
             "config.json field model_type: gemma is not a Llama-family model"),
            ("mistral", try variant("mistral") { try editJSON($0 + "/config.json") { $0["model_type"] = "mistral"; $0["sliding_window"] = 64 } }, [],
             "config.json field sliding_window: 64: sliding-window attention is not supported"),
            ("unigram", try variant("unigram") {
                try editJSON($0 + "/tokenizer.json") { $0["model"] = ["type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]]] }
            }, [], "tokenizer.json: model type Unigram (only BPE) is not supported"),
            ("shard", try variant("shard") { try FileManager.default.removeItem(atPath: $0 + "/model-00002-of-00002.safetensors") }, [],
             "missing file: "),
            ("weights", try variant("weights") {
                try FileManager.default.removeItem(atPath: $0 + "/model.safetensors.index.json")
                for i in 1...2 { try FileManager.default.removeItem(atPath: $0 + "/model-0000\(i)-of-00002.safetensors") }
            }, [], "missing file: "),
            ("macro", try variant("macro") {
                try editJSON($0 + "/tokenizer_config.json") { $0["chat_template"] = "{% macro turn(m) %}{{ m.content }}{% endmacro %}" }
            }, [], "chat template line 1: the {% macro %} statement is not supported"),
            ("raises", try variant("raises") {
                try editJSON($0 + "/tokenizer_config.json") { $0["chat_template"] = "{{ raise_exception('roles must alternate') }}" }
            }, [], "\(run.directory)/raises/tokenizer_config.json: the chat template refused the conversation (raise_exception at line 1): roles must alternate"),
            ("no-template", try variant("no-template") { try editJSON($0 + "/tokenizer_config.json") { $0["chat_template"] = nil } },
             ["task.system_prompt=Be brief."], "has no chat template"),
            ("injection", good, ["task.file=\(try Self.injectionTasks(run.directory))"],
             "contains the special token text \"<|im_end|>\""),
        ]
        for c in cases {
            let runDirectory = run.directory + "/run-" + c.name
            let settings = ["run.directory=\(runDirectory)"] + c.extra + run.ports.overrides
            let (status, child) = try run.runToCompletion("run-\(c.name)", ["run", "--model", c.directory, "--file", tasks, "--insecure-plaintext"]
                                                          + settings.flatMap { ["--set", $0] }, within: 60)
            run.check(status != nil && status != .code(0), "\(c.name): troupe run ended with \(status?.description ?? "a timeout")")
            run.check(child.stderr.contains(c.message), "\(c.name): the error does not say \(c.message.debugDescription): \(child.stderr)")
            run.check(!FileManager.default.fileExists(atPath: runDirectory), "\(c.name): the run directory was written")
        }
        // A learner started on its own (a cluster's) refuses as early.
        for c in cases where ["gemma", "macro", "injection"].contains(c.name) {
            let runDirectory = run.directory + "/learner-" + c.name
            let settings = ["run.directory=\(runDirectory)", "model.path=\(c.directory)", "task.file=\(tasks)", "task.spec=null"]
                + c.extra + run.ports.overrides
            let (status, child) = try run.runToCompletion("learner-\(c.name)", ["learner"] + IntegrationRun.plaintext
                                                          + settings.flatMap { ["--set", $0] }, within: 60)
            run.check(status != nil && status != .code(0), "learner \(c.name): ended with \(status?.description ?? "a timeout")")
            run.check((child.stdout + child.stderr).contains(c.message), "learner \(c.name): the error does not say \(c.message.debugDescription): \(child.stderr)")
            run.check(!FileManager.default.fileExists(atPath: runDirectory), "learner \(c.name): the run directory was written")
        }
        for c in cases where c.extra.isEmpty {
            let (status, child) = try run.runToCompletion("eval-\(c.name)", ["eval", "--model", c.directory, "--file", tasks, "--samples", "1"],
                                                          within: 60)
            run.check(status != nil && status != .code(0), "eval \(c.name): ended with \(status?.description ?? "a timeout")")
            run.check(child.stderr.contains(c.message), "eval \(c.name): the error does not say \(c.message.debugDescription): \(child.stderr)")
        }
    }

    static func injectionTasks(_ directory: String) throws -> String {
        let path = directory + "/injection.jsonl"
        try Data("{\"prompt\": \"What is 1+1?<|im_end|>\", \"answer\": \"2\"}\n".utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func int32s(base64: String) -> [Int32] {
        guard let data = Data(base64Encoded: base64) else { return [] }
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) } }
    }

    static func metricLines(_ path: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}
