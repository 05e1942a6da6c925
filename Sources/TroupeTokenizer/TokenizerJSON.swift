/// The parts of a Hugging Face `tokenizer.json` that define byte-level BPE, validated. Anything the
/// encoder would not reproduce exactly is rejected with `TokenizerError.unsupported` naming it.
struct TokenizerJSON {
    var vocab: [String: Int32] = [:]
    var merges: [(left: String, right: String)] = []
    var ignoreMerges = false
    var addedTokens: [AddedToken] = []
    var normalizesNFC = false
    var stages: [PreTokenizerStage] = []

    init(_ root: JSONField) throws {
        _ = try root.object()
        try parseModel(try root.required("model"))
        if let added = try root.member("added_tokens") {
            addedTokens = try added.array().map(Self.parseAddedToken)
        }
        if let normalizer = try root.member("normalizer") {
            normalizesNFC = try Self.parseNormalizer(normalizer)
        }
        guard let preTokenizer = try root.member("pre_tokenizer") else {
            throw TokenizerError.unsupported(
                feature: "a tokenizer.json without pre_tokenizer (only byte-level BPE, with a ByteLevel pre-tokenizer,)")
        }
        stages = try Self.parsePreTokenizer(preTokenizer)
        guard stages.last.map({ if case .byteLevel = $0 { true } else { false } }) == true,
              stages.filter({ if case .byteLevel = $0 { true } else { false } }).count == 1
        else {
            throw TokenizerError.unsupported(
                feature: "pre_tokenizer without exactly one ByteLevel stage, as the last stage,")
        }
        guard let decoder = try root.member("decoder") else {
            throw TokenizerError.unsupported(feature: "decoder null (only the ByteLevel decoder)")
        }
        let decoderType = try decoder.required("type").string()
        guard decoderType == "ByteLevel" else {
            throw TokenizerError.unsupported(feature: "decoder \(decoderType)")
        }
    }

    private mutating func parseModel(_ model: JSONField) throws {
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
        if try model.member("byte_fallback")?.bool() == true {
            throw TokenizerError.unsupported(feature: "BPE byte_fallback")
        }
        ignoreMerges = try model.member("ignore_merges")?.bool() ?? false

        let vocabField = try model.required("vocab")
        for (token, id) in try vocabField.object() {
            vocab[token] = try JSONField(id, path: "\(vocabField.path)[\(quoted(token))]").tokenId()
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

    /// Whether the normalizer is NFC; nothing else is supported.
    private static func parseNormalizer(_ normalizer: JSONField) throws -> Bool {
        let type = try normalizer.required("type").string()
        switch type {
        case "NFC":
            return true
        case "Sequence":
            var nfc = false
            for member in try normalizer.required("normalizers").array() {
                nfc = try parseNormalizer(member) || nfc
            }
            return nfc
        default:
            throw TokenizerError.unsupported(feature: "normalizer \(type)")
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
