import Foundation
import TroupeJSON

/// The parts of a Hugging Face `tokenizer.json` that define its BPE, validated: byte-level BPE (GPT-2,
/// Llama 3, Qwen2: a ByteLevel pre-tokenizer and decoder) or SentencePiece-style BPE (Llama 2, Mistral:
/// no pre-tokenizer or a Metaspace one, characters with byte fallback; `SentencePieceBPE`). Anything the
/// encoder would not reproduce exactly is rejected with `TokenizerError.unsupported` naming it.
struct TokenizerJSON {
    /// Entries told apart code point by code point, as `tokenizers` does (a vocabulary may hold "é" and "e\u{301}").
    var vocab: [ExactString: Int32] = [:]
    var merges: [(left: String, right: String)] = []
    var ignoreMerges = false
    var addedTokens: [AddedToken] = []
    var normalizesNFC = false
    var stages: [PreTokenizerStage] = []
    /// Set for a SentencePiece-style tokenizer; nil for byte-level BPE.
    var sentencePiece: SentencePieceBPE?
    /// The special tokens (by their text) the post-processor puts before a single text, e.g. `["<s>"]`.
    var leadingSpecialTokens: [String] = []
    private var byteFallback = false
    private var unkToken: String?
    private var fuseUnk = false

    /// Parses a whole `tokenizer.json`.
    init(document data: some Collection<UInt8>) throws {
        let (root, vocabMembers) = try JSONField.parse(data, extractingMembersAt: ["model", "vocab"])
        _ = try root.object()
        try parseModel(try root.required("model"), vocabMembers: vocabMembers ?? [])
        if let added = try root.member("added_tokens") {
            addedTokens = try added.array().map(Self.parseAddedToken)
        }
        // Read leniently: a post-processor only adds tokens around the text, and one this build cannot
        // read adds nothing, as before it was read at all.
        leadingSpecialTokens = (try? root.member("post_processor").map(Self.leadingSpecialTokens)) ?? []
        let normalizers = try root.member("normalizer").map(Self.parseNormalizer) ?? []
        let preTokenizer = try root.member("pre_tokenizer")
        let decoder = try root.member("decoder")
        if let preTokenizer, try preTokenizer.required("type").string() == "Metaspace" {
            let metaspace = try Self.parseMetaspace(preTokenizer)
            sentencePiece = try sentencePieceModel(normalizers: normalizers, metaspace: metaspace, decoder: decoder)
            return
        }
        guard let preTokenizer else {
            guard decoder != nil, try decoder?.required("type").string() != "ByteLevel" else {
                throw TokenizerError.unsupported(
                    feature: "a tokenizer.json without pre_tokenizer and with decoder \(try decoder?.required("type").string() ?? "null") "
                        + "(byte-level BPE needs a ByteLevel pre-tokenizer; SentencePiece-style BPE a decoder that turns \"▁\" into spaces)")
            }
            sentencePiece = try sentencePieceModel(normalizers: normalizers, metaspace: nil, decoder: decoder)
            return
        }
        stages = try Self.parsePreTokenizer(preTokenizer)
        guard stages.last.map({ if case .byteLevel = $0 { true } else { false } }) == true,
              stages.filter({ if case .byteLevel = $0 { true } else { false } }).count == 1
        else {
            throw TokenizerError.unsupported(
                feature: "pre_tokenizer without exactly one ByteLevel stage, as the last stage, (or else none or a Metaspace one)")
        }
        for step in normalizers where step != .nfc {
            throw TokenizerError.unsupported(feature: "normalizer \(step.name) with a ByteLevel pre-tokenizer")
        }
        normalizesNFC = !normalizers.isEmpty
        if byteFallback { throw TokenizerError.unsupported(feature: "BPE byte_fallback with a ByteLevel pre-tokenizer") }
        guard let decoder else {
            throw TokenizerError.unsupported(feature: "decoder null (only the ByteLevel decoder)")
        }
        let decoderType = try decoder.required("type").string()
        guard decoderType == "ByteLevel" else {
            throw TokenizerError.unsupported(feature: "decoder \(decoderType) with a ByteLevel pre-tokenizer")
        }
    }

    /// `TemplateProcessing` (alone or in a `Sequence`): the `SpecialToken`s of `single` before its text.
    static func leadingSpecialTokens(_ processor: JSONField) throws -> [String] {
        switch try processor.required("type").string() {
        case "TemplateProcessing":
            var tokens: [String] = []
            for piece in try processor.required("single").array() {
                guard let special = try piece.member("SpecialToken") else { break }
                tokens.append(try special.required("id").string())
            }
            return tokens
        case "Sequence":
            for inner in try processor.required("processors").array() where try inner.required("type").string() == "TemplateProcessing" {
                return try leadingSpecialTokens(inner)
            }
            return []
        default:
            return []
        }
    }

    /// The SentencePiece-style model: its normalizer, Metaspace pre-tokenizer (if any) and decoder chain,
    /// and the vocabulary's characters, byte tokens and `<unk>`.
    private func sentencePieceModel(normalizers: [SentencePieceBPE.NormalizerStep], metaspace: SentencePieceBPE.Metaspace?,
                                    decoder: JSONField?) throws -> SentencePieceBPE {
        guard let decoder else {
            throw TokenizerError.unsupported(feature: "decoder null (a SentencePiece-style tokenizer needs one that turns \"▁\" into spaces)")
        }
        var characterIds: [UInt32: Int32] = [:]
        for (token, id) in vocab {
            let scalars = token.string.unicodeScalars
            if scalars.count == 1 { characterIds[scalars.first!.value] = id }
        }
        var unkId: Int32?
        if let unkToken {
            guard let id = vocab[ExactString(unkToken)] else {
                throw TokenizerError.invalidField(field: "model.unk_token", problem: "\(quoted(unkToken)) is not in model.vocab")
            }
            unkId = id
        }
        return SentencePieceBPE(
            normalizers: normalizers, metaspace: metaspace, decoders: try Self.parseDecoder(decoder),
            characterIds: characterIds,
            byteIds: byteFallback ? (0..<256).map { vocab[ExactString("<0x" + String(format: "%02X", $0) + ">")] } : nil,
            unkId: unkId, fuseUnk: fuseUnk)
    }

    /// `model`, whose `vocab` object comes as `vocabMembers`, names as written.
    private mutating func parseModel(_ model: JSONField, vocabMembers: [(name: String, value: JSONValue)]) throws {
        let type = try model.member("type")?.string() ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(feature: "model type \(type) (only BPE)") }
        if let dropout = try model.member("dropout"), try dropout.double() != 0 {
            throw TokenizerError.unsupported(feature: "BPE dropout \(try dropout.double())")
        }
        for affix in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try model.member(affix)?.string(), !value.isEmpty {
                throw TokenizerError.unsupported(feature: "BPE \(affix) \(quoted(value))")
            }
        }
        byteFallback = try model.member("byte_fallback")?.bool() ?? false
        unkToken = try model.member("unk_token")?.string()
        fuseUnk = try model.member("fuse_unk")?.bool() ?? false
        ignoreMerges = try model.member("ignore_merges")?.bool() ?? false

        let vocabField = try model.required("vocab")
        _ = try vocabField.object()
        for (token, id) in vocabMembers {
            vocab[ExactString(token)] = try JSONField(id, path: "\(vocabField.path)[\(quoted(token))]").tokenId()
        }
        let mergesField = try model.required("merges")
        merges = try mergesField.array().map { entry in
            // Older files write "left right"; newer ones ["left", "right"].
            if case let .string(line) = entry.value {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw TokenizerError.invalidField(
                        field: entry.path, problem: "expected two tokens separated by one space, found \(quoted(line))")
                }
                return (String(parts[0]), String(parts[1]))
            }
            let pair = try entry.array()
            guard pair.count == 2 else {
                throw TokenizerError.invalidField(field: entry.path, problem: "expected two tokens, found \(pair.count)")
            }
            return (try pair[0].string(), try pair[1].string())
        }
    }

    private static func parseAddedToken(_ entry: JSONField) throws -> AddedToken {
        let special = try entry.member("special")?.bool() ?? false
        let content = try entry.required("content").string()
        guard !content.isEmpty else {
            throw TokenizerError.invalidField(field: "\(entry.path).content", problem: "empty")
        }
        return AddedToken(
            id: try entry.required("id").tokenId(),
            content: content,
            special: special,
            normalized: try entry.member("normalized")?.bool() ?? !special,
            singleWord: try entry.member("single_word")?.bool() ?? false,
            lstrip: try entry.member("lstrip")?.bool() ?? false,
            rstrip: try entry.member("rstrip")?.bool() ?? false)
    }

    /// The normalizer's steps: NFC, Prepend, Replace with a String pattern, or a Sequence of them.
    private static func parseNormalizer(_ normalizer: JSONField) throws -> [SentencePieceBPE.NormalizerStep] {
        let type = try normalizer.required("type").string()
        switch type {
        case "NFC":
            return [.nfc]
        case "Prepend":
            return [.prepend(Array(try normalizer.required("prepend").string().unicodeScalars))]
        case "Replace":
            let (pattern, content) = try parseReplace(normalizer, what: "normalizer")
            return [.replace(Array(pattern.unicodeScalars), Array(content.unicodeScalars))]
        case "Sequence":
            return try normalizer.required("normalizers").array().flatMap(parseNormalizer)
        default:
            throw TokenizerError.unsupported(feature: "normalizer \(type)")
        }
    }

    private static func parseReplace(_ field: JSONField, what: String) throws -> (pattern: String, content: String) {
        let pattern = try field.required("pattern")
        guard let string = try pattern.member("String")?.string() else {
            throw TokenizerError.unsupported(feature: "\(what) Replace with a Regex pattern")
        }
        guard !string.isEmpty else { throw TokenizerError.invalidField(field: "\(pattern.path).String", problem: "empty") }
        return (string, try field.required("content").string())
    }

    private static func parseMetaspace(_ field: JSONField) throws -> SentencePieceBPE.Metaspace {
        let replacement = try field.required("replacement").string()
        guard replacement.unicodeScalars.count == 1 else {
            throw TokenizerError.invalidField(field: "\(field.path).replacement", problem: "expected one character, found \(quoted(replacement))")
        }
        // Older files write add_prefix_space instead of prepend_scheme; false means never, as in tokenizers,
        // and contradicts any other scheme written beside it.
        var scheme: SentencePieceBPE.Metaspace.PrependScheme?
        if let written = try field.member("prepend_scheme")?.string() {
            guard let known = SentencePieceBPE.Metaspace.PrependScheme(rawValue: written) else {
                throw TokenizerError.invalidField(field: "\(field.path).prepend_scheme", problem: "expected always, first or never, found \(quoted(written))")
            }
            scheme = known
        }
        if try field.member("add_prefix_space")?.bool() == false {
            if let scheme, scheme != .never {
                throw TokenizerError.invalidField(field: "\(field.path).add_prefix_space",
                                                  problem: "false does not match prepend_scheme \(scheme.rawValue)")
            }
            scheme = .never
        }
        return .init(replacement: replacement.unicodeScalars.first!, prependScheme: scheme ?? .always,
                     split: try field.member("split")?.bool() ?? true)
    }

    /// A SentencePiece-style decoder: Replace (a String pattern), ByteFallback, Fuse, Strip, Metaspace,
    /// or a Sequence of them.
    private static func parseDecoder(_ decoder: JSONField) throws -> [SentencePieceBPE.DecoderStep] {
        let type = try decoder.required("type").string()
        switch type {
        case "Sequence":
            return try decoder.required("decoders").array().flatMap(parseDecoder)
        case "Replace":
            let (pattern, content) = try parseReplace(decoder, what: "decoder")
            return [.replace(pattern, content)]
        case "ByteFallback":
            return [.byteFallback]
        case "Fuse":
            return [.fuse]
        case "Strip":
            let content = try decoder.required("content").string()
            guard content.unicodeScalars.count == 1 else {
                throw TokenizerError.invalidField(field: "\(decoder.path).content", problem: "expected one character, found \(quoted(content))")
            }
            func count(_ key: String) throws -> Int {
                let value = try decoder.member(key)?.int() ?? 0
                guard value >= 0 else { throw TokenizerError.invalidField(field: "\(decoder.path).\(key)", problem: "negative: \(value)") }
                return value
            }
            return [.strip(content: content.unicodeScalars.first!, start: try count("start"), stop: try count("stop"))]
        case "Metaspace":
            let metaspace = try parseMetaspace(decoder)
            return [.metaspace(replacement: metaspace.replacement, prependScheme: metaspace.prependScheme)]
        default:
            throw TokenizerError.unsupported(feature: "decoder \(type) in a SentencePiece-style tokenizer")
        }
    }

    private static func parsePreTokenizer(_ preTokenizer: JSONField) throws -> [PreTokenizerStage] {
        let type = try preTokenizer.required("type").string()
        switch type {
        case "Sequence":
            return try preTokenizer.required("pretokenizers").array().flatMap(parsePreTokenizer)
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: try preTokenizer.member("add_prefix_space")?.bool() ?? true,
                               useRegex: try preTokenizer.member("use_regex")?.bool() ?? true)]
        case "Digits":
            return [.digits(individually: try preTokenizer.member("individual_digits")?.bool() ?? false)]
        case "Split":
            let pattern = try preTokenizer.required("pattern")
            guard let regex = try pattern.member("Regex")?.string() else {
                throw TokenizerError.unsupported(feature: "pre_tokenizer Split with a String pattern")
            }
            guard let scanner = SplitPattern(regex: regex) else {
                throw TokenizerError.unsupported(
                    feature: "pre_tokenizer Split regex \(quoted(regex)) (known: the GPT-2, Llama 3 and Qwen2 regexes)")
            }
            let behavior = try preTokenizer.member("behavior")?.string() ?? "Isolated"
            guard behavior == "Isolated" else {
                throw TokenizerError.unsupported(feature: "pre_tokenizer Split behavior \(behavior)")
            }
            if try preTokenizer.member("invert")?.bool() == true {
                throw TokenizerError.unsupported(feature: "pre_tokenizer Split with invert true")
            }
            return [.split(scanner)]
        default:
            throw TokenizerError.unsupported(feature: "pre_tokenizer \(type)")
        }
    }
}
