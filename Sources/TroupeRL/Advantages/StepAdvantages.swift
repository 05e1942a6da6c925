/// One prompt's training samples as the learner sees them before any forward pass.
public struct AdvantageGroup: Sendable, Equatable {
    /// Final rewards of the training samples (after `AlgorithmOptions.trainingIndices`).
    public var rewards: [Double]
    /// Completion lengths in tokens.
    public var lengths: [Int]
    public var finishReasons: [FinishReason]
    /// Mean token entropy of each response; required by `advantage.entropy_reshaping`.
    public var responseEntropies: [Double]?
    /// Policy steps between the weights that sampled this group and the weights being trained.
    public var staleness: Int

    public init(rewards: [Double], lengths: [Int], finishReasons: [FinishReason]? = nil,
                responseEntropies: [Double]? = nil, staleness: Int = 0) {
        self.rewards = rewards
        self.lengths = lengths
        self.finishReasons = finishReasons ?? Array(repeating: .stop, count: lengths.count)
        self.responseEntropies = responseEntropies
        self.staleness = staleness
    }
}

public enum GroupDropReason: String, Sendable, Equatable {
    /// All rewards within `filter.zero_variance_tolerance` (DAPO dynamic sampling).
    case zeroVariance = "zero_variance"
    /// Older than `filter.max_staleness` steps.
    case stale
}

/// Step one of the learner's step: filter the groups, compute every advantage and count the
/// aggregation denominators — once for the whole optimiser step, before splitting into micro-batches.
public struct StepAdvantages: Sendable, Equatable {
    public struct Group: Sendable, Equatable {
        /// One advantage per training sample (0 for a dropped group).
        public let advantages: [Double]
        /// nil when the group is trained on.
        public let dropReason: GroupDropReason?
        public var kept: Bool { dropReason == nil }
    }

    public let groups: [Group]
    /// Denominators over the kept groups; pass them to every `StepLossPlan.compute` of this step.
    public let totals: AggregationTotals
    /// `groups`, `groups_kept`, `groups_dropped_zero_variance`, `groups_dropped_stale`,
    /// `advantage_mean|std|min|max` and `reward_mean|std` over the kept samples, `samples_masked_truncated`.
    public let metrics: [String: Double]

    public static func compute(groups input: [AdvantageGroup], options: AlgorithmOptions) throws -> StepAdvantages {
        try options.validate()
        try Check.nonEmpty(input.count, "groups")
        for (index, group) in input.enumerated() { try validate(group, field: "groups[\(index)]", options: options) }

        let drop: [GroupDropReason?] = input.map { group in
            if let limit = options.filter.maxStaleness, group.staleness > limit { return .stale }
            if let tolerance = options.filter.zeroVarianceTolerance, group.rewards.max()! - group.rewards.min()! <= tolerance {
                return .zeroVariance
            }
            return nil
        }
        let keptIndices = input.indices.filter { drop[$0] == nil }
        let tokenCounts = input.map { group in
            zip(group.lengths, group.finishReasons).map { Aggregation.contributes(length: $0, finishReason: $1, filter: options.filter) ? $0 : 0 }
        }
        // Batch statistics see only kept groups: filter first, then normalise (docs/algorithms.md).
        var advantages = Advantages.batchNormalized(groups: keptIndices.map { input[$0].rewards },
                                                    tokenCounts: keptIndices.map { tokenCounts[$0] }, options: options.advantage)
        for (slot, index) in keptIndices.enumerated() {
            if options.advantage.entropyReshaping, let entropies = input[index].responseEntropies {
                advantages[slot] = Advantages.entropyReshaped(advantages: advantages[slot], responseEntropies: entropies)
            }
            if let bound = options.advantage.clip { advantages[slot] = Advantages.clipped(advantages[slot], bound: bound) }
        }

        var groups: [Group] = input.enumerated().map { index, group in
            Group(advantages: Array(repeating: 0, count: group.rewards.count), dropReason: drop[index])
        }
        var totals = AggregationTotals(tokens: 0, sequences: 0)
        for (slot, index) in keptIndices.enumerated() {
            groups[index] = Group(advantages: advantages[slot], dropReason: nil)
            for count in tokenCounts[index] where count > 0 { totals.tokens += count; totals.sequences += 1 }
        }

        let keptAdvantages = keptIndices.flatMap { groups[$0].advantages }
        let keptRewards = keptIndices.flatMap { input[$0].rewards }
        let advantageMean = Statistics.mean(keptAdvantages)
        let rewardMean = Statistics.mean(keptRewards)
        var metrics: [String: Double] = [
            "groups": Double(input.count),
            "groups_kept": Double(keptIndices.count),
            "groups_dropped_zero_variance": Double(drop.filter { $0 == .zeroVariance }.count),
            "groups_dropped_stale": Double(drop.filter { $0 == .stale }.count),
            "samples_masked_truncated": Double(keptIndices.map { index in
                zip(input[index].lengths, tokenCounts[index]).filter { $0 > 0 && $1 == 0 }.count }.reduce(0, +)),
        ]
        if !keptAdvantages.isEmpty {
            metrics["advantage_mean"] = advantageMean
            metrics["advantage_std"] = Statistics.standardDeviation(keptAdvantages, mean: advantageMean, ddof: 0)
            metrics["advantage_min"] = keptAdvantages.min()!
            metrics["advantage_max"] = keptAdvantages.max()!
            metrics["reward_mean"] = rewardMean
            metrics["reward_std"] = Statistics.standardDeviation(keptRewards, mean: rewardMean, ddof: 0)
        }
        return StepAdvantages(groups: groups, totals: totals, metrics: metrics)
    }

    private static func validate(_ group: AdvantageGroup, field: String, options: AlgorithmOptions) throws {
        try Check.nonEmpty(group.rewards.count, "\(field).rewards")
        try Check.finite(group.rewards, "\(field).rewards")
        try Check.count(group.lengths.count, equals: group.rewards.count, "\(field).lengths", what: "\(field).rewards")
        try Check.count(group.finishReasons.count, equals: group.rewards.count, "\(field).finish_reasons", what: "\(field).rewards")
        try Check.nonNegative(group.lengths, "\(field).lengths")
        if let train = options.sampling.trainSamples, group.rewards.count > train {
            throw AlgorithmError(field: "\(field).rewards", problem: "has \(group.rewards.count) samples but sampling.train_samples is \(train); select the training subset first (AlgorithmOptions.trainingIndices)")
        }
        if group.staleness < 0 {
            throw AlgorithmError(field: "\(field).staleness", problem: "must be ≥ 0 (a group cannot come from future weights), got \(group.staleness)")
        }
        if options.advantage.entropyReshaping {
            guard let entropies = group.responseEntropies else {
                throw AlgorithmError(field: "\(field).response_entropies", problem: "are required by advantage.entropy_reshaping")
            }
            try Check.count(entropies.count, equals: group.rewards.count, "\(field).response_entropies", what: "\(field).rewards")
            try Check.entropies(entropies, "\(field).response_entropies")
        } else if let entropies = group.responseEntropies {
            try Check.count(entropies.count, equals: group.rewards.count, "\(field).response_entropies", what: "\(field).rewards")
            try Check.entropies(entropies, "\(field).response_entropies")
        }
    }
}
