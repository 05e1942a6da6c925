/// One sample as the reward side sees it.
public struct RewardSample: Sendable, Equatable {
    /// The extracted final answer; nil when none was found (an invalid sample).
    public var answer: String?
    /// Completion length in tokens (for length shaping).
    public var length: Int
    public var finishReason: FinishReason
    /// Result of `FormatReward.check`; required when `reward.format` is not `none`.
    public var formatValid: Bool?
    /// The predicted region (`region_consistency`); nil when unparseable.
    public var region: RegionPrediction?
    /// The reward computed elsewhere (`external`).
    public var externalReward: Double?

    public init(answer: String? = nil, length: Int = 0, finishReason: FinishReason = .stop, formatValid: Bool? = nil,
                region: RegionPrediction? = nil, externalReward: Double? = nil) {
        self.answer = answer
        self.length = length
        self.finishReason = finishReason
        self.formatValid = formatValid
        self.region = region
        self.externalReward = externalReward
    }

    /// Builds a sample from a completion's text: extracts the answer (`AnswerExtractor`) and the
    /// region (`RegionPrediction.parse`, for `region_consistency`), and runs the format check.
    public init(completion: String, length: Int, finishReason: FinishReason, options: AlgorithmOptions) {
        self.init(answer: AnswerExtractor.extract(completion), length: length, finishReason: finishReason,
                  formatValid: FormatReward.check(completion, requirement: options.reward.format),
                  region: options.reward.kind == .regionConsistency ? RegionPrediction.parse(completion) : nil)
    }
}

/// What a group's reward may need besides its samples.
public struct RewardContext: Sendable, Equatable {
    /// Needed by `verifiable` and `serial_decay`; with label-free kinds it only feeds monitoring metrics.
    public var groundTruth: String?
    /// N×N similarities for `novelty` (cosine of embeddings; clipped to [0, 1]).
    public var similarities: [[Double]]?
    /// Needed by `region_consistency`.
    public var imageSize: ImageSize?

    public init(groundTruth: String? = nil, similarities: [[Double]]? = nil, imageSize: ImageSize? = nil) {
        self.groundTruth = groundTruth
        self.similarities = similarities
        self.imageSize = imageSize
    }
}

public struct GroupRewardResult: Sendable, Equatable {
    /// The final reward of every sample (votes included; the learner trains on `trainingIndices`).
    public var rewards: [Double]
    /// The parts: `base` (the kind's reward), and when enabled `format`, `overlong` (≤ 0) and
    /// `truncated` (1 where DLER's rule replaced the reward by `reward.incorrect`).
    public var components: [String: [Double]]
    /// The majority answer (majority, frequency, novelty kinds).
    public var label: String?
    /// GUI-RC's consensus point `[x, y]` (region_consistency).
    public var consensusPoint: [Double]?
    /// Monitoring metrics (TTRL's label_accuracy, reward_accuracy, majority_ratio, …; see `MajorityVote.metrics`).
    public var metrics: [String: Double]
}

/// Computes a group's rewards: the kind's base reward, then the additive shaping terms, then DLER's
/// truncation rule (which overrides everything):
/// `R = truncated ? incorrect : base + format_weight·[format ok] + overlong_penalty`.
/// Called by actors once per group, over all vote samples.
public enum GroupRewards {
    public static func compute(samples: [RewardSample], context: RewardContext = RewardContext(),
                               options: AlgorithmOptions) throws -> GroupRewardResult {
        try options.validate()
        try Check.nonEmpty(samples.count, "samples")
        let reward = options.reward
        for (index, sample) in samples.enumerated() where sample.length < 0 {
            throw AlgorithmError(field: "samples[\(index)].length", problem: "must be ≥ 0, got \(sample.length)")
        }
        var (base, label, consensus, metrics) = try baseRewards(samples: samples, context: context, options: options)
        var components: [String: [Double]] = ["base": base]

        if reward.format != .none {
            let format = try samples.enumerated().map { index, sample -> Double in
                guard let valid = sample.formatValid else {
                    throw AlgorithmError(field: "samples[\(index)].format_valid", problem: "is required when reward.format is \"\(reward.format.rawValue)\"")
                }
                return valid ? reward.formatWeight : 0
            }
            components["format"] = format
            base = zip(base, format).map(+)
            metrics["format_valid_fraction"] = Double(samples.filter { $0.formatValid == true }.count) / Double(samples.count)
        }
        if let maxLength = reward.overlongMaxLength, let cache = reward.overlongCache {
            let penalty = samples.map {
                LengthShaping.dapoOverlongPenalty(length: $0.length, maxLength: maxLength, cache: cache, factor: reward.overlongPenaltyFactor)
            }
            components["overlong"] = penalty
            base = zip(base, penalty).map(+)
        }
        if let limit = reward.truncationLength {
            let truncated = samples.map { LengthShaping.dlerTruncated(length: $0.length, finishReason: $0.finishReason, limit: limit) }
            components["truncated"] = truncated.map { $0 ? 1 : 0 }
            base = zip(base, truncated).map { $1 ? reward.incorrect : $0 }
        }
        metrics["is_truncated"] = Double(samples.filter { $0.finishReason == .length }.count) / Double(samples.count)
        metrics["reward_mean"] = Statistics.mean(base)
        return GroupRewardResult(rewards: base, components: components, label: label, consensusPoint: consensus, metrics: metrics)
    }

    /// Convenience for answer-based kinds.
    public static func compute(answers: [String?], groundTruth: String?, lengths: [Int], finishReasons: [FinishReason],
                               options: AlgorithmOptions) throws -> GroupRewardResult {
        try Check.count(lengths.count, equals: answers.count, "lengths", what: "answers")
        try Check.count(finishReasons.count, equals: answers.count, "finish_reasons", what: "answers")
        let samples = answers.indices.map { RewardSample(answer: answers[$0], length: lengths[$0], finishReason: finishReasons[$0]) }
        return try compute(samples: samples, context: RewardContext(groundTruth: groundTruth), options: options)
    }

    private static func baseRewards(samples: [RewardSample], context: RewardContext, options: AlgorithmOptions) throws
        -> (rewards: [Double], label: String?, consensus: [Double]?, metrics: [String: Double])
    {
        let reward = options.reward
        let answers = samples.map(\.answer)
        func requireGroundTruth() throws -> String {
            guard let truth = context.groundTruth, !AnswerEquivalence.canonicalKey(truth).isEmpty else {
                throw AlgorithmError(field: "ground_truth", problem: "a non-empty ground truth is required for reward.kind \"\(reward.kind.rawValue)\"")
            }
            return truth
        }
        switch reward.kind {
        case .verifiable:
            let truth = try requireGroundTruth()
            let correct = answers.map { $0.map { AnswerEquivalence.equivalent($0, truth) } ?? false }
            let tally = AnswerTally(answers: answers)
            let n = Double(samples.count)
            let metrics = ["accuracy": Double(correct.filter { $0 }.count) / n, "pass_at_n": correct.contains(true) ? 1.0 : 0,
                           "valid_fraction": Double(tally.validCount) / n, "answer_entropy": tally.answerEntropy]
            return (correct.map { $0 ? reward.correct : reward.incorrect }, nil, nil, metrics)

        case .majority:
            let outcome = MajorityVote.vote(answers: answers, correct: reward.correct, incorrect: reward.incorrect)
            return (outcome.rewards, outcome.label, nil, MajorityVote.metrics(outcome: outcome, groundTruth: context.groundTruth))

        case .frequency:
            let frequency = FrequencyReward.compute(answers: answers, entropyWeight: reward.frequencyEntropyWeight)
            let vote = MajorityVote.vote(answers: answers, correct: reward.correct, incorrect: reward.incorrect)
            return (frequency.rewards, vote.label, nil, MajorityVote.metrics(outcome: vote, groundTruth: context.groundTruth))

        case .novelty:
            guard let similarities = context.similarities else {
                throw AlgorithmError(field: "similarities", problem: "an N×N similarity matrix is required for reward.kind \"novelty\"")
            }
            let vote = MajorityVote.vote(answers: answers, correct: reward.correct, incorrect: reward.incorrect)
            let rewards = try NoveltyReward.compute(majority: vote.agreesWithLabel, valid: vote.tally.classOfSample.map { $0 != nil },
                                                    similarities: similarities)
            return (rewards, vote.label, nil, MajorityVote.metrics(outcome: vote, groundTruth: context.groundTruth))

        case .regionConsistency:
            guard let imageSize = context.imageSize else {
                throw AlgorithmError(field: "image_size", problem: "is required for reward.kind \"region_consistency\"")
            }
            let outcome = try RegionConsistency.compute(predictions: samples.map(\.region), imageSize: imageSize,
                                                         pointExpand: reward.pointExpand, field: { "samples[\($0)].region" })
            let metrics = ["max_votes": Double(outcome.maxVotes),
                           "valid_fraction": Double(samples.filter { $0.region != nil }.count) / Double(samples.count)]
            return (outcome.rewards, nil, outcome.consensusPoint.map { [$0.x, $0.y] }, metrics)

        case .serialDecay:
            let truth = try requireGroundTruth()
            let correct = answers.map { $0.map { AnswerEquivalence.equivalent($0, truth) } ?? false }
            return (SerialDecayReward.rewards(correctInOrder: correct), nil, nil,
                    ["accuracy": Double(correct.filter { $0 }.count) / Double(samples.count)])

        case .external:
            let rewards = try samples.enumerated().map { index, sample -> Double in
                guard let value = sample.externalReward else {
                    throw AlgorithmError(field: "samples[\(index)].reward", problem: "is required for reward.kind \"external\"")
                }
                try Check.finite(value, "samples[\(index)].reward")
                return value
            }
            return (rewards, nil, nil, [:])
        }
    }
}
