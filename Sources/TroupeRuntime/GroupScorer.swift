import TroupeModel
import TroupeProto
import TroupeRL
import TroupeTokenizer
import TroupeWire

/// The run's reward definition applied to one group's completions: the actor scores with it when it
/// samples, and the learner scores again from the tokens it received, so the reward it trains on
/// never rests on an actor's word.
package struct GroupScorer {
    package struct Completion {
        package var tokens: [Int32]
        package var finishReason: TroupeRL.FinishReason
        /// The reward the sampler reported: the value `reward.kind = external` uses, ignored otherwise.
        package var reportedReward: Double?
        package init(tokens: [Int32], finishReason: TroupeRL.FinishReason, reportedReward: Double? = nil) {
            self.tokens = tokens
            self.finishReason = finishReason
            self.reportedReward = reportedReward
        }
    }

    package struct Scored {
        package var answer: String?
        package var reward: Double
        package var components: [String: Double]
    }

    let tokenizer: any Tokenizer
    let options: AlgorithmOptions
    /// Token ids that end a completion (they belong to its tokens, not to its text).
    package let stopTokens: [Int32]

    package init(tokenizer: any Tokenizer, options: AlgorithmOptions, stopTokens: [Int32]) {
        self.tokenizer = tokenizer
        self.options = options
        self.stopTokens = stopTokens
    }

    /// A completion's text through its first stop sequence: the text answers and rewards come from.
    package func text(of tokens: [Int32], stopSequences: [String]) -> String {
        CompletionText(tokens, tokenizer: tokenizer, leavingOut: Set(stopTokens), stopSequences: stopSequences).throughStop
    }

    /// Each completion's answer, reward and reward components, in order.
    package func score(_ completions: [Completion], stopSequences: [String], groundTruth: String?) throws -> [Scored] {
        let texts = completions.map { text(of: $0.tokens, stopSequences: stopSequences) }
        let samples = zip(completions, texts).map { c, text in
            var sample = RewardSample(completion: text, length: c.tokens.count, finishReason: c.finishReason, options: options)
            sample.externalReward = c.reportedReward
            return sample
        }
        let context = RewardContext(groundTruth: groundTruth,
                                    similarities: options.reward.kind == .novelty ? LexicalSimilarity.matrix(texts) : nil)
        let result = try GroupRewards.compute(samples: samples, context: context, options: options)
        return samples.indices.map { i in
            var components: [String: Double] = [:]
            for (name, values) in result.components where i < values.count { components[name] = values[i] }
            return Scored(answer: samples[i].answer, reward: result.rewards[i], components: components)
        }
    }

    /// The raw bytes of `tokens` (stop sequences are matched on bytes while sampling).
    package func bytes(of tokens: [Int32]) -> [UInt8] {
        tokens.flatMap { tokenizer.bytes(of: $0) }
    }
}

/// A sampled completion as text: the bytes of its tokens, without the ids in `leftOut` (stop or
/// special tokens belong to the tokens, not to the text), decoded as UTF-8 as the sampler matches stop
/// sequences on bytes; and the first stop sequence in it (the one that ends first), since the token
/// that completed it may carry text past it. The learner's scoring, the actor's and `Evaluator` cut here.
package struct CompletionText {
    package let text: String
    /// Where the first stop sequence lies in `text` (nil: none does).
    package let stop: Range<String.Index>?

    package init(_ tokens: [Int32], tokenizer: any Tokenizer, leavingOut leftOut: Set<Int32>, stopSequences: [String]) {
        var bytes: [UInt8] = []
        for token in tokens where !leftOut.contains(token) { bytes += tokenizer.bytes(of: token) }
        let text = String(decoding: bytes, as: UTF8.self)
        self.text = text
        stop = stopSequences.compactMap { text.range(of: $0) }.min { $0.upperBound < $1.upperBound }
    }

    /// The text through the end of the first stop sequence.
    package var throughStop: String { stop.map { String(text[..<$0.upperBound]) } ?? text }
    /// The text before the first stop sequence.
    package var beforeStop: String { stop.map { String(text[..<$0.lowerBound]) } ?? text }
}

extension GroupScorer {
    /// Samples of `completions` with the answers and rewards this scorer gives them, as an honest
    /// actor reports them (every token's log-prob `logprob`): what tests and fuzzers send.
    package func honestSamples(_ completions: [[Int32]], finishReason: TroupeRL.FinishReason, temperature: Float, logprob: Float,
                               stopSequences: [String], groundTruth: String?) throws -> [RolloutSample] {
        // With `external` an actor has no score of its own: it reports 0 (plus shaping), as `GroupSampler` does.
        let unscored: Double? = options.reward.kind == .external ? 0 : nil
        let scored = try score(completions.map { Completion(tokens: $0, finishReason: finishReason, reportedReward: unscored) },
                               stopSequences: stopSequences, groundTruth: groundTruth)
        return zip(completions, scored).map { tokens, s in
            RolloutSample(tokens: tokens, logprobs: tokens.map { _ in logprob }, finishReason: finishReason, temperature: temperature,
                          answer: s.answer, reward: s.reward, components: s.components)
        }
    }
}

extension GroupSubmission {
    /// The GroupSubmit of `samples` under `header` (its lease, prompt, sequence and version): one
    /// SampleInfo per sample, tokens, log-probs and, when every sample has them, entropies.
    package init(header: Troupe_V1_GroupSubmit, samples: [RolloutSample]) {
        var h = header
        let withEntropies = !samples.isEmpty && samples.allSatisfy { $0.entropies != nil }
        h.withEntropies = withEntropies
        h.samples = samples.map { s in
            var info = Troupe_V1_SampleInfo()
            info.tokenCount = UInt32(s.tokens.count)
            info.finishReason = s.finishReason == .stop ? .stop : .length
            info.temperature = s.temperature
            if let a = s.answer { info.extractedAnswer = a }
            info.reward = s.reward
            info.rewardComponents = s.components
            if let inserted = s.inserted, !inserted.isEmpty {
                info.insertedFrom = UInt32(inserted.lowerBound)
                info.insertedCount = UInt32(inserted.count)
            }
            return info
        }
        self.init(header: h, tokenIDs: samples.flatMap(\.tokens), logProbs: samples.flatMap(\.logprobs),
                  entropies: withEntropies ? samples.flatMap { $0.entropies! } : nil)
    }
}
