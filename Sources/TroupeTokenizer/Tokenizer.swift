/// Maps text to token ids and back.
///
/// Two implementations exist: `ByteTokenizer` (the built-in byte-level tokenizer of the built-in models)
/// and `BPETokenizer` (a Hugging Face `tokenizer.json` BPE, byte-level or SentencePiece-style).
/// `loadTokenizer(modelDirectory:)` picks one for a model directory.
///
/// `encode` never adds special tokens on its own (it is Hugging Face's `encode(add_special_tokens=False)`);
/// `encode(_:addingBos:)` prepends the beginning-of-sequence token where the tokenizer has one.
/// `decode` is the inverse, as the tokenizer's decoder has it. For byte-level tokenizers it is the UTF-8
/// decoding of the concatenated `bytes(of:)` of every id, special tokens included, where byte sequences
/// that are not valid UTF-8 become U+FFFD (the replacement character), exactly as Rust's
/// `String::from_utf8_lossy` does in Hugging Face `tokenizers`; a SentencePiece-style decoder may also
/// strip the text's first space and writes one U+FFFD per byte of an invalid byte-token run.
public protocol Tokenizer: Sendable {
    /// One more than the largest id the tokenizer can produce or decode.
    var vocabularySize: Int { get }
    var bosTokenId: Int32? { get }
    var eosTokenId: Int32? { get }
    var padTokenId: Int32? { get }
    /// The special tokens by their text, e.g. `"<|eos|>": 257`.
    var specialTokens: [String: Int32] { get }
    /// Whether the tokenizer puts its BOS before a text by itself, as Hugging Face's `tokenizer(text)`
    /// does for Llama 2 or Mistral base models: prompts given as plain text get it.
    var addsBosToPrompts: Bool { get }

    /// Token ids for `text`. When `recognizingSpecialTokens` is true, the text of a special token
    /// (e.g. `"<|eos|>"`) becomes that token's id; when false it is encoded as ordinary text, so that
    /// untrusted text cannot inject control tokens.
    func encode(_ text: String, recognizingSpecialTokens: Bool) -> [Int32]

    /// The text of `ids`. Throws `TokenizerError.idOutOfRange` / `.unassignedId` for an id no token has.
    func decode(_ ids: [Int32]) throws -> String

    /// The raw bytes token `id` contributes to decoded text (empty for an id no token has). Decoding a
    /// sequence is (up to the decoder's whole-text steps above) the UTF-8 decoding of the concatenation of
    /// these bytes, so a sampler can match stop strings incrementally on bytes without decoding partial characters.
    func bytes(of id: Int32) -> [UInt8]

    /// The token as its vocabulary spells it (Hugging Face's `id_to_token`), for display; nil for an
    /// id no token has.
    func tokenString(for id: Int32) -> String?
}

extension Tokenizer {
    public var addsBosToPrompts: Bool { false }

    /// Token ids for `text`, with special-token text recognised as special tokens.
    public func encode(_ text: String) -> [Int32] {
        encode(text, recognizingSpecialTokens: true)
    }

    /// Token ids for `text`, preceded by `bosTokenId` when `addingBos` is true and the tokenizer has
    /// a BOS token (Qwen2-style tokenizers have none; then nothing is added).
    public func encode(_ text: String, addingBos: Bool, recognizingSpecialTokens: Bool = true) -> [Int32] {
        let ids = encode(text, recognizingSpecialTokens: recognizingSpecialTokens)
        guard addingBos, let bos = bosTokenId else { return ids }
        return [bos] + ids
    }

    /// Token ids for a prompt given as text: with the BOS first when `addingBos` or when the tokenizer
    /// puts it there by itself (`addsBosToPrompts`).
    public func encodePrompt(_ text: String, addingBos: Bool = false, recognizingSpecialTokens: Bool = true) -> [Int32] {
        encode(text, addingBos: addingBos || addsBosToPrompts, recognizingSpecialTokens: recognizingSpecialTokens)
    }

    /// The id of the special token whose text is `name`, e.g. `id(forSpecial: "<|eos|>")`.
    public func id(forSpecial name: String) -> Int32? {
        specialTokens[name]
    }

    /// `decode(ids)` with the special tokens left out when `skippingSpecialTokens` is true
    /// (Hugging Face's `skip_special_tokens`). Out-of-range ids still throw.
    public func decode(_ ids: [Int32], skippingSpecialTokens: Bool) throws -> String {
        guard skippingSpecialTokens else { return try decode(ids) }
        let special = Set(specialTokens.values)
        try validateIds(ids)
        return try decode(ids.filter { !special.contains($0) })
    }

    /// The text of ids a model sampled, as Hugging Face's `decode` gives it: ids the tokenizer has no
    /// token for (rows a model's vocabulary has beyond its tokenizer's, which a sampler can draw) are
    /// left out, and so are the special tokens when `skippingSpecialTokens`.
    public func sampledText(_ ids: [Int32], skippingSpecialTokens: Bool = true) throws -> String {
        try decode(ids.filter { $0 >= 0 && Int($0) < vocabularySize && tokenString(for: $0) != nil },
                   skippingSpecialTokens: skippingSpecialTokens)
    }

    /// Throws for the first id outside `0..<vocabularySize` or with no token.
    public func validateIds(_ ids: [Int32]) throws {
        for id in ids {
            if id < 0 || Int(id) >= vocabularySize {
                throw TokenizerError.idOutOfRange(id: id, vocabularySize: vocabularySize)
            }
            if tokenString(for: id) == nil { throw TokenizerError.unassignedId(id) }
        }
    }
}
