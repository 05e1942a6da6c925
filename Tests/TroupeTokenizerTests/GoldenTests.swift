import Foundation
import Testing
import TroupeTokenizer

@Suite("Hugging Face goldens")
struct GoldenTests {
    @Test("encode, token spellings and decode match tokenizers", arguments: [
        "gpt2-style", "llama3-style", "qwen2-style", "llama2-style", "llama2-equivalent-spellings", "fixture-bpe-gpt2-1024",
        "fixture-llama-tiny",
    ])
    func goldenFolder(_ folder: String) throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("\(folder)/tokenizer.json"))
        try Goldens.check(tokenizer, Goldens.cases("\(folder)/goldens.json"), label: folder)
    }

    @Test("patched configurations: add_prefix_space, Digits, ignore_merges off, Metaspace, no byte fallback")
    func variants() throws {
        let variants = try #require(Goldens.json("variants.json") as? [[String: Any]])
        #expect(variants.count == 8)
        for variant in variants {
            let name = try #require(variant["name"] as? String)
            var spec = try Goldens.tokenizerSpec(try #require(variant["base"] as? String))
            for (key, value) in variant["patch"] as? [String: Any] ?? [:] { spec[key] = value is NSNull ? nil : value }
            var model = try #require(spec["model"] as? [String: Any])
            for (key, value) in variant["model_patch"] as? [String: Any] ?? [:] { model[key] = value }
            spec["model"] = model
            try Goldens.check(Goldens.tokenizer(spec: spec), Goldens.cases(variant["cases"] as Any), label: name)
        }
    }

    @Test("merges written as \"left right\" strings load to the same tokenizer")
    func legacyMergeStrings() throws {
        var spec = try Goldens.tokenizerSpec("gpt2-style")
        var model = try #require(spec["model"] as? [String: Any])
        let pairs = try #require(model["merges"] as? [[String]])
        model["merges"] = pairs.map { $0.joined(separator: " ") }
        spec["model"] = model
        try Goldens.check(Goldens.tokenizer(spec: spec), Goldens.cases("gpt2-style/goldens.json"), label: "legacy merges")
    }

    @Test("decoding invalid UTF-8 gives the same replacement characters as tokenizers", arguments: ["gpt2-style", "llama2-style"])
    func lossyDecoding(_ folder: String) throws {
        let tokenizer = try loadTokenizer(tokenizerFile: Goldens.path("\(folder)/tokenizer.json"))
        let cases = try #require(Goldens.json("\(folder)/decode_goldens.json") as? [[String: Any]])
        #expect(cases.count == 8)
        for entry in cases {
            let ids = try #require(entry["ids"] as? [Int]).map { Int32($0) }
            #expect(try tokenizer.decode(ids) == entry["decoded"] as? String, "decode \(ids)")
        }
    }
}
