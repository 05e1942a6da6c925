import Testing
import TroupeJSON
import TroupeRL

/// TV11 (TTRL), TV12 (TTRV), TV19 (multi-temperature voting).
@Suite struct MajorityVoteTests {
    @Test func tv11InvalidAnswerNeverWinsAndMetrics() throws {
        let result = try GroupRewards.compute(samples: ["42", "42", "17", "42", "3", "17", "42", ""].map { RewardSample(answer: $0) },
                                              context: RewardContext(groundTruth: "17"), options: .make("ttrl"))
        #expect(result.label == "42")
        #expect(result.rewards == [1, 1, 0, 1, 0, 0, 1, 0])
        expectClose(result.metrics["majority_ratio"], 0.5)
        expectClose(result.metrics["label_accuracy"], 0)
        expectClose(result.metrics["reward_accuracy"], 0.25)
        expectClose(result.metrics["ground_truth_ratio"], 0.25)
        expectClose(result.metrics["pass_at_n"], 1)
    }

    @Test func tv11LuckyHit() throws {
        let result = try GroupRewards.compute(samples: ["1", "2", "2", "3", "4", "6", "7", "8"].map { RewardSample(answer: $0) },
                                              context: RewardContext(groundTruth: "5"), options: .make("ttrl"))
        #expect(result.label == "2")
        #expect(result.rewards == [0, 1, 1, 0, 0, 0, 0, 0])
        expectClose(result.metrics["label_accuracy"], 0)
        expectClose(result.metrics["reward_accuracy"], 0.75)
        expectClose(result.metrics["pass_at_n"], 0)
    }

    @Test func tv11InvalidMajorityIsExcludedFromTheVote() throws {
        // TTRL's code would elect "" and reward every unparseable output; we exclude invalid answers.
        let answers: [String?] = ["", "", "", "5", "5", "9", nil, "1"]
        let result = try GroupRewards.compute(samples: answers.map { RewardSample(answer: $0) },
                                              context: RewardContext(groundTruth: "5"), options: .make("ttrl"))
        #expect(result.label == "5")
        #expect(result.rewards == [0, 0, 0, 1, 1, 0, 0, 0])
        expectClose(result.metrics["reward_accuracy"], 1.0)
    }

    @Test func tv11TieGoesToTheFirstAnswer() {
        #expect(MajorityVote.vote(answers: ["7", "9", "9", "7"]).label == "7")
        #expect(MajorityVote.vote(answers: ["9", "7", "7", "9"]).label == "9")
        // Equivalent spellings vote together; the label keeps the first spelling.
        #expect(MajorityVote.vote(answers: ["0.5", "3", "1/2", "3"]).label == "0.5")
    }

    @Test func tv11DownSampledGroupIsZeroVariance() throws {
        let options = AlgorithmOptions.make("ttrl")
        let answers = Array(repeating: "a", count: 40) + Array(repeating: "b", count: 24)
        let rewards = try GroupRewards.compute(answers: answers, groundTruth: nil, lengths: Array(repeating: 5, count: 64),
                                               finishReasons: Array(repeating: .stop, count: 64), options: options)
        #expect(rewards.label == "a")
        let train = options.trainingIndices(groupSize: 64)
        #expect(train == 0..<32)
        let group = AdvantageGroup(rewards: Array(rewards.rewards[train]), lengths: Array(repeating: 5, count: 32))
        let step = try StepAdvantages.compute(groups: [group], options: options)
        #expect(step.groups[0].advantages == Array(repeating: 0, count: 32))
        let filtered = try StepAdvantages.compute(groups: [group], options: options.applying(overrides: ["filter.zero_variance_tolerance": 0]))
        #expect(filtered.groups[0].dropReason == .zeroVariance)
        #expect(filtered.totals == AggregationTotals(tokens: 0, sequences: 0))
    }

    @Test func tv12TTRVFrequencyAndEntropyCancelsUnderGroupNormalisation() throws {
        let answers = ["A", "A", "A", "B", "C", "A", "B", "A"]
        let frequency = FrequencyReward.compute(answers: answers, entropyWeight: 0.75)
        expectClose(frequency.frequencies, [0.625, 0.625, 0.625, 0.25, 0.125, 0.625, 0.25, 0.625])
        expectClose(frequency.entropy, 0.900256)
        expectClose(frequency.rewards, [-0.050192, -0.050192, -0.050192, -0.425192, -0.550192, -0.050192, -0.425192, -0.050192])

        let options = AlgorithmOptions.make("ttrv")
        let rewards = try GroupRewards.compute(samples: answers.map { RewardSample(answer: $0) }, options: options).rewards
        expectClose(rewards, frequency.rewards)
        let expected = [0.762493, 0.762493, 0.762493, -1.067490, -1.677484, 0.762493, -1.067490, 0.762493]
        let advantages = Advantages.groupNormalized(rewards: rewards, options: options.advantage)
        expectClose(advantages, expected)
        let withoutEntropy = FrequencyReward.compute(answers: answers, entropyWeight: 0).rewards
        expectClose(Advantages.groupNormalized(rewards: withoutEntropy, options: options.advantage), expected)
    }

    @Test func ttrvInvalidAnswersEarnNoFrequency() {
        let outcome = FrequencyReward.compute(answers: ["A", nil, "A", "B"], entropyWeight: 0)
        expectClose(outcome.rewards, [0.5, 0, 0.5, 0.25])
    }

    @Test func tv19MultiTemperatureVoting() throws {
        let agree = try MultiTemperatureVote.decide(answersByTemperature: [
            ["7", "7", "7", "7", "3"], ["7", "7", "7", "7", "7"], ["7", "2", "7", "7", "7"],
        ])
        #expect(agree.label == "7")
        #expect(agree.winners == ["7", "7", "7"])
        #expect(agree.earlyExit)

        let split = try MultiTemperatureVote.decide(answersByTemperature: [
            ["7", "7", "3", "3", "3"], ["3", "7", "7", "7", "2"], ["3", "2", "2", "9", "3"],
        ])
        #expect(split.label == "3")
        #expect(split.winners == ["3", "7", "3"])
        #expect(!split.earlyExit)
    }
}
