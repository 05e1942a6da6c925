import Foundation

/// A value inside a template, with Python's semantics where Jinja borrows them: truthiness, `str()`,
/// equality, `+` on strings and lists, and Jinja's `Undefined` (prints as nothing, is false, fails on
/// use as a string or a container).
enum JinjaValue: Sendable {
    /// What was looked up and not found, for error messages.
    case undefined(String)
    case none
    case boolean(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case list([JinjaValue])
    case dictionary(JinjaDictionary)
    /// `namespace(…)`: attributes a `{% set ns.attr = … %}` changes in place, so a loop can leave a
    /// result for after it (a reference, as in Jinja).
    case namespace(JinjaNamespace)
    /// A global function looked up by name (`strftime_now is defined`, `{{ range }}`); calls go by name.
    case function(String)
    /// What `select`, `reject`, `selectattr`, `rejectattr`, `map` and `items` return: Python's generator,
    /// which is true even when empty and has no length (unlike Jinja's, it can be iterated again).
    case generator([JinjaValue])

    var isTrue: Bool {
        switch self {
        case .undefined, .none: return false
        case let .boolean(b): return b
        case let .integer(i): return i != 0
        case let .number(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .list(l): return !l.isEmpty
        case let .dictionary(d): return !d.keys.isEmpty
        case .namespace, .function, .generator: return true
        }
    }

    var isUndefined: Bool { if case .undefined = self { true } else { false } }

    /// The type as Python names it, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "None"
        case .boolean: return "bool"
        case .integer: return "int"
        case .number: return "float"
        case .string: return "str"
        case .list: return "list"
        case .dictionary: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        case .generator: return "generator"
        }
    }

    /// Python's `str()`; an undefined value prints as nothing.
    var text: String {
        switch self {
        case .undefined: return ""
        case let .string(s): return s
        default: return representation
        }
    }

    /// Python's `repr()`.
    var representation: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case let .boolean(b): return b ? "True" : "False"
        case let .integer(i): return String(i)
        case let .number(d): return Self.pythonFloat(d)
        case let .string(s):
            let quote = s.contains("'") && !s.contains("\"") ? "\"" : "'"
            var body = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
                .replacingOccurrences(of: "\t", with: "\\t").replacingOccurrences(of: "\r", with: "\\r")
            if quote == "'" { body = body.replacingOccurrences(of: "'", with: "\\'") }
            return quote + body + quote
        case let .list(items): return "[" + items.map(\.representation).joined(separator: ", ") + "]"
        case let .dictionary(d):
            return "{" + d.keys.map { JinjaValue.string($0).representation + ": " + d.values[$0]!.representation }
                .joined(separator: ", ") + "}"
        case let .namespace(n): return "<Namespace " + JinjaValue.dictionary(n.attributes).representation + ">"
        case let .function(name): return "<function \(name)>"
        case .generator: return "<generator object>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    /// Python's `==`: numbers by value (bools count as 0 and 1), containers element by element;
    /// two undefined values are equal, as in Jinja.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a == b
        case let (.list(a), .list(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case let (.dictionary(a), .dictionary(b)):
            return Set(a.keys) == Set(b.keys) && a.keys.allSatisfy { a.values[$0]!.equals(b.values[$0]!) }
        case let (.namespace(a), .namespace(b)): return a === b
        case let (.function(a), .function(b)): return a == b
        default:
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }

    /// The value as a number, for arithmetic and comparisons (bools are 0 and 1).
    var numeric: Double? {
        switch self {
        case let .boolean(b): return b ? 1 : 0
        case let .integer(i): return Double(i)
        case let .number(d): return d
        default: return nil
        }
    }

    /// JSON as Python's `json.dumps(value, ensure_ascii=False, indent=indent)` writes it (the `tojson`
    /// filter of Hugging Face's chat templates).
    func json(indent: Int?, depth: Int = 0) throws -> String {
        func pad(_ level: Int) -> String { indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? "" }
        let separator = indent == nil ? ", " : ","
        switch self {
        case .undefined(let name): throw JinjaFailure("\(name) is undefined and cannot be written as JSON")
        case .none: return "null"
        case let .boolean(b): return b ? "true" : "false"
        case let .integer(i): return String(i)
        case let .number(d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            return Self.pythonFloat(d)
        case let .string(s): return Self.jsonString(s)
        case let .list(items):
            if items.isEmpty { return "[]" }
            return "[" + (try items.map { pad(depth + 1) + (try $0.json(indent: indent, depth: depth + 1)) })
                .joined(separator: separator) + pad(depth) + "]"
        case let .dictionary(d):
            if d.keys.isEmpty { return "{}" }
            return "{" + (try d.keys.map { pad(depth + 1) + Self.jsonString($0) + ": " + (try d.values[$0]!.json(indent: indent, depth: depth + 1)) })
                .joined(separator: separator) + pad(depth) + "}"
        case .namespace: throw JinjaFailure("a Namespace cannot be written as JSON")
        case let .function(name): throw JinjaFailure("the function \(name) cannot be written as JSON")
        case .generator: throw JinjaFailure("a generator cannot be written as JSON (add |list)")
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

/// A dictionary that keeps its keys in insertion order (as Python's does), so `tojson` and `items()`
/// list them as written.
struct JinjaDictionary: Sendable {
    private(set) var keys: [String] = []
    private(set) var values: [String: JinjaValue] = [:]

    init(_ pairs: [(String, JinjaValue)] = []) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> JinjaValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}

/// The attributes of one `namespace(…)`, shared by every reference to it. Rendering is single-threaded.
final class JinjaNamespace: @unchecked Sendable {
    var attributes: JinjaDictionary
    init(_ attributes: JinjaDictionary) { self.attributes = attributes }
}

/// An evaluation error without its line; the renderer adds the line of the tag that failed.
struct JinjaFailure: Error {
    let problem: String
    init(_ problem: String) { self.problem = problem }
}
