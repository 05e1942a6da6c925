/// The one error type of TroupeRL: which input or option is wrong, and why.
///
/// `field` is a path a user can find in their input or config, e.g. `loss.epsilon_high`,
/// `groups[2].samples[0].logp[5]` or `rewards[3]`.
public struct AlgorithmError: Error, CustomStringConvertible, Equatable, Sendable {
    public let field: String
    public let problem: String

    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { "\(field): \(problem)" }
}

/// Input checks shared by every entry point. Each throws an `AlgorithmError` naming the field.
enum Check {
    static func finite(_ value: Double, _ field: @autoclosure () -> String) throws {
        guard value.isFinite else {
            throw AlgorithmError(field: field(), problem: "must be a finite number, got \(value)")
        }
    }

    static func finite(_ values: [Double], _ field: String) throws {
        for (index, value) in values.enumerated() where !value.isFinite {
            throw AlgorithmError(field: "\(field)[\(index)]", problem: "must be a finite number, got \(value)")
        }
    }

    static func count(_ actual: Int, equals expected: Int, _ field: String, what: String) throws {
        guard actual == expected else {
            throw AlgorithmError(field: field, problem: "has \(actual) entries but \(what) has \(expected)")
        }
    }

    static func nonEmpty(_ count: Int, _ field: String) throws {
        guard count > 0 else { throw AlgorithmError(field: field, problem: "must not be empty") }
    }

    /// Log-probabilities are ≤ 0. A little slack absorbs float32 rounding in a log-softmax;
    /// anything larger means the caller passed logits or probabilities by mistake.
    static func logProbabilities(_ values: [Double], _ field: String) throws {
        try finite(values, field)
        for (index, value) in values.enumerated() where value > 1e-3 {
            throw AlgorithmError(field: "\(field)[\(index)]", problem: "a log-probability must be ≤ 0, got \(value)")
        }
    }

    /// Entropies are ≥ 0 (same slack as above).
    static func entropies(_ values: [Double], _ field: String) throws {
        try finite(values, field)
        for (index, value) in values.enumerated() where value < -1e-3 {
            throw AlgorithmError(field: "\(field)[\(index)]", problem: "an entropy must be ≥ 0, got \(value)")
        }
    }

    static func nonNegative(_ values: [Int], _ field: String) throws {
        for (index, value) in values.enumerated() where value < 0 {
            throw AlgorithmError(field: "\(field)[\(index)]", problem: "must be ≥ 0, got \(value)")
        }
    }
}
