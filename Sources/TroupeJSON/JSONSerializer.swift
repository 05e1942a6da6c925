import Foundation

extension JSONValue {
    /// Sorted keys, `/` unescaped; pretty-printed (two-space indent, `"key" : value`) unless `compact`.
    /// The layout is JSONSerialization's, so files written before this type existed read the same.
    /// Throws for a non-finite number, which JSON cannot spell.
    public func serialized(compact: Bool = false) throws -> Data {
        var out: [UInt8] = []
        try write(into: &out, pretty: !compact, indent: 0, strict: true)
        return Data(out)
    }

    /// The same as text; a non-finite number is written as Swift spells it (for messages only).
    public func serializedString(pretty: Bool) -> String {
        var out: [UInt8] = []
        try? write(into: &out, pretty: pretty, indent: 0, strict: false)
        return String(decoding: out, as: UTF8.self)
    }

    private func write(into out: inout [UInt8], pretty: Bool, indent: Int, strict: Bool) throws {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case let .integer(value): out.append(contentsOf: String(value).utf8)
        case let .number(value):
            if strict && !value.isFinite { throw JSONError(path: nil, problem: "\(value) cannot be written as JSON") }
            out.append(contentsOf: Self.format(value).utf8)
        case let .string(value): Self.writeString(value, into: &out)
        case let .array(values):
            try writeContainer(open: "[", close: "]", count: values.count, into: &out, pretty: pretty, indent: indent) { i, out in
                try values[i].write(into: &out, pretty: pretty, indent: indent + 2, strict: strict)
            }
        case let .object(members):
            let keys = members.keys.sorted()
            try writeContainer(open: "{", close: "}", count: keys.count, into: &out, pretty: pretty, indent: indent) { i, out in
                Self.writeString(keys[i], into: &out)
                out.append(contentsOf: (pretty ? " : " : ":").utf8)
                try members[keys[i]]!.write(into: &out, pretty: pretty, indent: indent + 2, strict: strict)
            }
        }
    }

    private func writeContainer(open: Character, close: Character, count: Int, into out: inout [UInt8], pretty: Bool,
                                indent: Int, element: (Int, inout [UInt8]) throws -> Void) throws {
        out.append(contentsOf: String(open).utf8)
        for i in 0..<count {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            if pretty { Self.newline(indent + 2, into: &out) }
            try element(i, &out)
        }
        if pretty {
            if count == 0 { out.append(0x0A) }
            Self.newline(indent, into: &out)
        }
        out.append(contentsOf: String(close).utf8)
    }

    private static func newline(_ indent: Int, into out: inout [UInt8]) {
        out.append(0x0A)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
    }

    /// Swift's shortest round-tripping spelling, without a trailing ".0" (`1`, `0.001`, `3e-05`).
    static func format(_ value: Double) -> String {
        let text = value.description
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case ..<0x20:
                let hex = String(byte, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
