/// Generates built-in task sets: deterministic from (spec, split, count, seed), distinct problems,
/// all from the requested split.
public enum TaskSet {
    /// Problem spaces up to this many candidates are enumerated and shuffled, so a request for more
    /// problems than exist fails exactly instead of sampling forever.
    static let enumerationLimit = 100_000

    /// `count` distinct items of `spec` from `split`. With the same spec, split and seed, a smaller
    /// count gives a prefix of a larger one.
    public static func generate(_ spec: TaskSpec, split: TaskSplit, count: Int, seed: UInt64) throws -> [TaskItem] {
        guard count >= 1 else { throw TaskError.invalidCount(count) }
        switch spec {
        case let .arithmetic(arithmetic):
            return try generateArithmetic(arithmetic, spec: spec, split: split, count: count, seed: seed)
                .map(\.item)
        }
    }

    /// The exact number of distinct problems of `spec` in `split`, for spaces small enough to enumerate
    /// (at most `enumerationLimit` candidates, e.g. `arith:add2`, `arith:mix2`); nil for larger spaces,
    /// where any realistic count is available.
    public static func problemCount(_ spec: TaskSpec, split: TaskSplit) -> Int? {
        switch spec {
        case let .arithmetic(arithmetic):
            let candidates = arithmetic.candidateCount
            guard candidates <= enumerationLimit else { return nil }
            return (0..<candidates).reduce(0) { count, index in
                let problem = arithmetic.candidate(at: index)
                return count + (arithmetic.admits(problem) && problem.split == split ? 1 : 0)
            }
        }
    }

    /// The problems behind `generate` for arithmetic specs.
    public static func generateArithmetic(_ arithmetic: ArithmeticSpec, split: TaskSplit, count: Int, seed: UInt64) throws
        -> [ArithmeticProblem]
    {
        guard count >= 1 else { throw TaskError.invalidCount(count) }
        return try generateArithmetic(arithmetic, spec: .arithmetic(arithmetic), split: split, count: count, seed: seed)
    }

    private static func generateArithmetic(_ arithmetic: ArithmeticSpec, spec: TaskSpec, split: TaskSplit,
                                           count: Int, seed: UInt64) throws -> [ArithmeticProblem]
    {
        // Separate streams per split, so the train and test sequences of one seed are unrelated.
        var generator = SplitMix64(seed: seed ^ StableHash.hash64("\(spec)|\(split)"))
        let candidates = arithmetic.candidateCount
        if candidates <= enumerationLimit {
            var indices = (0..<candidates).filter { index in
                let problem = arithmetic.candidate(at: index)
                return arithmetic.admits(problem) && problem.split == split
            }
            guard indices.count >= count else {
                throw TaskError.notEnoughProblems(spec: "\(spec)", split: split, requested: count, available: indices.count)
            }
            generator.shuffle(&indices)
            return indices.prefix(count).map { arithmetic.candidate(at: $0) }
        }
        // Large spaces: rejection sampling. Every split holds roughly 10% or more of > 100k candidates,
        // so the attempt cap only trips on absurd counts.
        var seen = Set<String>()
        var problems: [ArithmeticProblem] = []
        let maxAttempts = count * 100 + 10_000
        var attempts = 0
        while problems.count < count {
            guard attempts < maxAttempts else {
                throw TaskError.generationStalled(spec: "\(spec)", split: split, requested: count,
                                                  found: problems.count, attempts: attempts)
            }
            attempts += 1
            let problem = arithmetic.randomCandidate(using: &generator)
            guard arithmetic.admits(problem), problem.split == split,
                  seen.insert(problem.canonicalForm).inserted else { continue }
            problems.append(problem)
        }
        return problems
    }
}
