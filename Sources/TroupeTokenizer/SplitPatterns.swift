/// The pre-tokenization regexes of GPT-2, Llama 3 and Qwen2, each implemented as a hand-written
/// scanner that produces exactly the matches Oniguruma (which Hugging Face `tokenizers` uses) finds.
/// Every character falls into some alternative, so the matches tile the text.
///
/// The alternatives are tried in order at each position (leftmost-first), with backtracking worked
/// out by hand where it matters: `\s+(?!\S)` takes a whitespace run except its last character when a
/// non-space follows (so `"  word"` splits as `" "`, `" word"`), and `\s*[\r\n]+` ends right after
/// the last newline of a whitespace run.
enum SplitPattern: Sendable, Equatable {
    /// GPT-2 (openai/gpt-2 `encoder.py`; also `ByteLevel(use_regex: true)`):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3 (`maxDigits` 3) and Qwen2 (`maxDigits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)

    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The scanner for a `Split` pre-tokenizer's regex, or nil for a regex not implemented here.
    init?(regex: String) {
        switch regex {
        case Self.gpt2Regex: self = .gpt2
        case Self.llama3Regex: self = .llama3(maxDigits: 3)
        case Self.qwen2Regex: self = .llama3(maxDigits: 1)
        default: return nil
        }
    }

    /// Appends the matches inside `range` of `text` to `pieces`.
    func split(_ text: ScalarText, _ range: Range<Int>, into pieces: inout [Range<Int>]) {
        switch self {
        case .gpt2: splitGPT2(text, range, into: &pieces)
        case .llama3(let maxDigits): splitLlama3(text, range, maxDigits: maxDigits, into: &pieces)
        }
    }
}

private let space: UInt32 = 0x20
private let apostrophe: UInt32 = 0x27

/// Length of a contraction (`'s 't 're 've 'm 'll 'd`) starting at `i`, or 0. Case-insensitive
/// matching follows Unicode case folding, under which `ſ` (U+017F) is an `s`.
private func contractionLength(_ s: [UInt32], _ i: Int, _ end: Int, caseInsensitive: Bool) -> Int {
    guard s[i] == apostrophe, i + 1 < end else { return 0 }
    func folded(_ value: UInt32) -> UInt32 {
        guard caseInsensitive else { return value }
        if value >= 0x41 && value <= 0x5A { return value + 0x20 }
        return value == 0x17F ? 0x73 : value
    }
    let first = folded(s[i + 1])
    switch first {
    case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
    case 0x72, 0x76, 0x6C:  // r v l, which need a second letter: 're 've 'll
        guard i + 2 < end else { return 0 }
        let second = folded(s[i + 2])
        if (first == 0x72 || first == 0x76) && second == 0x65 { return 3 }
        if first == 0x6C && second == 0x6C { return 3 }
        return 0
    default: return 0
    }
}

/// End of the run of scalars with `kind` starting at `i`, at most `limit` long.
@inline(__always)
private func runEnd(_ kinds: [ScalarKind], from i: Int, _ end: Int, _ test: (ScalarKind) -> Bool,
                    limit: Int = .max) -> Int {
    var j = i
    while j < end && j - i < limit && test(kinds[j]) { j += 1 }
    return j
}

/// `\s+(?!\S)|\s+` at a whitespace scalar `i`: the run, less its last scalar when a non-space follows
/// and the run is longer than one.
@inline(__always)
private func whitespaceMatchEnd(_ kinds: [ScalarKind], _ i: Int, _ end: Int) -> Int {
    let runEnd = runEnd(kinds, from: i, end) { $0.contains(.whitespace) }
    return runEnd < end && runEnd - i > 1 ? runEnd - 1 : runEnd
}

private func splitGPT2(_ text: ScalarText, _ range: Range<Int>, into pieces: inout [Range<Int>]) {
    let s = text.scalars, kinds = text.kinds, end = range.upperBound
    var i = range.lowerBound
    while i < end {
        let start = i
        let contraction = contractionLength(s, i, end, caseInsensitive: false)
        if contraction > 0 {
            i += contraction
        } else {
            // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: the optional space only counts when the class run
            // follows it; a space followed by whitespace or the end is left to the whitespace rules.
            let body = s[i] == space && i + 1 < end && !kinds[i + 1].contains(.whitespace) ? i + 1 : i
            let kind = kinds[body]
            if kind.contains(.letter) {
                i = runEnd(kinds, from: body, end) { $0.contains(.letter) }
            } else if kind.contains(.number) {
                i = runEnd(kinds, from: body, end) { $0.contains(.number) }
            } else if kind.isOther {
                i = runEnd(kinds, from: body, end) { $0.isOther }
            } else {
                i = whitespaceMatchEnd(kinds, i, end)
            }
        }
        pieces.append(start..<i)
    }
}

private func splitLlama3(_ text: ScalarText, _ range: Range<Int>, maxDigits: Int,
                         into pieces: inout [Range<Int>]) {
    let s = text.scalars, kinds = text.kinds, end = range.upperBound
    var i = range.lowerBound
    while i < end {
        let start = i
        let kind = kinds[i]
        let contraction = contractionLength(s, i, end, caseInsensitive: true)
        if contraction > 0 {
            i += contraction
        } else if kind.contains(.letter) {
            // `[^\r\n\p{L}\p{N}]?\p{L}+` without the optional prefix.
            i = runEnd(kinds, from: i, end) { $0.contains(.letter) }
        } else if kind.isDisjoint(with: [.newline, .number]), i + 1 < end, kinds[i + 1].contains(.letter) {
            // `[^\r\n\p{L}\p{N}]?\p{L}+` with one prefix scalar (a space, tab, punctuation mark, …).
            i = runEnd(kinds, from: i + 1, end) { $0.contains(.letter) }
        } else if kind.contains(.number) {
            i = runEnd(kinds, from: i, end, { $0.contains(.number) }, limit: maxDigits)
        } else if let body = Optional(s[i] == space && i + 1 < end && kinds[i + 1].isOther ? i + 1 : i),
                  kinds[body].isOther {
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            i = runEnd(kinds, from: body, end) { $0.isOther }
            i = runEnd(kinds, from: i, end) { $0.contains(.newline) }
        } else {
            // Whitespace. `\s*[\r\n]+` ends after the run's last newline, if the run has one.
            let whitespaceEnd = runEnd(kinds, from: i, end) { $0.contains(.whitespace) }
            var lastNewline = whitespaceEnd - 1
            while lastNewline >= i && !kinds[lastNewline].contains(.newline) { lastNewline -= 1 }
            i = lastNewline >= i ? lastNewline + 1 : whitespaceMatchEnd(kinds, i, end)
        }
        pieces.append(start..<i)
    }
}

/// The `Digits` pre-tokenizer: numbers (`\p{N}`) split off one by one (`individual_digits`) or as
/// whole runs; the text between them stays as it is.
func splitDigits(_ text: ScalarText, _ range: Range<Int>, individually: Bool, into pieces: inout [Range<Int>]) {
    let kinds = text.kinds, end = range.upperBound
    var i = range.lowerBound
    while i < end {
        let start = i
        if kinds[i].contains(.number) {
            i = individually ? i + 1 : runEnd(kinds, from: i, end) { $0.contains(.number) }
        } else {
            i = runEnd(kinds, from: i, end) { !$0.contains(.number) }
        }
        pieces.append(start..<i)
    }
}
