/// Errors from task specs, generation and labels. Each names the offending input.
public enum TaskError: Error, Equatable, CustomStringConvertible {
    case invalidSpec(spec: String, reason: String)
    case invalidCount(Int)
    case notEnoughProblems(spec: String, split: TaskSplit, requested: Int, available: Int)
    case generationStalled(spec: String, split: TaskSplit, requested: Int, found: Int, attempts: Int)
    case missingAnswer(id: String)
    case notWorkable(problem: String)

    public var description: String {
        switch self {
        case let .invalidSpec(spec, reason):
            return "invalid task spec \"\(spec)\": \(reason). Examples: \(TaskSpec.examples.joined(separator: ", "))"
        case let .invalidCount(count):
            return "task count must be at least 1, got \(count)"
        case let .notEnoughProblems(spec, split, requested, available):
            return "task \(spec) has only \(available) distinct problems in the \(split) split, \(requested) requested; "
                + "ask for fewer or use more digits or terms"
        case let .generationStalled(spec, split, requested, found, attempts):
            return "task \(spec): found only \(found) of \(requested) distinct \(split) problems in \(attempts) random draws; "
                + "ask for fewer or use more digits or terms"
        case let .missingAnswer(id):
            return "task \"\(id)\" has no answer, so it has no supervised completion"
        case let .notWorkable(problem):
            return "\(problem) has products, so it cannot be worked left to right: "
                + "worked completions need add, sub or mix specs"
        }
    }
}
