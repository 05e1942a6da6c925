extension AlgorithmOptions {
    /// Checks every option's range (declared with it in `fields`), then the rules that tie options
    /// together; the error names the key (docs/algorithms.md lists the ranges).
    public func validate() throws {
        for field in Self.fields {
            if let problem = field.check(self) { throw AlgorithmError(field: field.key, problem: problem) }
        }
        try validateRewardRules()
        try validateLossRules()
        if aggregation.mode == .tokenSumConstant || aggregation.mode == .tokenSumNorm, aggregation.constant == nil {
            throw AlgorithmError(field: "aggregation.constant", problem: "must be set for aggregation.mode \"\(aggregation.mode.rawValue)\"")
        }
        if let train = sampling.trainSamples, let samples = sampling.samplesPerPrompt, train > samples {
            throw AlgorithmError(field: "sampling.train_samples", problem: "must be ≤ sampling.samples_per_prompt (\(samples)), got \(train)")
        }
    }

    private func validateRewardRules() throws {
        guard reward.correct > reward.incorrect else {
            throw AlgorithmError(field: "reward.correct", problem: "must be greater than reward.incorrect (\(reward.incorrect)), got \(reward.correct)")
        }
        if reward.formatWeight > 0 && reward.format == .none {
            throw AlgorithmError(field: "reward.format_weight", problem: "is \(reward.formatWeight) but reward.format is \"none\"; name a format to check")
        }
        switch (reward.overlongMaxLength, reward.overlongCache) {
        case (nil, nil): break
        case let (maxLength?, cache?):
            guard cache <= maxLength else {
                throw AlgorithmError(field: "reward.overlong_cache", problem: "must be ≤ reward.overlong_max_length (\(maxLength)), got \(cache)")
            }
        case (nil, _): throw AlgorithmError(field: "reward.overlong_max_length", problem: "must be set when reward.overlong_cache is")
        case (_, nil): throw AlgorithmError(field: "reward.overlong_cache", problem: "must be set when reward.overlong_max_length is")
        }
    }

    private func validateLossRules() throws {
        guard loss.toprNegativeUpper >= loss.toprNegativeLower else {
            throw AlgorithmError(field: "loss.topr_negative_upper", problem: "must be ≥ loss.topr_negative_lower (\(loss.toprNegativeLower)), got \(loss.toprNegativeUpper)")
        }
        guard loss.toprPositiveUpper >= loss.toprPositiveLower else {
            throw AlgorithmError(field: "loss.topr_positive_upper", problem: "must be ≥ loss.topr_positive_lower (\(loss.toprPositiveLower)), got \(loss.toprPositiveUpper)")
        }
    }
}
