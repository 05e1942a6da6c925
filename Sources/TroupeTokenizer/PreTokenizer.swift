/// One stage of a `tokenizer.json` `pre_tokenizer`; each stage splits every piece the previous
/// stage produced.
enum PreTokenizerStage: Sendable, Equatable {
    /// `Split` with a known regex and `behavior: Isolated`: the matches become the pieces.
    case split(SplitPattern)
    /// `Digits`: numbers split off, one by one or as whole runs.
    case digits(individually: Bool)
    /// `ByteLevel`: optionally a space before each piece that lacks one, then optionally the GPT-2
    /// regex. (Its byte → character mapping happens in the BPE model, which works on bytes.)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
}

/// Runs the stages over `text`; returns the (possibly space-prefixed) text and its words as
/// scalar ranges.
func preTokenize(_ text: ScalarText, stages: [PreTokenizerStage]) -> (ScalarText, [Range<Int>]) {
    var text = text
    var pieces: [Range<Int>] = text.count == 0 ? [] : [0..<text.count]
    for stage in stages {
        var next: [Range<Int>] = []
        next.reserveCapacity(text.count / 3)
        switch stage {
        case .split(let pattern):
            for piece in pieces { pattern.split(text, piece, into: &next) }
        case .digits(let individually):
            for piece in pieces { splitDigits(text, piece, individually: individually, into: &next) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            if addPrefixSpace { (text, pieces) = text.prefixingSpaces(to: pieces) }
            guard useRegex else { continue }
            for piece in pieces { SplitPattern.gpt2.split(text, piece, into: &next) }
        }
        pieces = next
    }
    return (text, pieces)
}
