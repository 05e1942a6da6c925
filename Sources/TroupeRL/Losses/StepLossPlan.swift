import Foundation

/// One training sample as the learner has it after its forward pass.
public struct LossSample: Sendable, Equatable {
    /// From `StepAdvantages` (the same for every token of the sample).
    public var advantage: Double
    /// log π_θ of each completion token under the weights being trained.
    public var logp: [Double]
    /// log μ of each token under the weights that sampled it (shipped by the actor).
    public var behaviourLogp: [Double]
    /// log π_ref per token; required when `kl.coefficient > 0`.
    public var refLogp: [Double]?
    /// Entropy of the policy's next-token distribution per token; required when `entropy.coefficient > 0`.
    public var entropy: [Double]?
    public var finishReason: FinishReason
    /// Tokens the sampler inserted rather than drew (a serial exit's phrase): no loss, not counted.
    public var inserted: Range<Int>?

    public init(advantage: Double, logp: [Double], behaviourLogp: [Double], refLogp: [Double]? = nil,
                entropy: [Double]? = nil, finishReason: FinishReason = .stop, inserted: Range<Int>? = nil) {
        self.advantage = advantage
        self.logp = logp
        self.behaviourLogp = behaviourLogp
        self.refLogp = refLogp
        self.entropy = entropy
        self.finishReason = finishReason
        self.inserted = inserted
    }

    /// The tokens that get a loss.
    public var trainedTokenCount: Int { logp.count - (inserted?.count ?? 0) }
}

/// What the learner feeds into backward for one sample.
public struct SampleLossPlan: Sendable, Equatable {
    /// ∂Loss/∂log π per token, **already multiplied by the aggregation weight**: backward seeds
    /// `d logπ_t = logpCoefficients[t]`. All zero for a sample without loss tokens.
    public let logpCoefficients: [Double]
    /// ∂Loss/∂H per token (already weighted), when `entropy.coefficient > 0`; nil otherwise.
    public let entropyCoefficients: [Double]?
    /// r_t = exp(clamp(logp − behaviour_logp)).
    public let ratios: [Double]
    /// The policy loss's g per token, before aggregation (the model-free quantity the tests pin).
    public let policyGradients: [Double]
    /// ℓ per token: policy + β·KL − c·H, before aggregation.
    public let tokenLosses: [Double]
    /// TOPR's sequence ratio ρ (product or geometric mean); nil for the other losses and for `token`.
    public let sequenceRatio: Double?
    /// w_i, the aggregation weight of each of this sample's tokens (0 when it contributes nothing).
    public let aggregationWeight: Double
    public let contributes: Bool
}

/// The step's loss split into parts, already aggregated. Additive over micro-batches.
public struct LossParts: Sendable, Equatable {
    public var policy = 0.0
    /// β · aggregated KL.
    public var kl = 0.0
    /// −c · aggregated entropy.
    public var entropy = 0.0
    public var total: Double { policy + kl + entropy }

    public init(policy: Double = 0, kl: Double = 0, entropy: Double = 0) {
        self.policy = policy
        self.kl = kl
        self.entropy = entropy
    }

    public static func + (lhs: LossParts, rhs: LossParts) -> LossParts {
        LossParts(policy: lhs.policy + rhs.policy, kl: lhs.kl + rhs.kl, entropy: lhs.entropy + rhs.entropy)
    }
}

/// Sums over loss tokens, additive over micro-batches; `summary` turns them into the logged metrics.
public struct LossMetrics: Sendable, Equatable {
    public var tokens = 0
    public var sequences = 0
    public var clippedTokens = 0
    public var dualClippedTokens = 0
    public var ratioSum = 0.0
    public var ratioMin = Double.infinity
    public var ratioMax = -Double.infinity
    /// Σ (behaviour_logp − logp): k1 estimate of KL(μ‖π) from μ's samples.
    public var mismatchK1Sum = 0.0
    /// Σ (r − 1 − log r): k3 estimate of the same.
    public var mismatchK3Sum = 0.0
    public var referenceKLSum = 0.0
    public var entropySum = 0.0
    /// Loss tokens with a KL term against the reference, and with an entropy from the forward pass: a
    /// metric that was not computed is left out rather than written as 0.
    public var referenceTokens = 0
    public var entropyTokens = 0
    public var maskedTruncatedSequences = 0

    public init() {}

    public static func + (lhs: LossMetrics, rhs: LossMetrics) -> LossMetrics {
        var sum = lhs
        sum.tokens += rhs.tokens
        sum.sequences += rhs.sequences
        sum.clippedTokens += rhs.clippedTokens
        sum.dualClippedTokens += rhs.dualClippedTokens
        sum.ratioSum += rhs.ratioSum
        sum.ratioMin = min(lhs.ratioMin, rhs.ratioMin)
        sum.ratioMax = max(lhs.ratioMax, rhs.ratioMax)
        sum.mismatchK1Sum += rhs.mismatchK1Sum
        sum.mismatchK3Sum += rhs.mismatchK3Sum
        sum.referenceKLSum += rhs.referenceKLSum
        sum.entropySum += rhs.entropySum
        sum.referenceTokens += rhs.referenceTokens
        sum.entropyTokens += rhs.entropyTokens
        sum.maskedTruncatedSequences += rhs.maskedTruncatedSequences
        return sum
    }

    /// `clip_fraction`, `dual_clip_fraction`, `ratio_mean|min|max`, `mismatch_kl` (k1), `mismatch_kl_k3`,
    /// `kl_ref` (mean of the configured estimator; only with a KL term), `entropy_mean` (only when the
    /// forward pass computed entropies, that is with an entropy term),
    /// `loss_tokens`, `loss_sequences`, `masked_truncated_sequences`. Means are over loss tokens.
    public var summary: [String: Double] {
        var metrics: [String: Double] = ["loss_tokens": Double(tokens), "loss_sequences": Double(sequences),
                                         "masked_truncated_sequences": Double(maskedTruncatedSequences)]
        guard tokens > 0 else { return metrics }
        let n = Double(tokens)
        metrics["clip_fraction"] = Double(clippedTokens) / n
        metrics["dual_clip_fraction"] = Double(dualClippedTokens) / n
        metrics["ratio_mean"] = ratioSum / n
        metrics["ratio_min"] = ratioMin
        metrics["ratio_max"] = ratioMax
        metrics["mismatch_kl"] = mismatchK1Sum / n
        metrics["mismatch_kl_k3"] = mismatchK3Sum / n
        if referenceTokens > 0 { metrics["kl_ref"] = referenceKLSum / Double(referenceTokens) }
        if entropyTokens > 0 { metrics["entropy_mean"] = entropySum / Double(entropyTokens) }
        return metrics
    }
}

/// Step two of the learner's step, once per micro-batch: per-token gradient coefficients and loss
/// values (docs/algorithms.md).
///
/// Per token, with `r = exp(clamp(logp − behaviour_logp, ±log_ratio_clamp))`:
/// `ℓ = policy(r, Â) + β·KL(logp, ref) − c·H`, and the coefficient fed to backward is
/// `w_i·(g_policy + β·∂KL/∂logp)` on log π and `−w_i·c` on H, where `w_i` comes from the step's
/// `AggregationTotals` — so any split of the step into micro-batches gives identical coefficients,
/// and the parts of the loss add up to the whole-step loss.
public struct StepLossPlan: Sendable, Equatable {
    public let samples: [SampleLossPlan]
    public let loss: LossParts
    public let metrics: LossMetrics

    public static func compute(samples: [LossSample], totals: AggregationTotals, options: AlgorithmOptions) throws -> StepLossPlan {
        try validate(samples: samples, totals: totals, options: options)
        var plans: [SampleLossPlan] = []
        var loss = LossParts()
        var metrics = LossMetrics()
        for (index, sample) in samples.enumerated() {
            let plan = planSample(sample, totals: totals, options: options, loss: &loss, metrics: &metrics)
            // Inputs are finite and ratios clamped, but products of huge advantages and log-probs can
            // still overflow; report that instead of handing Inf or NaN to backward.
            let values = plan.logpCoefficients + plan.tokenLosses + (plan.entropyCoefficients ?? [])
            guard values.allSatisfy(\.isFinite) else {
                throw AlgorithmError(field: "samples[\(index)]", problem: "overflows Double (advantage \(sample.advantage)); check the rewards and log-probs")
            }
            plans.append(plan)
        }
        guard loss.total.isFinite else {
            throw AlgorithmError(field: "samples", problem: "the aggregated loss overflows Double; check the rewards and log-probs")
        }
        return StepLossPlan(samples: plans, loss: loss, metrics: metrics)
    }

    private static func planSample(_ sample: LossSample, totals: AggregationTotals, options: AlgorithmOptions,
                                   loss: inout LossParts, metrics: inout LossMetrics) -> SampleLossPlan {
        let lossOptions = options.loss
        let count = sample.logp.count
        let clamp = lossOptions.logRatioClamp
        let logRatios = (0..<count).map { sample.logp[$0] - sample.behaviourLogp[$0] }
        let ratios = logRatios.map { exp(min(max($0, -clamp), clamp)) }
        let trained = sample.trainedTokenCount
        let contributes = Aggregation.contributes(length: trained, finishReason: sample.finishReason, filter: options.filter)
        let weight = contributes ? Aggregation.weight(sequenceTokens: trained, totals: totals, options: options.aggregation) : 0

        var sequenceRatio: Double?
        if lossOptions.kind == .topr, trained > 0, lossOptions.toprRatio != .token {
            let sum = sample.inserted.map { inserted in logRatios.indices.filter { !inserted.contains($0) }.reduce(0) { $0 + logRatios[$1] } }
                ?? logRatios.reduce(0, +)
            let logRho = lossOptions.toprRatio == .sequenceProduct ? sum : sum / Double(trained)
            sequenceRatio = exp(min(max(logRho, -clamp), clamp))
        }

        let klCoefficient = options.kl.coefficient
        let entropyCoefficient = options.entropy.coefficient
        var coefficients = Array(repeating: 0.0, count: count)
        var entropyCoefficients: [Double]? = entropyCoefficient > 0 ? Array(repeating: 0.0, count: count) : nil
        var policyGradients = Array(repeating: 0.0, count: count)
        var tokenLosses = Array(repeating: 0.0, count: count)
        let a = sample.advantage
        for t in 0..<count {
            if let inserted = sample.inserted, inserted.contains(t) { continue }
            let r = ratios[t]
            let term: PolicyTerm
            switch lossOptions.kind {
            case .ppoClip:
                term = PolicyLoss.ppoClip(ratio: r, advantage: a, epsilonLow: lossOptions.epsilonLow, epsilonHigh: lossOptions.epsilonHigh,
                                          dualClip: lossOptions.dualClip, ratioDifferentiable: abs(logRatios[t]) <= clamp)
            case .cispo:
                term = PolicyLoss.cispo(ratio: r, advantage: a, logp: sample.logp[t], epsilonLow: lossOptions.epsilonLow,
                                        epsilonHigh: lossOptions.epsilonHigh, mask: lossOptions.cispoMask)
            case .topr:
                let (w, clipped) = PolicyLoss.toprWeight(ratio: sequenceRatio ?? r, advantage: a, options: lossOptions)
                term = PolicyLoss.weightedLogLikelihood(weight: w, advantage: a, logp: sample.logp[t], clipped: clipped)
            case .reinforce:
                let (w, clipped) = PolicyLoss.reinforceWeight(ratio: r, cap: lossOptions.tisCap)
                term = PolicyLoss.weightedLogLikelihood(weight: w, advantage: a, logp: sample.logp[t], clipped: clipped)
            }
            var tokenLoss = term.loss
            var gradient = term.gradient
            var klValue = 0.0
            var hasReference = false
            if klCoefficient > 0, let ref = sample.refLogp {
                hasReference = true
                let kl = KLPenalty.term(logp: sample.logp[t], refLogp: ref[t], estimator: options.kl.estimator)
                klValue = kl.value
                tokenLoss += klCoefficient * kl.value
                gradient += klCoefficient * kl.gradient
            }
            let entropy = sample.entropy?[t] ?? 0
            if entropyCoefficient > 0 {
                tokenLoss -= entropyCoefficient * entropy
                entropyCoefficients?[t] = -entropyCoefficient * weight + 0
            }
            policyGradients[t] = term.gradient
            tokenLosses[t] = tokenLoss
            coefficients[t] = weight * gradient + 0

            guard contributes else { continue }
            loss.policy += weight * term.loss
            loss.kl += weight * klCoefficient * klValue
            loss.entropy -= weight * entropyCoefficient * entropy
            metrics.tokens += 1
            if term.clipped { metrics.clippedTokens += 1 }
            if term.dualClipped { metrics.dualClippedTokens += 1 }
            metrics.ratioSum += r
            metrics.ratioMin = min(metrics.ratioMin, r)
            metrics.ratioMax = max(metrics.ratioMax, r)
            metrics.mismatchK1Sum += -logRatios[t]
            metrics.mismatchK3Sum += r - 1 - log(r)
            metrics.referenceKLSum += klValue
            metrics.entropySum += entropy
            if hasReference { metrics.referenceTokens += 1 }
            if sample.entropy != nil { metrics.entropyTokens += 1 }
        }
        if contributes { metrics.sequences += 1 } else if trained > 0 { metrics.maskedTruncatedSequences += 1 }
        return SampleLossPlan(logpCoefficients: coefficients, entropyCoefficients: entropyCoefficients, ratios: ratios,
                              policyGradients: policyGradients, tokenLosses: tokenLosses, sequenceRatio: sequenceRatio,
                              aggregationWeight: weight, contributes: contributes)
    }

    private static func validate(samples: [LossSample], totals: AggregationTotals, options: AlgorithmOptions) throws {
        try options.validate()
        guard totals.tokens >= 0, totals.sequences >= 0 else {
            throw AlgorithmError(field: "totals", problem: "counts must be ≥ 0, got \(totals.tokens) tokens and \(totals.sequences) sequences")
        }
        var local = AggregationTotals(tokens: 0, sequences: 0)
        for (index, sample) in samples.enumerated() {
            let field = "samples[\(index)]"
            try Check.finite(sample.advantage, "\(field).advantage")
            try Check.logProbabilities(sample.logp, "\(field).logp")
            try Check.count(sample.behaviourLogp.count, equals: sample.logp.count, "\(field).behaviour_logp", what: "\(field).logp")
            try Check.logProbabilities(sample.behaviourLogp, "\(field).behaviour_logp")
            if let ref = sample.refLogp {
                try Check.count(ref.count, equals: sample.logp.count, "\(field).ref_logp", what: "\(field).logp")
                try Check.logProbabilities(ref, "\(field).ref_logp")
            } else if options.kl.coefficient > 0 {
                throw AlgorithmError(field: "\(field).ref_logp", problem: "is required when kl.coefficient > 0 (\(options.kl.coefficient))")
            }
            if let entropy = sample.entropy {
                try Check.count(entropy.count, equals: sample.logp.count, "\(field).entropy", what: "\(field).logp")
                try Check.entropies(entropy, "\(field).entropy")
            } else if options.entropy.coefficient > 0 {
                throw AlgorithmError(field: "\(field).entropy", problem: "is required when entropy.coefficient > 0 (\(options.entropy.coefficient))")
            }
            if let inserted = sample.inserted, inserted.lowerBound < 0 || inserted.upperBound > sample.logp.count {
                throw AlgorithmError(field: "\(field).inserted", problem: "\(inserted) lies outside the sample's \(sample.logp.count) tokens")
            }
            if Aggregation.contributes(length: sample.trainedTokenCount, finishReason: sample.finishReason, filter: options.filter) {
                local.tokens += sample.trainedTokenCount
                local.sequences += 1
            }
        }
        // The totals cover the whole step, so they can never be smaller than this micro-batch.
        guard totals.tokens >= local.tokens, totals.sequences >= local.sequences else {
            throw AlgorithmError(field: "totals", problem: "(\(totals.tokens) tokens, \(totals.sequences) sequences) is smaller than this micro-batch's own loss tokens (\(local.tokens), \(local.sequences)); count totals over the whole optimiser step")
        }
    }
}
