import Foundation
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTensor
import TroupeTokenizer

/// A lease's prompts with the weights to sample them with.
struct SamplingJob {
    let leaseId: UInt64
    let prompts: [Troupe_V1_Prompt]
    let model: LlamaModel
    let version: PolicyVersion
}

/// One prompt's sampled and scored group.
struct SampledGroup {
    let leaseId: UInt64
    let prompt: Troupe_V1_Prompt
    let version: PolicyVersion
    let samples: [RolloutSample]
    let generationMs: UInt32
    /// Tokens drawn for the group, a prefix its samples share once.
    let tokensGenerated: Int
}

struct SamplingOutcome {
    let job: SamplingJob
    let groups: Result<[SampledGroup], Error>
    let seconds: Double

    /// Tokens drawn for the job (none when sampling failed).
    var tokens: Int { (try? groups.get())?.reduce(0) { $0 + $1.tokensGenerated } ?? 0 }
}

extension BackgroundWorker where Job == SamplingJob, Outcome == SamplingOutcome {
    /// The actor's sampling thread.
    static func sampler(_ groupSampler: GroupSampler) -> BackgroundWorker {
        BackgroundWorker(name: "sampler") { job in
            let t0 = monotonicSeconds()
            let groups = Result { try groupSampler.sample(job) }
            return SamplingOutcome(job: job, groups: groups, seconds: monotonicSeconds() - t0)
        }
    }
}

/// Samples G completions per prompt of a job (all prompts in one batch) and scores them with the
/// configured reward. Used from the sampler thread only.
final class GroupSampler: @unchecked Sendable {
    private let tokenizer: any Tokenizer
    private let options: AlgorithmOptions
    private let scorer: GroupScorer
    private var samplers: [ObjectIdentifier: Sampler] = [:]

    init(tokenizer: any Tokenizer, options: AlgorithmOptions, stopTokens: [Int32]) {
        self.tokenizer = tokenizer
        self.options = options
        scorer = GroupScorer(tokenizer: tokenizer, options: options, stopTokens: stopTokens)
    }

    /// Seeds depend on (run seed, prompt, sample index, version) only, and sampling is batch-invariant,
    /// so a group's tokens do not depend on which actor sampled it or what shared its batch.
    func sample(_ j: SamplingJob) throws -> [SampledGroup] {
        let sampler = samplers[ObjectIdentifier(j.model)] ?? Sampler(model: j.model)
        samplers = [ObjectIdentifier(j.model): sampler]
        var requests: [SampleRequest] = []
        var owners: [(Int, Int)] = []
        guard let first = j.prompts.first else { return [] }
        if first.sampling.hasSerial { return try sampleSerial(j, sampler: sampler) }
        if first.sampling.hasTree { return try sampleTree(j, sampler: sampler) }
        let s = first.sampling
        for (pi, p) in j.prompts.enumerated() {
            for i in 0..<Int(p.groupSize) {
                var rng = Xoshiro256(mixing: [p.sampling.seed, p.promptID, UInt64(i), j.version.step])
                requests.append(SampleRequest(prompt: p.tokenIds, seed: rng.next(), temperature: Self.temperature(ofSample: i, p.sampling)))
                owners.append((pi, i))
            }
        }
        let params = parameters(s)
        let t0 = monotonicSeconds()
        let completions = try sampler.generate(requests, parameters: params, tokenBytes: { [tokenizer] in tokenizer.bytes(of: $0) })
        let ms = UInt32(min(Double(UInt32.max), (monotonicSeconds() - t0) * 1000))
        var perPrompt = Array(repeating: [Completion](), count: j.prompts.count)
        for (k, c) in completions.enumerated() { perPrompt[owners[k].0].append(c) }
        var groups: [SampledGroup] = []
        for (pi, p) in j.prompts.enumerated() {
            let cs = perPrompt[pi]
            let drawn = cs.reduce(0) { $0 + $1.tokens.count }
            let finishReasons = cs.map { $0.finishReason == .stop ? TroupeRL.FinishReason.stop : .length }
            let scored = try scorer.score(zip(cs, finishReasons).map { GroupScorer.Completion(tokens: $0.tokens, finishReason: $1,
                                                                                               reportedReward: unscored) },
                                          stopSequences: s.stopSequences, groundTruth: p.hasReferenceAnswer ? p.referenceAnswer : nil)
            var samples: [RolloutSample] = []
            for (i, c) in cs.enumerated() {
                samples.append(RolloutSample(tokens: c.tokens, logprobs: c.logprobs, entropies: c.entropies,
                                             finishReason: finishReasons[i], temperature: Self.temperature(ofSample: i, p.sampling),
                                             answer: scored[i].answer, reward: scored[i].reward, components: scored[i].components))
            }
            groups.append(SampledGroup(leaseId: j.leaseId, prompt: p, version: j.version, samples: samples, generationMs: ms,
                                       tokensGenerated: drawn))
        }
        return groups
    }

    /// Serial groups (S-GRPO): per prompt one path, seeded as sample 0 of an independent group, then
    /// its exits; the group is the exits, earliest first, then the path. An exit's tokens are the
    /// path's prefix (with its log-probs), the exit phrase (inserted: log-prob and entropy 0) and its answer.
    private func sampleSerial(_ j: SamplingJob, sampler: Sampler) throws -> [SampledGroup] {
        let s = j.prompts[0].sampling
        let requests = try j.prompts.map { p -> SerialRequest in
            guard p.sampling.hasSerial, Int(p.sampling.serial.exits) + 1 == Int(p.groupSize) else {
                throw RuntimeError.invalid("prompt \(p.promptID): a serial group of \(p.sampling.serial.exits) exits cannot hold group_size \(p.groupSize) samples")
            }
            var rng = Xoshiro256(mixing: [p.sampling.seed, p.promptID, 0, j.version.step])
            return SerialRequest(prompt: p.tokenIds, seed: rng.next(), exits: Int(p.sampling.serial.exits),
                                 exitPhrase: p.sampling.serial.exitPhraseIds, answerTokens: Int(p.sampling.serial.answerTokens))
        }
        let params = parameters(s)
        let t0 = monotonicSeconds()
        let outputs = try sampler.generateSerial(requests, parameters: params, tokenBytes: { [tokenizer] in tokenizer.bytes(of: $0) })
        let ms = UInt32(min(Double(UInt32.max), (monotonicSeconds() - t0) * 1000))
        var groups: [SampledGroup] = []
        for (pi, p) in j.prompts.enumerated() {
            let out = outputs[pi], phrase = requests[pi].exitPhrase
            let zeros = [Float](repeating: 0, count: phrase.count)
            var drafts: [RolloutSample] = out.exits.map { e in
                RolloutSample(tokens: Array(out.path.tokens[..<e.kept]) + phrase + e.answer.tokens,
                              logprobs: Array(out.path.logprobs[..<e.kept]) + zeros + e.answer.logprobs,
                              entropies: out.path.entropies.map { Array($0[..<e.kept]) + zeros + (e.answer.entropies ?? []) },
                              finishReason: e.answer.finishReason == .stop ? .stop : .length, temperature: s.temperature,
                              answer: nil, reward: 0, inserted: e.kept..<(e.kept + phrase.count))
            }
            drafts.append(RolloutSample(tokens: out.path.tokens, logprobs: out.path.logprobs, entropies: out.path.entropies,
                                        finishReason: out.path.finishReason == .stop ? .stop : .length, temperature: s.temperature,
                                        answer: nil, reward: 0))
            let scored = try scorer.score(drafts.map { GroupScorer.Completion(tokens: $0.tokens, finishReason: $0.finishReason,
                                                                              reportedReward: unscored) },
                                          stopSequences: s.stopSequences, groundTruth: p.hasReferenceAnswer ? p.referenceAnswer : nil)
            for i in drafts.indices {
                drafts[i].answer = scored[i].answer
                drafts[i].reward = scored[i].reward
                drafts[i].components = scored[i].components
            }
            let drawn = out.path.tokens.count + out.exits.reduce(0) { $0 + $1.answer.tokens.count }
            groups.append(SampledGroup(leaseId: j.leaseId, prompt: p, version: j.version, samples: drafts, generationMs: ms,
                                       tokensGenerated: drawn))
        }
        return groups
    }

    /// Tree groups (ETTRL): per prompt G / (1 + forks · branching) roots, the tree seeded as sample 0 of
    /// an independent group; the group is its leaves in `generateTree`'s order, each a whole completion.
    private func sampleTree(_ j: SamplingJob, sampler: Sampler) throws -> [SampledGroup] {
        let s = j.prompts[0].sampling
        let requests = try j.prompts.map { p -> TreeRequest in
            let perRoot = 1 + Int(p.sampling.tree.forks) * Int(p.sampling.tree.branching)
            guard p.sampling.hasTree, Int(p.groupSize) % perRoot == 0, p.groupSize > 0 else {
                throw RuntimeError.invalid("prompt \(p.promptID): a tree of \(perRoot) leaves per root cannot hold group_size \(p.groupSize) samples")
            }
            var rng = Xoshiro256(mixing: [p.sampling.seed, p.promptID, 0, j.version.step])
            return TreeRequest(prompt: p.tokenIds, seed: rng.next(), roots: Int(p.groupSize) / perRoot,
                               forks: Int(p.sampling.tree.forks), branching: Int(p.sampling.tree.branching))
        }
        let params = parameters(s)
        let t0 = monotonicSeconds()
        let outputs = try sampler.generateTree(requests, parameters: params, tokenBytes: { [tokenizer] in tokenizer.bytes(of: $0) })
        let ms = UInt32(min(Double(UInt32.max), (monotonicSeconds() - t0) * 1000))
        var groups: [SampledGroup] = []
        for (pi, p) in j.prompts.enumerated() {
            let leaves = outputs[pi].leaves.map(\.completion)
            let finishReasons = leaves.map { $0.finishReason == .stop ? TroupeRL.FinishReason.stop : .length }
            let scored = try scorer.score(zip(leaves, finishReasons).map { GroupScorer.Completion(tokens: $0.tokens, finishReason: $1,
                                                                                                   reportedReward: unscored) },
                                          stopSequences: s.stopSequences, groundTruth: p.hasReferenceAnswer ? p.referenceAnswer : nil)
            let samples = leaves.enumerated().map { i, c in
                RolloutSample(tokens: c.tokens, logprobs: c.logprobs, entropies: c.entropies, finishReason: finishReasons[i],
                              temperature: s.temperature, answer: scored[i].answer, reward: scored[i].reward, components: scored[i].components)
            }
            // A branch draws from its fork point on (it redraws the fork token); a root path draws all of it.
            let drawn = outputs[pi].leaves.reduce(0) { $0 + $1.completion.tokens.count - ($1.fork ?? 0) }
            groups.append(SampledGroup(leaseId: j.leaseId, prompt: p, version: j.version, samples: samples, generationMs: ms,
                                       tokensGenerated: drawn))
        }
        return groups
    }

    /// With `external` the reward workers score for the learner; the actor has no score of its own and
    /// reports 0 plus the shaping terms, which the learner replaces with the workers' (docs/rewards.md).
    private var unscored: Double? { options.reward.kind == .external ? 0 : nil }

    /// The sampler's settings for a lease's sampling parameters (every group shape uses the same). A
    /// tree group's leaves always carry entropies: the learner checks the fork points against them.
    private func parameters(_ s: Troupe_V1_SamplingParams) -> SamplingParameters {
        SamplingParameters(temperature: s.temperature, topK: Int(s.topK), topP: s.topP,
                           maxNewTokens: Int(s.maxTokens), stopTokens: scorer.stopTokens, stopStrings: s.stopSequences,
                           computeEntropy: options.advantage.entropyReshaping || s.hasTree)
    }

    /// Sample i of a group is drawn at `temperatures[i mod n]` (a multi-temperature group), else at `temperature`.
    static func temperature(ofSample i: Int, _ s: Troupe_V1_SamplingParams) -> Float {
        s.temperatures.isEmpty ? s.temperature : s.temperatures[i % s.temperatures.count]
    }
}
