import Foundation
import Testing
import TroupeJSON
import TroupeRL

/// TV5 (g for PPO-clip, CISPO, REINFORCE), TV6-TV7 (TOPR), TV10 (KL), TV18 (V-trace).
@Suite struct LossTests {
    static let ratios = [0.5, 0.8, 1.0, 1.2, 1.28, 1.5, 4.0]

    func ppo(_ advantage: Double) -> [PolicyTerm] {
        Self.ratios.map { PolicyLoss.ppoClip(ratio: $0, advantage: advantage, epsilonLow: 0.2, epsilonHigh: 0.28, dualClip: 3) }
    }

    func cispo(_ advantage: Double, low: Double? = nil, high: Double = 0.28, mask: Bool = false) -> [PolicyTerm] {
        Self.ratios.map { PolicyLoss.cispo(ratio: $0, advantage: advantage, logp: -1, epsilonLow: low, epsilonHigh: high, mask: mask) }
    }

    @Test func tv5PPOClip() {
        expectClose(ppo(1).map(\.gradient), [-0.5, -0.8, -1, -1.2, -1.28, 0, 0])
        expectClose(ppo(-1).map(\.gradient), [0, 0.8, 1, 1.2, 1.28, 1.5, 0])
        expectClose(ppo(1).map(\.loss), [-0.5, -0.8, -1, -1.2, -1.28, -1.28, -1.28])
        expectClose(ppo(-1).map(\.loss), [0.8, 0.8, 1, 1.2, 1.28, 1.5, 3.0])
        #expect(ppo(-1).map(\.dualClipped) == [false, false, false, false, false, false, true])
        #expect(ppo(1).map(\.clipped) == [false, false, false, false, false, true, true])
    }

    @Test func tv5CISPO() {
        expectClose(cispo(1).map(\.gradient), [-0.5, -0.8, -1, -1.2, -1.28, -1.28, -1.28])
        expectClose(cispo(-1).map(\.gradient), [0.5, 0.8, 1, 1.2, 1.28, 1.28, 1.28])
        expectClose(cispo(1).map(\.loss), [0.5, 0.8, 1, 1.2, 1.28, 1.28, 1.28])
        expectClose(cispo(-1).map(\.loss), [-0.5, -0.8, -1, -1.2, -1.28, -1.28, -1.28])
        // TRL's epsilon_high = 5 is an absolute cap: ε_high = 4 in our convention.
        expectClose(cispo(1, high: 4).map(\.gradient), [-0.5, -0.8, -1, -1.2, -1.28, -1.5, -4.0])
        expectClose(cispo(-1, high: 4).map(\.gradient), [0.5, 0.8, 1, 1.2, 1.28, 1.5, 4.0])
        // Unified mask (MiniMax-M1 Eq. 7) with 0.2 / 0.28.
        expectClose(cispo(1, low: 0.2, mask: true).map(\.gradient), [-0.8, -0.8, -1, -1.2, -1.28, 0, 0])
        expectClose(cispo(-1, low: 0.2, mask: true).map(\.gradient), [0, 0.8, 1, 1.2, 1.28, 1.28, 1.28])
    }

    @Test func tv5Reinforce() {
        for advantage in [1.0, -1.0] {
            let gradients = Self.ratios.map {
                let (w, _) = PolicyLoss.reinforceWeight(ratio: $0, cap: nil)
                return PolicyLoss.weightedLogLikelihood(weight: w, advantage: advantage, logp: -1, clipped: false).gradient
            }
            #expect(gradients == Self.ratios.map { _ in -advantage })
        }
        let capped = Self.ratios.map { PolicyLoss.reinforceWeight(ratio: $0, cap: 1.28).weight }
        expectClose(capped, [0.5, 0.8, 1, 1.2, 1.28, 1.28, 1.28])
    }

    @Test func tv6TOPRSequenceWeights() throws {
        let options = AlgorithmOptions.make("topr").loss
        let cases: [(reward: Double, rho: Double, weight: Double, gradient: Double)] = [
            (1, 3.0, 1, -1), (1, 0.2, 1, -1), (-1, 3.0, 1, 1), (-1, 0.2, 0.2, 0.2), (-1, exp(-5), 0.006738, 0.006738),
        ]
        for item in cases {
            let (w, _) = PolicyLoss.toprWeight(ratio: item.rho, advantage: item.reward, options: options)
            expectClose(w, item.weight)
            expectClose(PolicyLoss.weightedLogLikelihood(weight: w, advantage: item.reward, logp: -2, clipped: false).gradient, item.gradient)
        }
        // Through the learner path: one-token samples whose log-ratio is log ρ.
        let samples = cases.map { LossSample(advantage: $0.reward, logp: [-10], behaviourLogp: [-10 - log($0.rho)]) }
        let plan = try StepLossPlan.compute(samples: samples, totals: AggregationTotals(tokens: 5, sequences: 5), options: .make("topr"))
        expectClose(plan.samples.map { $0.policyGradients[0] }, cases.map(\.gradient))
    }

    @Test func tv6SequenceRatioLevels() throws {
        let logRatios = [0.1, -0.3, 0.05]
        func rho(_ level: String) throws -> Double? {
            let sample = LossSample(advantage: -1, logp: [-1, -1, -1], behaviourLogp: logRatios.map { -1 - $0 })
            let options = AlgorithmOptions.make("topr", ["loss.topr_ratio": .string(level)])
            return try StepLossPlan.compute(samples: [sample], totals: AggregationTotals(tokens: 3, sequences: 1), options: options).samples[0].sequenceRatio
        }
        expectClose(try rho("sequence_product"), 0.860708)
        expectClose(try rho("sequence_geomean"), 0.951229)
        #expect(try rho("token") == nil)
        // Token level: each negative token is tapered by its own ratio.
        let sample = LossSample(advantage: -1, logp: [-1, -1, -1], behaviourLogp: logRatios.map { -1 - $0 })
        let plan = try StepLossPlan.compute(samples: [sample], totals: AggregationTotals(tokens: 3, sequences: 1), options: .make("topr", ["loss.topr_ratio": "token"]))
        expectClose(plan.samples[0].policyGradients, [1, exp(-0.3), 1])
    }

    @Test func tv7TOPREffectivePositiveFraction() throws {
        let cases: [(Double, Double, Double)] = [(0.1, 0, 0.1), (0.1, 0.5, 0.035714), (0.1, -0.5, 0.25), (0.5, 0.5, 0.25), (0.5, -0.9, 0.95), (0.3, -1, 1.0)]
        for (p, c, expected) in cases { expectClose(try PolicyLoss.effectivePositiveFraction(p: p, baseline: c), expected) }
        expectAlgorithmError(field: "p") { _ = try PolicyLoss.effectivePositiveFraction(p: 1.5, baseline: 0) }
    }

    @Test func tv10KLEstimators() {
        let rows: [(logp: Double, ref: Double, k1: Double, k2: Double, k3: Double)] = [
            (log(0.5), log(0.25), 0.693147, 0.240227, 0.193147),
            (log(0.25), log(0.5), -0.693147, 0.240227, 0.306853),
            (-1.3, -1.3, 0, 0, 0),
        ]
        for row in rows {
            expectClose(KLPenalty.term(logp: row.logp, refLogp: row.ref, estimator: .k1).value, row.k1)
            expectClose(KLPenalty.term(logp: row.logp, refLogp: row.ref, estimator: .k2).value, row.k2)
            expectClose(KLPenalty.term(logp: row.logp, refLogp: row.ref, estimator: .k3).value, row.k3)
        }
    }

    @Test func klGradientsMatchFiniteDifferences() {
        let h = 1e-6
        for estimator in [KLEstimator.k1, .k2, .k3] {
            for (logp, ref) in [(-0.7, -1.4), (-2.0, -0.3), (-1.0, -1.0)] {
                let numeric = (KLPenalty.term(logp: logp + h, refLogp: ref, estimator: estimator).value
                               - KLPenalty.term(logp: logp - h, refLogp: ref, estimator: estimator).value) / (2 * h)
                expectClose(KLPenalty.term(logp: logp, refLogp: ref, estimator: estimator).gradient, numeric, tolerance: 1e-6)
            }
        }
        // verl's clamps: k3 ≤ 10 with zero gradient there.
        let clamped = KLPenalty.term(logp: -30, refLogp: -1, estimator: .k3)
        #expect(clamped.value == 10 && clamped.gradient == 0)
    }

    @Test func tv18VTrace() throws {
        let result = try VTrace.compute(ratios: [2, 0.5, 1], discounts: [0.9, 0.9, 0.9], rewards: [0, 0, 1], values: [0.5, 0.6, 0.7], bootstrapValue: 0)
        expectClose(result.vs, [0.675, 0.75, 1.0])
        expectClose(result.pgAdvantages, [0.175, 0.15, 0.30])
        expectAlgorithmError(field: "ratios[1]") {
            _ = try VTrace.compute(ratios: [1, -1], discounts: [1, 1], rewards: [0, 0], values: [0, 0], bootstrapValue: 0)
        }
    }

    @Test func klAndEntropyTermsReachTheCoefficients() throws {
        let options = AlgorithmOptions.make("grpo", ["kl.coefficient": 0.5, "kl.estimator": "k2", "entropy.coefficient": 0.1,
                                                     "aggregation.mode": "token-mean"])
        let sample = LossSample(advantage: 0, logp: [-1, -2], behaviourLogp: [-1, -2], refLogp: [-1.5, -2], entropy: [0.4, 1.0])
        let plan = try StepLossPlan.compute(samples: [sample], totals: AggregationTotals(tokens: 2, sequences: 1), options: options)
        // Â = 0: only KL (β·(logp − ref)) and entropy (−c) remain, each weighted by 1/2.
        expectClose(plan.samples[0].logpCoefficients, [0.5 * 0.5 * 0.5, 0])
        expectClose(plan.samples[0].entropyCoefficients!, [-0.05, -0.05])
        expectClose(plan.loss.kl, 0.5 * (0.5 * 0.25) / 2)
        expectClose(plan.loss.entropy, -0.1 * 1.4 / 2)
        expectClose(plan.loss.total, plan.loss.kl + plan.loss.entropy)
    }
}

/// A serial exit's inserted phrase gets no loss and does not count: the sample's loss is that of the
/// same sample without those tokens.
@Suite struct InsertedTokenLossTests {
    @Test(arguments: [AggregationMode.tokenMean, .seqMeanTokenMean])
    func insertedTokensGetNoLossAndDoNotCount(mode: AggregationMode) throws {
        var options = AlgorithmOptions()
        options.aggregation.mode = mode
        let logp = [-0.5, -9.0, -8.0, -0.7], behaviour = [-0.6, 0, 0, -0.75]
        let withPhrase = LossSample(advantage: 0.8, logp: logp, behaviourLogp: behaviour, inserted: 1..<3)
        let without = LossSample(advantage: 0.8, logp: [-0.5, -0.7], behaviourLogp: [-0.6, -0.75])
        #expect(withPhrase.trainedTokenCount == 2)
        let totals = AggregationTotals(tokens: 2, sequences: 1)
        let a = try StepLossPlan.compute(samples: [withPhrase], totals: totals, options: options)
        let b = try StepLossPlan.compute(samples: [without], totals: totals, options: options)
        #expect(a.samples[0].logpCoefficients[1] == 0 && a.samples[0].logpCoefficients[2] == 0)
        #expect(a.samples[0].logpCoefficients[0] == b.samples[0].logpCoefficients[0])
        #expect(a.samples[0].logpCoefficients[3] == b.samples[0].logpCoefficients[1])
        #expect(a.loss == b.loss && a.metrics.tokens == 2)
        #expect(throws: AlgorithmError.self) {
            try StepLossPlan.compute(samples: [LossSample(advantage: 1, logp: [-1], behaviourLogp: [-1], inserted: 0..<3)],
                                     totals: totals, options: options)
        }
    }
}
