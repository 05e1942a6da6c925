/// TTRL majority-vote reward — Zuo et al., "TTRL: Test-Time Reinforcement Learning", arXiv 2504.16084
/// (code: PRIME-RL/TTRL `verl/workers/reward_manager/ttrl.py`, `ttt_metrics.py`).
///
/// Conventions pinned here:
/// - the pseudo-label is the majority of the **valid** answers of all vote samples (`N_vote ≥ N_train`);
///   ties go to the answer that appeared first; invalid answers are excluded from the vote;
/// - `R_i = correct` when sample i's answer is equivalent to the label, else `incorrect` (invalid → `incorrect`);
/// - when every answer is invalid there is no label and every reward is `incorrect`;
/// - the ground truth, when known, is used **only** for monitoring metrics.
public enum MajorityVote {
    public struct Outcome: Sendable, Equatable {
        /// The label as the model first wrote it; nil when every answer was invalid.
        public let label: String?
        public let rewards: [Double]
        /// For each sample: does it agree with the label?
        public let agreesWithLabel: [Bool]
        public let tally: AnswerTally
    }

    public static func vote(answers: [String?], correct: Double = 1, incorrect: Double = 0) -> Outcome {
        let tally = AnswerTally(answers: answers)
        let winner = tally.majorityIndex
        let agrees = tally.classOfSample.map { $0 != nil && $0 == winner }
        return Outcome(label: winner.map { tally.classes[$0].representative },
                       rewards: agrees.map { $0 ? correct : incorrect },
                       agreesWithLabel: agrees,
                       tally: tally)
    }

    /// TTRL's monitoring metrics for one prompt (`ttt_metrics.test_time_train_metrics`):
    /// - `majority_ratio`: label count / all samples (invalid ones included in the denominator);
    /// - `answer_entropy`: entropy of the valid answers (natural log);
    /// - `valid_fraction`;
    /// and, with a ground truth:
    /// - `label_accuracy`: 1 when the label is equivalent to the ground truth;
    /// - `reward_accuracy`: fraction of samples whose pseudo reward equals the true reward ("lucky hits" count);
    /// - `ground_truth_ratio`: fraction truly correct; `majority_voting_reward`: mean pseudo reward;
    /// - `pass_at_n`: 1 when any sample is truly correct.
    public static func metrics(outcome: Outcome, groundTruth: String?) -> [String: Double] {
        let tally = outcome.tally
        let n = Double(max(tally.sampleCount, 1))
        let labelCount = tally.majorityIndex.map { tally.classes[$0].count } ?? 0
        var metrics: [String: Double] = [
            "majority_ratio": Double(labelCount) / n,
            "answer_entropy": tally.answerEntropy,
            "valid_fraction": Double(tally.validCount) / n,
        ]
        guard let groundTruth else { return metrics }
        let truthKey = AnswerEquivalence.canonicalKey(groundTruth)
        let truth = tally.classOfSample.map { $0 != nil && tally.classes[$0!].key == truthKey }
        let matching = zip(truth, outcome.agreesWithLabel).filter { $0 == $1 }.count
        metrics["label_accuracy"] = tally.majorityIndex.map { tally.classes[$0].key == truthKey } == true ? 1 : 0
        metrics["reward_accuracy"] = Double(matching) / n
        metrics["ground_truth_ratio"] = Double(truth.filter { $0 }.count) / n
        metrics["majority_voting_reward"] = Double(outcome.agreesWithLabel.filter { $0 }.count) / n
        metrics["pass_at_n"] = truth.contains(true) ? 1 : 0
        return metrics
    }
}

/// Voting across sampling temperatures with early exit — Wu, Mirhoseini & Tambe, "On the Role of
/// Temperature Sampling in Test-Time Scaling", arXiv 2510.02611 (docs/algorithms.md).
///
/// Each temperature votes on its own samples; a temperature is *confident* when its winner holds at
/// least `intraThreshold` of its samples. The label is the flat majority over all samples. Sampling
/// may stop early when the share of temperatures that are confident *and* agree with the most common
/// per-temperature winner is at least `crossThreshold` (1.0: all agree). This reading of the paper's
/// σ_intra/σ_cross rule is ours (no official code).
public enum MultiTemperatureVote {
    public struct Decision: Sendable, Equatable {
        public let label: String?
        public let winners: [String?]
        public let confident: [Bool]
        public let earlyExit: Bool
    }

    public static func decide(answersByTemperature: [[String?]], intraThreshold: Double = 0.8,
                              crossThreshold: Double = 1.0) throws -> Decision {
        try Check.nonEmpty(answersByTemperature.count, "answers_by_temperature")
        for (index, answers) in answersByTemperature.enumerated() { try Check.nonEmpty(answers.count, "answers_by_temperature[\(index)]") }
        guard (0...1).contains(intraThreshold) else { throw AlgorithmError(field: "intra_threshold", problem: "must be in [0, 1], got \(intraThreshold)") }
        guard (0...1).contains(crossThreshold) else { throw AlgorithmError(field: "cross_threshold", problem: "must be in [0, 1], got \(crossThreshold)") }
        let flat = MajorityVote.vote(answers: answersByTemperature.flatMap { $0 })
        var winners: [String?] = []
        var confident: [Bool] = []
        for answers in answersByTemperature {
            let tally = AnswerTally(answers: answers)
            let winner = tally.majorityIndex
            winners.append(winner.map { tally.classes[$0].representative })
            confident.append(winner.map { Double(tally.classes[$0].count) / Double(answers.count) >= intraThreshold } ?? false)
        }
        let crossWinner = MajorityVote.vote(answers: winners).tally
        let crossKey = crossWinner.majorityIndex.map { crossWinner.classes[$0].key }
        let agreeing = zip(winners, confident).filter { winner, isConfident in
            isConfident && winner.map { AnswerEquivalence.canonicalKey($0) } == crossKey && crossKey != nil
        }.count
        return Decision(label: flat.label, winners: winners, confident: confident,
                        earlyExit: Double(agreeing) / Double(answersByTemperature.count) >= crossThreshold)
    }
}
