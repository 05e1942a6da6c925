import Foundation
import TroupeJSON

/// Compact JSON with sorted keys for run-log records, written straight into bytes. Foundation's
/// `JSONSerialization` took about 1 ms for one accepted group's record (≈ 9 KB of base64 strings) on
/// Linux, more than the rest of the learner's per-group work together; this takes microseconds.
///
/// Numbers are written so that parsing them gives back the same value bit for bit (replay recomputes
/// training steps from them): integers in decimal, doubles in Swift's shortest round-trip form
/// (`1.0`, unlike `JSONValue.serialized`'s `1`: the run log's bytes predate it and its hashes chain
/// them). Non-finite numbers are refused, as JSON has no spelling for them.
package enum RecordEncoder {
    struct Unencodable: Error, CustomStringConvertible {
        var path: String
        let what: String
        var description: String { "run-log record field \(path): \(what)" }
        /// The field's path is built on the way out of an error only, never on the hot path.
        func inside(_ parent: String) -> Unencodable {
            var e = self
            e.path = path.isEmpty ? parent : (path.hasPrefix("[") ? parent + path : parent + "." + path)
            return e
        }
    }

    /// A record: `body`'s members and fragments merged, keys sorted.
    package static func encode(_ body: RecordBody) throws -> [UInt8] {
        let out = LineBuffer(capacity: 1024)
        try encode(body, into: out)
        return out.bytes
    }

    /// Appends the record to `out` (the run log's writer reuses one buffer for a batch of lines).
    package static func encode(_ body: RecordBody, into out: LineBuffer) throws {
        let keys = (Array(body.members.keys) + Array(body.fragments.keys)).sorted()
        out.append(0x7B) // {
        for (n, key) in keys.enumerated() {
            if n > 0 { out.append(0x2C) }
            writeString(key, into: out)
            out.append(0x3A)
            if let fragment = body.fragments[key] {
                do { try fragment.write(out) } catch let e as Unencodable { throw e.inside(key) }
            } else {
                do { try write(body.members[key]!, into: out) } catch let e as Unencodable { throw e.inside(key) }
            }
        }
        out.append(0x7D)
    }

    private static func write(_ value: JSONValue, into out: LineBuffer) throws {
        switch value {
        case let .string(s): writeString(s, into: out)
        case let .object(members):
            out.append(0x7B) // {
            for (n, key) in members.keys.sorted().enumerated() {
                if n > 0 { out.append(0x2C) }
                writeString(key, into: out)
                out.append(0x3A)
                do { try write(members[key]!, into: out) } catch let e as Unencodable { throw e.inside(key) }
            }
            out.append(0x7D)
        case let .array(elements):
            out.append(0x5B) // [
            for (n, element) in elements.enumerated() {
                if n > 0 { out.append(0x2C) }
                do { try write(element, into: out) } catch let e as Unencodable { throw e.inside("[\(n)]") }
            }
            out.append(0x5D)
        case let .integer(i): writeInteger(i, into: out)
        case let .number(d): try writeDouble(d, into: out)
        case let .bool(b): out.append(b ? "true" : "false")
        case .null: out.append("null")
        }
    }

    /// Decimal, as `String(i)` spells it, without building the string.
    package static func writeInteger(_ i: Int, into out: LineBuffer) {
        out.appendInPlace(maxBytes: 20) { at in
            var digits = 0
            var rest = i.magnitude
            repeat {
                digits += 1
                rest /= 10
            } while rest > 0
            var end = digits
            if i < 0 { at[0] = 0x2D; end += 1 }
            rest = i.magnitude
            for k in stride(from: end - 1, through: end - digits, by: -1) {
                at[k] = 0x30 + UInt8(rest % 10)
                rest /= 10
            }
            return end
        }
    }

    package static func writeDouble(_ d: Double, into out: LineBuffer) throws {
        guard d.isFinite else { throw Unencodable(path: "", what: "\(d) is not a finite number") }
        out.append(utf8: d.description)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    package static func writeString(_ s: String, into out: LineBuffer) {
        var s = s
        // withUTF8 makes a bridged (NSString-backed) string contiguous once; iterating `s.utf8` of
        // one went through Foundation per byte, ~20 ns each.
        s.withUTF8 { bytes in
            out.append(0x22)
            var runStart = 0
            for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                out.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart..<i])))
                runStart = i + 1
                switch byte {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(0x6E)
                case 0x0D: out.append(0x5C); out.append(0x72)
                case 0x09: out.append(0x5C); out.append(0x74)
                default:
                    out.append("\\u00")
                    out.append(hexDigits[Int(byte >> 4)])
                    out.append(hexDigits[Int(byte & 15)])
                }
            }
            out.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart...])))
            out.append(0x22)
        }
    }
}

/// A member written as JSON text in `RecordEncoder`'s form by a typed writer, straight into the line
/// (no JSON value built, no copy). For the hot records only: see `RolloutGroup.writeSamplesJSON`.
package struct JSONFragment {
    /// Appends the member's value; an `Unencodable` it throws names the field below the member.
    let write: (LineBuffer) throws -> Void
}
