import TroupeJSON

/// A parsed value together with its path in the document, so every error names the field it is
/// about (`model.merges[12]`).
struct JSONField {
    let value: JSONValue
    let path: String

    init(_ value: JSONValue, path: String) {
        self.value = value
        self.path = path
    }

    /// Parses a whole document; a syntax error becomes `malformedJSON` with its line and column.
    static func parse(_ data: some Collection<UInt8>) throws -> JSONField {
        try reportingSyntax { JSONField(try JSONValue.parse(data), path: "") }
    }

    /// Parses a whole document, taking the members of the object at `path` out of it with their names
    /// exactly as written (`JSONValue.parse(_:source:extractingMembersAt:)`).
    static func parse(_ data: some Collection<UInt8>, extractingMembersAt path: [String])
        throws -> (root: JSONField, members: [(name: String, value: JSONValue)]?)
    {
        try reportingSyntax {
            let (document, members) = try JSONValue.parse(data, extractingMembersAt: path)
            return (JSONField(document, path: ""), members)
        }
    }

    private static func reportingSyntax<Result>(_ parse: () throws -> Result) throws -> Result {
        do {
            return try parse()
        } catch let error as JSONError {
            var reason = "not valid JSON ("
            if let line = error.location?.line, let column = error.location?.column { reason += "line \(line), column \(column): " }
            if let path = error.path { reason += "\(path): " }
            throw TokenizerError.malformedJSON(reason: reason + error.problem + ")")
        }
    }

    private func fail(_ problem: String) -> TokenizerError {
        .invalidField(field: path.isEmpty ? "(top level)" : path, problem: problem)
    }

    private var typeName: String {
        switch value {
        case .integer, .number: return "the number \(value)"
        default: return value.typeName
        }
    }

    func object() throws -> [String: JSONValue] {
        guard case let .object(object) = value else { throw fail("expected an object, found \(typeName)") }
        return object
    }

    func array() throws -> [JSONField] {
        guard case let .array(array) = value else { throw fail("expected an array, found \(typeName)") }
        return array.enumerated().map { JSONField($1, path: JSONPath.element($0, of: path)) }
    }

    func string() throws -> String {
        guard case let .string(string) = value else { throw fail("expected a string, found \(typeName)") }
        return string
    }

    func bool() throws -> Bool {
        guard case let .bool(flag) = value else { throw fail("expected true or false, found \(typeName)") }
        return flag
    }

    func int() throws -> Int {
        guard value.double != nil else { throw fail("expected an integer, found \(typeName)") }
        guard let integer = value.int else { throw fail("expected an integer, found \(value)") }
        return integer
    }

    func double() throws -> Double {
        guard let number = value.double else { throw fail("expected a number, found \(typeName)") }
        return number
    }

    /// A token id: an integer in `0..<Int32.max`.
    func tokenId() throws -> Int32 {
        let id = try int()
        guard id >= 0 && id < Int(Int32.max) else { throw fail("token id \(id) is outside 0..<\(Int32.max)") }
        return Int32(id)
    }

    /// The member `key` of this object; nil when absent or null.
    func member(_ key: String) throws -> JSONField? {
        guard let member = try object()[key], !member.isNull else { return nil }
        return JSONField(member, path: JSONPath.member(key, of: path))
    }

    func required(_ key: String) throws -> JSONField {
        guard let member = try member(key) else {
            throw TokenizerError.invalidField(field: JSONPath.member(key, of: path), problem: "missing")
        }
        return member
    }
}
