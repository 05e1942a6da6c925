import TroupeTensor

/// How completions are drawn. The behaviour log-prob of each token is always taken from the full
/// distribution at `temperature` (before top-k/top-p truncation), which is what the learner recomputes.
public struct SamplingParameters: Codable, Equatable, Sendable {
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 disables.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose mass reaches p; 1 disables.
    public var topP: Float
    public var maxNewTokens: Int
    /// Token ids that end a completion (included in it, so the policy learns to stop).
    public var stopTokens: [Int32]
    /// Strings that end a completion once the decoded text contains them.
    public var stopStrings: [String]
    public var computeEntropy: Bool

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, maxNewTokens: Int = 64,
                stopTokens: [Int32] = [], stopStrings: [String] = [], computeEntropy: Bool = false) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
        self.computeEntropy = computeEntropy
    }

    public func validate(vocabularySize: Int) throws {
        guard temperature.isFinite && temperature > 0 else {
            throw ModelError.invalidArgument(name: "temperature", reason: "must be finite and > 0 (got \(temperature))")
        }
        guard topK >= 0 else { throw ModelError.invalidArgument(name: "top_k", reason: "must be ≥ 0 (got \(topK))") }
        guard topP > 0 && topP <= 1 else { throw ModelError.invalidArgument(name: "top_p", reason: "must be in (0, 1] (got \(topP))") }
        guard maxNewTokens > 0 else {
            throw ModelError.invalidArgument(name: "max_new_tokens", reason: "must be > 0 (got \(maxNewTokens))")
        }
        for t in stopTokens where t < 0 || Int(t) >= vocabularySize {
            throw ModelError.tokenOutOfRange(id: Int(t), vocabularySize: vocabularySize)
        }
        for s in stopStrings where s.isEmpty {
            throw ModelError.invalidArgument(name: "stop_strings", reason: "an empty stop string would end every completion at once")
        }
    }
}

public enum FinishReason: String, Codable, Sendable {
    /// Ended on a stop token or stop string.
    case stop
    /// Reached max new tokens (or the model's position limit).
    case length
}

public struct SampleRequest: Sendable {
    public var prompt: [Int32]
    /// Seeds this sample's own random stream, so it can be regenerated exactly.
    public var seed: UInt64
    /// This sample's temperature (a multi-temperature group); nil: `SamplingParameters.temperature`.
    public var temperature: Float?

    public init(prompt: [Int32], seed: UInt64, temperature: Float? = nil) {
        self.prompt = prompt
        self.seed = seed
        self.temperature = temperature
    }

    /// The seed of sample `j` of prompt `i` under base seed `base`: `Xoshiro256(mixing: [base, i, j]).next()`.
    public static func seed(base: UInt64, prompt i: Int, sample j: Int) -> UInt64 {
        var mixer = Xoshiro256(mixing: [base, UInt64(i), UInt64(j)])
        return mixer.next()
    }
}

public struct Completion: Sendable, Equatable {
    public var tokens: [Int32]
    /// Behaviour log-prob of each sampled token at the sampling temperature.
    public var logprobs: [Float]
    public var entropies: [Float]?
    public var finishReason: FinishReason
}
