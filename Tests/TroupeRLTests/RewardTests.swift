import Testing
import TroupeJSON
import TroupeRL

/// TV13 (EVOL-RL), TV15 (DAPO overlong), TV16 (DLER), TV17 (S-GRPO), GUI-RC, verifiable, format.
@Suite struct RewardTests {
    static let similarities: [[Double]] = [
        [1, 0.9, 0.5, 0.2, 0.1],
        [0.9, 1, 0.6, 0.3, 0.2],
        [0.5, 0.6, 1, 0.4, 0.85],
        [0.2, 0.3, 0.4, 1, 0.8],
        [0.1, 0.2, 0.85, 0.8, 1],
    ]

    @Test func tv13EvolRLNovelty() throws {
        let s = Self.similarities
        expectClose(try NoveltyReward.compute(majority: [true, true, true, false, false], valid: Array(repeating: true, count: 5), similarities: s),
                    [0.6, 0.5, 1.0, -0.5, -1.0])
        expectClose(try NoveltyReward.compute(majority: [true, false, true, false, false], valid: [true, false, true, true, true], similarities: s),
                    [1.0, -1.0, 0.5, -0.5, -1.0])
        expectClose(try NoveltyReward.compute(majority: [true, false, false, false, false], valid: Array(repeating: true, count: 5), similarities: s),
                    [1.0, -0.5, -1.0, -0.583333, -1.0])
    }

    @Test func tv13ThroughGroupRewards() throws {
        let options = AlgorithmOptions.make("evol-rl")
        let context = RewardContext(similarities: Self.similarities)
        func rewards(_ answers: [String?]) throws -> [Double] {
            try GroupRewards.compute(samples: answers.map { RewardSample(answer: $0) }, context: context, options: options).rewards
        }
        expectClose(try rewards(["7", "7", "7", "3", "4"]), [0.6, 0.5, 1.0, -0.5, -1.0])
        expectClose(try rewards(["7", nil, "7", "3", "4"]), [1.0, -1.0, 0.5, -0.5, -1.0])
        expectClose(try rewards(["7", "3", "4", "5", "6"]), [1.0, -0.5, -1.0, -0.583333, -1.0])
    }

    @Test func evolRLDegenerateCases() throws {
        let s = Self.similarities
        // Fewer than two valid answers while some are invalid: everything −1 (as the code does).
        #expect(try NoveltyReward.compute(majority: [true, false, false, false, false], valid: [true, false, false, false, false], similarities: s)
                == [-1, -1, -1, -1, -1])
        // Equal novelty within a side: the midpoints 0.75 / −0.75.
        let flat = Array(repeating: Array(repeating: 0.5, count: 4), count: 4)
        #expect(try NoveltyReward.compute(majority: [true, true, false, false], valid: [true, true, true, true], similarities: flat)
                == [0.75, 0.75, -0.75, -0.75])
        #expect(try NoveltyReward.compute(majority: [true], valid: [true], similarities: [[1]]) == [1])
    }

    @Test func tv15DapoSoftOverlong() {
        let penalties = [16000, 16384, 16385, 18432, 20480, 20481].map {
            LengthShaping.dapoOverlongPenalty(length: $0, maxLength: 20480, cache: 4096)
        }
        expectClose(penalties, [0, 0, -0.000244, -0.5, -1.0, -1.0])
    }

    @Test func tv16DlerTruncationRewards() throws {
        let options = AlgorithmOptions.make("dler")
        let correct = [[true, true, false, true], [true, false, false, false]]
        let lengths = [[3000, 4500, 2000, 4000], [3900, 4100, 5000, 1000]]
        var groups: [AdvantageGroup] = []
        for (flags, lens) in zip(correct, lengths) {
            let answers = flags.map { $0 ? "1" : "0" }
            let result = try GroupRewards.compute(answers: answers, groundTruth: "1", lengths: lens,
                                                  finishReasons: Array(repeating: .stop, count: 4), options: options)
            groups.append(AdvantageGroup(rewards: result.rewards, lengths: lens))
        }
        #expect(groups.map(\.rewards) == [[1, 0, 0, 1], [1, 0, 0, 0]])

        let sequenceLevel = try options.applying(overrides: ["advantage.batch_weighting": "sequence"])
        let step = try StepAdvantages.compute(groups: groups, options: sequenceLevel)
        expectClose(step.groups.flatMap(\.advantages), [1, -1, -1, 1, 1.5, -0.5, -0.5, -0.5])

        let withDegenerate = groups + [AdvantageGroup(rewards: [0, 0, 0, 0], lengths: [1, 1, 1, 1]),
                                       AdvantageGroup(rewards: [1, 1, 1, 1], lengths: [1, 1, 1, 1])]
        let kept = try StepAdvantages.compute(groups: withDegenerate, options: options).groups.map(\.kept)
        #expect(kept == [true, true, false, false])
    }

    @Test func dlerTruncationFollowsFinishReason() throws {
        let options = AlgorithmOptions.make("dler")
        let result = try GroupRewards.compute(answers: ["1", "1", "1"], groundTruth: "1", lengths: [4000, 4000, 10],
                                              finishReasons: [.stop, .length, .length], options: options)
        #expect(result.rewards == [1, 0, 0])
        #expect(result.components["truncated"] == [0, 1, 1])
        expectClose(result.metrics["is_truncated"], 2.0 / 3)
    }

    @Test func dapoRewardComposesCorrectnessAndOverlong() throws {
        let result = try GroupRewards.compute(answers: ["3", "4", nil], groundTruth: "3", lengths: [100, 18432, 20480],
                                              finishReasons: [.stop, .stop, .length], options: .make("dapo"))
        #expect(result.components["base"] == [1, -1, -1])
        expectClose(result.components["overlong"]!, [0, -0.5, -1])
        expectClose(result.rewards, [1, -1.5, -2])
    }

    @Test func tv17SerialDecay() throws {
        let rewards = SerialDecayReward.rewards(correctInOrder: [false, true, true, false, true])
        #expect(rewards == [0, 1, 0.5, 0, 0.25])
        let options = AlgorithmOptions.make("s-grpo")
        let viaGroup = try GroupRewards.compute(answers: ["2", "9", "9", "2", "9"], groundTruth: "9", lengths: [1, 1, 1, 1, 1],
                                                finishReasons: Array(repeating: .stop, count: 5), options: options)
        #expect(viaGroup.rewards == rewards)
        expectClose(Advantages.groupNormalized(rewards: rewards, options: options.advantage), [-0.35, 0.65, 0.15, -0.35, -0.10])
    }

    @Test func verifiableRewardAndMetrics() throws {
        let result = try GroupRewards.compute(answers: ["1/2", "0.5", "2", nil], groundTruth: "\\frac{1}{2}", lengths: [1, 1, 1, 0],
                                              finishReasons: [.stop, .stop, .stop, .length], options: .make("grpo"))
        #expect(result.rewards == [1, 1, 0, 0])
        expectClose(result.metrics["accuracy"], 0.5)
        expectClose(result.metrics["valid_fraction"], 0.75)
    }

    @Test func formatRewardIsAdded() throws {
        let options = AlgorithmOptions.make("grpo", ["reward.format": "think_boxed", "reward.format_weight": 0.1])
        let samples = ["<think>ok</think> \\boxed{3}", "\\boxed{3}", "<think>x</think> 4"].map {
            RewardSample(completion: $0, length: 3, finishReason: .stop, options: options)
        }
        let result = try GroupRewards.compute(samples: samples, context: RewardContext(groundTruth: "3"), options: options)
        expectClose(result.rewards, [1.1, 1, 0])
        expectAlgorithmError(field: "samples[0].format_valid") {
            _ = try GroupRewards.compute(samples: [RewardSample(answer: "3")], context: RewardContext(groundTruth: "3"), options: options)
        }
    }

    @Test func guiRegionConsistency() throws {
        let size = ImageSize(width: 100, height: 100)
        // Three boxes: two agree on [0,10)×[0,10), one elsewhere; plus an unparseable prediction.
        let predictions: [RegionPrediction?] = [.box(x1: 0, y1: 0, x2: 10, y2: 10), .box(x1: 0, y1: 0, x2: 10, y2: 10),
                                                .box(x1: 5, y1: 0, x2: 15, y2: 10), nil]
        let outcome = try RegionConsistency.compute(predictions: predictions, imageSize: size, pointExpand: 50)
        #expect(outcome.maxVotes == 3)
        // Box 1: 50 pixels at 2 votes + 50 at 3 votes → 250 / (3·100).
        expectClose(outcome.rewards, [250.0 / 300, 250.0 / 300, 200.0 / 300, 0])
        #expect(outcome.consensusPoint?.x == 7.5 && outcome.consensusPoint?.y == 5)
    }

    @Test func guiPointsBecomeSquaresAndAreClipped() throws {
        let size = ImageSize(width: 40, height: 40)
        let outcome = try RegionConsistency.compute(predictions: [.point(x: 5, y: 5), .point(x: 5, y: 5), .box(x1: 30, y1: 30, x2: 20, y2: 20)],
                                                    imageSize: size, pointExpand: 20)
        // The points cover [0,15)² after clipping; the reversed box is empty.
        #expect(outcome.rewards == [1, 1, 0])
        #expect(outcome.consensusPoint?.x == 7.5 && outcome.consensusPoint?.y == 7.5)
    }

    @Test func guiLargestConsensusComponentWins() throws {
        let size = ImageSize(width: 100, height: 100)
        let outcome = try RegionConsistency.compute(predictions: [.box(x1: 0, y1: 0, x2: 2, y2: 2), .box(x1: 50, y1: 50, x2: 60, y2: 60)],
                                                    imageSize: size, pointExpand: 0)
        #expect(outcome.rewards == [1, 1])
        #expect(outcome.consensusPoint?.x == 55 && outcome.consensusPoint?.y == 55)
    }

    @Test func guiRCPOThroughGroupRewards() throws {
        let options = AlgorithmOptions.make("gui-rcpo")
        let samples = ["[0, 0, 10, 10]", "(5, 5)", "no idea"].map { RewardSample(completion: $0, length: 4, finishReason: .stop, options: options) }
        let result = try GroupRewards.compute(samples: samples, context: RewardContext(imageSize: ImageSize(width: 200, height: 100)), options: options)
        #expect(result.rewards[2] == 0)
        #expect(result.consensusPoint == [5, 5])
        expectAlgorithmError(field: "image_size") { _ = try GroupRewards.compute(samples: samples, options: options) }
    }
}
