/// A token of the `added_tokens` list of a `tokenizer.json`, matched in the text before
/// pre-tokenization so that it is never split.
struct AddedToken: Sendable {
    var id: Int32
    var content: String
    /// Special tokens can be excluded from matching (`recognizingSpecialTokens: false`).
    var special: Bool
    /// Matched on the normalized text rather than the raw text.
    var normalized: Bool
    /// Only matched when no word character (`\w`) touches it on either side.
    var singleWord: Bool
    /// The match also swallows the whitespace before (`lstrip`) or after (`rstrip`) it.
    var lstrip: Bool
    var rstrip: Bool
}

/// One part of the input after added tokens are matched: text still to be tokenized, or a token.
enum Segment {
    case text(ArraySlice<UInt8>)
    case token(Int32)
}

/// Finds added tokens the way Hugging Face's `AddedVocabulary` does: non-overlapping
/// leftmost-longest matches (its Aho-Corasick `MatchKind::LeftmostLongest`), then the
/// `single_word`, `lstrip` and `rstrip` rules.
struct AddedTokenMatcher: Sendable {
    private let tokens: [AddedToken]
    private let contents: [[UInt8]]
    /// For each first byte, the indices of the tokens starting with it, longest first.
    private let candidatesByFirstByte: [[Int]]

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        let contents = tokens.map { Array($0.content.utf8) }
        self.contents = contents
        var candidates = [[Int]](repeating: [], count: 256)
        for (index, content) in contents.enumerated() where !content.isEmpty {
            candidates[Int(content[0])].append(index)
        }
        for byte in 0..<256 {
            candidates[byte].sort { contents[$0].count > contents[$1].count }
        }
        candidatesByFirstByte = candidates
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Splits `text` into text and added-token segments. Special tokens are skipped (left in the text)
    /// when `includingSpecial` is false, as Hugging Face's `encode_special_tokens` does.
    func split(_ text: ArraySlice<UInt8>, includingSpecial: Bool, into segments: inout [Segment]) {
        let lower = text.startIndex, upper = text.endIndex
        var searchFrom = lower
        var textStart = lower
        while let (matchStart, index) = leftmostLongest(in: text, from: searchFrom) {
            let token = tokens[index]
            var start = matchStart
            var stop = matchStart + contents[index].count
            searchFrom = stop
            if !includingSpecial && token.special { continue }
            if token.singleWord {
                let wordBefore = start > lower && scalar(endingAt: start, in: text).kind.contains(.word)
                let wordAfter = stop < upper && scalar(startingAt: stop, in: text).kind.contains(.word)
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                while start > textStart {
                    let previous = scalar(endingAt: start, in: text)
                    guard previous.kind.contains(.whitespace) else { break }
                    start -= previous.length
                }
            }
            if token.rstrip {
                // The search goes on from the end of the token proper, so a following added token may
                // start inside the swallowed whitespace and overlap it, exactly as in `tokenizers`.
                while stop < upper {
                    let next = scalar(startingAt: stop, in: text)
                    guard next.kind.contains(.whitespace) else { break }
                    stop += next.length
                }
            }
            if textStart < start { segments.append(.text(text[textStart..<start])) }
            segments.append(.token(token.id))
            textStart = stop
        }
        if textStart < upper { segments.append(.text(text[textStart..<upper])) }
    }

    private func leftmostLongest(in text: ArraySlice<UInt8>, from: Int) -> (Int, Int)? {
        var position = from
        while position < text.endIndex {
            for index in candidatesByFirstByte[Int(text[position])] {
                let content = contents[index]
                if text.endIndex - position >= content.count,
                   text[position..<(position + content.count)].elementsEqual(content) {
                    return (position, index)
                }
            }
            position += 1
        }
        return nil
    }

    private func scalar(startingAt position: Int, in text: ArraySlice<UInt8>) -> (kind: ScalarKind, length: Int) {
        var end = position + 1
        while end < text.endIndex && text[end] & 0xC0 == 0x80 { end += 1 }
        return (ScalarText(utf8: text[position..<end]).kinds.first ?? [], end - position)
    }

    private func scalar(endingAt position: Int, in text: ArraySlice<UInt8>) -> (kind: ScalarKind, length: Int) {
        var start = position - 1
        while start > text.startIndex && text[start] & 0xC0 == 0x80 { start -= 1 }
        return (ScalarText(utf8: text[start..<position]).kinds.first ?? [], position - start)
    }
}
