import Dispatch
import TroupeModel
import TroupeRL
import TroupeRuntime
import TroupeTasks
import TroupeTensor
import TroupeTokenizer

/// Measures a model on labelled task items: k sampled completions per prompt, the answer extracted
/// from each, then pass@1, pass@k and maj@k with 95% intervals (`Evaluation.evaluate`, docs/eval.md).
///
/// Reproducible: sample j of prompt i is drawn from its own stream seeded by
/// `Xoshiro256(mixing: [seed, i, j])`, and the sampler is batch-invariant (a sample depends only on its
/// seed and the weights), so the result depends neither on the batch size nor on the thread count.
package final class Evaluator {
    package let model: LlamaModel
    package let tokenizer: any Tokenizer
    /// How task prompts become token ids (plain text, or through a chat template).
    package let promptFormat: PromptFormat
    private let sampler: Sampler
    /// Left out of answer lines: an EOS (or any special token) is not part of the answer.
    private let specialTokens: Set<Int32>

    /// Throws when the tokenizer can emit ids the model has no embedding for (it belongs to another model).
    package init(model: LlamaModel, tokenizer: any Tokenizer, promptFormat: PromptFormat = .plain) throws {
        guard tokenizer.vocabularySize <= model.config.vocabularySize else {
            throw EvaluatorError.tokenizerMismatch(tokenizerSize: tokenizer.vocabularySize,
                                                   modelSize: model.config.vocabularySize)
        }
        self.model = model
        self.tokenizer = tokenizer
        self.promptFormat = promptFormat
        sampler = Sampler(model: model)
        specialTokens = Set(tokenizer.specialTokens.values)
    }

    /// Samples `settings.samplesPerPrompt` completions for every item and scores their answers against
    /// the items' reference answers. `progress` is called before the first batch and after each one.
    package func evaluate(_ items: [TaskItem], settings: EvaluationSettings,
                         progress: ((EvaluationProgress) -> Void)? = nil) throws -> ModelEvaluation {
        let start = monotonicSeconds()
        try settings.validate()
        let prompts = try encode(items, settings: settings)
        let k = settings.samplesPerPrompt
        let parameters = SamplingParameters(temperature: settings.temperature, maxNewTokens: settings.maxNewTokens,
                                            stopTokens: model.config.defaultStopTokens(tokenizer: tokenizer), stopStrings: settings.stopSequences)
        try parameters.validate(vocabularySize: model.config.vocabularySize)

        // Every (prompt, sample) pair in order, cut into batches of at most `batchSize` sequences. A
        // prompt's samples usually share a batch, so the sampler prefills the prompt once for all of them.
        let pairs = (0..<items.count).flatMap { p in (0..<k).map { (prompt: p, sample: $0) } }
        var answers = items.map { _ in [String?](repeating: nil, count: k) }
        var generatedTokens = 0
        var lengthFinished = 0
        var samplingSeconds = 0.0
        progress?(EvaluationProgress(promptsDone: 0, promptsTotal: items.count, generatedTokens: 0, samplingSeconds: 0))
        for batchStart in stride(from: 0, to: pairs.count, by: settings.batchSize) {
            let batch = pairs[batchStart..<min(batchStart + settings.batchSize, pairs.count)]
            let requests = batch.map { pair in
                SampleRequest(prompt: prompts[pair.prompt], seed: Self.sampleSeed(run: settings.seed, prompt: pair.prompt,
                                                                                  sample: pair.sample),
                              temperature: settings.temperature(ofSample: pair.sample))
            }
            let batchStartTime = monotonicSeconds()
            let completions = try sampler.generate(requests, parameters: parameters, tokenBytes: tokenizer.bytes(of:))
            samplingSeconds += monotonicSeconds() - batchStartTime
            for (pair, completion) in zip(batch, completions) {
                generatedTokens += completion.tokens.count
                if completion.finishReason == .length { lengthFinished += 1 }
                answers[pair.prompt][pair.sample] = AnswerExtractor.extract(answerText(of: completion.tokens, settings: settings))
            }
            // Prompts whose last sample is done; the final batch always completes them all.
            let lastPair = batch.last!
            progress?(EvaluationProgress(promptsDone: lastPair.sample == k - 1 ? lastPair.prompt + 1 : lastPair.prompt,
                                         promptsTotal: items.count, generatedTokens: generatedTokens,
                                         samplingSeconds: samplingSeconds))
        }
        let samples = zip(items, answers).map { item, sampled in
            PromptSamples(id: item.id, referenceAnswer: item.answer!, sampledAnswers: sampled)
        }
        let result = try Evaluation.evaluate(samples, k: k, canonicalKey: AnswerEquivalence.canonicalKey)
        let wallSeconds = monotonicSeconds() - start
        return ModelEvaluation(result: result, samples: samples, generatedTokens: generatedTokens,
                               lengthFinishedSamples: lengthFinished, samplingSeconds: samplingSeconds,
                               wallSeconds: wallSeconds)
    }

    /// The seed of sample `sample` of prompt `prompt` (0-based indices) in a run seeded with `run`.
    package static func sampleSeed(run: UInt64, prompt: Int, sample: Int) -> UInt64 {
        var rng = Xoshiro256(mixing: [run, UInt64(prompt), UInt64(sample)])
        return rng.next()
    }

    /// Token ids of each prompt; refuses items without an answer, empty prompts and prompts that leave
    /// no room for a completion, naming the item.
    private func encode(_ items: [TaskItem], settings: EvaluationSettings) throws -> [[Int32]] {
        guard !items.isEmpty else { throw EvaluatorError.noItems }
        return try items.map { item in
            guard let answer = item.answer, !AnswerEquivalence.canonicalKey(answer).isEmpty else {
                throw EvaluatorError.missingAnswer(id: item.id)
            }
            // Task text is data, not markup: a plain prompt that spells a special token stays plain text,
            // and a chat format refuses one.
            let tokens: [Int32]
            do {
                tokens = try promptFormat.tokens(for: item.prompt, tokenizer: tokenizer, addingBos: settings.addBos)
            } catch {
                throw EvaluatorError.unformattablePrompt(id: item.id, reason: "\(error)")
            }
            guard !tokens.isEmpty else { throw EvaluatorError.emptyPrompt(id: item.id) }
            guard tokens.count < model.config.maxPositions else {
                throw EvaluatorError.promptTooLong(id: item.id, tokens: tokens.count, maxPositions: model.config.maxPositions)
            }
            return tokens
        }
    }

    /// The completion's text before its first stop sequence, special tokens left out: the answer line
    /// (`TaskFormat`), or the whole completion when there are no stop sequences.
    private func answerText(of tokens: [Int32], settings: EvaluationSettings) -> String {
        CompletionText(tokens, tokenizer: tokenizer, leavingOut: specialTokens, stopSequences: settings.stopSequences).beforeStop
    }
}

/// How an evaluation samples.
package struct EvaluationSettings: Sendable, Equatable {
    /// k: completions per prompt; pass@k and maj@k use all of them.
    package var samplesPerPrompt: Int
    package var temperature: Float
    /// Multi-temperature sampling: sample j of each prompt at `temperatures[j mod n]`, all k voting
    /// in one maj@k; nil: every sample at `temperature`.
    package var temperatures: [Float]?
    package var maxNewTokens: Int
    package var seed: UInt64
    /// Most sequences per sampler call. Larger batches decode faster per token (one matrix product per
    /// step for all rows) and hold more KV cache; the result does not depend on it.
    package var batchSize: Int
    /// Prepend the tokenizer's BOS token to each prompt, as `troupe sft --bos` does in training.
    package var addBos: Bool
    /// Texts that end a completion; the answer is extracted from the text before the first one.
    /// The default, a newline, is the built-in tasks' answer line; none: the model's stop tokens end
    /// it and the answer comes from the whole completion (e.g. its last `\boxed{}`).
    package var stopSequences: [String]

    package static let defaultBatchSize = 64

    package init(samplesPerPrompt: Int, temperature: Float = 1, temperatures: [Float]? = nil, maxNewTokens: Int = 16, seed: UInt64 = 0,
                batchSize: Int = EvaluationSettings.defaultBatchSize, addBos: Bool = false,
                stopSequences: [String] = [TaskFormat.stopSequence]) {
        self.samplesPerPrompt = samplesPerPrompt
        self.temperature = temperature
        self.temperatures = temperatures
        self.maxNewTokens = maxNewTokens
        self.seed = seed
        self.batchSize = batchSize
        self.addBos = addBos
        self.stopSequences = stopSequences
    }

    /// The temperature of sample j of every prompt.
    package func temperature(ofSample j: Int) -> Float {
        temperatures.map { $0[j % $0.count] } ?? temperature
    }

    package func validate() throws {
        guard samplesPerPrompt >= 1 else {
            throw EvaluatorError.invalidSetting(name: "samples", reason: "must be at least 1 (got \(samplesPerPrompt))")
        }
        guard temperature.isFinite && temperature > 0 else {
            throw EvaluatorError.invalidSetting(name: "temperature", reason: "must be finite and > 0 (got \(temperature))")
        }
        if let temperatures {
            guard !temperatures.isEmpty else {
                throw EvaluatorError.invalidSetting(name: "temperatures", reason: "an empty list cannot produce a sample; give at least one")
            }
            for t in temperatures where !(t.isFinite && t > 0) {
                throw EvaluatorError.invalidSetting(name: "temperatures", reason: "each must be finite and > 0 (got \(t))")
            }
            guard temperatures.count <= samplesPerPrompt else {
                throw EvaluatorError.invalidSetting(name: "temperatures", reason: "\(temperatures.count) temperatures need at least as many samples per prompt (got \(samplesPerPrompt))")
            }
        }
        guard maxNewTokens >= 1 else {
            throw EvaluatorError.invalidSetting(name: "max_new_tokens", reason: "must be at least 1 (got \(maxNewTokens))")
        }
        guard batchSize >= 1 else {
            throw EvaluatorError.invalidSetting(name: "batch_size", reason: "must be at least 1 (got \(batchSize))")
        }
    }
}

/// How far an evaluation has come, for progress displays.
package struct EvaluationProgress: Sendable, Equatable {
    /// Prompts whose every sample is done.
    package let promptsDone: Int
    package let promptsTotal: Int
    package let generatedTokens: Int
    package let samplingSeconds: Double

    package var tokensPerSecond: Double { samplingSeconds > 0 ? Double(generatedTokens) / samplingSeconds : 0 }
}

/// The outcome of `Evaluator.evaluate`.
package struct ModelEvaluation: Sendable {
    /// pass@1, pass@k, maj@k with intervals, valid-answer fraction, per-prompt outcomes.
    package let result: EvaluationResult
    /// The extracted answers (nil: none found), per prompt in item order.
    package let samples: [PromptSamples]
    /// Completion tokens sampled, stop tokens included.
    package let generatedTokens: Int
    /// Samples cut off by `maxNewTokens` (or the model's position limit) before their answer line ended.
    package let lengthFinishedSamples: Int
    /// Time inside the sampler.
    package let samplingSeconds: Double
    /// Time of the whole evaluation: encoding, sampling, extraction.
    package let wallSeconds: Double

    /// Sampled tokens per second of sampling time (0 when nothing was timed).
    package var tokensPerSecond: Double { samplingSeconds > 0 ? Double(generatedTokens) / samplingSeconds : 0 }
    /// Mean completion length in tokens, stop tokens included: what an early-exit method shortens.
    package var meanCompletionTokens: Double { sampleCount > 0 ? Double(generatedTokens) / Double(sampleCount) : 0 }
    package var promptCount: Int { samples.count }
    package var sampleCount: Int { samples.reduce(0) { $0 + $1.sampledAnswers.count } }
}

package enum EvaluatorError: Error, Equatable, CustomStringConvertible {
    case noItems
    case missingAnswer(id: String)
    case emptyPrompt(id: String)
    case promptTooLong(id: String, tokens: Int, maxPositions: Int)
    case tokenizerMismatch(tokenizerSize: Int, modelSize: Int)
    case invalidSetting(name: String, reason: String)
    case unformattablePrompt(id: String, reason: String)

    /// The task item the error is about, if it is about one.
    package var itemId: String? {
        switch self {
        case let .missingAnswer(id), let .emptyPrompt(id), let .promptTooLong(id, _, _), let .unformattablePrompt(id, _): return id
        case .noItems, .tokenizerMismatch, .invalidSetting: return nil
        }
    }

    package var description: String {
        switch self {
        case .noItems:
            return "nothing to evaluate: no task items"
        case let .missingAnswer(id):
            return "task \"\(id)\" has no reference answer; evaluation needs labelled tasks (an \"answer\" on every line)"
        case let .emptyPrompt(id):
            return "task \"\(id)\": the prompt encodes to no tokens"
        case let .promptTooLong(id, tokens, maxPositions):
            return "task \"\(id)\": the prompt is \(tokens) tokens, leaving no room for an answer within the model's "
                + "\(maxPositions) positions"
        case let .tokenizerMismatch(tokenizerSize, modelSize):
            return "the tokenizer has \(tokenizerSize) ids but the model's vocab_size is \(modelSize); "
                + "the tokenizer belongs to another model"
        case let .invalidSetting(name, reason):
            return "\(name) \(reason)"
        case let .unformattablePrompt(id, reason):
            return "task \"\(id)\": \(reason)"
        }
    }
}
