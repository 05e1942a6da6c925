import Foundation

/// A JSON document as a Swift value: what `troupe algo` reads and prints, and what option
/// overrides are made of. Numbers are Doubles (integers up to 2^53 are exact).
public enum JSONValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyKey.self) {
            var object: [String: JSONValue] = [:]
            for key in container.allKeys { object[key.stringValue] = try container.decode(JSONValue.self, forKey: key) }
            self = .object(object)
        } else if var container = try? decoder.unkeyedContainer() {
            var array: [JSONValue] = []
            while !container.isAtEnd { array.append(try container.decode(JSONValue.self)) }
            self = .array(array)
        } else {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case let .bool(value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case let .number(value):
            var container = encoder.singleValueContainer()
            // Whole numbers print without ".0"; -0 prints as 0.
            if value == value.rounded(), abs(value) < 9.0e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case let .string(value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case let .array(values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case let .object(values):
            var container = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in values { try container.encode(value, forKey: AnyKey(key)) }
        }
    }

    /// Converts what `JSONSerialization` (or a hand-built dictionary) produces.
    public init(any value: Any, field: String = "value") throws {
        switch value {
        case is NSNull: self = .null
        case let value as String: self = .string(value)
        case let value as [String: Any]:
            var object: [String: JSONValue] = [:]
            for (key, element) in value { object[key] = try JSONValue(any: element, field: field == "value" ? key : "\(field).\(key)") }
            self = .object(object)
        case let value as [Any]:
            self = .array(try value.enumerated().map { try JSONValue(any: $1, field: "\(field)[\($0)]") })
        default:
            if type(of: value) == Bool.self, let flag = value as? Bool {
                self = .bool(flag)
            } else if type(of: value) == Int.self, let integer = value as? Int {
                self = .number(Double(integer))
            } else if type(of: value) == Double.self, let number = value as? Double {
                self = .number(number)
            } else if let number = value as? NSNumber {
                // JSONSerialization gives NSNumber for both; booleans report the "c" (char) type.
                self = String(cString: number.objCType) == "c" ? .bool(number.boolValue) : .number(number.doubleValue)
            } else {
                throw AlgorithmError(field: field, problem: "is not a JSON value (\(type(of: value)))")
            }
        }
    }

    public static func parse(_ data: Data) throws -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw AlgorithmError(field: "input", problem: "is not valid JSON (\(error))")
        }
    }

    /// Sorted keys; pretty-printed unless `compact`.
    public func serialized(compact: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = compact ? [.sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public var description: String {
        (try? serialized(compact: true)).flatMap { String(data: $0, encoding: .utf8) } ?? "?"
    }

    /// A finite number, or an error naming `field`.
    func number(field: String) throws -> Double {
        guard case let .number(number) = self else { throw AlgorithmError(field: field, problem: "expected a number, got \(self)") }
        try Check.finite(number, field)
        return number
    }

    /// A whole number that fits an Int exactly, or an error naming `field`.
    func integer(field: String) throws -> Int {
        guard case let .number(number) = self, number == number.rounded(), abs(number) <= 9.0e15 else {
            throw AlgorithmError(field: field, problem: "expected an integer, got \(self)")
        }
        return Int(number)
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

struct AnyKey: CodingKey {
    let stringValue: String
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}
