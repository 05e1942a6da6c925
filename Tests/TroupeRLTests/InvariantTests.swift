import Foundation
import Testing
import TroupeJSON
import TroupeRL

/// The invariants of docs/algorithms.md, checked on seeded random inputs.
@Suite struct InvariantTests {
    static let lossKinds: [[String: JSONValue]] = [
        ["loss.kind": "ppo_clip", "loss.dual_clip": 3],
        ["loss.kind": "ppo_clip", "loss.epsilon_low": nil],
        ["loss.kind": "cispo", "loss.epsilon_low": nil],
        ["loss.kind": "cispo", "loss.cispo_mask": true],
        ["loss.kind": "topr", "loss.topr_ratio": "sequence_product"],
        ["loss.kind": "topr", "loss.topr_ratio": "sequence_geomean"],
        ["loss.kind": "topr", "loss.topr_ratio": "token"],
        ["loss.kind": "reinforce"],
        ["loss.kind": "reinforce", "loss.tis_cap": 1.0],
    ]

    /// A random step: groups of random size with random rewards, lengths and log-probs.
    static func randomStep(_ rng: inout SeededGenerator, groups: Int) -> (groups: [AdvantageGroup], samples: [[LossSample]]) {
        var advantageGroups: [AdvantageGroup] = []
        var samples: [[LossSample]] = []
        for _ in 0..<groups {
            let size = Int.random(in: 1...6, using: &rng)
            var rewards: [Double] = []
            var groupSamples: [LossSample] = []
            for _ in 0..<size {
                rewards.append(Bool.random(using: &rng) ? 1 : Double.random(in: -1...1, using: &rng))
                let length = Int.random(in: 0...7, using: &rng)
                let logp = (0..<length).map { _ in -Double.random(in: 0.01...4, using: &rng) }
                let behaviour = logp.map { min($0 + Double.random(in: -0.6...0.6, using: &rng), 0) }
                let ref = logp.map { min($0 + Double.random(in: -0.5...0.5, using: &rng), 0) }
                let entropy = logp.map { _ in Double.random(in: 0...3, using: &rng) }
                groupSamples.append(LossSample(advantage: 0, logp: logp, behaviourLogp: behaviour, refLogp: ref, entropy: entropy,
                                               finishReason: Int.random(in: 0..<5, using: &rng) == 0 ? .length : .stop))
            }
            advantageGroups.append(AdvantageGroup(rewards: rewards, lengths: groupSamples.map(\.logp.count),
                                                  finishReasons: groupSamples.map(\.finishReason)))
            samples.append(groupSamples)
        }
        return (advantageGroups, samples)
    }

    @Test func atRatioOneEveryLossGivesMinusAdvantage() throws {
        var rng = SeededGenerator(seed: 1)
        for overrides in Self.lossKinds {
            let options = AlgorithmOptions.make("grpo", overrides.merging(["kl.coefficient": 0]) { $1 })
            for _ in 0..<50 {
                let advantage = Double.random(in: -3...3, using: &rng)
                let logp = (0..<Int.random(in: 1...6, using: &rng)).map { _ in -Double.random(in: 0...5, using: &rng) }
                let plan = try StepLossPlan.compute(samples: [LossSample(advantage: advantage, logp: logp, behaviourLogp: logp)],
                                                    totals: AggregationTotals(tokens: logp.count, sequences: 1), options: options)
                #expect(plan.samples[0].policyGradients.allSatisfy { abs($0 + advantage) < 1e-12 }, "\(overrides) Â=\(advantage)")
                #expect(plan.metrics.clippedTokens == 0)
            }
        }
    }

    @Test func grpoIsInvariantToAffineRewardChanges() {
        var rng = SeededGenerator(seed: 2)
        var exact = AdvantageOptions()
        exact.epsilon = 0
        for _ in 0..<200 {
            let rewards = (0..<Int.random(in: 2...10, using: &rng)).map { _ in Double.random(in: -2...2, using: &rng) }
            let scale = Double.random(in: 0.1...10, using: &rng), shift = Double.random(in: -5...5, using: &rng)
            let moved = rewards.map { scale * $0 + shift }
            expectClose(Advantages.groupNormalized(rewards: moved, options: exact), Advantages.groupNormalized(rewards: rewards, options: exact), tolerance: 1e-9)
            // With verl's ε = 1e-6 the invariance holds up to ε/std.
            expectClose(Advantages.groupNormalized(rewards: moved, options: AdvantageOptions()),
                        Advantages.groupNormalized(rewards: rewards, options: AdvantageOptions()), tolerance: 1e-3)
        }
    }

    @Test func microBatchingNeverChangesTheGradient() throws {
        var rng = SeededGenerator(seed: 3)
        for round in 0..<40 {
            let mode = AggregationMode.allCases[round % AggregationMode.allCases.count]
            var overrides = Self.lossKinds[round % Self.lossKinds.count]
            overrides["aggregation.mode"] = .string(mode.rawValue)
            overrides["aggregation.constant"] = 16
            overrides["kl.coefficient"] = 0.05
            overrides["entropy.coefficient"] = 0.01
            overrides["filter.mask_truncated"] = .bool(round % 2 == 0)
            let options = AlgorithmOptions.make("grpo", overrides)
            let (groups, perGroup) = Self.randomStep(&rng, groups: 4)
            let step = try StepAdvantages.compute(groups: groups, options: options)
            var all: [LossSample] = []
            for (g, samples) in perGroup.enumerated() {
                for (s, sample) in samples.enumerated() {
                    var withAdvantage = sample
                    withAdvantage.advantage = step.groups[g].advantages[s]
                    all.append(withAdvantage)
                }
            }
            let whole = try StepLossPlan.compute(samples: all, totals: step.totals, options: options)
            // Split at random points into micro-batches, each planned with the same step totals.
            var cuts = Set((0..<3).map { _ in Int.random(in: 0...all.count, using: &rng) })
            cuts.insert(0); cuts.insert(all.count)
            let bounds = cuts.sorted()
            var pieces: [SampleLossPlan] = []
            var loss = LossParts()
            var metrics = LossMetrics()
            for (start, end) in zip(bounds, bounds.dropFirst()) {
                let part = try StepLossPlan.compute(samples: Array(all[start..<end]), totals: step.totals, options: options)
                pieces += part.samples
                loss = loss + part.loss
                metrics = metrics + part.metrics
            }
            #expect(pieces == whole.samples, "round \(round): coefficients differ between micro-batchings")
            expectClose(loss.total, whole.loss.total, tolerance: 1e-12)
            #expect(metrics.tokens == whole.metrics.tokens && metrics.clippedTokens == whole.metrics.clippedTokens)
        }
    }

    @Test func ppoCoefficientsAreTheDerivativeOfTheLoss() throws {
        // For PPO-clip, KL and the entropy term the loss is a function of logp, so the coefficients must
        // match central finite differences of the aggregated loss (away from the clip kinks).
        var rng = SeededGenerator(seed: 4)
        for estimator in ["k1", "k2", "k3"] {
            for mode in AggregationMode.allCases {
                let options = AlgorithmOptions.make("grpo", ["aggregation.mode": .string(mode.rawValue), "aggregation.constant": 9,
                                                             "kl.estimator": .string(estimator), "kl.coefficient": 0.3, "loss.dual_clip": 3])
                let samples = (0..<3).map { _ -> LossSample in
                    let logp = (0..<4).map { _ in -Double.random(in: 0.5...3, using: &rng) }
                    return LossSample(advantage: Double.random(in: -2...2, using: &rng), logp: logp,
                                      behaviourLogp: logp.map { $0 + Double.random(in: -0.1...0.1, using: &rng) },
                                      refLogp: logp.map { $0 + Double.random(in: -0.4...0.4, using: &rng) })
                }
                let totals = AggregationTotals(tokens: 12, sequences: 3)
                let plan = try StepLossPlan.compute(samples: samples, totals: totals, options: options)
                let h = 1e-6
                for i in samples.indices {
                    for t in samples[i].logp.indices {
                        var up = samples, down = samples
                        up[i].logp[t] += h
                        down[i].logp[t] -= h
                        let numeric = (try StepLossPlan.compute(samples: up, totals: totals, options: options).loss.total
                                       - StepLossPlan.compute(samples: down, totals: totals, options: options).loss.total) / (2 * h)
                        expectClose(plan.samples[i].logpCoefficients[t], numeric, tolerance: 1e-6)
                    }
                }
            }
        }
    }

    @Test func zeroVarianceGroupContributesNothing() throws {
        var rng = SeededGenerator(seed: 5)
        for round in 0..<30 {
            let overrides = Self.lossKinds[round % Self.lossKinds.count]
            let options = AlgorithmOptions.make("grpo", overrides.merging(["kl.coefficient": 0]) { $1 })
            var (groups, perGroup) = Self.randomStep(&rng, groups: 3)
            let constant = Double.random(in: -1...1, using: &rng)
            groups[1].rewards = groups[1].rewards.map { _ in constant }
            let step = try StepAdvantages.compute(groups: groups, options: options)
            #expect(step.groups[1].advantages.allSatisfy { $0 == 0 })
            let samples = perGroup[1].enumerated().map { s, sample -> LossSample in
                var copy = sample
                copy.advantage = step.groups[1].advantages[s]
                return copy
            }
            let plan = try StepLossPlan.compute(samples: samples, totals: step.totals, options: options)
            #expect(plan.samples.allSatisfy { $0.logpCoefficients.allSatisfy { $0 == 0 } })
            #expect(plan.loss.total == 0)

            // Dropping it instead changes the other groups only through the denominators.
            let filtered = try StepAdvantages.compute(groups: groups, options: options.applying(overrides: ["filter.zero_variance_tolerance": 0]))
            #expect(filtered.groups[1].dropReason == .zeroVariance)
            #expect(filtered.groups[0].advantages == step.groups[0].advantages)
            #expect(filtered.groups[2].advantages == step.groups[2].advantages)
        }
    }

    @Test func coefficientsAreNeverNaN() throws {
        var rng = SeededGenerator(seed: 6)
        for round in 0..<60 {
            let options = AlgorithmOptions.make("grpo", Self.lossKinds[round % Self.lossKinds.count].merging(["kl.coefficient": 0.1, "entropy.coefficient": 0.01]) { $1 })
            // Extreme but valid inputs: log-probs down to −700, log-ratios far beyond the clamp.
            let logp = (0..<5).map { _ in -Double.random(in: 0...700, using: &rng) }
            let behaviour = logp.map { _ in -Double.random(in: 0...700, using: &rng) }
            let sample = LossSample(advantage: Double.random(in: -1e3...1e3, using: &rng), logp: logp, behaviourLogp: behaviour,
                                    refLogp: behaviour, entropy: logp.map { _ in 0 })
            let plan = try StepLossPlan.compute(samples: [sample], totals: AggregationTotals(tokens: 5, sequences: 1), options: options)
            let values = plan.samples[0].logpCoefficients + plan.samples[0].tokenLosses + plan.samples[0].ratios + [plan.loss.total]
            #expect(values.allSatisfy { $0.isFinite })
        }
    }
}
