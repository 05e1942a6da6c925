/// A group's answers counted by equivalence class (`AnswerEquivalence.canonicalKey`).
///
/// An answer is **invalid** when it is nil or normalises to nothing. Invalid answers are not a class:
/// they never win a vote and never share a reward (TTRL's code lets `""` win; docs/algorithms.md).
public struct AnswerTally: Sendable, Equatable {
    public struct AnswerClass: Sendable, Equatable {
        /// The canonical key every member shares.
        public let key: String
        /// The first raw answer of the class, as the model wrote it.
        public let representative: String
        public let count: Int
        /// Index of the first sample with this answer (the tie-break).
        public let firstIndex: Int
    }

    /// Classes in order of first appearance.
    public let classes: [AnswerClass]
    /// For each sample, the index of its class in `classes`; nil when its answer is invalid.
    public let classOfSample: [Int?]

    public init(answers: [String?]) {
        var classes: [AnswerClass] = []
        var indexOfKey: [String: Int] = [:]
        var classOfSample: [Int?] = []
        for (sample, answer) in answers.enumerated() {
            guard let answer else { classOfSample.append(nil); continue }
            let key = AnswerEquivalence.canonicalKey(answer)
            guard !key.isEmpty else { classOfSample.append(nil); continue }
            if let existing = indexOfKey[key] {
                let old = classes[existing]
                classes[existing] = AnswerClass(key: key, representative: old.representative, count: old.count + 1, firstIndex: old.firstIndex)
                classOfSample.append(existing)
            } else {
                indexOfKey[key] = classes.count
                classOfSample.append(classes.count)
                classes.append(AnswerClass(key: key, representative: answer, count: 1, firstIndex: sample))
            }
        }
        self.classes = classes
        self.classOfSample = classOfSample
    }

    public var sampleCount: Int { classOfSample.count }
    public var validCount: Int { classOfSample.lazy.filter { $0 != nil }.count }

    /// Index of the majority class: the largest count; on a tie, the answer that appeared first
    /// (the same order Python's `Counter.most_common` gives, which TTRL uses). nil when every answer is invalid.
    public var majorityIndex: Int? {
        var best: Int?
        for (index, answerClass) in classes.enumerated() where best == nil || answerClass.count > classes[best!].count {
            best = index
        }
        return best
    }

    /// Natural-log entropy of the distribution of valid answers (0 when there are none).
    public var answerEntropy: Double { Statistics.entropy(counts: classes.map(\.count)) }
}
