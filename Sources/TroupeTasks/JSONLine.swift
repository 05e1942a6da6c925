import Foundation

/// A decoded JSON value that keeps the distinctions the task loader needs (bool vs number,
/// integer vs fractional), which `JSONSerialization`'s NSNumbers blur.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Int.self) { self = .integer(value); return }
        if let value = try? container.decode(Double.self) { self = .number(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    /// Parses one line; on failure the error says where (JSONSerialization's message is the precise one).
    static func parse(line: Data) -> Result<JSONValue, JSONLineError> {
        if let value = try? JSONDecoder().decode(JSONValue.self, from: line) { return .success(value) }
        do {
            _ = try JSONSerialization.jsonObject(with: line, options: [.fragmentsAllowed])
            return .failure(JSONLineError(reason: "not valid JSON"))
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            return .failure(JSONLineError(reason: "broken JSON" + (detail.map { ": \($0)" } ?? "")))
        }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

struct JSONLineError: Error {
    let reason: String
}
