/// Accuracy statistics over sampled answers: pass@1, pass@k, maj@k, each with a 95% interval.
///
/// - pass@1: per prompt c/n (c correct of n samples), averaged over prompts.
/// - pass@k: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
///   Code", eq. 1): 1 − C(n−c, k)/C(n, k), computed as a product to stay stable for large n.
/// - maj@k: majority vote over the valid answers among the first k samples; ties go to the answer that
///   occurred first (as TTRL's `Counter.most_common` and TroupeRL's `AnswerTally`); no valid answer
///   counts as wrong. An answer is invalid when it is nil or its canonical key is empty.
/// - Answers compare by `canonicalKey`: by default `AnswerComparison.canonical` (integers by value,
///   other text trimmed); pass TroupeRL's `AnswerEquivalence.canonicalKey` for fractions and LaTeX.
/// - Intervals: Wilson score interval (z = 1.96) with n = number of prompts, applied to the mean of the
///   per-prompt scores. Exact in form for maj@k (each prompt scores 0 or 1); conservative for pass@1 and
///   pass@k, since a score in [0, 1] with mean p has variance at most p(1 − p). Deterministic, and it
///   does not collapse to a zero-width interval at 0% or 100%.
public enum Evaluation {
    public static let z95 = 1.959_963_984_540_054

    /// Unbiased pass@k for one prompt with `n` samples of which `correct` are right.
    public static func passAtK(samples n: Int, correct c: Int, k: Int) -> Double {
        precondition(0 <= c && c <= n && 1 <= k && k <= n, "pass@k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n")
        if n - c < k { return 1 }
        // C(n−c, k)/C(n, k) = ∏_{i=n−c+1}^{n} (1 − k/i)
        var failAll = 1.0
        for i in stride(from: n - c + 1, through: n, by: 1) {
            failAll *= 1 - Double(k) / Double(i)
        }
        return 1 - failAll
    }

    /// The most frequent valid answer, compared by `canonicalKey`; ties go to the earliest first
    /// occurrence. Returns the canonical key, or nil when no answer is valid.
    public static func majorityAnswer(_ answers: [String?],
                                      canonicalKey: (String) -> String = AnswerComparison.canonical) -> String? {
        var counts: [String: Int] = [:]
        var order: [String] = []
        for case let answer? in answers {
            let key = canonicalKey(answer)
            if key.isEmpty { continue }
            if counts[key] == nil { order.append(key) }
            counts[key, default: 0] += 1
        }
        var best: String?
        var bestCount = 0
        for key in order where counts[key]! > bestCount {
            best = key
            bestCount = counts[key]!
        }
        return best
    }

    /// Wilson score interval for a proportion `mean` observed over `count` trials.
    public static func wilsonInterval(mean p: Double, count n: Int, z: Double = z95) -> ClosedRange<Double> {
        precondition(n > 0 && p >= 0 && p <= 1)
        let nn = Double(n)
        let z2 = z * z
        let center = (p + z2 / (2 * nn)) / (1 + z2 / nn)
        let halfWidth = z / (1 + z2 / nn) * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot()
        // At p = 0 or 1 one bound is exactly 0 or 1; say so rather than trust rounding.
        let low = p == 0 ? 0 : max(0, center - halfWidth)
        let high = p == 1 ? 1 : min(1, center + halfWidth)
        return low...high
    }

    public static func evaluate(_ prompts: [PromptSamples], k: Int,
                                canonicalKey: (String) -> String = AnswerComparison.canonical) throws -> EvaluationResult {
        guard !prompts.isEmpty else { throw EvaluationError.noPrompts }
        guard k >= 1 else { throw EvaluationError.invalidK(k) }
        var outcomes: [PromptOutcome] = []
        var validSamples = 0
        var totalSamples = 0
        for prompt in prompts {
            let n = prompt.sampledAnswers.count
            guard n >= k else { throw EvaluationError.tooFewSamples(id: prompt.id, samples: n, k: k) }
            let reference = canonicalKey(prompt.referenceAnswer)
            guard !reference.isEmpty else { throw EvaluationError.emptyReference(id: prompt.id) }
            let keys = prompt.sampledAnswers.map { $0.map(canonicalKey) }
            let correct = keys.filter { $0 == reference }.count
            let majority = majorityAnswer(Array(prompt.sampledAnswers.prefix(k)), canonicalKey: canonicalKey)
            validSamples += keys.filter { $0 != nil && $0 != "" }.count
            totalSamples += n
            outcomes.append(PromptOutcome(
                id: prompt.id, samples: n, correct: correct,
                passAt1: Double(correct) / Double(n),
                passAtK: passAtK(samples: n, correct: correct, k: k),
                majorityAnswer: majority, majorityCorrect: majority == reference))
        }
        func estimate(_ score: (PromptOutcome) -> Double) -> Estimate {
            let mean = outcomes.map(score).reduce(0, +) / Double(outcomes.count)
            // Rounding can push a mean of ones a hair past 1.
            let clamped = min(1, max(0, mean))
            return Estimate(value: clamped, interval: wilsonInterval(mean: clamped, count: outcomes.count))
        }
        return EvaluationResult(
            k: k,
            passAt1: estimate(\.passAt1),
            passAtK: estimate(\.passAtK),
            majorityAtK: estimate { $0.majorityCorrect ? 1 : 0 },
            validAnswerFraction: Double(validSamples) / Double(totalSamples),
            prompts: outcomes)
    }
}

/// One prompt's sampled answers (already extracted; nil where a completion had none) and its reference.
public struct PromptSamples: Sendable, Hashable {
    public let id: String
    public let referenceAnswer: String
    public let sampledAnswers: [String?]

    public init(id: String, referenceAnswer: String, sampledAnswers: [String?]) {
        self.id = id
        self.referenceAnswer = referenceAnswer
        self.sampledAnswers = sampledAnswers
    }
}

public struct Estimate: Sendable, Hashable, CustomStringConvertible {
    public let value: Double
    /// 95% confidence interval.
    public let interval: ClosedRange<Double>

    public var description: String {
        "\(percent(value)) [\(percent(interval.lowerBound)), \(percent(interval.upperBound))]"
    }

    private func percent(_ x: Double) -> String {
        let tenths = (x * 1000).rounded()
        return "\(Int(tenths) / 10).\(Int(tenths) % 10)%"
    }
}

public struct PromptOutcome: Sendable, Hashable {
    public let id: String
    public let samples: Int
    public let correct: Int
    public let passAt1: Double
    public let passAtK: Double
    /// Canonical majority answer over the first k samples, nil when none was valid.
    public let majorityAnswer: String?
    public let majorityCorrect: Bool
}

public struct EvaluationResult: Sendable, Hashable {
    public let k: Int
    public let passAt1: Estimate
    public let passAtK: Estimate
    public let majorityAtK: Estimate
    /// Fraction of all samples with a valid answer.
    public let validAnswerFraction: Double
    public let prompts: [PromptOutcome]
}

public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    case noPrompts
    case invalidK(Int)
    case tooFewSamples(id: String, samples: Int, k: Int)
    case emptyReference(id: String)

    public var description: String {
        switch self {
        case .noPrompts: return "evaluation needs at least one prompt"
        case let .invalidK(k): return "k must be at least 1, got \(k)"
        case let .tooFewSamples(id, samples, k):
            return "prompt \"\(id)\" has \(samples) samples, fewer than k = \(k)"
        case let .emptyReference(id): return "prompt \"\(id)\" has an empty reference answer"
        }
    }
}
