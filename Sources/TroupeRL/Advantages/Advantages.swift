/// Advantage estimators over rewards (one scalar per response, broadcast to its tokens).
/// All take already-validated, finite inputs; `StepAdvantages` is the checked entry point.
public enum Advantages {
    /// Per-group estimators: `grpo` (DeepSeekMath §4.1.2), `drgrpo` (Dr. GRPO), `raw` (TOPR).
    /// `grpo_batch_std` and `batchnorm` need the batch: use `batchNormalized`.
    ///
    /// A group whose rewards are all identical gets exactly 0 (not `0/ε` noise). A singleton group
    /// gets 0, or its raw reward with `singleton: raw_reward` (verl: mean 0, std 1).
    public static func groupNormalized(rewards: [Double], options: AdvantageOptions) -> [Double] {
        if options.estimator == .raw { return rewards.map { $0 - options.baseline } }
        if rewards.count == 1 { return options.singleton == .rawReward ? rewards : [0] }
        let centred = centredInGroup(rewards, singleton: options.singleton)
        guard options.estimator == .grpo else { return centred }
        let mean = Statistics.mean(rewards)
        let std = Statistics.standardDeviation(rewards, mean: mean, ddof: options.std == .unbiased ? 1 : 0)
        return divide(centred, by: std + options.epsilon)
    }

    /// Batch estimators over the groups of one optimiser step.
    /// - `grpo_batch_std` (TRL `scale_rewards="batch"`): `(R − mean_g) / (std over all raw rewards + ε)`;
    /// - `batchnorm` (DLER Eq. 3, ScaleRL, verl `masked_whiten`): `a = R − mean_g`, then
    ///   `(a − mean(a)) / sqrt(var(a) + batch_variance_epsilon)`, each sequence weighted once
    ///   (`sequence`) or by its loss tokens `tokenCounts` (`token`); std kind from `options.std`.
    /// Other estimators are applied group by group.
    public static func batchNormalized(groups: [[Double]], tokenCounts: [[Int]], options: AdvantageOptions) -> [[Double]] {
        switch options.estimator {
        case .grpo, .drgrpo, .raw:
            return groups.map { groupNormalized(rewards: $0, options: options) }
        case .grpoBatchStd:
            let all = groups.flatMap { $0 }
            let std = Statistics.standardDeviation(all, mean: Statistics.mean(all), ddof: options.std == .unbiased ? 1 : 0)
            return groups.map { divide(centredInGroup($0, singleton: options.singleton), by: std + options.epsilon) }
        case .batchnorm:
            let centred = groups.map { centredInGroup($0, singleton: options.singleton) }
            var weights: [Double] = []
            var values: [Double] = []
            for (group, counts) in zip(centred, tokenCounts) {
                for (value, count) in zip(group, counts) {
                    values.append(value)
                    weights.append(options.batchWeighting == .sequence ? 1 : Double(count))
                }
            }
            let total = weights.reduce(0, +)
            guard total > 0 else { return centred.map { $0.map { _ in 0 } } }
            var mean = 0.0
            for (value, weight) in zip(values, weights) { mean += value * weight }
            mean /= total
            var squares = 0.0
            for (value, weight) in zip(values, weights) { squares += (value - mean) * (value - mean) * weight }
            let dof = total - (options.std == .unbiased ? 1 : 0)
            let variance = dof > 0 ? squares / dof : 0
            let scale = (variance + options.batchVarianceEpsilon).squareRoot()
            return centred.map { divide($0.map { $0 - mean }, by: scale) }
        }
    }

    /// ETTRL entropy-based advantage reshaping (EAR), arXiv 2508.11356:
    /// `Y_i = 1 + (mean_g H − H_i)/mean_g H`, `Â_i ← max(Y_i, 0)·Â_i`, with H_i the mean token entropy of
    /// response i. Confident (low-entropy) responses are amplified. The `Y ≥ 0` clamp is ours: without
    /// it a response with `H_i > 2·mean H` would flip sign. `mean H = 0` gives Y = 1.
    public static func entropyReshaped(advantages: [Double], responseEntropies: [Double]) -> [Double] {
        let meanEntropy = Statistics.mean(responseEntropies)
        guard meanEntropy > 0 else { return advantages }
        return zip(advantages, responseEntropies).map { advantage, entropy in
            max(1 + (meanEntropy - entropy) / meanEntropy, 0) * advantage
        }
    }

    /// ETTRL's Adv-Clip: `clip(Â, −bound, bound)`.
    public static func clipped(_ advantages: [Double], bound: Double) -> [Double] {
        advantages.map { min(max($0, -bound), bound) }
    }

    /// `R − mean_g`, exactly 0 for an all-equal group; a singleton centres on 0 (raw_reward) or itself.
    static func centredInGroup(_ rewards: [Double], singleton: SingletonPolicy) -> [Double] {
        if rewards.count == 1 { return singleton == .rawReward ? rewards : [0] }
        if Statistics.allEqual(rewards) { return rewards.map { _ in 0 } }
        let mean = Statistics.mean(rewards)
        return rewards.map { $0 - mean }
    }

    /// Division that never manufactures NaN or Inf: a zero denominator leaves 0.
    private static func divide(_ values: [Double], by denominator: Double) -> [Double] {
        guard denominator > 0 else { return values.map { _ in 0 } }
        return values.map { $0 / denominator }
    }
}
