import TroupeRL

/// A malformed field in a log event (the stream is data from other processes: it is checked, and a
/// bad field is reported and counted, never trusted).
package struct MonitorInputError: Error, Sendable, Equatable, CustomStringConvertible {
    package let field: String
    package let problem: String

    package init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    package var description: String { "log event field \"\(field)\": \(problem)" }
}

/// The pseudo-labels a learner step trained on: its "labels" field, `pid=label,pid=label,…`, one
/// entry per group, the label being the group's majority answer (empty when no sample had a valid
/// answer). Labels may themselves contain commas (`1,234`), so a piece that does not start with
/// `digits=` continues the previous label.
package enum StepLabels {
    package struct Entry: Sendable, Equatable {
        package let promptId: UInt64
        /// The majority answer; empty when the group had no valid answer.
        package let label: String

        package init(promptId: UInt64, label: String) {
            self.promptId = promptId
            self.label = label
        }
    }

    package static func parse(_ text: String) throws(MonitorInputError) -> [Entry] {
        try perPrompt(text, field: "labels", expected: "prompt_id=label").map { Entry(promptId: $0.id, label: $0.text) }
    }

    /// `pid=text,pid=text,…` split by prompt: a piece that does not start with `digits=` continues the
    /// previous entry's text (which may hold commas).
    static func perPrompt(_ text: String, field: String, expected: String) throws(MonitorInputError) -> [(id: UInt64, text: String)] {
        guard !text.isEmpty else { return [] }
        var entries: [(id: UInt64, text: String)] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
            if let eq = piece.firstIndex(of: "="), let id = UInt64(piece[..<eq]) {
                entries.append((id, String(piece[piece.index(after: eq)...])))
            } else if !entries.isEmpty {
                entries[entries.count - 1].text += "," + piece
            } else {
                throw MonitorInputError(field: field, problem: "expected \(expected) at the start, found \"\(piece.prefix(40))\"")
            }
        }
        return entries
    }
}

/// Each sample's answer and reward of a learner step: its "rewards" field, `pid=answer:reward;…,pid=…`,
/// one entry per group. Answers may contain commas and semicolons, so a piece that does not start with
/// `digits=` continues the previous group, and one that does not end in `:number` the previous sample.
package enum StepRewards {
    package struct Entry: Sendable {
        package let promptId: UInt64
        package let samples: [(answer: String, reward: Double)]
    }

    package static func parse(_ text: String) throws(MonitorInputError) -> [Entry] {
        let groups = try StepLabels.perPrompt(text, field: "rewards", expected: "prompt_id=answer:reward")
        return try groups.map { group throws(MonitorInputError) in
            var samples: [(answer: String, reward: Double)] = []
            var pending = ""
            for piece in group.text.split(separator: ";", omittingEmptySubsequences: false) {
                let text = pending.isEmpty ? String(piece) : pending + ";" + piece
                if let colon = text.lastIndex(of: ":"), let reward = Double(text[text.index(after: colon)...]) {
                    samples.append((String(text[..<colon]), reward))
                    pending = ""
                } else {
                    pending = text
                }
            }
            guard pending.isEmpty else {
                throw MonitorInputError(field: "rewards", problem: "prompt \(group.id): expected answer:reward, found \"\(pending.prefix(40))\"")
            }
            return Entry(promptId: group.id, samples: samples)
        }
    }
}

/// Label accuracy from the learner's pseudo-labels and an answer key the learner never sees: the
/// fraction of trained prompts whose majority label equals the true answer (TTRL's `label_accuracy`,
/// Zuo et al., arXiv 2504.16084), with the answer equivalence of TroupeRL (`1/2 == 0.5`). An empty
/// label is wrong. Prompts missing from the key are counted apart and not judged.
package struct LabelAccuracy: Sendable, Equatable {
    /// Prompt id -> true answer.
    package let answerKey: [UInt64: String]
    /// Prompts judged (present in the key), all steps so far.
    package private(set) var judged = 0
    /// Of those, prompts whose majority label was the true answer.
    package private(set) var correct = 0
    /// Labels for prompts not in the key (not judged).
    package private(set) var unknownPrompts = 0
    /// One step's judgement.
    package struct StepResult: Sendable, Equatable {
        package let step: Int
        package let judged: Int
        package let correct: Int
        package var fraction: Double { Double(correct) / Double(max(judged, 1)) }

        package init(step: Int, judged: Int, correct: Int) {
            self.step = step
            self.judged = judged
            self.correct = correct
        }
    }

    /// The most recent step that judged at least one prompt.
    package private(set) var lastStep: StepResult?

    private let canonicalAnswers: [UInt64: String]

    package init(answerKey: [UInt64: String]) {
        self.answerKey = answerKey
        canonicalAnswers = answerKey.mapValues(AnswerEquivalence.canonicalKey)
    }

    /// All steps so far; nil before any prompt was judged.
    package var fraction: Double? { judged > 0 ? Double(correct) / Double(judged) : nil }

    /// Judges one step's labels; returns that step's fraction (nil when no prompt was in the key).
    @discardableResult
    package mutating func record(step: Int, labels: [StepLabels.Entry]) -> Double? {
        var stepJudged = 0, stepCorrect = 0
        for entry in labels {
            guard let truth = canonicalAnswers[entry.promptId] else { unknownPrompts += 1; continue }
            stepJudged += 1
            let key = AnswerEquivalence.canonicalKey(entry.label)
            if !key.isEmpty && key == truth { stepCorrect += 1 }
        }
        guard stepJudged > 0 else { return nil }
        judged += stepJudged
        correct += stepCorrect
        lastStep = StepResult(step: step, judged: stepJudged, correct: stepCorrect)
        return Double(stepCorrect) / Double(stepJudged)
    }
}
