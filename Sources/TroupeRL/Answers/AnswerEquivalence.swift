import Foundation

/// When two extracted answers count as the same answer (for verification against a ground truth
/// and for grouping votes).
///
/// The rule (docs/algorithms.md, "Answer equivalence"):
/// 1. Both answers are normalised (`normalize`): LaTeX wrappers and spacing commands dropped,
///    `\dfrac`/`\tfrac` read as `\frac`, `\text{…}` unwrapped, `%` and `$` signs dropped, a leading
///    `x =` dropped, whitespace removed, lower-cased, a trailing `.` dropped.
/// 2. If both normalised answers are numbers — integers (`1,234` allowed), decimals, scientific
///    notation, fractions `a/b` or `\frac{a}{b}` — they are equal when they are the **same exact
///    rational number**: `0.5 == 1/2 == \frac{1}{2} == 0.50`, but `0.333 != 1/3`, and `50% == 50`.
///    Numbers whose reduced fraction does not fit in 64-bit integers compare as text.
/// 3. Otherwise they are equal when the normalised texts are identical.
///
/// `canonicalKey` maps each answer to one string with exactly this equality, so a vote can count
/// answers in a dictionary.
public enum AnswerEquivalence {
    public static func equivalent(_ lhs: String, _ rhs: String) -> Bool {
        canonicalKey(lhs) == canonicalKey(rhs)
    }

    /// The exact rational value, when the answer is a number.
    public static func numericValue(_ answer: String) -> ExactRational? {
        parseNumber(normalize(answer))
    }

    /// A string with the equality described above; empty when the answer normalises to nothing.
    public static func canonicalKey(_ answer: String) -> String {
        let normalized = normalize(answer)
        if let number = parseNumber(normalized) { return number.description }
        return normalized
    }

    public static func normalize(_ answer: String) -> String {
        var text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        text = stripEnclosingMath(text)
        for (pattern, replacement) in [("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", ""),
                                       ("\\displaystyle", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\!", ""),
                                       ("\\,", ""), ("\\;", ""), ("\\:", ""), ("\\ ", ""), ("\\%", ""), ("%", ""),
                                       ("\\$", ""), ("$", "")] {
            text = text.replacingOccurrences(of: pattern, with: replacement)
        }
        for wrapper in ["\\text", "\\textbf", "\\mathrm", "\\mbox"] { text = unwrap(wrapper, in: text) }
        text = dropLeadingAssignment(text)
        text = String(text.filter { !$0.isWhitespace }).lowercased()
        while text.hasSuffix(".") { text.removeLast() }
        if text.count == 3, text.first == "(", text.last == ")", let letter = text.dropFirst().first, letter.isLetter {
            text = String(letter)  // multiple choice: "(b)" is "b"
        }
        return text
    }

    // MARK: normalisation helpers

    private static func stripEnclosingMath(_ input: String) -> String {
        var text = input
        var changed = true
        while changed {
            changed = false
            for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")]
            where text.count >= open.count + close.count && text.hasPrefix(open) && text.hasSuffix(close) {
                text = String(text.dropFirst(open.count).dropLast(close.count)).trimmingCharacters(in: .whitespaces)
                changed = true
                break
            }
        }
        return text
    }

    /// `\text{abc}` → `abc` (brace-matched, every occurrence).
    private static func unwrap(_ command: String, in input: String) -> String {
        var text = input
        while let range = text.range(of: command + "{") {
            var depth = 1
            var index = range.upperBound
            while index < text.endIndex, depth > 0 {
                if text[index] == "{" { depth += 1 } else if text[index] == "}" { depth -= 1 }
                if depth > 0 { index = text.index(after: index) }
            }
            guard index < text.endIndex else { break }  // unbalanced: leave the rest alone
            let content = text[range.upperBound..<index]
            text.replaceSubrange(range.lowerBound...index, with: content)
        }
        return text
    }

    /// "x = 5" → "5" (one ASCII letter, then `=`, then something).
    private static func dropLeadingAssignment(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let first = trimmed.first, first.isASCII, first.isLetter else { return text }
        let afterLetter = trimmed.dropFirst().drop(while: { $0 == " " })
        guard afterLetter.first == "=" else { return text }
        let value = afterLetter.dropFirst().trimmingCharacters(in: .whitespaces)
        return value.isEmpty ? text : value
    }

    // MARK: numbers

    /// Numbers in a normalised answer (no whitespace, lower case).
    static func parseNumber(_ text: String) -> ExactRational? {
        if text.hasPrefix("\\frac") || text.hasPrefix("-\\frac") {
            let negative = text.hasPrefix("-")
            let body = Array(text.dropFirst(negative ? 6 : 5))
            guard let (numerator, afterNumerator) = fracArgument(body, from: 0),
                  let (denominator, end) = fracArgument(body, from: afterNumerator), end == body.count,
                  let a = parseDecimal(numerator), let b = parseDecimal(denominator),
                  let value = a.dividedBy(b) else { return nil }
            return negative ? value.negated() : value
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2 {
            guard let a = parseDecimal(String(parts[0])), let b = parseDecimal(String(parts[1])) else { return nil }
            return a.dividedBy(b)
        }
        return parts.count == 1 ? parseDecimal(text) : nil
    }

    /// `{12}` or a single digit (`\frac12`).
    private static func fracArgument(_ c: [Character], from start: Int) -> (String, Int)? {
        guard start < c.count else { return nil }
        if c[start] == "{" {
            guard let close = c[start...].firstIndex(of: "}") else { return nil }
            return (String(c[(start + 1)..<close]), close + 1)
        }
        return c[start].isNumber ? (String(c[start]), start + 1) : nil
    }

    /// `[+-]digits[,ddd…][.digits][e[+-]digits]` as an exact rational.
    static func parseDecimal(_ input: String) -> ExactRational? {
        var text = Substring(input)
        var negative = false
        if let sign = text.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            text = text.dropFirst()
        }
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" }) {
            guard let value = Int(text[text.index(after: e)...]), abs(value) <= 30 else { return nil }
            exponent = value
            text = text[..<e]
        }
        let pieces = text.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count <= 2 else { return nil }
        let integerPart = pieces[0]
        let fractionPart = pieces.count == 2 ? pieces[1] : ""
        guard !(integerPart.isEmpty && fractionPart.isEmpty) else { return nil }
        guard let integerDigits = groupedDigits(integerPart), fractionPart.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        var digits = integerDigits + fractionPart
        while digits.count > 1, digits.first == "0" { digits.removeFirst() }
        guard !digits.isEmpty, let magnitude = Int(digits) else { return nil }
        exponent -= fractionPart.count
        var numerator = negative ? -magnitude : magnitude
        var denominator = 1
        for _ in 0..<abs(exponent) {
            if exponent > 0 {
                let (product, overflow) = numerator.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                numerator = product
            } else {
                let (product, overflow) = denominator.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                denominator = product
            }
        }
        return ExactRational(numerator: numerator, denominator: denominator)
    }

    /// Digits, allowing `1,234,567` style groups (and nothing else with commas).
    private static func groupedDigits(_ text: Substring) -> Substring? {
        guard text.contains(",") else { return text.allSatisfy({ $0.isASCII && $0.isNumber }) ? text : nil }
        let groups = text.split(separator: ",", omittingEmptySubsequences: false)
        guard let head = groups.first, (1...3).contains(head.count),
              groups.dropFirst().allSatisfy({ $0.count == 3 }),
              groups.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
        return Substring(groups.joined())
    }
}

/// A reduced fraction with a positive denominator.
public struct ExactRational: Hashable, Sendable, CustomStringConvertible {
    public let numerator: Int
    public let denominator: Int

    /// nil when `denominator` is 0.
    public init?(numerator: Int, denominator: Int) {
        guard denominator != 0, numerator != .min, denominator != .min else { return nil }
        let divisor = Self.gcd(abs(numerator), abs(denominator))
        let sign = denominator < 0 ? -1 : 1
        self.numerator = sign * numerator / max(divisor, 1)
        self.denominator = sign * denominator / max(divisor, 1)
    }

    public var description: String { denominator == 1 ? "\(numerator)" : "\(numerator)/\(denominator)" }

    public var doubleValue: Double { Double(numerator) / Double(denominator) }

    func negated() -> ExactRational { ExactRational(numerator: -numerator, denominator: denominator)! }

    func dividedBy(_ other: ExactRational) -> ExactRational? {
        guard other.numerator != 0 else { return nil }
        let (top, overflowTop) = numerator.multipliedReportingOverflow(by: other.denominator)
        let (bottom, overflowBottom) = denominator.multipliedReportingOverflow(by: other.numerator)
        guard !overflowTop, !overflowBottom else { return nil }
        return ExactRational(numerator: top, denominator: bottom)
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }
}
