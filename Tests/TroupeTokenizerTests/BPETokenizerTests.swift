import Foundation
import Testing
import TroupeTokenizer

@Suite("BPETokenizer")
struct BPETokenizerTests {
    /// gpt2-style's `<mask>` (lstrip) and `RS` (rstrip) swallow whitespace, and its added token
    /// `Ġhi` decodes to " hi": lossy on purpose, as in `tokenizers`; the goldens cover them.
    @Test("decode(encode(text)) is the text (in NFC for the NFC tokenizer)", arguments: [
        "gpt2-style", "llama3-style", "qwen2-style", "fixture-bpe-gpt2-1024", "fixture-llama-tiny",
    ])
    func roundTrip(_ folder: String) throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("\(folder)/tokenizer.json"))
        var random = SplitMix64(seed: 11)
        for _ in 0..<300 {
            let text = random.awkwardString(excluding: folder == "gpt2-style" ? ["<mask>", "RS", "Ġ"] : [])
            let expected = folder == "qwen2-style" ? text.precomposedStringWithCanonicalMapping : text
            for recognizing in [true, false] {
                let ids = tokenizer.encode(text, recognizingSpecialTokens: recognizing)
                #expect(try tokenizer.decode(ids) == expected, "\(folder): \(text.debugDescription)")
                // Decoding is the UTF-8 of the concatenated token bytes.
                #expect(String(decoding: ids.flatMap(tokenizer.bytes(of:)), as: UTF8.self) == expected)
            }
        }
    }

    @Test("special tokens: recognised, skippable, BOS/EOS from tokenizer_config.json")
    func specials() throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("llama3-style/tokenizer.json"))
        #expect(tokenizer.specialTokens == ["<|begin_of_text|>": 0, "<|end_of_text|>": 1, "<|eot_id|>": 2])
        #expect(tokenizer.bosTokenId == 0 && tokenizer.eosTokenId == 2 && tokenizer.padTokenId == nil)
        let ids = tokenizer.encode("Hi<|eot_id|>")
        #expect(ids.last == 2)
        #expect(!tokenizer.encode("Hi<|eot_id|>", recognizingSpecialTokens: false).contains(2))
        #expect(tokenizer.encode("Hi", addingBos: true) == [0] + tokenizer.encode("Hi"))
        #expect(try tokenizer.decode(ids, skippingSpecialTokens: true) == "Hi")

        let qwen = try loadTokenizer(tokenizerFile: Goldens.path("qwen2-style/tokenizer.json"))
        #expect(qwen.bosTokenId == nil && qwen.eosTokenId == 2 && qwen.padTokenId == 0)
        #expect(qwen.encode("Hi", addingBos: true) == qwen.encode("Hi"))
    }

    @Test("non-special added tokens are matched even when special tokens are not")
    func nonSpecialAddedTokens() throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("gpt2-style/tokenizer.json"))
        #expect(tokenizer.vocabularySize == 1007)
        let ids = tokenizer.encode("<think><|endoftext|>", recognizingSpecialTokens: false)
        #expect(ids.first == 1001)
        #expect(!ids.contains(0))
        #expect(tokenizer.specialTokens["<think>"] == nil && tokenizer.specialTokens["<mask>"] == 1000)
    }

    @Test("ids out of range or unassigned are errors")
    func badIds() throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("gpt2-style/tokenizer.json"))
        #expect(throws: TokenizerError.idOutOfRange(id: 1007, vocabularySize: 1007)) { try tokenizer.decode([5, 1007]) }
        #expect(throws: TokenizerError.idOutOfRange(id: -3, vocabularySize: 1007)) { try tokenizer.decode([-3]) }
        #expect(tokenizer.bytes(of: 5000).isEmpty && tokenizer.tokenString(for: -1) == nil)

        var spec = try Goldens.tokenizerSpec("gpt2-style")
        var model = try #require(spec["model"] as? [String: Any])
        var vocab = try #require(model["vocab"] as? [String: Any])
        vocab["ĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠ"] = 1500
        model["vocab"] = vocab
        spec["model"] = model
        let gappy = try Goldens.tokenizer(spec: spec)
        #expect(gappy.vocabularySize == 1501)
        #expect(throws: TokenizerError.unassignedId(1200)) { try gappy.decode([1200]) }
        #expect(try gappy.decode([1500]) == String(repeating: " ", count: 24))
    }

    @Test("a 20,000-letter word (past the word cache) round trips, and encodes the same twice")
    func longWords() throws {
        // The goldens cover a 300-letter word against tokenizers; this one checks the uncached path
        // at a length where a quadratic merge loop would be noticeably slow.
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("gpt2-style/tokenizer.json"))
        let word = String(repeating: "abcdefghij", count: 2000)
        let ids = tokenizer.encode(word)
        #expect(ids.count < word.utf8.count)
        #expect(try tokenizer.decode(ids) == word)
        #expect(tokenizer.encode(word) == ids)
    }

    @Test("concurrent encoding agrees with serial encoding")
    func concurrent() async throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("qwen2-style/tokenizer.json"))
        var random = SplitMix64(seed: 3)
        let texts = (0..<64).map { _ in random.awkwardString() + " the learner trains" }
        let serial = texts.map { tokenizer.encode($0) }
        let parallel = await withTaskGroup(of: (Int, [Int32]).self) { group in
            for (index, text) in texts.enumerated() { group.addTask { (index, tokenizer.encode(text)) } }
            var results = [[Int32]](repeating: [], count: texts.count)
            for await (index, ids) in group { results[index] = ids }
            return results
        }
        #expect(parallel == serial)
    }
}
