import Foundation
import Testing
import TroupeRL

/// Singleton groups, empty and truncated responses, all answers invalid (docs/algorithms.md).
@Suite struct EdgeCaseTests {
    @Test func singletonGroups() throws {
        let group = [AdvantageGroup(rewards: [1], lengths: [4])]
        #expect(try StepAdvantages.compute(groups: group, options: .make("grpo")).groups[0].advantages == [0])
        #expect(try StepAdvantages.compute(groups: group, options: .make("grpo", ["advantage.singleton": "raw_reward"])).groups[0].advantages == [1])
        #expect(try StepAdvantages.compute(groups: group, options: .make("dapo")).groups[0].dropReason == .zeroVariance)
        // TOPR's raw-reward REINFORCE does not need a group at all.
        #expect(try StepAdvantages.compute(groups: group, options: .make("topr")).groups[0].advantages == [1])
    }

    @Test func emptyResponsesKeepTheirRewardButAddNoTokens() throws {
        let options = AlgorithmOptions.make("grpo", ["kl.coefficient": 0])
        let step = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0, 0], lengths: [2, 0, 2])], options: options)
        expectClose(step.groups[0].advantages, [1.154698, -0.577349, -0.577349])
        #expect(step.totals == AggregationTotals(tokens: 4, sequences: 2))
        let samples = [LossSample(advantage: step.groups[0].advantages[0], logp: [-1, -1], behaviourLogp: [-1, -1]),
                       LossSample(advantage: step.groups[0].advantages[1], logp: [], behaviourLogp: []),
                       LossSample(advantage: step.groups[0].advantages[2], logp: [-1, -1], behaviourLogp: [-1, -1])]
        let plan = try StepLossPlan.compute(samples: samples, totals: step.totals, options: options)
        #expect(!plan.samples[1].contributes)
        #expect(plan.samples[1].logpCoefficients.isEmpty)
        // seq-mean-token-mean over the 2 non-empty sequences: weight 1/(2·2).
        #expect(plan.samples[0].aggregationWeight == 0.25)
        #expect(plan.metrics.sequences == 2)
    }

    /// A divergence or entropy the step did not compute is left out of the metrics, not written as 0.
    @Test func klAndEntropyMetricsAppearOnlyWhenComputed() throws {
        let plain = LossSample(advantage: 1, logp: [-1, -2], behaviourLogp: [-1, -2])
        let bare = try StepLossPlan.compute(samples: [plain], totals: AggregationTotals(tokens: 2, sequences: 1), options: .make("grpo", ["kl.coefficient": 0]))
        #expect(bare.metrics.summary["kl_ref"] == nil && bare.metrics.summary["entropy_mean"] == nil)
        #expect(bare.metrics.summary["mismatch_kl"] == 0)
        let full = LossSample(advantage: 1, logp: [-1, -2], behaviourLogp: [-1, -2], refLogp: [-1, -1], entropy: [0.5, 1.5])
        let options = AlgorithmOptions.make("grpo", ["kl.coefficient": 0.1, "entropy.coefficient": 0.01])
        let both = try StepLossPlan.compute(samples: [full], totals: AggregationTotals(tokens: 2, sequences: 1), options: options)
        #expect(both.metrics.summary["entropy_mean"] == 1.0)
        #expect((both.metrics.summary["kl_ref"] ?? 0) > 0)
    }

    @Test func truncatedResponsesCanBeMasked() throws {
        let options = AlgorithmOptions.make("dapo", ["filter.mask_truncated": true])
        let groups = [AdvantageGroup(rewards: [1, -1, -1], lengths: [3, 5, 2], finishReasons: [.stop, .length, .stop])]
        let step = try StepAdvantages.compute(groups: groups, options: options)
        #expect(step.totals == AggregationTotals(tokens: 5, sequences: 2))
        #expect(step.metrics["samples_masked_truncated"] == 1)
        // The truncated sample still shapes the group statistics: its advantage is not 0.
        #expect(step.groups[0].advantages[1] < 0)
        let truncated = LossSample(advantage: step.groups[0].advantages[1], logp: [-1, -1, -1, -1, -1], behaviourLogp: [-1, -1, -1, -1, -1],
                                   finishReason: .length)
        let plan = try StepLossPlan.compute(samples: [truncated], totals: step.totals, options: options)
        #expect(!plan.samples[0].contributes)
        #expect(plan.samples[0].logpCoefficients == [0, 0, 0, 0, 0])
        #expect(plan.loss.total == 0)
        #expect(plan.metrics.maskedTruncatedSequences == 1)
    }

    @Test func allAnswersInvalid() throws {
        let answers: [String?] = [nil, "", "   ", nil]
        let samples = answers.map { RewardSample(answer: $0) }
        let majority = try GroupRewards.compute(samples: samples, context: RewardContext(groundTruth: "3"), options: .make("ttrl"))
        #expect(majority.label == nil)
        #expect(majority.rewards == [0, 0, 0, 0])
        #expect(majority.metrics["majority_ratio"] == 0)
        #expect(majority.metrics["label_accuracy"] == 0)
        #expect(majority.metrics["valid_fraction"] == 0)

        let frequency = try GroupRewards.compute(samples: samples, options: .make("ttrv"))
        #expect(frequency.rewards == [0, 0, 0, 0])

        let similarity = Array(repeating: Array(repeating: 0.3, count: 4), count: 4)
        let novelty = try GroupRewards.compute(samples: samples, context: RewardContext(similarities: similarity), options: .make("evol-rl"))
        #expect(novelty.rewards == [-1, -1, -1, -1])

        let verifiable = try GroupRewards.compute(samples: samples, context: RewardContext(groundTruth: "3"), options: .make("dapo"))
        #expect(verifiable.rewards == [-1, -1, -1, -1])

        let regions = try GroupRewards.compute(samples: [RewardSample(), RewardSample()], context: RewardContext(imageSize: ImageSize(width: 10, height: 10)),
                                               options: .make("gui-rcpo"))
        #expect(regions.rewards == [0, 0])
        #expect(regions.consensusPoint == nil)

        // Such a group is zero-variance: no gradient, and dropped when the filter is on.
        let step = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: majority.rewards, lengths: [1, 1, 1, 1])], options: .make("ttrl"))
        #expect(step.groups[0].advantages == [0, 0, 0, 0])
    }

    @Test func logRatioBeyondTheClampHasNoPPOGradient() throws {
        let options = AlgorithmOptions.make("dapo", ["loss.epsilon_low": nil, "loss.dual_clip": nil])
        // log-ratio −30 is clamped to −20: the ratio is constant there, so PPO has no gradient.
        let plan = try StepLossPlan.compute(samples: [LossSample(advantage: -1, logp: [-31], behaviourLogp: [-1])],
                                            totals: AggregationTotals(tokens: 1, sequences: 1), options: options)
        #expect(plan.samples[0].policyGradients == [0])
        expectClose(plan.samples[0].ratios[0], 2.061153622438558e-09, tolerance: 1e-15)
    }
}
