/// TTRV frequency + diversity reward — Singh et al., TTRV (test-time RL for vision-language models),
/// arXiv 2510.06783, §3.2 Eq. 3-7 (no public code).
///
/// `R_i = p̂(ŷ_i) + α·(−H(p̂))` with `p̂(y) = count(y)/N` over all N samples and `H` the natural-log
/// entropy of the valid answers. Convention pinned here: an invalid answer has `p̂ = 0` (it never
/// earns frequency) but still receives the group's `α·(−H)`.
///
/// Note (docs/algorithms.md): `−αH` is the same for every sample of a prompt, so per-group GRPO
/// normalisation cancels it exactly; it only matters with batch-level or un-normalised advantages.
public enum FrequencyReward {
    public struct Outcome: Sendable, Equatable {
        public let rewards: [Double]
        /// r1, the frequency part.
        public let frequencies: [Double]
        /// H, the entropy of the valid answers.
        public let entropy: Double
        public let tally: AnswerTally
    }

    public static func compute(answers: [String?], entropyWeight: Double) -> Outcome {
        let tally = AnswerTally(answers: answers)
        let n = Double(max(answers.count, 1))
        let frequencies = tally.classOfSample.map { $0.map { Double(tally.classes[$0].count) / n } ?? 0 }
        let entropy = tally.answerEntropy
        return Outcome(rewards: frequencies.map { $0 - entropyWeight * entropy },
                       frequencies: frequencies, entropy: entropy, tally: tally)
    }
}
