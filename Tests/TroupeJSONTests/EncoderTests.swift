import Testing
import TroupeJSON

/// The Encoder writes what the Decoder reads back: integers stay integers, nil leaves its key out.
@Suite struct EncoderTests {
    struct Inner: Codable, Equatable {
        var name: String
        var ratio: Float
    }

    struct Outer: Codable, Equatable {
        var count: Int
        var big: UInt64
        var mean: Double
        var flag: Bool
        var note: String?
        var list: [Inner]
        var table: [String: Double]
        var raw: JSONValue
    }

    @Test func roundTripsThroughTheDecoder() throws {
        let value = Outer(count: -3, big: 1 << 62, mean: 0.1, flag: true, note: nil, list: [Inner(name: "a/b", ratio: 0.1)],
                          table: ["x": 2, "y": -0.5], raw: ["free": [1, "two", nil]])
        let json = try JSONValueEncoder().encode(value)
        #expect(json["count"] == .integer(-3) && json["big"] == .integer(1 << 62) && json["flag"] == true)
        #expect(json["note"] == nil, "a nil optional leaves its key out")
        #expect(json["list"]?.array?.first?["ratio"] == .number(Double(Float(0.1))), "a Float widens exactly")
        #expect(json["raw"] == ["free": [1, "two", nil]])
        #expect(try JSONValueDecoder().decode(Outer.self, from: json) == value)
    }

    @Test func anUnsignedIntegerPastIntMaxIsRefused() {
        struct Wide: Encodable { var values: [UInt64] }
        #expect { try JSONValueEncoder().encode(Wide(values: [1, .max])) } throws: { "\($0)".contains("does not fit") }
    }

    @Test func primitivesEncodeWithoutAContainer() throws {
        #expect(try JSONValueEncoder().encode("text") == "text")
        #expect(try JSONValueEncoder().encode([1, 2]) == [1, 2])
    }
}
