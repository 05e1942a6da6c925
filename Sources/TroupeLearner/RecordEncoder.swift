import Foundation
import TroupeJSON
import TroupeModel

/// Compact JSON with sorted keys for run-log records, written straight into bytes. Foundation's
/// `JSONSerialization` took about 1 ms for one accepted group's record (≈ 9 KB of base64 strings) on
/// Linux, more than the rest of the learner's per-group work together; this takes microseconds.
///
/// Numbers are written so that parsing them gives back the same value bit for bit (replay recomputes
/// training steps from them): integers in decimal, `Double` in Swift's shortest round-trip form,
/// `Float` widened to `Double` first. Non-finite numbers are refused, as JSON has no spelling for them.
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

    package static func encode(_ object: [String: Any]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        try write(object, into: &out)
        return out
    }

    private static func write(_ value: Any, into out: inout [UInt8]) throws {
        // Values read back from a log are NSNumber (JSONSerialization's); tell booleans from numbers
        // by class before Swift's bridging casts get a chance to turn 1 into `true`.
        // (`as AnyObject` only after the class check: on anything else it bridges whole structures.)
        if type(of: value) is NSNumber.Type, let n = value as AnyObject as? NSNumber {
            if let b = JSONNumber.bool(n) { return try write(b, into: &out) }
            if let i = JSONNumber.int(n) { return try write(i, into: &out) }
            return try writeDouble(n.doubleValue, into: &out)
        }
        // Most common first: a dynamic cast from Any costs tens of nanoseconds each.
        switch value {
        case let s as String: writeString(s, into: &out)
        case let f as JSONFragment: out.append(contentsOf: f.bytes)
        case let d as [String: Any]:
            out.append(0x7B) // {
            for (n, key) in d.keys.sorted().enumerated() {
                if n > 0 { out.append(0x2C) }
                writeString(key, into: &out)
                out.append(0x3A)
                do { try write(d[key]!, into: &out) } catch let e as Unencodable { throw e.inside(key) }
            }
            out.append(0x7D)
        case let a as [Any]:
            out.append(0x5B) // [
            for (n, element) in a.enumerated() {
                if n > 0 { out.append(0x2C) }
                do { try write(element, into: &out) } catch let e as Unencodable { throw e.inside("[\(n)]") }
            }
            out.append(0x5D)
        case let i as Int: out.append(contentsOf: String(i).utf8)
        case let d as Double: try writeDouble(d, into: &out)
        case let b as Bool: out.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
        case let f as Float: try writeDouble(Double(f), into: &out)
        case let i as Int32: out.append(contentsOf: String(i).utf8)
        case let i as Int64: out.append(contentsOf: String(i).utf8)
        case let i as UInt32: out.append(contentsOf: String(i).utf8)
        case let i as UInt64: out.append(contentsOf: String(i).utf8)
        case is NSNull:
            out.append(contentsOf: Array("null".utf8))
        default:
            throw Unencodable(path: "", what: "a value of type \(type(of: value)) has no JSON form")
        }
    }

    package static func writeDouble(_ d: Double, into out: inout [UInt8]) throws {
        guard d.isFinite else { throw Unencodable(path: "", what: "\(d) is not a finite number") }
        out.append(contentsOf: d.description.utf8)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    package static func writeString(_ s: String, into out: inout [UInt8]) {
        var s = s
        // withUTF8 makes a bridged (NSString-backed) string contiguous once; iterating `s.utf8` of
        // one went through Foundation per byte, ~20 ns each.
        s.withUTF8 { bytes in
            out.append(0x22)
            var runStart = 0
            for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                runStart = i + 1
                switch byte {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(0x6E)
                case 0x0D: out.append(0x5C); out.append(0x72)
                case 0x09: out.append(0x5C); out.append(0x74)
                default:
                    out.append(contentsOf: Array("\\u00".utf8))
                    out.append(hexDigits[Int(byte >> 4)])
                    out.append(hexDigits[Int(byte & 15)])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
            out.append(0x22)
        }
    }
}

/// JSON text already written in `RecordEncoder`'s form by a typed writer (no dictionaries, no
/// dynamic casts), which `RecordEncoder` copies as it is. For the hot records only: see
/// `RolloutGroup.samplesJSON`.
package struct JSONFragment {
    let bytes: [UInt8]
}
