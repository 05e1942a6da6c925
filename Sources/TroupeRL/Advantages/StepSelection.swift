/// Stages 1 and 2 of an RL step, the same for the learner's `Trainer` and `troupe algo`: each group's
/// training subset (`AlgorithmOptions.trainingIndices`), its advantages with the step's global totals
/// (`StepAdvantages`), and the samples that get a loss, in group order. Stage 3 is `StepLossPlan`.
public struct StepSelection: Sendable, Equatable {
    /// One sample as the advantage stage sees it.
    public struct Sample: Sendable, Equatable {
        /// The final reward (votes included in its computation).
        public var reward: Double
        /// Completion length in tokens.
        public var length: Int
        public var finishReason: FinishReason
        /// Mean token entropy of the response (`meanEntropy(of:)`); nil when none was recorded.
        public var meanEntropy: Double?
        /// False for a sample that has no tokens to score: it keeps its advantage slot but gets no loss.
        public var scored: Bool

        public init(reward: Double, length: Int, finishReason: FinishReason, meanEntropy: Double? = nil, scored: Bool = true) {
            self.reward = reward
            self.length = length
            self.finishReason = finishReason
            self.meanEntropy = meanEntropy
            self.scored = scored
        }
    }

    /// Every sample of one prompt's group, votes included.
    public struct Group: Sendable, Equatable {
        public var samples: [Sample]
        /// Policy steps between the weights that sampled the group and the weights being trained.
        public var staleness: Int

        public init(samples: [Sample], staleness: Int) {
            self.samples = samples
            self.staleness = staleness
        }
    }

    /// A sample that gets a loss: its place in the input and its advantage.
    public struct Trained: Sendable, Equatable {
        public let group: Int
        public let sample: Int
        public let advantage: Double
    }

    /// Each group's training subset, as indices into its samples.
    public let trainingIndices: [Range<Int>]
    public let advantages: StepAdvantages
    /// The scored samples of kept groups' training subsets, group by group, in sample order.
    public let trained: [Trained]

    public static func compute(groups: [Group], options: AlgorithmOptions) throws -> StepSelection {
        let indices = groups.map { options.trainingIndices(groupSize: $0.samples.count) }
        let input = zip(groups, indices).map { group, range -> AdvantageGroup in
            let subset = Array(group.samples[range])
            let entropies = subset.allSatisfy { $0.meanEntropy != nil } ? subset.map { $0.meanEntropy! } : nil
            return AdvantageGroup(rewards: subset.map(\.reward), lengths: subset.map(\.length), finishReasons: subset.map(\.finishReason),
                                  responseEntropies: entropies, staleness: group.staleness)
        }
        let advantages = try StepAdvantages.compute(groups: input, options: options)
        var trained: [Trained] = []
        for (g, group) in groups.enumerated() where advantages.groups[g].kept {
            for (slot, s) in indices[g].enumerated() where group.samples[s].scored {
                trained.append(Trained(group: g, sample: s, advantage: advantages.groups[g].advantages[slot]))
            }
        }
        return StepSelection(trainingIndices: indices, advantages: advantages, trained: trained)
    }

    /// A response's mean token entropy, summed in the precision the entropies were recorded in (the
    /// sampler's Float, `troupe algo`'s Double), so each caller's numbers stay what they were. An empty
    /// response has entropy 0: it must not take entropy-based reshaping away from its whole group.
    public static func meanEntropy<Value: BinaryFloatingPoint>(of tokens: [Value]) -> Double {
        tokens.isEmpty ? 0 : Double(tokens.reduce(0, +)) / Double(tokens.count)
    }
}
