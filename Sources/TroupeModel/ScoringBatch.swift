/// Sequences to run through the training forward, and which of their tokens to score.
public struct ScoringBatch: Sendable {
    public var sequences: [[Int32]]
    /// Per sequence: index of the first token whose log-prob is wanted (≥ 1; a prompt's length for RL).
    public var scoreFrom: [Int]
    /// Per sequence: the temperature the log-probs are taken at (the sampler's temperature, so the
    /// learner's ratio compares like with like).
    public var temperatures: [Float]

    public init(sequences: [[Int32]], scoreFrom: [Int]? = nil, temperatures: [Float]? = nil) {
        self.sequences = sequences
        self.scoreFrom = scoreFrom ?? Array(repeating: 1, count: sequences.count)
        self.temperatures = temperatures ?? Array(repeating: 1, count: sequences.count)
    }

    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.count } }
}

public struct ScoringResult: Sendable {
    /// logprobs[s][i] = log p(token[scoreFrom[s] + i] | earlier tokens) at the sequence's temperature.
    public var logprobs: [[Float]]
    /// Entropy of the distribution each scored token was drawn from, when requested.
    public var entropies: [[Float]]?

    /// Mean log-likelihood over all scored tokens.
    public var meanLogLikelihood: Double {
        let n = logprobs.reduce(0) { $0 + $1.count }
        return n == 0 ? 0 : logprobs.reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1) } } / Double(n)
    }
}

extension ScoringBatch {
    /// Consecutive runs of sequences of `lengths` holding at most `tokenBudget` tokens each (a longer
    /// sequence alone): how a training step is split into micro-batches, which bounds activation memory
    /// and never changes the summed gradient.
    public static func microBatches(lengths: [Int], tokenBudget: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        while start < lengths.count {
            var end = start, tokens = 0
            while end < lengths.count && (end == start || tokens + lengths[end] <= tokenBudget) {
                tokens += lengths[end]
                end += 1
            }
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }
}
