/// Training split (supervised warm-up) or test split (test-time RL and evaluation).
///
/// The rule is a pure function of the problem itself, never of the seed, count or difficulty spec:
/// a problem belongs to the test split iff `StableHash(family + "|" + canonical form) mod 100 < 10`.
/// So about 10% of every family's problems are test problems, `arith:mix2` and `arith:add2` agree on
/// where `47+85` goes, and no training set can ever contain a test problem.
public enum TaskSplit: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case train, test

    /// Percentage of each family's problem space that is held out for testing.
    public static let testPercent: UInt64 = 10

    public static func of(family: String, canonicalProblem: String) -> TaskSplit {
        StableHash.hash64(family + "|" + canonicalProblem) % 100 < testPercent ? .test : .train
    }

    public var description: String { rawValue }
}
