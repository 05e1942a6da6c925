import TroupeJSON

/// What `troupe algo` runs: a JSON description of groups in, everything the learner would compute
/// out (rewards, advantages, ratios, gradient coefficients, per-token and aggregated losses, metrics).
/// Pure: the command only reads the file and prints. The schema is in docs/algorithms.md.
public enum AlgorithmWorkbench {
    /// - Parameter presetOverride: replaces the input's `"preset"` (the command's `--preset`).
    public static func run(input: JSONValue, presetOverride: String? = nil) throws -> JSONValue {
        let top = try JSONReader(input, field: "", allowedKeys: ["preset", "overrides", "groups"])
        let presetName = try presetOverride ?? top.string("preset") ?? "grpo"
        let options = try AlgorithmOptions.preset(named: presetName).applying(overrides: top.value("overrides") ?? .object([:]))
        guard let groupValues = try top.array("groups"), !groupValues.isEmpty else {
            throw AlgorithmError(field: "groups", problem: "must be a non-empty array of groups")
        }
        let groups = try groupValues.enumerated().map { try GroupInput($1, field: "groups[\($0)]", options: options) }

        // 1. Rewards, per group, over every vote sample.
        let rewardResults = try groups.map { try $0.rewards(options: options) }

        // 2. Advantages and totals over the training subsets of the whole step; the samples to train.
        if options.advantage.entropyReshaping { try groups.forEach { try $0.requireEntropies(options: options) } }
        let selection = try StepSelection.compute(groups: groups.enumerated().map { index, group in
            group.selectionGroup(rewards: rewardResults[index].rewards)
        }, options: options)
        let step = selection.advantages
        let trainIndices = selection.trainingIndices

        // 3. Losses for the trained samples of kept groups, as one micro-batch.
        let hasLogProbs = groups.contains { $0.samples.contains { $0.logp != nil } }
        let trained = hasLogProbs ? selection.trained : []
        let owners = trained.map { (group: $0.group, sample: $0.sample) }
        let lossSamples = try trained.map { try groups[$0.group].lossSample($0.sample, advantage: $0.advantage) }
        let plan: StepLossPlan?
        do {
            plan = hasLogProbs ? try StepLossPlan.compute(samples: lossSamples, totals: step.totals, options: options) : nil
        } catch let error as AlgorithmError {
            throw renamed(error, owners: owners)
        }

        // Output.
        var samplePlans: [Int: [Int: SampleLossPlan]] = [:]
        for (index, owner) in owners.enumerated() { samplePlans[owner.group, default: [:]][owner.sample] = plan?.samples[index] }
        let groupOutputs: [JSONValue] = groups.indices.map { g in
            let result = rewardResults[g]
            let samples: [JSONValue] = groups[g].samples.indices.map { s in
                var object: [String: JSONValue] = ["reward": .number(result.rewards[s])]
                var components: [String: JSONValue] = [:]
                for (name, values) in result.components { components[name] = .number(values[s]) }
                if !components.isEmpty { object["reward_components"] = .object(components) }
                if groups[g].rewardsComputed, let answer = groups[g].samples[s].reward.answer { object["answer"] = .string(answer) }
                let slot = trainIndices[g].contains(s) ? s - trainIndices[g].lowerBound : nil
                object["trained"] = .bool(slot != nil && step.groups[g].kept)
                if let slot { object["advantage"] = .number(step.groups[g].advantages[slot]) }
                if let sample = samplePlans[g]?[s] { object.merge(encode(sample)) { $1 } }
                return .object(object)
            }
            var object: [String: JSONValue] = ["kept": .bool(step.groups[g].kept), "samples": .array(samples),
                                               "reward_metrics": .object(result.metrics.mapValues(JSONValue.number))]
            if let reason = step.groups[g].dropReason { object["drop_reason"] = .string(reason.rawValue) }
            if let label = result.label { object["label"] = .string(label) }
            if let point = result.consensusPoint { object["consensus_point"] = .array(point.map(JSONValue.number)) }
            return .object(object)
        }
        var metrics = step.metrics
        if let plan { metrics.merge(plan.metrics.summary) { $1 } }
        var output: [String: JSONValue] = [
            "preset": .string(presetName),
            "options": options.json,
            "groups": .array(groupOutputs),
            "totals": .object(["tokens": .integer(step.totals.tokens), "sequences": .integer(step.totals.sequences)]),
            "metrics": .object(metrics.mapValues(JSONValue.number)),
            "loss": .null,
        ]
        if let loss = plan?.loss {
            output["loss"] = .object(["policy": .number(loss.policy), "kl": .number(loss.kl), "entropy": .number(loss.entropy),
                                      "total": .number(loss.total)])
        }
        return .object(output)
    }

    private static func encode(_ plan: SampleLossPlan) -> [String: JSONValue] {
        func array(_ values: [Double]) -> JSONValue { .array(values.map(JSONValue.number)) }
        var object: [String: JSONValue] = [
            "ratios": array(plan.ratios), "policy_gradients": array(plan.policyGradients),
            "logp_coefficients": array(plan.logpCoefficients), "token_losses": array(plan.tokenLosses),
            "aggregation_weight": .number(plan.aggregationWeight), "contributes": .bool(plan.contributes),
        ]
        if let entropy = plan.entropyCoefficients { object["entropy_coefficients"] = array(entropy) }
        if let rho = plan.sequenceRatio { object["sequence_ratio"] = .number(rho) }
        return object
    }

    /// `samples[k]…` from StepLossPlan → `groups[g].samples[s]…` in the user's input.
    private static func renamed(_ error: AlgorithmError, owners: [(group: Int, sample: Int)]) -> AlgorithmError {
        guard error.field.hasPrefix("samples["), let close = error.field.firstIndex(of: "]"),
              let k = Int(error.field[error.field.index(error.field.startIndex, offsetBy: 8)..<close]), k < owners.count else { return error }
        let rest = error.field[error.field.index(after: close)...]
        return AlgorithmError(field: "groups[\(owners[k].group)].samples[\(owners[k].sample)]\(rest)", problem: error.problem)
    }
}

/// One input group, read strictly.
private struct GroupInput {
    struct Sample {
        var reward: RewardSample
        var givenReward: Double?
        var logp: [Double]?
        var behaviourLogp: [Double]?
        var refLogp: [Double]?
        var entropy: [Double]?
        let field: String
    }

    let field: String
    let samples: [Sample]
    let context: RewardContext
    let staleness: Int
    /// False when the input gave every final reward.
    let rewardsComputed: Bool

    init(_ value: JSONValue, field: String, options: AlgorithmOptions) throws {
        let reader = try JSONReader(value, field: field, allowedKeys: ["samples", "ground_truth", "image_size", "similarities", "staleness"])
        self.field = field
        guard let sampleValues = try reader.array("samples"), !sampleValues.isEmpty else {
            throw AlgorithmError(field: reader.path("samples"), problem: "must be a non-empty array of samples")
        }
        samples = try sampleValues.enumerated().map { try Self.sample($1, field: "\(reader.path("samples"))[\($0)]", options: options) }
        var imageSize: ImageSize?
        if let size = try reader.numbers("image_size") {
            guard size.count == 2, size.allSatisfy({ $0 == $0.rounded() }) else {
                throw AlgorithmError(field: reader.path("image_size"), problem: "expected [width, height] in whole pixels")
            }
            imageSize = ImageSize(width: Int(size[0]), height: Int(size[1]))
        }
        let similarities = try reader.array("similarities")?.enumerated().map { row, value in
            try JSONReader.array(value, field: "\(reader.path("similarities"))[\(row)]").enumerated().map {
                try $1.number(field: "\(reader.path("similarities"))[\(row)][\($0)]")
            }
        }
        context = RewardContext(groundTruth: try reader.string("ground_truth"), similarities: similarities, imageSize: imageSize)
        staleness = try reader.integer("staleness") ?? 0
        let given = samples.filter { $0.givenReward != nil }.count
        if options.reward.kind == .external {
            rewardsComputed = true
        } else if given == samples.count {
            rewardsComputed = false
        } else if given == 0 {
            rewardsComputed = true
        } else {
            throw AlgorithmError(field: reader.path("samples"), problem: "give \"reward\" for every sample or for none (\(given) of \(samples.count) have one)")
        }
    }

    private static func sample(_ value: JSONValue, field: String, options: AlgorithmOptions) throws -> Sample {
        let reader = try JSONReader(value, field: field, allowedKeys: [
            "reward", "answer", "completion", "region", "format_valid", "finish_reason", "length",
            "logp", "behaviour_logp", "ref_logp", "entropy",
        ])
        let finishReason: FinishReason
        if let text = try reader.string("finish_reason") {
            guard let reason = FinishReason(rawValue: text) else {
                throw AlgorithmError(field: reader.path("finish_reason"), problem: "expected \"stop\" or \"length\", got \"\(text)\"")
            }
            finishReason = reason
        } else {
            finishReason = .stop
        }
        let logp = try reader.numbers("logp")
        var length = try reader.integer("length")
        if let length, length < 0 { throw AlgorithmError(field: reader.path("length"), problem: "must be ≥ 0, got \(length)") }
        if let logp {
            if let given = length, given != logp.count {
                throw AlgorithmError(field: reader.path("length"), problem: "is \(given) but logp has \(logp.count) tokens")
            }
            length = logp.count
        }
        if reader.has("answer") && reader.has("completion") {
            throw AlgorithmError(field: reader.path("completion"), problem: "give either \"answer\" or \"completion\", not both")
        }
        var reward: RewardSample
        if let completion = try reader.string("completion") {
            reward = RewardSample(completion: completion, length: length ?? 0, finishReason: finishReason, options: options)
        } else {
            reward = RewardSample(answer: try reader.string("answer"), length: length ?? 0, finishReason: finishReason)
        }
        if let formatValid = try reader.bool("format_valid") { reward.formatValid = formatValid }
        if let region = try reader.numbers("region") {
            switch region.count {
            case 2: reward.region = .point(x: region[0], y: region[1])
            case 4: reward.region = .box(x1: region[0], y1: region[1], x2: region[2], y2: region[3])
            default: throw AlgorithmError(field: reader.path("region"), problem: "expected [x, y] or [x1, y1, x2, y2], got \(region.count) numbers")
            }
        }
        let givenReward = try reader.number("reward")
        reward.externalReward = givenReward
        return Sample(reward: reward, givenReward: givenReward, logp: logp, behaviourLogp: try reader.numbers("behaviour_logp"),
                      refLogp: try reader.numbers("ref_logp"), entropy: try reader.numbers("entropy"), field: field)
    }

    func rewards(options: AlgorithmOptions) throws -> GroupRewardResult {
        guard rewardsComputed else {
            let rewards = samples.map { $0.givenReward! }
            return GroupRewardResult(rewards: rewards, components: [:], label: nil, consensusPoint: nil, metrics: [:])
        }
        do {
            return try GroupRewards.compute(samples: samples.map(\.reward), context: context, options: options)
        } catch let error as AlgorithmError {
            // GroupRewards names fields relative to the group.
            throw AlgorithmError(field: "\(field).\(error.field)", problem: error.problem)
        }
    }

    /// EAR needs each trained response's token entropies ("entropy"): named here, per sample.
    func requireEntropies(options: AlgorithmOptions) throws {
        if let missing = options.trainingIndices(groupSize: samples.count).map({ samples[$0] }).first(where: { $0.entropy == nil }) {
            throw AlgorithmError(field: "\(missing.field).entropy", problem: "is required by advantage.entropy_reshaping")
        }
    }

    func selectionGroup(rewards: [Double]) -> StepSelection.Group {
        StepSelection.Group(samples: zip(samples, rewards).map { sample, reward in
            StepSelection.Sample(reward: reward, length: sample.reward.length, finishReason: sample.reward.finishReason,
                                 meanEntropy: sample.entropy.map(StepSelection.meanEntropy))
        }, staleness: staleness)
    }

    func lossSample(_ index: Int, advantage: Double) throws -> LossSample {
        let sample = samples[index]
        guard let logp = sample.logp else {
            throw AlgorithmError(field: "\(sample.field).logp", problem: "is required for a trained sample when any sample has log-probs")
        }
        guard let behaviour = sample.behaviourLogp else {
            throw AlgorithmError(field: "\(sample.field).behaviour_logp", problem: "is required with logp")
        }
        return LossSample(advantage: advantage, logp: logp, behaviourLogp: behaviour, refLogp: sample.refLogp,
                          entropy: sample.entropy, finishReason: sample.reward.finishReason)
    }
}
