import Foundation
import Testing
import TroupeJSON

@Suite struct ParserTests {
    @Test func parsesEveryKind() throws {
        let value = try JSONValue.parse(#"{"a": [1, -2.5, 3e2, true, false, null, "x\u00e9\n"], "b": {}, "big": 9007199254740993}"#)
        #expect(value["a"] == [1, -2.5, 300, true, false, nil, "xé\n"])
        #expect(value["b"] == .object([:]))
        // Exact integers survive (2^53 + 1 is not a Double).
        #expect(value["big"]?.int == 9_007_199_254_740_993)
    }

    @Test func integersAndNumbersStayApart() throws {
        #expect(try JSONValue.parse("[3, 3.0, 1e2, 9223372036854775807, 9223372036854775808]") == [.integer(3), .number(3), .number(100), .integer(Int.max), .number(9_223_372_036_854_775_808)])
        if case .integer = try JSONValue.parse("3.0") { Issue.record("3.0 parsed as an integer") }
    }

    @Test func surrogatePairs() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == "😀")
    }

    /// Two keys that differ in code points but are one text in Unicode ("é" precomposed and as e plus
    /// a combining accent) are one key to Swift: refused, saying why.
    @Test func canonicallyEquivalentKeysAreRefusedSayingWhy() {
        let error = #expect(throws: JSONError.self) { try JSONValue.parse("{\"\u{E9}\": 1, \"e\u{301}\": 2}") }
        #expect(error?.description.contains("duplicate key") == true)
        #expect(error?.description.contains("the same text in Unicode as an earlier key written differently") == true)
        let plain = #expect(throws: JSONError.self) { try JSONValue.parse(#"{"a": 1, "a": 2}"#) }
        #expect(plain?.description.contains("written differently") == false)
    }

    /// The extracted object keeps every member in order with its name's code points, so canonically
    /// equivalent names stay apart there; a name written twice exactly is still a duplicate.
    @Test func extractedMembersKeepNamesExactly() throws {
        let text = "{\"model\": {\"vocab\": {\"\u{E9}\": 1, \"e\u{301}\": 2, \"x\": {\"\u{E9}\": 3}}, \"n\": 4}, \"vocab\": {}}"
        let (document, members) = try JSONValue.parse(Array(text.utf8), extractingMembersAt: ["model", "vocab"])
        let names = try #require(members).map { Array($0.name.unicodeScalars) }
        #expect(names == [["\u{E9}"], ["e", "\u{301}"], ["x"]])
        #expect(members?.map(\.value) == [1, 2, ["\u{E9}": 3]])
        #expect(document == ["model": ["vocab": [:], "n": 4], "vocab": [:]])

        let absent = try JSONValue.parse(Array(#"{"model": {"vocab": [1]}}"#.utf8), extractingMembersAt: ["model", "vocab"])
        #expect(absent.members == nil)
        #expect(absent.document == ["model": ["vocab": [1]]])

        let twice = #expect(throws: JSONError.self) {
            try JSONValue.parse(Array("{\"v\": {\"e\u{301}\": 1, \"e\u{301}\": 2}}".utf8), extractingMembersAt: ["v"])
        }
        #expect(twice?.description.contains("duplicate key") == true)
    }

    /// Each malformed document with the line, column and words of its error.
    @Test(arguments: [
        ("{\n  \"a\": 1,\n  \"a\": 2\n}", "input:3:3: a: duplicate key \"a\""),
        ("{\"a\": [1, 2,]}", "input:1:13: a: trailing comma before ]"),
        ("{\n  \"a\": 1,\n}", "input:3:1: trailing comma before }"),
        ("{\"a\": 1 // note\n}", "input:1:9: unexpected '/', expected ',' or '}'"),
        ("[NaN]", "input:1:2: [0]: NaN and Infinity are not JSON numbers"),
        ("[-Infinity]", "input:1:3: [0]: NaN and Infinity are not JSON numbers"),
        (#"["a\x"]"#, #"input:1:4: [0]: invalid escape \x in a string"#),
        (#"["\ud800"]"#, #"input:1:3: [0]: unpaired surrogate in \u escape"#),
        ("{} x", "input:1:4: unexpected 'x' after the JSON value"),
        ("[01]", "input:1:2: [0]: leading zeros are not allowed in JSON numbers"),
        ("[1.]", "input:1:4: [0]: expected a digit after '.'"),
        ("[\"a\nb\"]", "input:1:4: [0]: unescaped control character (byte 0xa) in a string"),
        ("{\"a\" 1}", "input:1:6: unexpected '1' after key \"a\", expected ':'"),
        ("[1e999]", "input:1:2: [0]: the number 1e999 is out of range"),
        ("[tru]", "input:1:2: [0]: unexpected 't', expected a value"),
        ("", "input:1:1: unexpected end of input, expected a value"),
        ("{'a': 1}", "input:1:2: unexpected ''', expected a key in double quotes"),
        ("{\"é\": 1,\n \"é\": [1 2]}", "input:2:10: é: unexpected '2', expected ',' or ']'"),
    ])
    func refusesWithPosition(text: String, message: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(text) }
        do { _ = try JSONValue.parse(text) } catch { #expect("\(error)" == message) }
    }

    @Test func depthLimit() throws {
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(throws: JSONError.self) { try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        _ = try JSONValue.parse(fine)
    }

    @Test func invalidUTF8() {
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
    }

    /// The serializer writes what JSONSerialization wrote (the frozen config.json must not change).
    @Test func serializesLikeJSONSerialization() throws {
        let value: JSONValue = ["b": ["x": 3e-5, "y": 1, "z": 0.999, "w": 1e-8, "v": nil, "u": "a/b\"\n\u{1}é",
                                      "t": true, "s": 1.0, "q": 60.0, "e": [:], "f": [], "g": [1, 2]],
                                "a": [1.5, 2]]
        // JSONSerialization as the reference: its objects for the same document.
        func foundation(_ value: JSONValue) -> Any {
            switch value {
            case .null: return NSNull()
            case let .bool(flag): return flag
            case let .integer(integer): return integer
            case let .number(number): return number
            case let .string(text): return text
            case let .array(values): return values.map(foundation)
            case let .object(members): return members.mapValues(foundation)
            }
        }
        let object = foundation(value)
        for (compact, options) in [(false, JSONSerialization.WritingOptions([.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])),
                                   (true, [.sortedKeys, .withoutEscapingSlashes])] {
            let expected = try JSONSerialization.data(withJSONObject: object, options: options)
            #expect(String(decoding: try value.serialized(compact: compact), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        }
        #expect(try JSONValue.parse(try value.serialized()) == value)
        #expect(throws: JSONError.self) { try JSONValue.number(.nan).serialized() }
    }
}
