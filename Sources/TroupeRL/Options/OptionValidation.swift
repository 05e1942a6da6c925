extension AlgorithmOptions {
    /// Checks every range and cross-field rule; the error names the key (docs/algorithms.md lists the ranges).
    public func validate() throws {
        func fail(_ key: String, _ problem: String) -> AlgorithmError { AlgorithmError(field: key, problem: problem) }
        func atLeast(_ value: Double, _ bound: Double, _ key: String) throws {
            try Check.finite(value, key)
            guard value >= bound else { throw fail(key, "must be ≥ \(bound), got \(value)") }
        }
        func positive(_ value: Int?, _ key: String) throws {
            if let value, value <= 0 { throw fail(key, "must be > 0, got \(value)") }
        }

        // reward
        try Check.finite(reward.correct, "reward.correct")
        try Check.finite(reward.incorrect, "reward.incorrect")
        guard reward.correct > reward.incorrect else {
            throw fail("reward.correct", "must be greater than reward.incorrect (\(reward.incorrect)), got \(reward.correct)")
        }
        try atLeast(reward.frequencyEntropyWeight, 0, "reward.frequency_entropy_weight")
        try atLeast(reward.pointExpand, 0, "reward.point_expand")
        try atLeast(reward.formatWeight, 0, "reward.format_weight")
        if reward.formatWeight > 0 && reward.format == .none {
            throw fail("reward.format_weight", "is \(reward.formatWeight) but reward.format is \"none\"; name a format to check")
        }
        try positive(reward.overlongMaxLength, "reward.overlong_max_length")
        try positive(reward.overlongCache, "reward.overlong_cache")
        switch (reward.overlongMaxLength, reward.overlongCache) {
        case (nil, nil): break
        case let (maxLength?, cache?):
            guard cache <= maxLength else { throw fail("reward.overlong_cache", "must be ≤ reward.overlong_max_length (\(maxLength)), got \(cache)") }
        case (nil, _): throw fail("reward.overlong_max_length", "must be set when reward.overlong_cache is")
        case (_, nil): throw fail("reward.overlong_cache", "must be set when reward.overlong_max_length is")
        }
        try atLeast(reward.overlongPenaltyFactor, 0, "reward.overlong_penalty_factor")
        try positive(reward.truncationLength, "reward.truncation_length")

        // advantage
        try atLeast(advantage.epsilon, 0, "advantage.epsilon")
        try atLeast(advantage.batchVarianceEpsilon, 0, "advantage.batch_variance_epsilon")
        if let clip = advantage.clip {
            try Check.finite(clip, "advantage.clip")
            guard clip > 0 else { throw fail("advantage.clip", "must be > 0, got \(clip)") }
        }
        try Check.finite(advantage.baseline, "advantage.baseline")

        // loss
        if let low = loss.epsilonLow {
            try Check.finite(low, "loss.epsilon_low")
            guard (0...1).contains(low) else { throw fail("loss.epsilon_low", "must be in [0, 1] (or null for no lower bound), got \(low)") }
        }
        try atLeast(loss.epsilonHigh, 0, "loss.epsilon_high")
        if let dual = loss.dualClip {
            try Check.finite(dual, "loss.dual_clip")
            guard dual > 1 else { throw fail("loss.dual_clip", "must be > 1, got \(dual)") }
        }
        try atLeast(loss.toprNegativeLower, 0, "loss.topr_negative_lower")
        try atLeast(loss.toprPositiveLower, 0, "loss.topr_positive_lower")
        try atLeast(loss.toprNegativeUpper, loss.toprNegativeLower, "loss.topr_negative_upper")
        try atLeast(loss.toprPositiveUpper, loss.toprPositiveLower, "loss.topr_positive_upper")
        if let cap = loss.tisCap {
            try Check.finite(cap, "loss.tis_cap")
            guard cap > 0 else { throw fail("loss.tis_cap", "must be > 0, got \(cap)") }
        }
        try Check.finite(loss.logRatioClamp, "loss.log_ratio_clamp")
        guard loss.logRatioClamp > 0 && loss.logRatioClamp <= 700 else {
            throw fail("loss.log_ratio_clamp", "must be in (0, 700] so exp() stays finite, got \(loss.logRatioClamp)")
        }

        // regularisers
        try atLeast(kl.coefficient, 0, "kl.coefficient")
        try atLeast(entropy.coefficient, 0, "entropy.coefficient")

        // aggregation
        try positive(aggregation.constant, "aggregation.constant")
        if aggregation.mode == .tokenSumConstant || aggregation.mode == .tokenSumNorm, aggregation.constant == nil {
            throw fail("aggregation.constant", "must be set for aggregation.mode \"\(aggregation.mode.rawValue)\"")
        }

        // filters and sampling
        if let tolerance = filter.zeroVarianceTolerance { try atLeast(tolerance, 0, "filter.zero_variance_tolerance") }
        if let staleness = filter.maxStaleness, staleness < 0 { throw fail("filter.max_staleness", "must be ≥ 0, got \(staleness)") }
        try positive(sampling.samplesPerPrompt, "sampling.samples_per_prompt")
        try positive(sampling.trainSamples, "sampling.train_samples")
        if let train = sampling.trainSamples, let samples = sampling.samplesPerPrompt, train > samples {
            throw fail("sampling.train_samples", "must be ≤ sampling.samples_per_prompt (\(samples)), got \(train)")
        }
    }
}
