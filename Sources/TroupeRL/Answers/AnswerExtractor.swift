import Foundation

/// Finds the final answer in a completion's text.
///
/// Rules, first match wins (documented in docs/algorithms.md; the order follows TTRL's
/// `qwen_math_parser.extract_answer`, PRIME-RL/TTRL, with GSM8K's `####` added):
/// 1. the content of the **last** brace-matched `\boxed{…}` (or `\fbox{…}`);
/// 2. the text after the **last** "answer is" (case-insensitive; covers "The final answer is $42$. I hope
///    it is correct.") or "答案是": a `$…$` / `\(…\)` span if one starts there, otherwise the rest of
///    the line up to the first ". ";
/// 3. the rest of the line after the **last** `####`;
/// 4. the **last number** in the text (`-12`, `3.5`, `.5`, `1,234`, `3/4`).
///
/// Returns nil when nothing is found or the found text is empty: such a sample is *invalid*.
/// Invalid answers never take part in a vote (TTRL's own code lets `""` win; see docs/algorithms.md).
public enum AnswerExtractor {
    public static func extract(_ text: String) -> String? {
        if let boxed = boxedContent(text) { return boxed }
        if let stated = statedAnswer(text) { return stated }
        if let hashes = hashMarkedAnswer(text) { return hashes }
        return lastNumber(text)
    }

    /// Content of the last well-formed `\boxed{…}` or `\fbox{…}`, trimmed; nil when there is none or it is empty.
    public static func boxedContent(_ text: String) -> String? {
        let characters = Array(text)
        var best: (start: Int, content: String)?
        for marker in ["\\boxed", "\\fbox"] {
            let pattern = Array(marker)
            var index = characters.count - pattern.count
            while index >= 0 {
                if matches(characters, at: index, pattern), let content = bracedContent(characters, from: index + pattern.count) {
                    if best == nil || index > best!.start { best = (index, content) }
                    break
                }
                index -= 1
            }
        }
        guard let content = best?.content.trimmingCharacters(in: .whitespacesAndNewlines), !content.isEmpty else { return nil }
        return content
    }

    /// The answer after the last "answer is" / "答案是".
    static func statedAnswer(_ text: String) -> String? {
        let candidates = ["answer is", "答案是"].compactMap { text.range(of: $0, options: [.backwards, .caseInsensitive]) }
        guard let phrase = candidates.max(by: { $0.lowerBound < $1.lowerBound }) else { return nil }
        var rest = Substring(text[phrase.upperBound...])
        rest = rest.drop(while: { $0 == ":" || $0 == "：" || $0.isWhitespace || $0 == "*" })
        if let span = delimitedSpan(rest) { return nonEmpty(span) }
        var line = rest.prefix(while: { !$0.isNewline })
        if let sentenceEnd = line.range(of: ". ") ?? line.range(of: "。") { line = line[..<sentenceEnd.lowerBound] }
        return nonEmpty(trimAnswer(line))
    }

    /// The rest of the line after the last `####` (GSM8K).
    static func hashMarkedAnswer(_ text: String) -> String? {
        guard let marker = text.range(of: "####", options: .backwards) else { return nil }
        let line = text[marker.upperBound...].prefix(while: { !$0.isNewline })
        return nonEmpty(trimAnswer(line))
    }

    /// The last number token in the text.
    static func lastNumber(_ text: String) -> String? {
        let characters = Array(text)
        var last: String?
        var index = 0
        while index < characters.count {
            if let (token, end) = numberToken(characters, at: index) {
                last = token
                index = end
            } else {
                index += 1
            }
        }
        return last
    }

    // MARK: scanning helpers

    private static func matches(_ characters: [Character], at index: Int, _ pattern: [Character]) -> Bool {
        guard index >= 0, index + pattern.count <= characters.count else { return false }
        for offset in 0..<pattern.count where characters[index + offset] != pattern[offset] { return false }
        return true
    }

    /// `{…}` starting at `from` (after optional spaces), brace-matched.
    private static func bracedContent(_ characters: [Character], from: Int) -> String? {
        var index = from
        while index < characters.count, characters[index] == " " { index += 1 }
        guard index < characters.count, characters[index] == "{" else { return nil }
        var depth = 0
        for position in index..<characters.count {
            switch characters[position] {
            case "{": depth += 1
            case "}":
                depth -= 1
                if depth == 0 { return String(characters[(index + 1)..<position]) }
            default: break
            }
        }
        return nil
    }

    /// `$…$`, `$$…$$`, `\(…\)` or `\[…\]` at the start of `text`.
    private static func delimitedSpan(_ text: Substring) -> Substring? {
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] where text.hasPrefix(open) {
            let body = text.dropFirst(open.count)
            if let end = body.range(of: close) { return body[..<end.lowerBound] }
            return nil
        }
        return nil
    }

    private static func trimAnswer(_ text: Substring) -> Substring {
        var result = text.trimmingCharacters(in: .whitespaces)[...]
        while let last = result.last, last == "." || last == "*" || last.isWhitespace { result = result.dropLast() }
        while let first = result.first, first == "*" || first.isWhitespace { result = result.dropFirst() }
        return result
    }

    private static func nonEmpty(_ text: Substring) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// A number starting at `index`: optional sign, digits with optional `,ddd` groups, optional
    /// decimals, optional `/digits` (a fraction). A `-` counts as a sign only when it does not follow
    /// a letter or digit (so `x-5` and `3-5` read as `5`).
    private static func numberToken(_ c: [Character], at start: Int) -> (String, Int)? {
        func isDigit(_ i: Int) -> Bool { i < c.count && c[i].isASCII && c[i].isNumber }
        var index = start
        var token = ""
        if c[index] == "-" {
            let previous = start > 0 ? c[start - 1] : " "
            guard !(previous.isLetter || previous.isNumber), isDigit(index + 1) || (index + 2 < c.count && c[index + 1] == "." && isDigit(index + 2)) else {
                return nil
            }
            token.append("-")
            index += 1
        }
        let integerStart = index
        while isDigit(index) { token.append(c[index]); index += 1 }
        // Thousands groups: only `,ddd` exactly, so "1,2,3" stays three numbers.
        while index - integerStart > 0, index + 3 < c.count, c[index] == ",", isDigit(index + 1), isDigit(index + 2), isDigit(index + 3), !isDigit(index + 4) {
            token.append(contentsOf: c[index...(index + 3)])
            index += 4
        }
        if index < c.count, c[index] == ".", isDigit(index + 1) {
            token.append(".")
            index += 1
            while isDigit(index) { token.append(c[index]); index += 1 }
        }
        guard token.contains(where: { $0.isNumber }) else { return nil }
        if index < c.count, c[index] == "/", isDigit(index + 1) {
            token.append("/")
            index += 1
            while isDigit(index) { token.append(c[index]); index += 1 }
        }
        return (token, index)
    }
}
