import Foundation

/// The parts of a SentencePiece-style BPE `tokenizer.json` (Llama 2, Mistral, TinyLlama): BPE over
/// Unicode characters rather than bytes, spaces spelled "▁", characters outside the vocabulary written
/// as `<0xHH>` byte tokens (`byte_fallback`) or `<unk>`, and a decoder chain that turns "▁" back into
/// spaces. Each piece follows its `tokenizers` counterpart; pure, no I/O.
struct SentencePieceBPE: Sendable {
    /// `normalizer` steps, in order.
    enum NormalizerStep: Sendable, Equatable {
        case nfc
        /// `Prepend`: the string before a non-empty segment.
        case prepend([Unicode.Scalar])
        /// `Replace` with a String pattern: every non-overlapping occurrence, left to right.
        case replace([Unicode.Scalar], [Unicode.Scalar])

        var name: String {
            switch self {
            case .nfc: "NFC"
            case .prepend: "Prepend"
            case .replace: "Replace"
            }
        }
    }

    /// The `Metaspace` pre-tokenizer (and decoder) settings.
    struct Metaspace: Sendable, Equatable {
        enum PrependScheme: String, Sendable { case always, first, never }
        var replacement: Unicode.Scalar
        var prependScheme: PrependScheme
        var split: Bool
    }

    /// `decoder` steps, in order; each maps the list of token strings to another.
    enum DecoderStep: Sendable, Equatable {
        case replace(String, String)
        /// `<0xHH>` tokens become their bytes, a run of them one string when it is valid UTF-8, else one U+FFFD each.
        case byteFallback
        /// All tokens joined into one.
        case fuse
        /// Up to `start` leading and `stop` trailing `content` characters removed from each token.
        case strip(content: Unicode.Scalar, start: Int, stop: Int)
        /// "▁" becomes a space, except in the first token (unless the scheme is `never`), where it is dropped.
        case metaspace(replacement: Unicode.Scalar, prependScheme: Metaspace.PrependScheme)
    }

    var normalizers: [NormalizerStep]
    var metaspace: Metaspace?
    var decoders: [DecoderStep]
    /// The id of each vocabulary entry that is exactly one character.
    var characterIds: [UInt32: Int32]
    /// `<0x00>` … `<0xFF>` ids when `byte_fallback` is on (nil for a byte the vocabulary lacks).
    var byteIds: [Int32?]?
    var unkId: Int32?
    var fuseUnk: Bool

    // MARK: Encoding

    func normalize(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var text = scalars
        for step in normalizers {
            switch step {
            case .nfc:
                guard text.contains(where: { $0.value >= 0x80 }) else { continue }
                text = Array(Self.string(text).precomposedStringWithCanonicalMapping.unicodeScalars)
            case .prepend(let prefix):
                if !text.isEmpty { text = prefix + text }
            case .replace(let pattern, let content):
                text = Self.replacing(pattern, with: content, in: text)
            }
        }
        return text
    }

    static func string(_ scalars: [Unicode.Scalar]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    static func replacing(_ pattern: String, with content: String, in text: String) -> String {
        string(replacing(Array(pattern.unicodeScalars), with: Array(content.unicodeScalars), in: Array(text.unicodeScalars)))
    }

    static func replacing(_ pattern: [Unicode.Scalar], with content: [Unicode.Scalar], in text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard !pattern.isEmpty, text.count >= pattern.count else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if i + pattern.count <= text.count, text[i..<(i + pattern.count)].elementsEqual(pattern) {
                out += content
                i += pattern.count
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }

    /// The words of one normalized piece: the whole piece without a Metaspace pre-tokenizer; with one,
    /// spaces spelled as its replacement, the replacement prepended (always, or only when the piece
    /// begins the input), and with `split` each replacement starting a new word.
    func words(_ piece: [Unicode.Scalar], beginsInput: Bool) -> [[Unicode.Scalar]] {
        guard let metaspace else { return piece.isEmpty ? [] : [piece] }
        var text = Self.replacing([" "], with: [metaspace.replacement], in: piece)
        guard !text.isEmpty else { return [] }
        let prepend = metaspace.prependScheme == .always || (metaspace.prependScheme == .first && beginsInput)
        if prepend, text.first != metaspace.replacement { text.insert(metaspace.replacement, at: 0) }
        guard metaspace.split else { return [text] }
        // Each replacement is merged with what follows it; a run of them leaves all but the last alone.
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in text {
            if scalar == metaspace.replacement, !current.isEmpty {
                words.append(current)
                current = []
            }
            current.append(scalar)
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// The initial symbols of a word, as `tokenizers`' `BPE::merge_word` makes them: a character of the
    /// vocabulary is its token; another is its UTF-8 bytes' `<0xHH>` tokens when all exist, else `<unk>`
    /// (consecutive ones fused into one with `fuse_unk`), else nothing.
    func initialSymbols(_ word: [Unicode.Scalar]) -> [Int32] {
        var symbols: [Int32] = []
        var pendingUnknown = false
        for scalar in word {
            if let id = characterIds[scalar.value] {
                if pendingUnknown, let unkId { symbols.append(unkId) }
                pendingUnknown = false
                symbols.append(id)
                continue
            }
            if let byteIds {
                let ids = String(scalar).utf8.map { byteIds[Int($0)] }
                if ids.allSatisfy({ $0 != nil }) {
                    // As tokenizers does: a pending <unk> is written only at the next known character or the end.
                    symbols += ids.map { $0! }
                    continue
                }
            }
            guard let unkId else { continue }
            if pendingUnknown && !fuseUnk { symbols.append(unkId) }
            pendingUnknown = true
        }
        if pendingUnknown, let unkId { symbols.append(unkId) }
        return symbols
    }

    // MARK: Decoding

    /// `<0xHH>` with two hex digits, as the ByteFallback decoder reads it.
    static func fallbackByte(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"), utf8[2] == UInt8(ascii: "x"),
              utf8[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    /// The decoder chain over the tokens' strings, joined.
    func decode(_ tokens: [String]) -> String {
        var tokens = tokens
        for step in decoders {
            switch step {
            case let .replace(pattern, content):
                tokens = tokens.map { Self.replacing(pattern, with: content, in: $0) }
            case .byteFallback:
                var out: [String] = []
                var pending: [UInt8] = []
                func flush() {
                    guard !pending.isEmpty else { return }
                    if let text = String(validating: pending, as: UTF8.self) {
                        out.append(text)
                    } else {
                        out += Array(repeating: "\u{FFFD}", count: pending.count)
                    }
                    pending = []
                }
                for token in tokens {
                    if let byte = Self.fallbackByte(token) { pending.append(byte); continue }
                    flush()
                    out.append(token)
                }
                flush()
                tokens = out
            case .fuse:
                tokens = [tokens.joined()]
            case let .strip(content, start, stop):
                tokens = tokens.map { token in
                    var scalars = Substring(token).unicodeScalars
                    var removed = 0
                    while removed < start, scalars.first == content { scalars = scalars.dropFirst(); removed += 1 }
                    removed = 0
                    while removed < stop, scalars.last == content { scalars = scalars.dropLast(); removed += 1 }
                    return String(scalars)
                }
            case let .metaspace(replacement, scheme):
                tokens = tokens.enumerated().map { index, token in
                    var out = String.UnicodeScalarView()
                    for scalar in token.unicodeScalars {
                        if scalar != replacement { out.append(scalar) } else if index != 0 || scheme == .never { out.append(" ") }
                    }
                    return String(out)
                }
            }
        }
        return tokens.joined()
    }

    /// What token `text` contributes on its own, as a sampler reads it: the per-token decoder steps
    /// (Replace, Metaspace's "▁" as a space) and a `<0xHH>` token as its byte; not Strip, which acts on
    /// the whole text.
    func bytes(ofToken text: String) -> [UInt8] {
        if decoders.contains(.byteFallback), let byte = Self.fallbackByte(text) { return [byte] }
        var token = text
        for step in decoders {
            switch step {
            case let .replace(pattern, content): token = Self.replacing(pattern, with: content, in: token)
            case let .metaspace(replacement, _): token = Self.replacing(String(replacement), with: " ", in: token)
            case .byteFallback, .fuse, .strip: break
            }
        }
        return Array(token.utf8)
    }
}
