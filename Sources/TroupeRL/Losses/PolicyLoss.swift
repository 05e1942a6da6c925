import Foundation

/// One token's policy term: the loss value ℓ and its gradient coefficient g = ∂ℓ/∂log π_θ(token).
/// The model gradient is `Σ w_i·g ∇log π`; `g` is model-free, so tests pin `g` (docs/algorithms.md).
public struct PolicyTerm: Sendable, Equatable {
    public let loss: Double
    public let gradient: Double
    /// Whether a clip, cap, truncation or mask changed this token's weight (counts in `clip_fraction`).
    public let clipped: Bool
    /// PPO's dual clip bound this token (Â < 0, r > c).
    public let dualClipped: Bool
}

/// The policy losses. At ratio 1 (on-policy) every one of them gives g = −Â.
public enum PolicyLoss {
    /// PPO-clip with clip-higher and dual clip (Schulman 2017; DAPO's ε_low/ε_high; Ye et al. 2020's
    /// dual clip as in verl `compute_policy_loss_vanilla`):
    /// `ℓ = max(−Â r, −Â clip(r, 1−ε_low, 1+ε_high))`, then `min(ℓ, −Â c)` when Â < 0.
    /// g = −Â r where the unclipped branch is active (ties count as unclipped), else 0.
    /// `ratioDifferentiable` is false when the log-ratio hit its clamp: then r is constant and g = 0.
    public static func ppoClip(ratio r: Double, advantage a: Double, epsilonLow: Double?, epsilonHigh: Double,
                               dualClip: Double?, ratioDifferentiable: Bool = true) -> PolicyTerm {
        let lower = epsilonLow.map { 1 - $0 } ?? -Double.infinity
        let unclipped = -a * r
        let clippedLoss = -a * min(max(r, lower), 1 + epsilonHigh)
        var loss = max(unclipped, clippedLoss)
        var gradient = clippedLoss > unclipped ? 0 : -a * r
        let clipped = clippedLoss > unclipped
        var dualClipped = false
        if a < 0, let c = dualClip, loss > -a * c {
            loss = -a * c
            gradient = 0
            dualClipped = true
        }
        if !ratioDifferentiable { gradient = 0 }
        return PolicyTerm(loss: loss, gradient: gradient + 0, clipped: clipped, dualClipped: dualClipped)
    }

    /// CISPO, MiniMax-M1 Eq. 4-7: `ℓ = −sg(clip(r, lower, 1 + ε_high))·Â·log π`, g = −w·Â.
    /// `lower = 1 − ε_low`, or 0 when `epsilonLow` is nil (no lower bound, as MiniMax). With `mask`
    /// (Eq. 7) a token gets M = 0 when Â > 0 and r > 1 + ε_high, or Â < 0 and r < 1 − ε_low.
    public static func cispo(ratio r: Double, advantage a: Double, logp: Double, epsilonLow: Double?, epsilonHigh: Double,
                             mask: Bool) -> PolicyTerm {
        let lower = epsilonLow.map { max(1 - $0, 0) } ?? 0
        let upper = 1 + epsilonHigh
        let weight = min(max(r, lower), upper)
        var masked = false
        if mask {
            masked = (a > 0 && r > upper) || (a < 0 && epsilonLow != nil && r < lower)
        }
        let effective = masked ? 0 : weight
        return PolicyTerm(loss: -effective * a * logp + 0, gradient: -effective * a + 0, clipped: masked || weight != r, dualClipped: false)
    }

    /// REINFORCE-style log-likelihood loss with a stop-gradient weight: `ℓ = −sg(w)·Â·log π`, g = −w·Â.
    /// Used by TOPR (`toprWeight`) and by REINFORCE with truncated IS (`reinforceWeight`).
    public static func weightedLogLikelihood(weight: Double, advantage a: Double, logp: Double, clipped: Bool) -> PolicyTerm {
        PolicyTerm(loss: -weight * a * logp + 0, gradient: -weight * a + 0, clipped: clipped, dualClipped: false)
    }

    /// TOPR's weight, Le Roux et al. arXiv 2503.14286 Eq. 7-8: `clip(ρ, a+, b+)` when Â ≥ 0 and
    /// `clip(ρ, a−, b−)` when Â < 0, ρ being the sequence (product or geometric-mean) or token ratio.
    /// Canonical bounds a+ = b+ = 1, a− = 0, b− = 1: positives are SFT-like, negatives taper.
    public static func toprWeight(ratio: Double, advantage: Double, options: LossOptions) -> (weight: Double, clipped: Bool) {
        let (low, high) = advantage >= 0 ? (options.toprPositiveLower, options.toprPositiveUpper)
                                         : (options.toprNegativeLower, options.toprNegativeUpper)
        let weight = min(max(ratio, low), high)
        return (weight, weight != ratio)
    }

    /// REINFORCE's weight: `min(r, ρ̄)` with a truncated-IS cap (V-trace ρ̄), or 1 without one.
    public static func reinforceWeight(ratio: Double, cap: Double?) -> (weight: Double, clipped: Bool) {
        guard let cap else { return (1, false) }
        return (min(ratio, cap), ratio > cap)
    }

    /// TOPR §4.3: with ±1 rewards and baseline c, a data set with positive fraction p trains like one
    /// with `p̃ = p(1−c) / (1 + c(1−2p))`.
    public static func effectivePositiveFraction(p: Double, baseline c: Double) throws -> Double {
        guard p.isFinite, (0...1).contains(p) else { throw AlgorithmError(field: "p", problem: "must be in [0, 1], got \(p)") }
        guard c.isFinite, (-1...1).contains(c) else { throw AlgorithmError(field: "baseline", problem: "must be in [−1, 1], got \(c)") }
        let denominator = 1 + c * (1 - 2 * p)
        guard denominator != 0 else { throw AlgorithmError(field: "baseline", problem: "makes 1 + c(1 − 2p) zero") }
        return p * (1 - c) / denominator
    }
}

/// KL estimators against a reference policy, per token (Schulman, "Approximating KL divergence", 2020).
/// With d = ref − logp:
/// - k1 = logp − ref, ∂/∂logp = 1;
/// - k2 = ½(logp − ref)², ∂/∂logp = logp − ref;
/// - k3 = exp(d) − d − 1, ∂/∂logp = 1 − exp(d). As verl's `low_var_kl`, d is clamped to ±20 and k3
///   to ≤ 10; where a clamp binds the gradient is 0 (the exact derivative of the clamped value).
public enum KLPenalty {
    public static func term(logp: Double, refLogp: Double, estimator: KLEstimator) -> (value: Double, gradient: Double) {
        switch estimator {
        case .k1:
            return (logp - refLogp, 1)
        case .k2:
            return (0.5 * (logp - refLogp) * (logp - refLogp), logp - refLogp)
        case .k3:
            let d = refLogp - logp
            let clampedD = min(max(d, -20), 20)
            let value = exp(clampedD) - clampedD - 1
            if value > 10 { return (10, 0) }
            return (value, clampedD == d ? 1 - exp(d) : 0)
        }
    }
}
