import Testing
import TroupeJSON
import TroupeRL

/// TV1-TV4 (GRPO family, batch normalisation, ETTRL) and the advantage edge cases.
@Suite struct AdvantageTests {
    func grpo(_ rewards: [Double], _ overrides: [String: JSONValue] = [:]) -> [Double] {
        Advantages.groupNormalized(rewards: rewards, options: AlgorithmOptions.make("grpo", overrides).advantage)
    }

    @Test func tv1GroupNormalisation() {
        expectClose(grpo([1, 0, 0, 1]), [0.866024, -0.866024, -0.866024, 0.866024])
        expectClose(grpo([1, 0, 0, 1], ["advantage.epsilon": 1e-4]), [0.865875, -0.865875, -0.865875, 0.865875])
        expectClose(grpo([1, 0, 0, 1], ["advantage.std": "population"]), [0.999998, -0.999998, -0.999998, 0.999998])
        expectClose(grpo([1, 0, 0, 1], ["advantage.estimator": "drgrpo"]), [0.5, -0.5, -0.5, 0.5])
        expectClose(grpo([1, 0, 0, 0]), [1.499997, -0.499999, -0.499999, -0.499999])
        expectClose(grpo([1, -1, -1, -1]), [1.499999, -0.5, -0.5, -0.5])
        expectClose(grpo([0.2, 0.9, 0.4, 0.5]), [-1.019046, 1.358728, -0.339682, 0.0])
    }

    @Test func tv2DegenerateGroups() {
        for rewards in [[1.0, 1, 1, 1], [0.0, 0, 0, 0], [0.1, 0.1, 0.1]] {
            #expect(grpo(rewards) == rewards.map { _ in 0 })
            #expect(grpo(rewards, ["advantage.estimator": "drgrpo"]) == rewards.map { _ in 0 })
            // No epsilon at all (TTRV) still gives exactly 0, never 0/0.
            #expect(grpo(rewards, ["advantage.epsilon": 0]) == rewards.map { _ in 0 })
        }
        #expect(grpo([1], ["advantage.singleton": "raw_reward"]) == [1.0])
        #expect(grpo([1]) == [0])
        expectClose(grpo([0.3, 0.3 + 1e-9]), [-0.0005, 0.0005])
    }

    @Test func tv3BatchNormalisation() {
        let groups: [[Double]] = [[1, 0, 0, 1], [1, 1, 1, 0]]
        let lengths = [[2, 3, 1, 2], [4, 1, 1, 2]]
        func batch(_ overrides: [String: JSONValue], _ groups: [[Double]] = [[1, 0, 0, 1], [1, 1, 1, 0]], _ lengths: [[Int]] = [[2, 3, 1, 2], [4, 1, 1, 2]]) -> [Double] {
            Advantages.batchNormalized(groups: groups, tokenCounts: lengths, options: AlgorithmOptions.make("grpo", overrides).advantage).flatMap { $0 }
        }
        expectClose(batch([:]), [0.866024, -0.866024, -0.866024, 0.866024, 0.499999, 0.499999, 0.499999, -1.499997])
        expectClose(batch(["advantage.estimator": "batchnorm"]), [1, -1, -1, 1, 0.5, 0.5, 0.5, -1.5])
        expectClose(batch(["advantage.estimator": "batchnorm", "advantage.batch_weighting": "token"]),
                    [1.035098, -1.035098, -1.035098, 1.035098, 0.517549, 0.517549, 0.517549, -1.552647])
        expectClose(batch(["advantage.estimator": "grpo_batch_std", "advantage.epsilon": 1e-4]),
                    [0.965905, -0.965905, -0.965905, 0.965905, 0.482953, 0.482953, 0.482953, -1.448858])
        _ = (groups, lengths)

        let zeroVariance: [[Double]] = [[1, 0, 0, 1], [1, 1, 1, 1]]
        expectClose(batch(["advantage.estimator": "batchnorm"], zeroVariance), [1.322876, -1.322876, -1.322876, 1.322876, 0, 0, 0, 0])
        // Token weighting gives the all-correct group a negative advantage (docs/algorithms.md) …
        expectClose(batch(["advantage.estimator": "batchnorm", "advantage.batch_weighting": "token"], zeroVariance, [[5, 1, 1, 5], [2, 2, 2, 2]]),
                    [0.881631, -2.057138, -2.057138, 0.881631, -0.587754, -0.587754, -0.587754, -0.587754])
    }

    @Test func zeroVarianceGroupsAreDroppedBeforeWhitening() throws {
        // … which is why StepAdvantages filters first: the DLER preset drops the group, and the rest is unchanged.
        let options = AlgorithmOptions.make("dler")
        let groups = [AdvantageGroup(rewards: [1, 0, 0, 1], lengths: [5, 1, 1, 5]), AdvantageGroup(rewards: [1, 1, 1, 1], lengths: [2, 2, 2, 2])]
        let step = try StepAdvantages.compute(groups: groups, options: options)
        #expect(step.groups[1].dropReason == .zeroVariance)
        #expect(step.groups[1].advantages == [0, 0, 0, 0])
        let alone = try StepAdvantages.compute(groups: [groups[0]], options: options)
        #expect(step.groups[0].advantages == alone.groups[0].advantages)
        #expect(step.totals == AggregationTotals(tokens: 12, sequences: 4))
    }

    @Test func tv4EntropyReshapingAndClip() throws {
        let verl = [0.866024, -0.866024, -0.866024, 0.866024]
        expectClose(Advantages.entropyReshaped(advantages: verl, responseEntropies: [0.5, 1.0, 1.5, 1.0]),
                    [1.299036, -0.866024, -0.433012, 0.866024])
        // The Y ≥ 0 clamp: an entropy above twice the mean cannot flip the sign.
        #expect(Advantages.entropyReshaped(advantages: [1, 1, 1], responseEntropies: [0, 0, 3]) == [2, 2, 0])
        #expect(Advantages.entropyReshaped(advantages: [1, -1], responseEntropies: [0, 0]) == [1, -1])

        let raw = grpo([1, 0, 0, 0, 0, 0, 0, 0])
        expectClose(raw, [2.474867] + Array(repeating: -0.353552, count: 7))
        expectClose(Advantages.clipped(raw, bound: 2), [2.0] + Array(repeating: -0.353552, count: 7))

        let options = AlgorithmOptions.make("ettrl", ["advantage.clip": 2])
        let step = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0, 0, 1], lengths: [1, 1, 1, 1], responseEntropies: [0.5, 1.0, 1.5, 1.0])],
                                              options: options)
        expectClose(step.groups[0].advantages, [1.299036, -0.866024, -0.433012, 0.866024])
        expectAlgorithmError(field: "groups[0].response_entropies") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0], lengths: [1, 1])], options: options)
        }
    }

    @Test func rawEstimatorUsesTheBaseline() {
        let options = AlgorithmOptions.make("topr", ["advantage.baseline": 0.5]).advantage
        #expect(Advantages.groupNormalized(rewards: [1, -1, 1], options: options) == [0.5, -1.5, 0.5])
        #expect(Advantages.groupNormalized(rewards: [1], options: options) == [0.5])
    }

    @Test func stepMetricsAndStaleness() throws {
        let options = AlgorithmOptions.make("grpo", ["filter.max_staleness": 2])
        let groups = [AdvantageGroup(rewards: [1, 0], lengths: [3, 0], staleness: 2),
                      AdvantageGroup(rewards: [1, 0], lengths: [3, 3], staleness: 3)]
        let step = try StepAdvantages.compute(groups: groups, options: options)
        #expect(step.groups.map(\.dropReason) == [nil, .stale])
        // The empty response keeps its place in the group statistics but adds no tokens or sequence.
        expectClose(step.groups[0].advantages, [0.707106, -0.707106])
        #expect(step.totals == AggregationTotals(tokens: 3, sequences: 1))
        #expect(step.metrics["groups_dropped_stale"] == 1)
        #expect(step.metrics["groups_kept"] == 1)
    }
}
