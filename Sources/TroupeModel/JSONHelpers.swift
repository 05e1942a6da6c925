import Foundation

/// Typed reads of values from `JSONSerialization`, which hands back NSNumber for numbers and booleans
/// alike (and on Linux `1 is Bool` is true: the boxed boolean's class is the only reliable tell).
public enum JSONNumber {
    public static func isBool(_ v: Any) -> Bool { String(describing: type(of: v)).contains("Boolean") }

    /// An integer, or nil for a boolean, a fraction, or anything that is not a number.
    public static func int(_ v: Any) -> Int? {
        guard !isBool(v), let n = v as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    public static func double(_ v: Any) -> Double? { isBool(v) ? nil : (v as? NSNumber)?.doubleValue }

    public static func bool(_ v: Any) -> Bool? { isBool(v) ? (v as? NSNumber)?.boolValue : nil }
}
