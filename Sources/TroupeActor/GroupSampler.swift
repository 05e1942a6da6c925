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
}

struct SamplingOutcome {
    let job: SamplingJob
    let groups: Result<[SampledGroup], Error>
    let tokens: Int
    let seconds: Double
}

extension BackgroundWorker where Job == SamplingJob, Outcome == SamplingOutcome {
    /// The actor's sampling thread.
    static func sampler(_ groupSampler: GroupSampler) -> BackgroundWorker {
        BackgroundWorker(name: "sampler") { job in
            let t0 = monotonicSeconds()
            var tokens = 0
            let groups = Result { () throws -> [SampledGroup] in
                let (groups, n) = try groupSampler.sample(job)
                tokens = n
                return groups
            }
            return SamplingOutcome(job: job, groups: groups, tokens: tokens, seconds: monotonicSeconds() - t0)
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
    func sample(_ j: SamplingJob) throws -> ([SampledGroup], Int) {
        let sampler = samplers[ObjectIdentifier(j.model)] ?? Sampler(model: j.model)
        samplers = [ObjectIdentifier(j.model): sampler]
        var requests: [SampleRequest] = []
        var owners: [(Int, Int)] = []
        guard let first = j.prompts.first else { return ([], 0) }
        let s = first.sampling
        for (pi, p) in j.prompts.enumerated() {
            for i in 0..<Int(p.groupSize) {
                var rng = Xoshiro256(mixing: [p.sampling.seed, p.promptID, UInt64(i), j.version.step])
                requests.append(SampleRequest(prompt: p.tokenIds, seed: rng.next()))
                owners.append((pi, i))
            }
        }
        let params = SamplingParameters(temperature: s.temperature, topK: Int(s.topK), topP: s.topP,
                                        maxNewTokens: Int(s.maxTokens), stopTokens: scorer.stopTokens, stopStrings: s.stopSequences,
                                        computeEntropy: options.advantage.entropyReshaping)
        let t0 = monotonicSeconds()
        let completions = try sampler.generate(requests, parameters: params, tokenBytes: { [tokenizer] in tokenizer.bytes(of: $0) })
        let ms = UInt32(min(Double(UInt32.max), (monotonicSeconds() - t0) * 1000))
        var perPrompt = Array(repeating: [Completion](), count: j.prompts.count)
        for (k, c) in completions.enumerated() { perPrompt[owners[k].0].append(c) }
        var groups: [SampledGroup] = []
        var tokens = 0
        for (pi, p) in j.prompts.enumerated() {
            let cs = perPrompt[pi]
            let finishReasons = cs.map { $0.finishReason == .stop ? TroupeRL.FinishReason.stop : .length }
            // With `external` the reward workers score for the learner; the actor has no score of its own and
            // reports 0 plus the shaping terms, which the learner replaces with the workers' (docs/rewards.md).
            let unscored: Double? = options.reward.kind == .external ? 0 : nil
            let scored = try scorer.score(zip(cs, finishReasons).map { GroupScorer.Completion(tokens: $0.tokens, finishReason: $1,
                                                                                               reportedReward: unscored) },
                                          stopSequences: s.stopSequences, groundTruth: p.hasReferenceAnswer ? p.referenceAnswer : nil)
            var samples: [RolloutSample] = []
            for (i, c) in cs.enumerated() {
                samples.append(RolloutSample(tokens: c.tokens, logprobs: c.logprobs, entropies: c.entropies,
                                             finishReason: finishReasons[i], temperature: s.temperature,
                                             answer: scored[i].answer, reward: scored[i].reward, components: scored[i].components))
                tokens += c.tokens.count
            }
            groups.append(SampledGroup(leaseId: j.leaseId, prompt: p, version: j.version, samples: samples, generationMs: ms))
        }
        return (groups, tokens)
    }
}
