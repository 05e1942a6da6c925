import Foundation
import TroupeJSON
import TroupeModel
import TroupeRL
import TroupeTasks
import TroupeTokenizer
import TroupeWire

/// One prompt of a run, tokenized; its id is its index in the run's task.
package struct PromptEntry: Sendable, Equatable {
    package var id: UInt64
    package var text: String
    package var tokens: [Int32]
    package init(id: UInt64, text: String, tokens: [Int32]) {
        self.id = id
        self.text = text
        self.tokens = tokens
    }
}

/// What a run trains on: the prompts (tokenized, answers held back in test-time mode) and, separately,
/// the answer key that only monitoring may read.
package struct RunPrompts {
    package var entries: [PromptEntry]
    /// Task item id per prompt id.
    package var itemIds: [String]
    /// Held-back answers by prompt id; never given to the learner's core, the trainer or actors in
    /// label-free mode.
    package var answerKey: [UInt64: String]
    /// Answers given to actors (verifiable rewards), empty in label-free mode.
    package var visibleAnswers: [UInt64: String]
    package var skippedLines: [String]
    /// How the prompts were made from the task's text.
    package var format: PromptFormat
    /// `task.count` when the task file holds fewer usable prompts (the run takes them all).
    package var countAskedOfFile: Int?

    /// What a user should hear about the prompts: each task-file line left out, a file with fewer prompts
    /// than `task.count`, and a chat template whose date no `task.chat_date` gave.
    package func report(to console: Console, taskFile: String?) {
        if let notice = format.undatedTemplateNotice { console.info(notice) }
        if let asked = countAskedOfFile {
            console.info("the task file holds \(entries.count) usable prompts, fewer than task.count = \(asked): the run takes them all",
                         ["file": .string(taskFile ?? "")])
        }
        for problem in skippedLines {
            console.warn("skipped a bad line of the task file (task.bad_lines = \"skip\")",
                         ["file": .string(taskFile ?? ""), "problem": .string(problem)])
        }
    }
}

package enum RunSetup {
    /// A serial run's exit phrase as tokens, checked against the model: not empty, without the model's
    /// stop token, and the longest exit (the longest prompt, a path prefix of `max_new_tokens` − 1, the
    /// phrase and the answer) within its context.
    package static func serialExitPhrase(_ config: RunConfig, tokenizer: any Tokenizer, model: ModelConfig, prompts: RunPrompts) throws -> [Int32] {
        // The exit phrase is configuration, not task data: special-token text in it is the special token.
        let phrase = tokenizer.encode(config.sampling.serialExitPhrase, addingBos: false, recognizingSpecialTokens: true)
        let stops = model.defaultStopTokens(tokenizer: tokenizer)
        if let stop = phrase.first(where: stops.contains) {
            throw ConfigError(key: "sampling.serial_exit_phrase", problem: "holds the model's stop token \(stop), which would end every exit before its answer")
        }
        if phrase.isEmpty { throw ConfigError(key: "sampling.serial_exit_phrase", problem: "encodes to no tokens") }
        let longest = (prompts.entries.map(\.tokens.count).max() ?? 0) + config.sampling.maxNewTokens - 1 + phrase.count + config.sampling.serialAnswerTokens
        if longest > model.maxPositions {
            throw ConfigError(key: "sampling.serial_answer_tokens", problem: "a serial exit of the longest prompt would hold \(longest) tokens (prompt, sampling.max_new_tokens − 1, the exit phrase's \(phrase.count) and sampling.serial_answer_tokens), beyond the model's \(model.maxPositions): lower sampling.serial_answer_tokens or sampling.max_new_tokens")
        }
        return phrase
    }

    /// The model directory's tokenizer, checked against its model: a tokenizer that can emit ids the
    /// model has no embedding for belongs to another model.
    package static func tokenizer(forModelDirectory directory: String, model: ModelConfig) throws -> any Tokenizer {
        let tokenizer = try loadTokenizer(modelDirectory: directory)
        guard tokenizer.vocabularySize <= model.vocabularySize else {
            throw ConfigError(key: "model.path", problem: "\(directory): the tokenizer has \(tokenizer.vocabularySize) ids but the model's vocabulary has \(model.vocabularySize); tokenizer and weights do not belong together")
        }
        return tokenizer
    }

    /// How the run's prompts become token ids: through the model directory's chat template when
    /// `task.chat_template` is "auto" and it has one, else as written. A system prompt without a
    /// template to put it in is an error.
    package static func promptFormat(_ config: RunConfig, tokenizer: any Tokenizer) throws -> PromptFormat {
        guard config.task.chatTemplate == "auto" else { return .plain }
        let date: ChatDate?
        do { date = try config.task.chatDate.map(ChatDate.init(parsing:)) } catch {
            throw ConfigError(key: "task.chat_date", problem: "\(error)")
        }
        do {
            return try .of(modelDirectory: config.model.path, systemPrompt: config.task.systemPrompt, date: date, tokenizer: tokenizer)
        } catch let error as NoChatTemplate {
            throw ConfigError(key: error.setting == .systemPrompt ? "task.system_prompt" : "task.chat_date", problem: "\(error)")
        } catch {
            throw ConfigError(key: "model.path", problem: "\(error)")
        }
    }

    /// `contextLength`: the model's positions; a prompt that fills them leaves nothing to generate.
    package static func prompts(_ config: RunConfig, tokenizer: any Tokenizer, contextLength: Int? = nil) throws -> RunPrompts {
        var items: [TaskItem]
        var skipped: [String] = []
        var fileContents: TaskFileContents?
        if let file = config.task.file {
            let policy: TaskFile.BadLinePolicy = config.task.badLines == "skip" ? .skip : .refuse
            let loaded: TaskFileContents
            do { loaded = try TaskFile.load(contentsOf: URL(fileURLWithPath: file), policy: policy) } catch let error as TaskFileError {
                guard case .badLines = error else { throw error }
                throw ConfigError(key: "task.file", problem: "\(error)\n(task.bad_lines = \"skip\" trains on the good lines)")
            }
            items = loaded.items
            fileContents = loaded
            skipped = loaded.skipped.map(\.description)
            if items.count > config.task.count { items = Array(items.prefix(config.task.count)) }
        } else {
            let spec = try TaskSpec(parsing: config.task.spec ?? "")
            items = try TaskSet.generate(spec, split: config.task.split == "train" ? .train : .test,
                                         count: config.task.count, seed: config.run.seed)
        }
        guard !items.isEmpty else { throw ConfigError(key: "task", problem: "no prompts") }
        // How errors name a prompt: its id, and its line when it comes from a task file.
        func prompt(_ item: TaskItem) -> String { "prompt \(item.id)" + (fileContents?.location(ofId: item.id) ?? "") }
        let reward = config.algorithm.reward.kind
        if !config.task.labelFree && [.verifiable, .serialDecay].contains(reward),
           let unanswered = items.first(where: { AnswerEquivalence.canonicalKey($0.answer ?? "").isEmpty }) {
            throw ConfigError(key: "task", problem: "\(prompt(unanswered)) has no answer, which algorithm.reward.kind \(reward.rawValue) scores samples against: give every prompt an answer, or choose a label-free reward (majority, frequency, novelty)")
        }
        let format = try promptFormat(config, tokenizer: tokenizer)
        var entries: [PromptEntry] = []
        var answers: [UInt64: String] = [:]
        for (i, item) in items.enumerated() {
            let tokens: [Int32]
            do {
                tokens = try format.tokens(for: item.prompt, tokenizer: tokenizer)
            } catch let error as ChatTemplateError where error.isInFile {
                // The model's template failing is not the task's fault; the error names its file.
                throw ConfigError(key: "task.chat_template", problem: "rendering \(prompt(item)): \(error) (\"none\" gives the prompts as written)")
            } catch {
                throw ConfigError(key: "task", problem: "\(prompt(item)): \(error)")
            }
            guard !tokens.isEmpty else { throw ConfigError(key: "task", problem: "\(prompt(item)) is empty") }
            if let contextLength, tokens.count >= contextLength {
                throw ConfigError(key: "task", problem: "\(prompt(item)) holds \(tokens.count) tokens, the model's whole context (max_position_embeddings \(contextLength)): nothing could be generated")
            }
            entries.append(PromptEntry(id: UInt64(i), text: item.prompt, tokens: tokens))
            if let a = item.answer { answers[UInt64(i)] = a }
        }
        return RunPrompts(entries: entries, itemIds: items.map(\.id), answerKey: answers,
                          visibleAnswers: config.task.labelFree ? [:] : answers, skippedLines: skipped, format: format,
                          countAskedOfFile: config.task.file != nil && items.count < config.task.count ? config.task.count : nil)
    }

    /// The files of a model directory an actor needs besides the weights, as text.
    package static func modelFiles(_ directory: String) -> [String: String] {
        var files: [String: String] = [:]
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            if let d = FileManager.default.contents(atPath: directory + "/" + name), let s = String(data: d, encoding: .utf8) {
                files[name] = s
            }
        }
        return files
    }
}

extension RunConfig {
    /// The Welcome's `config_json`: the resolved configuration, the algorithm options its preset and
    /// overrides resolve to (a third-party actor needs the reward definition without knowing the presets),
    /// and the model's files besides its weights.
    /// `relayPeers`: in an authenticated run, every actor's public key by name (actors admit one
    /// another to their relays).
    /// A Welcome too large for an actor to accept is a configuration error at the learner's start, naming
    /// the files (`limit`: the header actors accept, `WireLimits.controlReplies`, less room for the other fields).
    package func welcomeJSON(relayPeers: [String: String]? = nil, limit: Int = RunConfig.welcomeConfigLimit) throws -> String {
        let files = RunSetup.modelFiles(model.path)
        var welcome: [String: JSONValue] = ["config": resolved, "algorithm": algorithm.json,
                                            "model_files": .object(files.mapValues(JSONValue.string))]
        if let relayPeers { welcome["relay_peers"] = .object(relayPeers.mapValues(JSONValue.string)) }
        let bytes = try JSONValue.object(welcome).serialized(compact: true)
        guard bytes.count <= limit else {
            let sizes = files.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.utf8.count) bytes" }.joined(separator: ", ")
            throw ConfigError(key: "model.path", problem: "\(model.path): the Welcome that gives actors the configuration and the model's files "
                              + "(\(sizes)) would hold \(bytes.count) bytes, over the \(limit) an actor accepts")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The most `config_json` bytes a Welcome may carry: the header an actor accepts, less 64 KiB for its other fields.
    package static let welcomeConfigLimit = WireLimits.controlReplies.maxHeaderBytes - 64 << 10

    /// The Welcome's `config_digest`: BLAKE2b-256 of `resolvedJSONData()`, the bytes a new run freezes
    /// as `config.json` (`b2sum -l 256 RUN/config.json` prints it), so peers can tell two runs'
    /// configurations apart without comparing them.
    package var configDigest: Data { Data(Blake2b.hash([UInt8](resolvedJSONData()))) }

    /// The stop sequences the run samples with: a built-in task's answer ends its line; a task file's
    /// prompts stop at the model's stop tokens only.
    package var stopSequences: [String] { task.file == nil ? [TaskFormat.stopSequence] : [] }
}
