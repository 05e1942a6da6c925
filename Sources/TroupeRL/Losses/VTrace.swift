/// V-trace targets and policy-gradient advantages — Espeholt et al., "IMPALA", 2018 (reference:
/// deepmind/scalable_agent `vtrace.py::from_importance_weights`). For one trajectory of T steps:
/// `ρ_t = min(ρ̄, π/μ)`, `c_t = min(c̄, π/μ)`, `δ_t = ρ_t(r_t + γ V_{t+1} − V_t)`,
/// `v_t − V_t = δ_t + γ c_t (v_{t+1} − V_{t+1})`, and the policy-gradient advantage
/// `A_t = min(ρ̄_pg, π/μ)(r_t + γ v_{t+1} − V_t)` with `v_T` = the bootstrap value.
/// Critic-free LLM RL keeps only `min(ρ̄, r)` on the policy gradient: REINFORCE with `loss.tis_cap`.
public enum VTrace {
    public static func compute(ratios: [Double], discounts: [Double], rewards: [Double], values: [Double], bootstrapValue: Double,
                               rhoBar: Double = 1, cBar: Double = 1, pgRhoBar: Double = 1) throws -> (vs: [Double], pgAdvantages: [Double]) {
        let n = ratios.count
        try Check.nonEmpty(n, "ratios")
        try Check.count(discounts.count, equals: n, "discounts", what: "ratios")
        try Check.count(rewards.count, equals: n, "rewards", what: "ratios")
        try Check.count(values.count, equals: n, "values", what: "ratios")
        for (field, array) in [("ratios", ratios), ("discounts", discounts), ("rewards", rewards), ("values", values)] { try Check.finite(array, field) }
        try Check.finite(bootstrapValue, "bootstrap_value")
        for (index, ratio) in ratios.enumerated() where ratio < 0 {
            throw AlgorithmError(field: "ratios[\(index)]", problem: "an importance ratio must be ≥ 0, got \(ratio)")
        }
        for (field, bound) in [("rho_bar", rhoBar), ("c_bar", cBar), ("pg_rho_bar", pgRhoBar)] where !(bound > 0) {
            throw AlgorithmError(field: field, problem: "must be > 0, got \(bound)")
        }
        var vs = Array(repeating: 0.0, count: n)
        var correction = 0.0  // v_{t+1} − V_{t+1}
        for t in stride(from: n - 1, through: 0, by: -1) {
            let nextValue = t + 1 < n ? values[t + 1] : bootstrapValue
            let delta = min(rhoBar, ratios[t]) * (rewards[t] + discounts[t] * nextValue - values[t])
            correction = delta + discounts[t] * min(cBar, ratios[t]) * (t + 1 < n ? correction : 0)
            vs[t] = values[t] + correction
        }
        let advantages = (0..<n).map { t in
            min(pgRhoBar, ratios[t]) * (rewards[t] + discounts[t] * (t + 1 < n ? vs[t + 1] : bootstrapValue) - values[t])
        }
        return (vs, advantages)
    }
}
