import Foundation
import Testing
import TroupeJSON
import TroupeRL

/// Bad input of every kind gets an error naming the field; nothing NaN gets through.
@Suite struct ValidationTests {
    @Test func rewardsAndGroups() {
        expectAlgorithmError(field: "groups") { _ = try StepAdvantages.compute(groups: [], options: .make()) }
        expectAlgorithmError(field: "groups[0].rewards") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [], lengths: [])], options: .make())
        }
        expectAlgorithmError(field: "groups[1].rewards[1]") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0], lengths: [1, 1]),
                                                    AdvantageGroup(rewards: [1, .nan], lengths: [1, 1])], options: .make())
        }
        expectAlgorithmError(field: "groups[0].rewards[0]") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [.infinity, 0], lengths: [1, 1])], options: .make())
        }
        expectAlgorithmError(field: "groups[0].lengths") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0], lengths: [1])], options: .make())
        }
        expectAlgorithmError(field: "groups[0].lengths[1]") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0], lengths: [1, -2])], options: .make())
        }
        expectAlgorithmError(field: "groups[0].staleness") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0], lengths: [1, 1], staleness: -1)], options: .make())
        }
        expectAlgorithmError(field: "groups[0].rewards") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: Array(repeating: 1, count: 64), lengths: Array(repeating: 1, count: 64))],
                                           options: .make("ttrl"))
        }
        expectAlgorithmError(field: "samples") { _ = try GroupRewards.compute(samples: [], options: .make()) }
        expectAlgorithmError(field: "ground_truth") { _ = try GroupRewards.compute(samples: [RewardSample(answer: "1")], options: .make()) }
        expectAlgorithmError(field: "samples[0].length") {
            _ = try GroupRewards.compute(samples: [RewardSample(answer: "1", length: -1)], context: RewardContext(groundTruth: "1"), options: .make())
        }
        expectAlgorithmError(field: "samples[1].reward") {
            _ = try GroupRewards.compute(samples: [RewardSample(externalReward: 1), RewardSample(externalReward: .nan)],
                                         options: .make("grpo", ["reward.kind": "external"]))
        }
        expectAlgorithmError(field: "samples[1].region[0]") {
            _ = try GroupRewards.compute(samples: [RewardSample(region: .point(x: 1, y: 1)), RewardSample(region: .point(x: .nan, y: 1))],
                                         context: RewardContext(imageSize: ImageSize(width: 10, height: 10)), options: .make("gui-rcpo"))
        }
        expectAlgorithmError(field: "predictions[0][2]") {
            _ = try RegionConsistency.compute(predictions: [.box(x1: 0, y1: 0, x2: .infinity, y2: 1)], imageSize: ImageSize(width: 10, height: 10), pointExpand: 0)
        }
        expectAlgorithmError(field: "image_size") {
            _ = try RegionConsistency.compute(predictions: [nil], imageSize: ImageSize(width: 0, height: 10), pointExpand: 0)
        }
        // Options built in code are validated at every entry point too.
        var invalid = AlgorithmOptions()
        invalid.advantage.epsilon = -1
        expectAlgorithmError(field: "advantage.epsilon") {
            _ = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0], lengths: [1, 1])], options: invalid)
        }
        expectAlgorithmError(field: "advantage.epsilon") {
            _ = try GroupRewards.compute(samples: [RewardSample(answer: "1")], context: RewardContext(groundTruth: "1"), options: invalid)
        }
        expectAlgorithmError(field: "similarities[1]") {
            _ = try NoveltyReward.compute(majority: [true, false], valid: [true, true], similarities: [[1, 0.5], [0.5]])
        }
    }

    @Test func lossSamples() {
        let options = AlgorithmOptions.make("dapo")
        let totals = AggregationTotals(tokens: 10, sequences: 5)
        func plan(_ sample: LossSample, _ options: AlgorithmOptions = .make("dapo")) throws {
            let valid = LossSample(advantage: 1, logp: [-1], behaviourLogp: [-1], refLogp: [-1], entropy: [0.5])
            _ = try StepLossPlan.compute(samples: [valid, sample], totals: totals, options: options)
        }
        expectAlgorithmError(field: "samples[1].advantage") { try plan(LossSample(advantage: .nan, logp: [-1], behaviourLogp: [-1])) }
        expectAlgorithmError(field: "samples[1].logp[1]") { try plan(LossSample(advantage: 1, logp: [-1, .infinity], behaviourLogp: [-1, -1])) }
        expectAlgorithmError(field: "samples[1].logp[0]") { try plan(LossSample(advantage: 1, logp: [0.7], behaviourLogp: [-1])) }
        expectAlgorithmError(field: "samples[1].behaviour_logp") { try plan(LossSample(advantage: 1, logp: [-1, -1], behaviourLogp: [-1])) }
        expectAlgorithmError(field: "samples[1].behaviour_logp[0]") { try plan(LossSample(advantage: 1, logp: [-1], behaviourLogp: [-.nan])) }
        expectAlgorithmError(field: "samples[1].ref_logp") {
            try plan(LossSample(advantage: 1, logp: [-1], behaviourLogp: [-1]), .make("grpo"))
        }
        expectAlgorithmError(field: "samples[1].ref_logp") {
            try plan(LossSample(advantage: 1, logp: [-1], behaviourLogp: [-1], refLogp: [-1, -1]), options)
        }
        expectAlgorithmError(field: "samples[1].entropy") { try plan(LossSample(advantage: 1, logp: [-1], behaviourLogp: [-1]), .make("evol-rl", ["kl.coefficient": 0])) }
        expectAlgorithmError(field: "samples[1].entropy[0]") {
            try plan(LossSample(advantage: 1, logp: [-1], behaviourLogp: [-1], entropy: [-2]), options)
        }
        expectAlgorithmError(field: "totals") {
            _ = try StepLossPlan.compute(samples: [], totals: AggregationTotals(tokens: -1, sequences: 0), options: options)
        }
        // Overflow is reported, not passed on as Inf.
        expectAlgorithmError(field: "samples[1]") {
            try plan(LossSample(advantage: 1e308, logp: [-100], behaviourLogp: [-100]), .make("cispo"))
        }
    }

    @Test func unknownPresetsAndOptions() {
        let error = expectAlgorithmError(field: "preset") { _ = try AlgorithmOptions.preset(named: "ppo") }
        #expect(error?.problem.contains("ttrl") == true)
        expectAlgorithmError(field: "loss.epsilon_hi") { _ = try AlgorithmOptions().applying(overrides: ["loss": ["epsilon_hi": 0.3]]) }
        expectAlgorithmError(field: "los") { _ = try AlgorithmOptions().applying(overrides: ["los": ["kind": "cispo"]]) }
        expectAlgorithmError(field: "loss.kind") { _ = try AlgorithmOptions().applying(overrides: ["loss.kind": "ppo"]) }
        expectAlgorithmError(field: "loss.kind") { _ = try AlgorithmOptions().applying(overrides: ["loss.kind": 3]) }
        expectAlgorithmError(field: "loss.epsilon_high") { _ = try AlgorithmOptions().applying(overrides: ["loss.epsilon_high": "0.2"]) }
        expectAlgorithmError(field: "loss.epsilon_high") { _ = try AlgorithmOptions().applying(overrides: ["loss.epsilon_high": nil]) }
        expectAlgorithmError(field: "loss.epsilon_high") { _ = try AlgorithmOptions().applying(overrides: ["loss.epsilon_high": .number(.nan)]) }
        expectAlgorithmError(field: "loss.cispo_mask") { _ = try AlgorithmOptions().applying(overrides: ["loss.cispo_mask": 1]) }
        expectAlgorithmError(field: "sampling.train_samples") { _ = try AlgorithmOptions().applying(overrides: ["sampling.train_samples": 2.5]) }
        expectAlgorithmError(field: "loss") { _ = try AlgorithmOptions().applying(overrides: ["loss": 3]) }
        expectAlgorithmError(field: "loss.kind") { _ = try AlgorithmOptions().applying(overrides: ["loss": ["kind": "cispo"], "loss.kind": "topr"]) }
    }

    @Test func outOfRangeOptions() {
        let cases: [(String, JSONValue)] = [
            ("loss.epsilon_low", 1.5), ("loss.epsilon_high", -0.1), ("loss.dual_clip", 0.5), ("loss.tis_cap", 0),
            ("loss.topr_negative_upper", -1), ("loss.log_ratio_clamp", 1000), ("kl.coefficient", -1), ("entropy.coefficient", -0.1),
            ("advantage.epsilon", -1), ("advantage.clip", 0), ("reward.overlong_max_length", 0), ("reward.truncation_length", -5),
            ("reward.format_weight", 0.5), ("reward.point_expand", -1), ("filter.zero_variance_tolerance", -1),
            ("filter.max_staleness", -1), ("sampling.samples_per_prompt", 0), ("aggregation.constant", 0),
        ]
        for (key, value) in cases {
            expectAlgorithmError(field: key) { _ = try AlgorithmOptions().applying(overrides: .object([key: value])) }
        }
        expectAlgorithmError(field: "reward.correct") { _ = try AlgorithmOptions().applying(overrides: ["reward.correct": -2]) }
        expectAlgorithmError(field: "reward.overlong_cache") { _ = try AlgorithmOptions().applying(overrides: ["reward.overlong_max_length": 100]) }
        expectAlgorithmError(field: "reward.overlong_cache") {
            _ = try AlgorithmOptions().applying(overrides: ["reward.overlong_max_length": 100, "reward.overlong_cache": 200])
        }
        expectAlgorithmError(field: "aggregation.constant") { _ = try AlgorithmOptions().applying(overrides: ["aggregation.mode": "token-sum-const"]) }
        expectAlgorithmError(field: "sampling.train_samples") { _ = try AlgorithmOptions.make("ttrl").applying(overrides: ["sampling.train_samples": 65]) }
    }
}
