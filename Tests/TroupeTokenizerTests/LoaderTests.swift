import Foundation
import Testing
import TroupeTokenizer

/// A fresh temporary directory holding `files` (name → contents).
private func directory(_ files: [String: String]) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-tokenizer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    for (name, contents) in files {
        try Data(contents.utf8).write(to: url.appendingPathComponent(name))
    }
    return url.path
}

private func text(_ relative: String) throws -> String {
    try String(contentsOfFile: Goldens.path(relative), encoding: .utf8)
}

/// The error `body` throws, as text.
private func failure(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        return "no error"
    } catch {
        return "\(error)"
    }
}

@Suite("Loading")
struct LoaderTests {
    @Test("a model directory with tokenizer.json and tokenizer_config.json")
    func modelDirectoryWithTokenizer() throws {
        let tokenizer = try loadTokenizer(modelDirectory: Goldens.path("fixture-llama-tiny"))
        #expect(tokenizer is BPETokenizer)
        #expect(tokenizer.vocabularySize == 256)
        #expect(tokenizer.bosTokenId == 0 && tokenizer.eosTokenId == 0 && tokenizer.padTokenId == 0)
        #expect(tokenizer.encode("hi") == [0x68, 0x69])
    }

    /// Llama 2 and Mistral base models: `tokenizer(text)` puts `<s>` first, by `add_bos_token` or by the
    /// post-processor; plain prompts get it too, and `add_bos_token` decides when both are there.
    @Test("a tokenizer that adds its BOS by itself gives plain prompts the BOS")
    func bosAddedByTheTokenizer() throws {
        let json = try text("llama2-style/tokenizer.json")
        let withTemplate = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        var templated = withTemplate
        templated["post_processor"] = ["type": "TemplateProcessing",
                                       "single": [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                                       "pair": [] as [Any], "special_tokens": ["<s>": ["id": "<s>", "ids": [1], "tokens": ["<s>"]]]]
        let templatedText = String(decoding: try JSONSerialization.data(withJSONObject: templated), as: UTF8.self)
        // The same template inside a Sequence of post-processors (as Llama 3's ByteLevel + TemplateProcessing).
        var sequenced = withTemplate
        sequenced["post_processor"] = ["type": "Sequence", "processors": [["type": "ByteLevel", "trim_offsets": false], templated["post_processor"]!]]
        let sequencedText = String(decoding: try JSONSerialization.data(withJSONObject: sequenced), as: UTF8.self)
        let config = { (extra: String) in #"{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>""# + extra + "}" }
        let cases: [(tokenizer: String, config: String, adds: Bool)] = [
            (json, config(""), false),
            (json, config(#", "add_bos_token": true"#), true),
            (templatedText, config(""), true),
            (sequencedText, config(""), true),
            (templatedText, config(#", "add_bos_token": false"#), false),
            (templatedText, #"{"eos_token": "</s>"}"#, false),  // no BOS named: nothing to add
        ]
        for c in cases {
            let loaded = try loadTokenizer(modelDirectory: try directory(["tokenizer.json": c.tokenizer, "tokenizer_config.json": c.config]))
            #expect(loaded.addsBosToPrompts == c.adds, "\(c.config)")
            let plain = try PromptFormat.plain.tokens(for: "Hello", tokenizer: loaded)
            #expect((plain.first == loaded.bosTokenId) == c.adds)
            #expect(loaded.encode("Hello") == (c.adds ? Array(plain.dropFirst()) : plain), "encode itself adds nothing")
        }
        #expect(failure { try loadTokenizer(modelDirectory: try directory(["tokenizer.json": json, "tokenizer_config.json": config(#", "add_bos_token": "yes""#)])) }
                .contains("add_bos_token"))
    }

    @Test("without tokenizer_config.json the special ids come from config.json")
    func specialsFromConfig() throws {
        let path = try directory([
            "tokenizer.json": try text("qwen2-style/tokenizer.json"),
            "config.json": #"{"vocab_size": 1000, "bos_token_id": null, "eos_token_id": [2, 1], "pad_token_id": 0}"#,
        ])
        let tokenizer = try loadTokenizer(modelDirectory: path)
        #expect(tokenizer.bosTokenId == nil && tokenizer.eosTokenId == 2 && tokenizer.padTokenId == 0)

        let wrong = try directory([
            "tokenizer.json": try text("qwen2-style/tokenizer.json"), "config.json": #"{"eos_token_id": 5000}"#,
        ])
        #expect(failure { try loadTokenizer(modelDirectory: wrong) }
            == "\(wrong)/config.json: field eos_token_id: token id 5000 is not a token of \(wrong)/tokenizer.json")
    }

    @Test("a directory without tokenizer.json gets the byte tokenizer when config.json agrees")
    func byteFallback() throws {
        #expect(try loadTokenizer(modelDirectory: directory([:])) is ByteTokenizer)
        let agreeing = try directory(["config.json": #"{"vocab_size": 259, "bos_token_id": 256, "eos_token_id": 257}"#])
        #expect(try loadTokenizer(modelDirectory: agreeing) is ByteTokenizer)

        let small = try directory(["config.json": #"{"vocab_size": 256}"#])
        #expect(failure { try loadTokenizer(modelDirectory: small) }.contains(
            "no tokenizer.json, and config.json vocab_size 256 is smaller than the built-in byte tokenizer's 259 ids"))
        // The shared qwen2-tiny fixture has no tokenizer.json and bos_token_id 1.
        let other = try directory(["config.json": #"{"vocab_size": 300, "bos_token_id": 1, "eos_token_id": 2}"#])
        #expect(failure { try loadTokenizer(modelDirectory: other) }.contains("config.json bos_token_id 1 is not"))
        let broken = try directory(["config.json": #"{"vocab_size": "#])
        #expect(failure { try loadTokenizer(modelDirectory: broken) }.hasPrefix("\(broken)/config.json: malformed JSON"))
    }

    @Test("missing paths")
    func missing() throws {
        #expect(throws: TokenizerError.fileNotFound(path: "/nonexistent/model")) {
            try loadTokenizer(modelDirectory: "/nonexistent/model")
        }
        #expect(throws: TokenizerError.fileNotFound(path: "/nonexistent/tokenizer.json")) {
            try loadTokenizer(tokenizerFile: "/nonexistent/tokenizer.json")
        }
        let file = try Goldens.path("gpt2-style/tokenizer.json")
        #expect(failure { try loadTokenizer(modelDirectory: file) } == "model directory \(file): not a directory")
    }

    @Test("tokenizer_config.json naming an unknown token is an error naming that file and field")
    func unknownSpecialName() throws {
        let path = try directory([
            "tokenizer.json": try text("gpt2-style/tokenizer.json"),
            "tokenizer_config.json": #"{"bos_token": {"content": "<s>"}}"#,
        ])
        #expect(failure { try loadTokenizer(modelDirectory: path) }
            == "\(path)/tokenizer_config.json: field bos_token: \"<s>\" is not a token of this tokenizer")
    }

    @Test("a corrupt tokenizer.json file is an error naming the file")
    func corruptFile() throws {
        let path = try directory(["tokenizer.json": String(try text("gpt2-style/tokenizer.json").prefix(5000))])
        #expect(failure { try loadTokenizer(modelDirectory: path) }.hasPrefix("\(path)/tokenizer.json: malformed JSON"))
    }
}

@Suite("tokenizer.json validation")
struct TokenizerJSONTests {
    /// The error loading the `base` (gpt2-style) tokenizer.json with `change` applied to it.
    private func load(_ base: String = "gpt2-style", _ change: (inout [String: Any]) -> Void) -> String {
        failure {
            var spec = try Goldens.tokenizerSpec(base)
            change(&spec)
            return try BPETokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: spec))
        }
    }

    /// The same with `change` applied to its "model" object.
    private func loadModel(_ base: String = "gpt2-style", _ change: (inout [String: Any]) -> Void) -> String {
        load(base) { spec in
            var model = spec["model"] as! [String: Any]
            change(&model)
            spec["model"] = model
        }
    }

    @Test("not JSON, or not an object")
    func notJSON() {
        #expect(failure { try BPETokenizer(tokenizerJSON: Data("{\"model\": ".utf8)) }.hasPrefix("malformed JSON: not valid JSON"))
        #expect(failure { try BPETokenizer(tokenizerJSON: Data("[1, 2]".utf8)) }
            == "field (top level): expected an object, found an array")
        #expect(failure { try BPETokenizer(tokenizerJSON: Data()) }.hasPrefix("malformed JSON"))
    }

    @Test("malformed fields name their path")
    func malformedFields() {
        #expect(load { spec in spec["model"] = nil } == "field model: missing")
        #expect(loadModel { model in model["vocab"] = [1, 2] } == "field model.vocab: expected an object, found an array")
        #expect(loadModel { model in model["vocab"] = ["a": -4] }
            == "field model.vocab[\"a\"]: token id -4 is outside 0..<2147483647")
        #expect(loadModel { model in model["vocab"] = ["a": 2_000_000_000] }
            == "field model.vocab: token id 2000000000 is beyond the supported 4194304 ids")
        #expect(load { spec in spec["added_tokens"] = [["id": 5_000_000, "content": "x"]] }
            == "field added_tokens: token id 5000000 is beyond the supported 4194304 ids")
        #expect(loadModel { model in model["vocab"] = ["a": "x"] } == "field model.vocab[\"a\"]: expected an integer, found a string")
        #expect(loadModel { model in model["merges"] = nil } == "field model.merges: missing")
        #expect(loadModel { model in model["merges"] = [["e", "r"], ["e", "zz"]] }
            == "field model.merges[1]: token \"zz\" is not in model.vocab")
        #expect(loadModel { model in model["merges"] = ["e r", "e  r"] }
            == "field model.merges[1]: expected two tokens separated by one space, found \"e  r\"")
        #expect(loadModel { model in model["merges"] = [["e", "r", "s"]] } == "field model.merges[0]: expected two tokens, found 3")
        #expect(loadModel { model in model["merges"] = [["ÿ", "ÿ"]] }
            == "field model.merges[0]: merged token \"ÿÿ\" is not in model.vocab")
        #expect(load { spec in spec["added_tokens"] = [["id": 5, "content": ""]] } == "field added_tokens[0].content: empty")
        #expect(load { spec in spec["added_tokens"] = [["content": "x"]] } == "field added_tokens[0].id: missing")
        #expect(load { spec in spec["added_tokens"] = [["id": 5, "content": "x", "special": "yes"]] }
            == "field added_tokens[0].special: expected true or false, found a string")
    }

    @Test("a vocabulary lacking a byte, or giving one id twice")
    func vocabularyProblems() {
        #expect(loadModel { model in
            var vocab = model["vocab"] as! [String: Any]
            vocab["Ġ"] = nil
            model["vocab"] = vocab
            model["merges"] = []
        } == "field model.vocab: no token for byte 0x20 (\"Ġ\"); a byte-level vocabulary must spell all 256 bytes")
        #expect(loadModel { model in
            var vocab = model["vocab"] as! [String: Any]
            vocab["zzz"] = 5
            model["vocab"] = vocab
        } == "field model.vocab: id 5 is given to both \"$\" and \"zzz\"")
    }

    @Test("unsupported features are named")
    func unsupported() {
        #expect(load { spec in spec["normalizer"] = ["type": "NFKC"] } == "normalizer NFKC is not supported")
        #expect(load { spec in spec["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFC"], ["type": "Lowercase"]]] }
            == "normalizer Lowercase is not supported")
        #expect(load { spec in spec["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }
            == "decoder ByteLevel in a SentencePiece-style tokenizer is not supported")
        #expect(load { spec in spec["pre_tokenizer"] = nil }.hasPrefix("a tokenizer.json without pre_tokenizer"))
        #expect(load { spec in
            spec["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": SplitRegexes.qwen2], "behavior": "Isolated"]
        }.hasPrefix("pre_tokenizer without exactly one ByteLevel stage"))
        #expect(load { spec in
            spec["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": "\\w+|\\s+"], "behavior": "Isolated"], ["type": "ByteLevel"]]]
        } == #"pre_tokenizer Split regex "\w+|\s+" (known: the GPT-2, Llama 3 and Qwen2 regexes) is not supported"#)
        #expect(load { spec in
            spec["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": SplitRegexes.qwen2], "behavior": "Removed"], ["type": "ByteLevel"]]]
        } == "pre_tokenizer Split behavior Removed is not supported")
        #expect(load { spec in spec["decoder"] = ["type": "WordPiece"] } == "decoder WordPiece with a ByteLevel pre-tokenizer is not supported")
        #expect(load { spec in spec["decoder"] = nil } == "decoder null (only the ByteLevel decoder) is not supported")
        #expect(loadModel { model in model["type"] = "Unigram" } == "model type Unigram (only BPE) is not supported")
        #expect(loadModel { model in model["byte_fallback"] = true } == "BPE byte_fallback with a ByteLevel pre-tokenizer is not supported")
        #expect(load { spec in spec["normalizer"] = ["type": "Prepend", "prepend": "▁"] }
            == "normalizer Prepend with a ByteLevel pre-tokenizer is not supported")
        #expect(loadModel { model in model["dropout"] = 0.1 } == "BPE dropout 0.1 is not supported")
        #expect(loadModel { model in model["continuing_subword_prefix"] = "##" }
            == "BPE continuing_subword_prefix \"##\" is not supported")
    }
}

extension TokenizerJSONTests {
    /// SentencePiece-style tokenizers: what is refused, each naming the feature or field.
    @Test("SentencePiece-style refusals name the feature or field")
    func sentencePieceRefusals() {
        let llama2 = "llama2-style"
        #expect(load(llama2) { spec in spec["normalizer"] = ["type": "Replace", "pattern": ["Regex": " +"], "content": "▁"] }
            == "normalizer Replace with a Regex pattern is not supported")
        #expect(load(llama2) { spec in spec["normalizer"] = ["type": "Replace", "pattern": ["String": ""], "content": "▁"] }
            == "field normalizer.pattern.String: empty")
        #expect(load(llama2) { spec in spec["normalizer"] = ["type": "Lowercase"] } == "normalizer Lowercase is not supported")
        #expect(load(llama2) { spec in spec["decoder"] = ["type": "WordPiece"] }
            == "decoder WordPiece in a SentencePiece-style tokenizer is not supported")
        #expect(load(llama2) { spec in spec["decoder"] = nil }.hasPrefix("a tokenizer.json without pre_tokenizer and with decoder null"))
        #expect(load(llama2) { spec in spec["decoder"] = ["type": "Strip", "content": " ", "start": -1, "stop": 0] }
            == "field decoder.start: negative: -1")
        #expect(load(llama2) { spec in spec["decoder"] = ["type": "Strip", "content": "  ", "start": 1, "stop": 0] }
            == "field decoder.content: expected one character, found \"  \"")
        #expect(load(llama2) { spec in
            spec["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"]
        } == "field pre_tokenizer.prepend_scheme: expected always, first or never, found \"sometimes\"")
        #expect(load(llama2) { spec in spec["pre_tokenizer"] = ["type": "Metaspace", "replacement": "__"] }
            == "field pre_tokenizer.replacement: expected one character, found \"__\"")
        #expect(load(llama2) { spec in spec["pre_tokenizer"] = ["type": "Whitespace"] }
            .hasPrefix("pre_tokenizer Whitespace is not supported"))
        #expect(load(llama2) { spec in
            spec["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁", "add_prefix_space": false, "prepend_scheme": "first"]
        } == "field pre_tokenizer.add_prefix_space: false does not match prepend_scheme first")
        #expect(loadModel(llama2) { model in model["unk_token"] = "<missing>" }
            == "field model.unk_token: \"<missing>\" is not in model.vocab")
    }
}

enum SplitRegexes {
    static let qwen2 =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}
