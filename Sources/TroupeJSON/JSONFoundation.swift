import Foundation

/// Bridging for code that still builds or reads `JSONSerialization` objects (`[String: Any]`,
/// NSNumber): the run-log record encoder and the learner's welcome message.
extension JSONValue {
    /// Converts what `JSONSerialization` produces (or a hand-built dictionary); `field` names the
    /// top of the value in the error for anything that is not JSON.
    public init(any value: Any, field: String = "value") throws {
        switch value {
        case is NSNull: self = .null
        case let value as String: self = .string(value)
        case let value as [String: Any]:
            var object: [String: JSONValue] = [:]
            for (key, element) in value { object[key] = try JSONValue(any: element, field: JSONPath.member(key, of: field)) }
            self = .object(object)
        case let value as [Any]:
            self = .array(try value.enumerated().map { try JSONValue(any: $1, field: JSONPath.element($0, of: field)) })
        default:
            if type(of: value) == Bool.self, let flag = value as? Bool {
                self = .bool(flag)
            } else if type(of: value) == Int.self, let integer = value as? Int {
                self = .integer(integer)
            } else if type(of: value) == Double.self, let number = value as? Double {
                self = .number(number)
            } else if let number = value as? NSNumber {
                if let flag = JSONNumber.bool(number) { self = .bool(flag) }
                else if let integer = JSONNumber.int(number) { self = .integer(integer) }
                else { self = .number(number.doubleValue) }
            } else {
                throw JSONError(path: field, problem: "is not a JSON value (\(type(of: value)))")
            }
        }
    }

    /// The value as `JSONSerialization` objects (NSNull, Bool, Int, Double, String, arrays, dictionaries).
    public var foundationObject: Any {
        switch self {
        case .null: return NSNull()
        case let .bool(value): return value
        case let .integer(value): return value
        case let .number(value): return value
        case let .string(value): return value
        case let .array(values): return values.map(\.foundationObject)
        case let .object(members): return members.mapValues(\.foundationObject)
        }
    }
}

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
