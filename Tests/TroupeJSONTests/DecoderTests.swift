import Testing
import TroupeJSON

private struct Inner: Codable, Equatable {
    var count: Int
    var seed: UInt64
    var ratio: Double?
}

private struct Outer: Codable, Equatable {
    var name: String
    var inner: Inner
    var tags: [String]
}

@Suite struct DecoderTests {
    private func decode(_ text: String) throws -> Outer {
        try JSONValueDecoder().decode(Outer.self, from: JSONDocument.parse(Array(text.utf8), source: "c.json"))
    }

    @Test func decodes() throws {
        let outer = try decode(#"{"name": "x", "inner": {"count": 3, "seed": 18446744073709551, "ratio": null}, "tags": ["a"]}"#)
        #expect(outer == Outer(name: "x", inner: Inner(count: 3, seed: 18_446_744_073_709_551, ratio: nil), tags: ["a"]))
    }

    @Test func wrongTypeNamesKeyAndPosition() {
        #expect(throws: JSONError(path: "inner.count", problem: "expected an integer, got \"ten\"",
                                  location: JSONLocation(source: "c.json", line: 3, column: 21))) {
            try decode("{\"name\": \"x\",\n \"tags\": [],\n \"inner\": {\"count\": \"ten\", \"seed\": 1}}")
        }
        #expect(throws: JSONError(path: "tags[1]", problem: "expected a string, got 2",
                                  location: JSONLocation(source: "c.json", line: 1, column: 29))) {
            try decode(#"{"name": "x", "tags": ["a", 2], "inner": {"count": 1, "seed": 1}}"#)
        }
        #expect(throws: JSONError(path: "inner.seed", problem: "expected a non-negative integer, got 1.5",
                                  location: JSONLocation(source: "c.json", line: 1, column: 57))) {
            try decode(#"{"name": "x", "tags": [], "inner": {"count": 1, "seed": 1.5}}"#)
        }
    }

    @Test func unknownKeyNamesFullPath() {
        #expect(throws: JSONError(path: "inner.cuont", problem: "unknown key (known: count, seed, ratio)",
                                  location: JSONLocation(source: "c.json", line: 2, column: 35))) {
            try decode("{\"name\": \"x\", \"tags\": [],\n \"inner\": {\"count\": 1, \"seed\": 1, \"cuont\": 2, \"zz\": 1}}")
        }
    }

    @Test func missingKey() {
        #expect(throws: JSONError(path: "inner.seed", problem: "missing", location: JSONLocation(source: "c.json", line: 1, column: 36))) {
            try decode(#"{"name": "x", "tags": [], "inner": {"count": 1}}"#)
        }
    }

    @Test func negativeIntoUnsigned() {
        #expect(throws: JSONError.self) { try decode(#"{"name": "x", "tags": [], "inner": {"count": 1, "seed": -1}}"#) }
    }
}
