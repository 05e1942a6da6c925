/// Length-dependent reward terms. Both are applied by `GroupRewards` after the base reward.
public enum LengthShaping {
    /// DAPO soft overlong punishment — Yu et al., "DAPO", arXiv 2503.14476, Eq. 13
    /// (verl `workers/reward_manager/dapo.py`):
    /// 0 up to `L_max − L_cache` tokens, then linearly down to −1 at `L_max`, and −1 beyond;
    /// multiplied by `factor`. Added to the reward.
    public static func dapoOverlongPenalty(length: Int, maxLength: Int, cache: Int, factor: Double = 1) -> Double {
        let expected = maxLength - cache
        guard length > expected else { return 0 }
        guard length <= maxLength else { return -factor }
        return Double(expected - length) / Double(cache) * factor
    }

    /// DLER truncation penalty — Liu et al., "DLER: Doing Length pEnalty Right", arXiv 2510.15110:
    /// a completion that hit the token budget (`finish_reason == length`) or is longer than `limit`
    /// tokens gets the incorrect reward, whatever its answer. A completion of exactly `limit` tokens
    /// that stopped on its own is not truncated.
    public static func dlerTruncated(length: Int, finishReason: FinishReason, limit: Int) -> Bool {
        finishReason == .length || length > limit
    }
}

/// S-GRPO serial-group decaying reward — Dai et al., arXiv 2505.07686 (paper notes; no code read).
///
/// The group is one reasoning path cut at several points, ordered earliest exit first and the full
/// response last. Going in that order, the k-th correct answer gets `1/2^(k−1)`; wrong answers get 0.
public enum SerialDecayReward {
    public static func rewards(correctInOrder: [Bool]) -> [Double] {
        var correctSoFar = 0
        return correctInOrder.map { isCorrect in
            guard isCorrect else { return 0 }
            correctSoFar += 1
            return 1 / Double(1 << min(correctSoFar - 1, 62))
        }
    }
}
