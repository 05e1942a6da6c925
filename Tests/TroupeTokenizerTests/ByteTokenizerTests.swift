import Testing
import TroupeTokenizer

@Suite("ByteTokenizer")
struct ByteTokenizerTests {
    let tokenizer = ByteTokenizer()

    @Test("ids are the UTF-8 bytes, then the three special tokens")
    func layout() throws {
        #expect(tokenizer.vocabularySize == 259)
        #expect(tokenizer.encode("Aé") == [0x41, 0xC3, 0xA9])
        #expect(tokenizer.bosTokenId == 256 && tokenizer.eosTokenId == 257 && tokenizer.padTokenId == 258)
        #expect(tokenizer.specialTokens == ["<|bos|>": 256, "<|eos|>": 257, "<|pad|>": 258])
        #expect(tokenizer.id(forSpecial: "<|eos|>") == 257)
        #expect(tokenizer.id(forSpecial: "<|nope|>") == nil)
        #expect(tokenizer.encode("") == [])
    }

    @Test("special-token text is recognised, unless asked not to")
    func specials() throws {
        #expect(tokenizer.encode("a<|eos|>b<|pad|><|bos|>") == [0x61, 257, 0x62, 258, 256])
        #expect(tokenizer.encode("<|eos|", recognizingSpecialTokens: true) == Array("<|eos|".utf8).map(Int32.init))
        #expect(tokenizer.encode("<|eos|>", recognizingSpecialTokens: false) == Array("<|eos|>".utf8).map(Int32.init))
        #expect(tokenizer.encode("hi", addingBos: true) == [256, 0x68, 0x69])
        #expect(try tokenizer.decode([0x68, 257, 0x69]) == "h<|eos|>i")
        #expect(try tokenizer.decode([0x68, 257, 0x69], skippingSpecialTokens: true) == "hi")
        // A model's spare vocabulary rows (ids the tokenizer has no token for) drop out of sampled text,
        // as in Hugging Face's decode; decode itself still refuses them.
        #expect(try tokenizer.sampledText([0x68, 300, 257, 0x69]) == "hi")
        #expect(try tokenizer.sampledText([0x68, 300, 257, 0x69], skippingSpecialTokens: false) == "h<|eos|>i")
        #expect(throws: TokenizerError.self) { try tokenizer.decode([0x68, 300]) }
    }

    @Test("round trip of arbitrary text")
    func roundTrip() throws {
        var random = SplitMix64(seed: 7)
        for _ in 0..<200 {
            let text = random.awkwardString()
            #expect(try tokenizer.decode(tokenizer.encode(text)) == text)
            #expect(try tokenizer.decode(tokenizer.encode(text, recognizingSpecialTokens: false)) == text)
        }
    }

    @Test("invalid UTF-8 decodes to replacement characters")
    func lossy() throws {
        #expect(try tokenizer.decode([0xC3]) == "\u{FFFD}")
        #expect(try tokenizer.decode([0x41, 0xE6, 0x97]) == "A\u{FFFD}")
        #expect(try tokenizer.decode([0x80, 0x80]) == "\u{FFFD}\u{FFFD}")
        #expect(tokenizer.bytes(of: 0xC3) == [0xC3])
        #expect(tokenizer.bytes(of: 257) == Array("<|eos|>".utf8))
        #expect(tokenizer.bytes(of: 259) == [])
    }

    @Test("ids outside 0..<259 are an error")
    func outOfRange() throws {
        #expect(throws: TokenizerError.idOutOfRange(id: 259, vocabularySize: 259)) { try tokenizer.decode([1, 259]) }
        #expect(throws: TokenizerError.idOutOfRange(id: -1, vocabularySize: 259)) { try tokenizer.decode([-1]) }
        #expect(TokenizerError.idOutOfRange(id: 259, vocabularySize: 259).description
            == "token id 259 is out of range: the vocabulary has ids 0..<259")
    }

    @Test("token spellings")
    func spellings() {
        #expect(tokenizer.tokenString(for: 0x41) == "A")
        #expect(tokenizer.tokenString(for: 0x0A) == "<0x0A>")
        #expect(tokenizer.tokenString(for: 0xFF) == "<0xFF>")
        #expect(tokenizer.tokenString(for: 256) == "<|bos|>")
        #expect(tokenizer.tokenString(for: 300) == nil)
    }
}

/// A seeded generator (SplitMix64, Steele et al. 2014) so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Text mixing the pieces tokenizers find hard: whitespace runs, digits, apostrophes, accents,
    /// combining marks, several scripts, emoji, controls, and special-token text.
    /// `excluding` drops pieces, e.g. the text of deliberately lossy added tokens.
    mutating func awkwardString(excluding excluded: Set<String> = []) -> String {
        let pieces = ["a", "The", " ", "  ", "\t", "\n", "\r\n", "'s", "'LL", "'", "0", "123456", "é", "e\u{301}",
                      "日本", "Ω", "я", "🙂", "👩‍💻", "\u{A0}", "\u{200B}", "\u{3000}", "\u{1C}", "\u{0}", "!?", "...",
                      "<|eos|>", "<|endoftext|>", "<|im_end|>", "<think>", "<mask>", "word", "RS", " [X] ", "Ġ", "ſ",
                      "hi"].filter { !excluded.contains($0) }
        var text = ""
        for _ in 0..<Int.random(in: 0...12, using: &self) {
            text += pieces.randomElement(using: &self)!
        }
        return text
    }
}
