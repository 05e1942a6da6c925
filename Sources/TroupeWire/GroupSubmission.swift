import TroupeProto

/// A group of G completions with its bulk data decoded: the GroupSubmit header plus token ids,
/// behaviour log-probs and (optionally) entropies of all samples, concatenated in sample order.
///
/// Actors build one and send `wireMessage()`. The learner gets it from a decoded `WireMessage`
/// with `init(validating:)`, which checks what protobuf cannot:
/// - at least one sample; every frame holds exactly sum(samples[].token_count) elements;
/// - token ids are non-negative;
/// - log-probs, entropies, rewards, reward components and temperatures are finite
///   (`WireError.Reason.nonFinite`, so the learner can count `rejected_nonfinite` separately).
/// It does not judge staleness, leases or duplicates: that is the learner's state.
public struct GroupSubmission: Sendable {
    public var header: Troupe_V1_GroupSubmit
    public var tokenIDs: [Int32]
    public var logProbs: [Float]
    public var entropies: [Float]?

    public init(header: Troupe_V1_GroupSubmit, tokenIDs: [Int32], logProbs: [Float], entropies: [Float]? = nil) {
        self.header = header
        self.tokenIDs = tokenIDs
        self.logProbs = logProbs
        self.entropies = entropies
    }

    /// The message to send; sets `with_entropies` from `entropies`.
    public func wireMessage() -> WireMessage {
        var header = self.header
        header.withEntropies = entropies != nil
        var frames = [RawFrame.int32(tokenIDs), RawFrame.float32(logProbs)]
        if let entropies { frames.append(RawFrame.float32(entropies)) }
        return WireMessage(.groupSubmit(header), frames: frames)
    }

    /// Decodes and validates the group in a message produced by `WireMessage.decode`.
    public init(validating message: WireMessage) throws(WireError) {
        guard case .groupSubmit(let header) = message.body else {
            throw WireError(.invalidField, "expected a group_submit, got \(message.kind.rawValue)")
        }
        let expectedFrames = header.withEntropies ? 3 : 2
        guard message.frames.count == expectedFrames else {
            throw WireError(.unexpectedFrameCount, "group_submit with \(message.frames.count) raw frames; expected \(expectedFrames)")
        }
        let sequence = header.sequence
        guard !header.samples.isEmpty else {
            throw WireError(.invalidField, "group \(sequence): no samples")
        }
        var totalTokens = 0
        for (index, sample) in header.samples.enumerated() {
            totalTokens += Int(sample.tokenCount)
            guard sample.reward.isFinite else {
                throw WireError(.nonFinite, "group \(sequence): samples[\(index)].reward is \(sample.reward)")
            }
            guard sample.finishReason == .stop || sample.finishReason == .length else {
                throw WireError(.invalidField, "group \(sequence): samples[\(index)].finish_reason is \(sample.finishReason.rawValue); expected STOP (1) or LENGTH (2)")
            }
            guard sample.temperature.isFinite else {
                throw WireError(.nonFinite, "group \(sequence): samples[\(index)].temperature is \(sample.temperature)")
            }
            for (name, value) in sample.rewardComponents where !value.isFinite {
                throw WireError(.nonFinite, "group \(sequence): samples[\(index)].reward_components[\"\(name)\"] is \(value)")
            }
        }
        let tokenIDs = try RawFrame.decodeInt32(message.frames[0], field: "group \(sequence) token ids", expectedCount: totalTokens)
        if let index = tokenIDs.firstIndex(where: { $0 < 0 }) {
            throw WireError(.invalidField, "group \(sequence): token id \(tokenIDs[index]) at position \(index) is negative")
        }
        let logProbs = try RawFrame.decodeFloat32(message.frames[1], field: "group \(sequence) log-probs", expectedCount: totalTokens)
        var entropies: [Float]?
        if header.withEntropies {
            entropies = try RawFrame.decodeFloat32(message.frames[2], field: "group \(sequence) entropies", expectedCount: totalTokens)
        }
        self.init(header: header, tokenIDs: tokenIDs, logProbs: logProbs, entropies: entropies)
    }

    /// Token positions of each sample in `tokenIDs` / `logProbs` / `entropies`.
    public var sampleRanges: [Range<Int>] {
        var start = 0
        return header.samples.map { sample in
            defer { start += Int(sample.tokenCount) }
            return start..<(start + Int(sample.tokenCount))
        }
    }
}
