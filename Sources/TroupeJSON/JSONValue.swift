/// A JSON document as a Swift value: the one JSON type of the project (configuration, tokenizer.json,
/// model config.json, metrics and task lines, `troupe algo`).
///
/// Integers that fit an `Int` stay `.integer` (counts, token ids and seeds survive exactly); every other
/// number is `.number`. Two numbers compare equal when their values are equal, whichever case holds them.
public enum JSONValue: Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value of a number, whichever case holds it; nil for anything else.
    public var double: Double? {
        switch self {
        case let .integer(value): return Double(value)
        case let .number(value): return value
        default: return nil
        }
    }

    /// An integer, or a whole `.number` that fits an `Int` exactly (`4.0` is 4); nil otherwise.
    public var int: Int? {
        switch self {
        case let .integer(value): return value
        case let .number(value):
            guard value.isFinite, value == value.rounded(), abs(value) < 9.0e15 else { return nil }
            return Int(value)
        default: return nil
        }
    }

    public var bool: Bool? { if case let .bool(value) = self { value } else { nil } }
    public var string: String? { if case let .string(value) = self { value } else { nil } }
    public var array: [JSONValue]? { if case let .array(value) = self { value } else { nil } }
    public var object: [String: JSONValue]? { if case let .object(value) = self { value } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The member `key` of an object; nil when this is not an object or has no such member.
    public subscript(key: String) -> JSONValue? { object?[key] }

    /// "a string", "an object", … for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Compact JSON with sorted keys.
    public var description: String { serializedString(pretty: false) }
}

extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case (.integer, .number), (.number, .integer), (.number, .number): return lhs.double == rhs.double
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        default: return false
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByStringInterpolation, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A key path into a document as the errors print it: `run.max_steps`, `model.merges[12]`.
public enum JSONPath {
    public static func member(_ key: String, of path: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    public static func element(_ index: Int, of path: String) -> String { "\(path)[\(index)]" }
}
