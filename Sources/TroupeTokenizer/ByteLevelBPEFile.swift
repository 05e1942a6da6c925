import TroupeJSON

/// A byte-level BPE `tokenizer.json` written from parts, for models made up on the spot (benchmark
/// workloads, fuzz seeds) that need a tokenizer both Troupe and Hugging Face `tokenizers` load.
/// Ids: the 256 byte symbols in byte order, then one per merge in order, then the special tokens.
public enum ByteLevelBPEFile {
    /// The document; each merge joins two byte strings already in the vocabulary (single bytes or
    /// earlier merges' results). Every merge's result must be new.
    public static func document(merges: [(left: [UInt8], right: [UInt8])], specialTokens: [String]) -> JSONValue {
        var vocab: [String: JSONValue] = [:]
        for byte in 0..<256 { vocab[ByteLevelAlphabet.encode([UInt8(byte)])] = .integer(byte) }
        var mergeLines: [JSONValue] = []
        for (left, right) in merges {
            let l = ByteLevelAlphabet.encode(left), r = ByteLevelAlphabet.encode(right)
            precondition(vocab[l] != nil && vocab[r] != nil && vocab[l + r] == nil, "merge \(l) \(r): parts unknown or result not new")
            vocab[l + r] = .integer(vocab.count)
            mergeLines.append(.string("\(l) \(r)"))
        }
        let added: [JSONValue] = specialTokens.enumerated().map { i, content in
            .object(["id": .integer(vocab.count + i), "content": .string(content), "special": .bool(true),
                     "single_word": .bool(false), "lstrip": .bool(false), "rstrip": .bool(false), "normalized": .bool(false)])
        }
        return .object([
            "version": .string("1.0"),
            "added_tokens": .array(added),
            "normalizer": .null,
            "pre_tokenizer": .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(false), "trim_offsets": .bool(true),
                                      "use_regex": .bool(true)]),
            "post_processor": .null,
            "decoder": .object(["type": .string("ByteLevel"), "add_prefix_space": .bool(false), "trim_offsets": .bool(true),
                                "use_regex": .bool(true)]),
            "model": .object(["type": .string("BPE"), "dropout": .null, "unk_token": .null, "fuse_unk": .bool(false),
                              "byte_fallback": .bool(false), "vocab": .object(vocab), "merges": .array(mergeLines)]),
        ])
    }
}
