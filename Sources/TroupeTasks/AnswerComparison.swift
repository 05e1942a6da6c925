/// The minimal answer comparison evaluation needs: integers compare by value, everything else by its
/// trimmed text. Extracting an answer from a completion belongs to TroupeRL; this only compares.
public enum AnswerComparison {
    /// `"+007"` → `"7"`, `"-0"` → `"0"`, `" 42 "` → `"42"`; other text is returned trimmed.
    public static func canonical(_ answer: String) -> String {
        let trimmed = answer.trimmingWhitespace()
        var digits = Substring(trimmed)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return trimmed }
        let significant = digits.drop { $0 == "0" }
        if significant.isEmpty { return "0" }
        return (negative ? "-" : "") + significant
    }

    public static func matches(_ answer: String, _ reference: String) -> Bool {
        canonical(answer) == canonical(reference)
    }
}
