import Foundation
import Testing
import TroupeTokenizer

/// The committed goldens (made by scripts/tokenizer/make_goldens.py with Hugging Face `tokenizers`).
enum Goldens {
    static var directory: URL {
        get throws { try #require(Bundle.module.url(forResource: "Goldens", withExtension: nil)) }
    }

    static func path(_ relative: String) throws -> String {
        try directory.appendingPathComponent(relative).path
    }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(relative))))
    }

    struct Case {
        var text: String
        var ids: [Int32]
        var tokens: [String]?
        var decoded: String
    }

    static func cases(_ value: Any) throws -> [Case] {
        let list = try #require(value as? [[String: Any]])
        return try list.map { entry in
            Case(text: try #require(entry["text"] as? String),
                 ids: try #require(entry["ids"] as? [Int]).map { Int32($0) },
                 tokens: entry["tokens"] as? [String],
                 decoded: try #require(entry["decoded"] as? String))
        }
    }

    static func cases(_ relative: String) throws -> [Case] {
        try cases(json(relative))
    }

    /// The tokenizer.json of a golden folder, parsed, for patching.
    static func tokenizerSpec(_ folder: String) throws -> [String: Any] {
        try #require(json("\(folder)/tokenizer.json") as? [String: Any])
    }

    static func tokenizer(spec: [String: Any]) throws -> BPETokenizer {
        try BPETokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: spec))
    }

    /// Checks ids, token spellings and decoded text of every case; texts scalar for scalar, since Swift's
    /// `==` would take "é" and "e\u{301}" for one.
    static func check(_ tokenizer: some Tokenizer, _ cases: [Case], label: String) throws {
        #expect(!cases.isEmpty)
        let scalars = { (text: String) in text.unicodeScalars.map(\.value) }
        for golden in cases {
            let ids = tokenizer.encode(golden.text)
            #expect(ids == golden.ids, "\(label): encode(\(golden.text.debugDescription))")
            if let tokens = golden.tokens {
                #expect(golden.ids.map { scalars(tokenizer.tokenString(for: $0) ?? "<nil>") } == tokens.map(scalars),
                        "\(label): tokens of \(golden.text.debugDescription)")
            }
            #expect(scalars(try tokenizer.decode(golden.ids)) == scalars(golden.decoded),
                    "\(label): decode of \(golden.text.debugDescription)")
        }
    }
}
