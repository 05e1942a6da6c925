import TroupeJSON

/// Strict reading of one JSON object: every key must be known, every value of the right type, and
/// every error names the full path (`groups[1].samples[0].logp[3]`).
struct JSONReader {
    let object: [String: JSONValue]
    let field: String

    init(_ value: JSONValue, field: String, allowedKeys: Set<String>) throws {
        guard case let .object(object) = value else {
            throw AlgorithmError(field: field, problem: "expected an object, got \(value.typeName)")
        }
        for key in object.keys.sorted() where !allowedKeys.contains(key) {
            throw AlgorithmError(field: TroupeRL.path(key, in: field), problem: "unknown key; expected one of \(allowedKeys.sorted().joined(separator: ", "))")
        }
        self.object = object
        self.field = field
    }

    func path(_ key: String) -> String { TroupeRL.path(key, in: field) }

    func has(_ key: String) -> Bool { object[key] != nil }

    /// The value when present and not null.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case let .string(text) = value else { throw mismatch(key, "a string", value) }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case let .bool(flag) = value else { throw mismatch(key, "true or false", value) }
        return flag
    }

    func number(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        return try value.number(field: path(key))
    }

    func integer(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        return try value.integer(field: path(key))
    }

    func numbers(_ key: String) throws -> [Double]? {
        guard let value = value(key) else { return nil }
        return try Self.array(value, field: path(key)).enumerated().map { try $1.number(field: "\(path(key))[\($0)]") }
    }

    func array(_ key: String) throws -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        return try Self.array(value, field: path(key))
    }

    static func array(_ value: JSONValue, field: String) throws -> [JSONValue] {
        guard case let .array(values) = value else { throw AlgorithmError(field: field, problem: "expected an array, got \(value.typeName)") }
        return values
    }

    private func mismatch(_ key: String, _ expected: String, _ value: JSONValue) -> AlgorithmError {
        AlgorithmError(field: path(key), problem: "expected \(expected), got \(value)")
    }
}

func path(_ key: String, in field: String) -> String { field.isEmpty ? key : "\(field).\(key)" }
