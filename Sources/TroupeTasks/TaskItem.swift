/// One prompt a policy answers, with its reference answer when it has one.
///
/// In test-time mode the answer must never reach the learner or the reward: hand the learner
/// `withoutAnswer()` copies (or `TaskItem.separatingAnswers`) and keep the answers for monitoring.
public struct TaskItem: Sendable, Hashable, Codable {
    /// Stable identifier; the runtime seeds each sample's RNG from it, so it must not depend on order.
    public let id: String
    public let prompt: String
    /// The reference answer as text (integers in canonical decimal form for built-in tasks).
    public let answer: String?

    public init(id: String, prompt: String, answer: String? = nil) {
        self.id = id
        self.prompt = prompt
        self.answer = answer
    }

    /// A copy the learner may see: same id and prompt, no answer.
    public func withoutAnswer() -> TaskItem {
        TaskItem(id: id, prompt: prompt, answer: nil)
    }

    /// The supervised fine-tuning target that follows `prompt`: `" <answer>\n"`.
    /// Throws when the item has no answer (unlabeled items cannot be used for SFT).
    public func sftCompletion() throws -> String {
        guard let answer else { throw TaskError.missingAnswer(id: id) }
        return TaskFormat.completion(answer: answer)
    }

    /// Splits labelled items into label-free copies (for the learner) and an answer key (for evaluation).
    /// Items without an answer appear in `prompts` only.
    public static func separatingAnswers(_ items: [TaskItem]) -> (prompts: [TaskItem], answerKey: [String: String]) {
        var answerKey: [String: String] = [:]
        for item in items {
            if let answer = item.answer { answerKey[item.id] = answer }
        }
        return (items.map { $0.withoutAnswer() }, answerKey)
    }
}

/// The prompt/completion convention shared by built-in tasks, SFT and sampling.
///
/// Completions are short — a space, the answer, a newline — so a byte-level model answers in a few
/// tokens and the answer is the first line of the completion.
public enum TaskFormat {
    /// Sampling stops at the first newline: the answer line is complete.
    public static let stopSequence = "\n"

    /// `"Q: <question>\nA:"`
    public static func prompt(question: String) -> String {
        "Q: \(question)\nA:"
    }

    /// `" <answer>\n"`
    public static func completion(answer: String) -> String {
        " \(answer)\(stopSequence)"
    }
}

/// How a supervised completion is written: the answer alone (the default), or worked out step by step.
public enum CompletionStyle: String, Sendable, Hashable, CaseIterable {
    /// `" 132\n"`: the answer line of `TaskFormat.completion`.
    case answer
    /// The running results left to right, 0, 1 or 2 verbatim repeats of them, then the answer:
    /// `" 3+8=11, 11+5=16. check 3+8=11, 11+5=16. so 16\n"`. The answer is known after the first
    /// pass, so the repeats are reasoning a policy can learn to skip (S-GRPO's early exit).
    case worked

    /// The completion of a built-in problem in this style; `worked` needs an expression without
    /// products (left to right is then the usual order) and throws otherwise, naming the problem.
    public func completion(of problem: ArithmeticProblem) throws -> String {
        switch self {
        case .answer: return TaskFormat.completion(answer: String(problem.value))
        case .worked: return try problem.workedCompletion()
        }
    }

    /// The answer a completion's first line gives in this style: the whole line, or for `worked` what
    /// follows its last " so " (the whole line when there is none).
    public func answer(inLine line: String) -> String {
        switch self {
        case .answer: return line
        case .worked: return line.range(of: " so ", options: .backwards).map { String(line[$0.upperBound...]) } ?? line
        }
    }
}
