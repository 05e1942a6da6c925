import Foundation
import TroupeProto
import TroupeRL
import TroupeWire

/// A version of the policy: `epoch` is drawn anew at every learner start, so a restarted learner never
/// reuses a version for different weights; `step` is the optimizer step that produced the weights.
package struct PolicyVersion: Hashable, Codable, Sendable, CustomStringConvertible {
    package var epoch: UInt64
    package var step: UInt64
    package init(epoch: UInt64, step: UInt64) {
        self.epoch = epoch
        self.step = step
    }
    package var description: String { "\(step)@\(String(epoch, radix: 16))" }
}

/// The idempotency key of a group: the learner trains a key at most once.
package struct GroupKey: Hashable, Codable, Sendable, CustomStringConvertible {
    package var actor: String
    package var actorRunId: UInt64
    package var sequence: UInt64
    package init(actor: String, actorRunId: UInt64, sequence: UInt64) {
        self.actor = actor
        self.actorRunId = actorRunId
        self.sequence = sequence
    }
    package var description: String { "\(actor)#\(String(actorRunId, radix: 16))#\(sequence)" }

    package init?(parsing text: String) {
        let parts = text.split(separator: "#", omittingEmptySubsequences: false)
        guard parts.count >= 3, let run = UInt64(parts[parts.count - 2], radix: 16), let seq = UInt64(parts[parts.count - 1]) else { return nil }
        self.init(actor: parts[0..<(parts.count - 2)].joined(separator: "#"), actorRunId: run, sequence: seq)
    }
}

package struct RolloutSample: Sendable, Equatable {
    package var tokens: [Int32]
    /// Behaviour log-probs, one per token, at `temperature`.
    package var logprobs: [Float]
    package var entropies: [Float]?
    package var finishReason: FinishReason
    package var temperature: Float
    package var answer: String?
    package var reward: Double
    package var components: [String: Double]
    /// Tokens the sampler inserted rather than drew (a serial exit's phrase): log-prob 0, no loss.
    package var inserted: Range<Int>?

    package init(tokens: [Int32], logprobs: [Float], entropies: [Float]? = nil, finishReason: FinishReason, temperature: Float,
                answer: String?, reward: Double, components: [String: Double] = [:], inserted: Range<Int>? = nil) {
        self.tokens = tokens
        self.logprobs = logprobs
        self.entropies = entropies
        self.finishReason = finishReason
        self.temperature = temperature
        self.answer = answer
        self.reward = reward
        self.components = components
        self.inserted = inserted
    }

    /// The tokens that get a loss: all but the inserted ones.
    package var trainedTokenCount: Int { tokens.count - (inserted?.count ?? 0) }
}

/// One prompt's G completions: the atomic unit from actor to learner.
package struct RolloutGroup: Sendable, Equatable {
    package var key: GroupKey
    package var promptId: UInt64
    package var leaseId: UInt64
    package var version: PolicyVersion
    package var promptTokens: [Int32]
    package var samples: [RolloutSample]
    package var generationMs: UInt32
    /// Tokens the sampler drew for the group, a shared prefix once (`GroupSubmit.tokens_generated`; 0: not reported).
    package var tokensGenerated: UInt32

    package init(key: GroupKey, promptId: UInt64, leaseId: UInt64, version: PolicyVersion, promptTokens: [Int32],
                samples: [RolloutSample], generationMs: UInt32 = 0, tokensGenerated: UInt32 = 0) {
        self.key = key
        self.promptId = promptId
        self.leaseId = leaseId
        self.version = version
        self.promptTokens = promptTokens
        self.samples = samples
        self.generationMs = generationMs
        self.tokensGenerated = tokensGenerated
    }

    package var tokenCount: Int { samples.reduce(0) { $0 + $1.tokens.count } }
    /// The tokens sampling every sample on its own would draw (the inserted ones are not drawn).
    package var tokensDrawnAlone: Int { samples.reduce(0) { $0 + $1.trainedTokenCount } }
}

package enum RuntimeError: Error, CustomStringConvertible {
    case corruptLog(String)
    /// A checkpoint file (or every one of a run) that cannot be restored; the text names the files.
    case corruptCheckpoint(String)
    case invalid(String)
    case io(String)
    case peer(String)

    package var description: String {
        switch self {
        case .corruptLog(let s): return "corrupt run log: \(s)"
        case .corruptCheckpoint(let s): return s
        case .invalid(let s): return s
        case .io(let s): return s
        case .peer(let s): return s
        }
    }
}

extension PolicyVersion {
    package var proto: Troupe_V1_PolicyVersion {
        var v = Troupe_V1_PolicyVersion()
        v.epoch = epoch
        v.step = step
        return v
    }
    package init(_ p: Troupe_V1_PolicyVersion) { self.init(epoch: p.epoch, step: p.step) }
}

extension RolloutGroup {
    /// The group a validated GroupSubmit carries, from actor `identity`, for a prompt of `promptTokens`.
    package init(submission: GroupSubmission, actor identity: String, promptTokens: [Int32]) {
        let h = submission.header
        let ranges = submission.sampleRanges
        let samples = h.samples.enumerated().map { i, s -> RolloutSample in
            let r = ranges[i]
            return RolloutSample(tokens: Array(submission.tokenIDs[r]), logprobs: Array(submission.logProbs[r]),
                                 entropies: submission.entropies.map { Array($0[r]) },
                                 finishReason: s.finishReason == .length ? .length : .stop, temperature: s.temperature,
                                 answer: s.extractedAnswer.isEmpty ? nil : s.extractedAnswer, reward: s.reward,
                                 components: s.rewardComponents,
                                 inserted: s.insertedCount > 0 ? Int(s.insertedFrom)..<(Int(s.insertedFrom) + Int(s.insertedCount)) : nil)
        }
        self.init(key: GroupKey(actor: identity, actorRunId: h.actorRunID, sequence: h.sequence),
                  promptId: h.promptID, leaseId: h.leaseID, version: PolicyVersion(h.version),
                  promptTokens: promptTokens, samples: samples, generationMs: h.generationMs, tokensGenerated: h.tokensGenerated)
    }
}
