import Foundation
import TroupeJSON

/// A Hugging Face `tokenizer.json` BPE tokenizer: byte-level (GPT-2, Llama 3, Qwen2, SmolLM2 style) or
/// SentencePiece-style (Llama 2, Mistral, TinyLlama: characters, "▁" for spaces, byte fallback).
///
/// Encoding follows the `tokenizers` pipeline, without the post-processor (no special tokens are
/// added; see `Tokenizer.encode(_:addingBos:)`):
/// 1. added tokens (`added_tokens`) with `normalized: false` are matched in the raw text,
///    leftmost-longest; the text between them goes on;
/// 2. the normalizer (none or NFC; SentencePiece-style also Prepend and Replace) runs, then added tokens
///    with `normalized: true` are matched;
/// 3. the pre-tokenizer splits the text into words (`PreTokenizerStage`; SentencePiece-style: none, or
///    Metaspace);
/// 4. each word's UTF-8 bytes (SentencePiece-style: its characters, `SentencePieceBPE.initialSymbols`)
///    go through the BPE merges (`BPEMerges`), or straight to a vocabulary entry when `ignore_merges` is
///    set and the whole word is one.
///
/// Decoding is the `ByteLevel` decoder (see `Tokenizer` and `ByteLevelAlphabet.decodedBytes(of:)`), or the
/// SentencePiece-style decoder chain (`SentencePieceBPE.decode`).
/// Truncation and padding in the file are ignored: they describe how a pipeline uses the tokenizer,
/// not how text maps to ids. Of the post-processor only one thing is read: whether it puts the BOS
/// before a text (`addsBosToPrompts`, which `encodePrompt` applies; `encode` adds nothing).
public struct BPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let bosTokenId: Int32?
    public let eosTokenId: Int32?
    public let padTokenId: Int32?
    public let specialTokens: [String: Int32]
    public let addsBosToPrompts: Bool

    private let merges: BPEMerges
    private let stages: [PreTokenizerStage]
    private let normalizesNFC: Bool
    /// Set for a SentencePiece-style tokenizer.
    private let sentencePiece: SentencePieceBPE?
    /// Added tokens matched before normalization, and after it.
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    /// Whole words that are vocabulary entries, by their bytes; only with `ignore_merges`.
    private let wholeWordIds: [[UInt8]: Int32]?
    /// Per id: the token's spelling and its decoded bytes; nil for an id no token has.
    private let tokenStrings: [String?]
    private let tokenBytes: [[UInt8]?]
    private let cache = WordCache()

    /// The largest vocabulary accepted (ids 0..<2^22).
    public static let maximumVocabularySize = 1 << 22

    /// Parses the contents of a `tokenizer.json`. The optional names pick the BOS, EOS and padding
    /// tokens (as `tokenizer_config.json` names them); each must be a token of this tokenizer.
    /// `addBosToken`: `tokenizer_config.json`'s `add_bos_token`, which decides whether prompts get the
    /// BOS; without it, they do when the file's post-processor puts the BOS before a text.
    public init(tokenizerJSON data: Data, bosToken: String? = nil, eosToken: String? = nil,
                padToken: String? = nil, addBosToken: Bool? = nil) throws {
        let parsed = try TokenizerJSON(document: data)
        try self.init(parsed, bosToken: bosToken, eosToken: eosToken, padToken: padToken, addBosToken: addBosToken)
    }

    init(_ parsed: TokenizerJSON, bosToken: String?, eosToken: String?, padToken: String?, addBosToken: Bool? = nil) throws {
        let vocab = parsed.vocab
        var size = (vocab.values.max().map { Int($0) + 1 }) ?? 0
        for token in parsed.addedTokens { size = max(size, Int(token.id) + 1) }
        // Tables are indexed by id, so a stray huge id would allocate gigabytes; the largest real
        // vocabularies hold about 260,000 tokens.
        guard size <= Self.maximumVocabularySize else {
            throw TokenizerError.invalidField(
                field: size - 1 == vocab.values.max().map(Int.init) ? "model.vocab" : "added_tokens",
                problem: "token id \(size - 1) is beyond the supported \(Self.maximumVocabularySize) ids")
        }
        sentencePiece = parsed.sentencePiece
        // As tokenizers does, a normalized added token is spelled, matched and decoded in its normalized
        // form (with Llama 2's normalizer, "<s>" as "▁<s>").
        let spelled = parsed.addedTokens.map { token in
            guard token.normalized else { return token }
            var normalized = token
            if let sentencePiece = parsed.sentencePiece {
                normalized.content = SentencePieceBPE.string(sentencePiece.normalize(Array(token.content.unicodeScalars)))
            } else if parsed.normalizesNFC {
                normalized.content = token.content.precomposedStringWithCanonicalMapping
            }
            return normalized
        }
        (tokenStrings, tokenBytes) = try Self.tokenTables(vocab: vocab, addedTokens: spelled, size: size,
                                                          sentencePiece: parsed.sentencePiece)
        merges = BPEMerges(byteTokenIds: parsed.sentencePiece == nil ? try Self.byteTokenIds(vocab) : [],
                           rules: try Self.mergeRules(parsed.merges, vocab: vocab))

        func lookUp(_ name: String?, _ field: String) throws -> Int32? {
            guard let name else { return nil }
            if let added = parsed.addedTokens.last(where: { $0.content == name }) { return added.id }
            if let id = vocab[ExactString(name)] { return id }
            throw TokenizerError.invalidField(field: field, problem: "\(quoted(name)) is not a token of this tokenizer")
        }
        bosTokenId = try lookUp(bosToken, "bos_token")
        addsBosToPrompts = bosTokenId != nil && (addBosToken ?? (bosToken != nil && parsed.leadingSpecialTokens.first == bosToken))
        eosTokenId = try lookUp(eosToken, "eos_token")
        padTokenId = try lookUp(padToken, "pad_token")

        vocabularySize = size
        stages = parsed.stages
        normalizesNFC = parsed.normalizesNFC
        rawAddedTokens = AddedTokenMatcher(parsed.addedTokens.filter { !$0.normalized })
        normalizedAddedTokens = AddedTokenMatcher(spelled.filter(\.normalized))
        specialTokens = Dictionary(parsed.addedTokens.filter(\.special).map { ($0.content, $0.id) },
                                   uniquingKeysWith: { _, last in last })
        wholeWordIds = parsed.ignoreMerges ? Self.wholeWordIds(vocab, sentencePiece: parsed.sentencePiece != nil) : nil
    }

    /// Per id, the token's spelling and decoded bytes; an added token's content wins over a
    /// vocabulary entry with the same id, as in `tokenizers`. Two entries with one id are an error.
    private static func tokenTables(vocab: [ExactString: Int32], addedTokens: [AddedToken], size: Int,
                                    sentencePiece: SentencePieceBPE?) throws -> (strings: [String?], bytes: [[UInt8]?])
    {
        var strings = [String?](repeating: nil, count: size)
        for (text, id) in vocab {
            let token = text.string
            if let existing = strings[Int(id)] {
                let (first, second) = existing < token ? (existing, token) : (token, existing)
                throw TokenizerError.invalidField(
                    field: "model.vocab", problem: "id \(id) is given to both \(quoted(first)) and \(quoted(second))")
            }
            strings[Int(id)] = token
        }
        let decodedBytes: (String) -> [UInt8] = sentencePiece.map { model in { model.bytes(ofToken: $0) } }
            ?? ByteLevelAlphabet.decodedBytes(of:)
        var bytes = strings.map { $0.map(decodedBytes) }
        for token in addedTokens {
            strings[Int(token.id)] = token.content
            bytes[Int(token.id)] = decodedBytes(token.content)
        }
        return (strings, bytes)
    }

    /// The id of each of the 256 byte tokens; a byte-level vocabulary must spell them all.
    private static func byteTokenIds(_ vocab: [ExactString: Int32]) throws -> [Int32] {
        try (0..<256).map { byte in
            let symbol = String(ByteLevelAlphabet.scalarForByte[byte])
            guard let id = vocab[ExactString(symbol)] else {
                throw TokenizerError.invalidField(
                    field: "model.vocab",
                    problem: "no token for byte 0x\(String(byte, radix: 16, uppercase: true)) (\(quoted(symbol))); "
                        + "a byte-level vocabulary must spell all 256 bytes")
            }
            return id
        }
    }

    /// The merges as ids, in rank order; every token they name (and make) must be in the vocabulary.
    private static func mergeRules(_ merges: [(left: String, right: String)], vocab: [ExactString: Int32]) throws
        -> [(left: Int32, right: Int32, merged: Int32)]
    {
        var rules: [(left: Int32, right: Int32, merged: Int32)] = []
        rules.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            func id(_ token: String, _ role: String) throws -> Int32 {
                guard let id = vocab[ExactString(token)] else {
                    throw TokenizerError.invalidField(
                        field: "model.merges[\(index)]", problem: "\(role) \(quoted(token)) is not in model.vocab")
                }
                return id
            }
            rules.append((try id(merge.left, "token"), try id(merge.right, "token"),
                          try id(merge.left + merge.right, "merged token")))
        }
        return rules
    }

    /// With `ignore_merges`, a whole word that is a vocabulary entry is that token.
    private static func wholeWordIds(_ vocab: [ExactString: Int32], sentencePiece: Bool) -> [[UInt8]: Int32] {
        var whole: [[UInt8]: Int32] = [:]
        for (token, id) in vocab {
            if let bytes = sentencePiece ? Array(token.string.utf8) : ByteLevelAlphabet.strictBytes(of: token.string) { whole[bytes] = id }
        }
        return whole
    }

    // MARK: Encoding

    public func encode(_ text: String, recognizingSpecialTokens: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        var ids: [Int32] = []
        ids.reserveCapacity(utf8.count / 3)
        var rawSegments: [Segment] = []
        if rawAddedTokens.isEmpty {
            rawSegments = [.text(utf8[...])]
        } else {
            rawAddedTokens.split(utf8[...], includingSpecial: recognizingSpecialTokens, into: &rawSegments)
        }
        for segment in rawSegments {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw) where sentencePiece != nil:
                encodeSentencePiece(raw, recognizingSpecialTokens: recognizingSpecialTokens, into: &ids)
            case .text(let raw):
                let normalized = normalize(raw)
                if normalizedAddedTokens.isEmpty {
                    encodeText(normalized, into: &ids)
                    continue
                }
                var segments: [Segment] = []
                normalizedAddedTokens.split(normalized, includingSpecial: recognizingSpecialTokens, into: &segments)
                for part in segments {
                    switch part {
                    case .token(let id): ids.append(id)
                    case .text(let text): encodeText(text, into: &ids)
                    }
                }
            }
        }
        return ids
    }

    /// One raw segment of a SentencePiece-style tokenizer: normalized, split at normalized added tokens,
    /// each piece cut into words (Metaspace's "first" prepends only to a piece that begins the input).
    private func encodeSentencePiece(_ raw: ArraySlice<UInt8>, recognizingSpecialTokens: Bool, into ids: inout [Int32]) {
        guard let sentencePiece else { return }
        let utf8 = Array(SentencePieceBPE.string(sentencePiece.normalize(Array(String(decoding: raw, as: UTF8.self).unicodeScalars))).utf8)
        var pieces: [Segment] = [.text(utf8[...])]
        if !normalizedAddedTokens.isEmpty {
            pieces = []
            normalizedAddedTokens.split(utf8[...], includingSpecial: recognizingSpecialTokens, into: &pieces)
        }
        for piece in pieces {
            switch piece {
            case .token(let id): ids.append(id)
            case .text(let text):
                let beginsInput = raw.startIndex == 0 && text.startIndex == 0
                for word in sentencePiece.words(Array(String(decoding: text, as: UTF8.self).unicodeScalars), beginsInput: beginsInput) {
                    encodeSentencePieceWord(word, into: &ids)
                }
            }
        }
    }

    private func encodeSentencePieceWord(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        guard let sentencePiece else { return }
        encodeWord(key: Array(SentencePieceBPE.string(word).utf8), into: &ids) { merges.merge(sentencePiece.initialSymbols(word)) }
    }

    private func normalize(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        // ASCII text is already in NFC.
        guard normalizesNFC, bytes.contains(where: { $0 >= 0x80 }) else { return bytes }
        return Array(String(decoding: bytes, as: UTF8.self).precomposedStringWithCanonicalMapping.utf8)[...]
    }

    private func encodeText(_ bytes: ArraySlice<UInt8>, into ids: inout [Int32]) {
        guard !bytes.isEmpty else { return }
        let (text, words) = preTokenize(ScalarText(utf8: bytes), stages: stages)
        for word in words where !word.isEmpty {
            encodeWord(text.bytes[text.byteRange(word)], into: &ids)
        }
    }

    private func encodeWord(_ word: ArraySlice<UInt8>, into ids: inout [Int32]) {
        if word.count == 1 {
            ids.append(merges.byteTokenIds[Int(word[word.startIndex])])
            return
        }
        encodeWord(key: Array(word), into: &ids) { merges.encode(word) }
    }

    /// A word's ids (`key`: its UTF-8): cached, or the whole word's vocabulary entry with `ignore_merges`,
    /// else `merge()`. Words longer than the cache keeps are not cached.
    private func encodeWord(key: [UInt8], into ids: inout [Int32], merge: () -> [Int32]) {
        let cacheable = key.count <= WordCache.maximumWordLength
        if cacheable, let cached = cache.lookup(key) {
            ids.append(contentsOf: cached)
            return
        }
        let encoded: [Int32]
        if let wholeWordIds, let id = wholeWordIds[key] {
            encoded = [id]
        } else {
            encoded = merge()
        }
        if cacheable { cache.store(key, encoded) }
        ids.append(contentsOf: encoded)
    }

    // MARK: Decoding

    public func decode(_ ids: [Int32]) throws -> String {
        if let sentencePiece {
            return sentencePiece.decode(try ids.map { id in
                guard id >= 0, Int(id) < vocabularySize else { throw TokenizerError.idOutOfRange(id: id, vocabularySize: vocabularySize) }
                guard let token = tokenStrings[Int(id)] else { throw TokenizerError.unassignedId(id) }
                return token
            })
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0, Int(id) < vocabularySize else {
                throw TokenizerError.idOutOfRange(id: id, vocabularySize: vocabularySize)
            }
            guard let tokenBytes = tokenBytes[Int(id)] else { throw TokenizerError.unassignedId(id) }
            bytes.append(contentsOf: tokenBytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func bytes(of id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < vocabularySize else { return [] }
        return tokenBytes[Int(id)] ?? []
    }

    public func tokenString(for id: Int32) -> String? {
        guard id >= 0, Int(id) < vocabularySize else { return nil }
        return tokenStrings[Int(id)]
    }
}

func quoted(_ text: String) -> String {
    // Controls and invisible whitespace are escaped so the message shows what the file holds.
    "\"" + text.unicodeScalars.map { scalar in
        scalar.value >= 0x21 && !scalar.properties.isWhitespace && scalar.properties.generalCategory != .control
            || scalar == " " ? String(scalar) : scalar.escaped(asASCII: true)
    }.joined() + "\""
}
