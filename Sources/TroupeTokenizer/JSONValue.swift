import Foundation

/// A value parsed by `JSONSerialization` together with its path in the document, so every
/// error names the field it is about (`model.merges[12]`).
struct JSONValue {
    let value: Any
    let path: String

    init(_ value: Any, path: String) {
        self.value = value
        self.path = path
    }

    var isNull: Bool { value is NSNull }

    private func fail(_ problem: String) -> TokenizerError {
        .invalidField(field: path.isEmpty ? "(top level)" : path, problem: problem)
    }

    private var typeName: String {
        switch value {
        case is NSNull: return "null"
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case let number as NSNumber: return "the number \(number)"
        default: return "\(type(of: value))"
        }
    }

    func object() throws -> [String: Any] {
        guard let object = value as? [String: Any] else { throw fail("expected an object, found \(typeName)") }
        return object
    }

    func array() throws -> [JSONValue] {
        guard let array = value as? [Any] else { throw fail("expected an array, found \(typeName)") }
        return array.enumerated().map { JSONValue($1, path: "\(path)[\($0)]") }
    }

    func string() throws -> String {
        guard let string = value as? String else { throw fail("expected a string, found \(typeName)") }
        return string
    }

    func bool() throws -> Bool {
        // JSONSerialization gives booleans as NSNumber; refuse numbers other than 0 and 1 and strings.
        guard !(value is String), let flag = value as? Bool, let number = value as? NSNumber,
              number == 0 || number == 1
        else { throw fail("expected true or false, found \(typeName)") }
        return flag
    }

    func int() throws -> Int {
        guard let number = value as? NSNumber, !(value is String) else {
            throw fail("expected an integer, found \(typeName)")
        }
        let double = number.doubleValue
        guard double.rounded() == double, abs(double) < 9e15 else {
            throw fail("expected an integer, found \(number)")
        }
        return Int(double)
    }

    func double() throws -> Double {
        guard let number = value as? NSNumber, !(value is String) else {
            throw fail("expected a number, found \(typeName)")
        }
        return number.doubleValue
    }

    /// A token id: an integer in `0..<Int32.max`.
    func tokenId() throws -> Int32 {
        let id = try int()
        guard id >= 0 && id < Int(Int32.max) else { throw fail("token id \(id) is outside 0..<\(Int32.max)") }
        return Int32(id)
    }

    /// The member `key` of this object; nil when absent or null.
    func member(_ key: String) throws -> JSONValue? {
        guard let member = try object()[key], !(member is NSNull) else { return nil }
        return JSONValue(member, path: path.isEmpty ? key : "\(path).\(key)")
    }

    func required(_ key: String) throws -> JSONValue {
        guard let member = try member(key) else {
            throw TokenizerError.invalidField(field: path.isEmpty ? key : "\(path).\(key)", problem: "missing")
        }
        return member
    }
}
