/// Decodes `Decodable` types from a `JSONValue`, strictly: a key no container asked for is an error
/// naming its full path ("unknown key"), a wrong type is an error naming the key and what was there,
/// and with a source map every error carries the line and column of the key or value at fault.
///
/// A type that checks a value itself throws `DecodingError.dataCorrupted` with the coding path of
/// the value; `decode` turns it into a `JSONError` with the same path and position.
public struct JSONValueDecoder {
    public var sourceMap: JSONSourceMap?
    public var userInfo: [CodingUserInfoKey: Any] = [:]
    /// Off for documents with keys nobody reads (a Hugging Face config.json).
    public var refusesUnknownKeys = true

    public init(sourceMap: JSONSourceMap? = nil, refusesUnknownKeys: Bool = true) {
        self.sourceMap = sourceMap
        self.refusesUnknownKeys = refusesUnknownKeys
    }

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        let state = DecodingState()
        do {
            let result = try T(from: ValueDecoder(value: value, codingPath: [], state: state, userInfo: userInfo))
            if refusesUnknownKeys { try state.checkUnknownKeys(sourceMap: sourceMap) }
            return result
        } catch let error as DecodingError {
            throw convert(error)
        } catch var error as JSONError where error.location == nil {
            if let path = error.path { error.location = sourceMap?.location(ofValue: path) }
            throw error
        }
    }

    public func decode<T: Decodable>(_ type: T.Type, from document: JSONDocument) throws -> T {
        var decoder = self
        decoder.sourceMap = document.sourceMap
        return try decoder.decode(type, from: document.value)
    }

    private func convert(_ error: DecodingError) -> JSONError {
        switch error {
        case let .keyNotFound(key, context):
            let path = render(context.codingPath + [key])
            return JSONError(path: path, problem: "missing", location: sourceMap?.location(ofValue: render(context.codingPath)))
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            let path = render(context.codingPath)
            return JSONError(path: path, problem: context.debugDescription, location: sourceMap?.location(ofValue: path))
        @unknown default:
            return JSONError(path: nil, problem: "\(error)")
        }
    }
}

/// `a.b[3].c` for a coding path.
func render(_ codingPath: [any CodingKey]) -> String {
    var path = ""
    for key in codingPath {
        if let index = key.intValue { path = JSONPath.element(index, of: path) } else { path = JSONPath.member(key.stringValue, of: path) }
    }
    return path
}

/// A coding key for any string or index.
public struct JSONKey: CodingKey, Hashable, Sendable {
    public let stringValue: String
    public let intValue: Int?
    public init(_ string: String) { stringValue = string; intValue = nil }
    public init(stringValue: String) { self.init(stringValue) }
    public init(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
}

/// Which keys of each object a container was opened on were asked for.
private final class DecodingState {
    struct OpenedObject {
        let path: String
        let keys: [String]
        var known: [String] = []
    }
    var objects: [String: OpenedObject] = [:]
    var order: [String] = []

    func opened(_ path: String, keys: [String]) {
        if objects[path] == nil { order.append(path); objects[path] = OpenedObject(path: path, keys: keys) }
    }

    func asked(_ key: String, in path: String) {
        if let known = objects[path]?.known, !known.contains(key) { objects[path]!.known.append(key) }
    }

    func checkUnknownKeys(sourceMap: JSONSourceMap?) throws {
        for path in order {
            let object = objects[path]!
            var unknown = object.keys.filter { !object.known.contains($0) }
            guard !unknown.isEmpty else { continue }
            // The first one as written, when positions are known.
            func offset(_ key: String) -> Int { sourceMap?.keyOffsets[JSONPath.member(key, of: path)] ?? Int.max }
            unknown.sort { (offset($0), $0) < (offset($1), $1) }
            let key = JSONPath.member(unknown[0], of: path)
            let known = object.known.isEmpty ? "" : " (known: \(object.known.joined(separator: ", ")))"
            throw JSONError(path: key, problem: "unknown key\(known)", location: sourceMap?.location(ofKey: key))
        }
    }
}

/// "got \"ten\"": a value in an error, shortened.
func describe(_ value: JSONValue) -> String {
    let text = value.serializedString(pretty: false)
    return text.count > 60 ? String(text.prefix(57)) + "…" : text
}

private struct ValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let state: DecodingState
    let userInfo: [CodingUserInfoKey: Any]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .object(members) = value else { throw mismatch("an object") }
        let path = render(codingPath)
        state.opened(path, keys: Array(members.keys))
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, path: path, decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case let .array(elements) = value else { throw mismatch("an array") }
        return UnkeyedContainer(elements: elements, decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func child(_ value: JSONValue, key: any CodingKey) -> ValueDecoder {
        ValueDecoder(value: value, codingPath: codingPath + [key], state: state, userInfo: userInfo)
    }

    func mismatch(_ expected: String) -> DecodingError {
        let got = value.isNull ? "null" : describe(value)
        return .typeMismatch(Any.self, DecodingError.Context(codingPath: codingPath, debugDescription: "expected \(expected), got \(got)"))
    }

    func decodeNil() -> Bool { value.isNull }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case let .bool(flag) = value else { throw mismatch("true or false") }
        return flag
    }

    func decode(_ type: String.Type) throws -> String {
        guard case let .string(text) = value else { throw mismatch("a string") }
        return text
    }

    func decode(_ type: Double.Type) throws -> Double {
        guard let number = value.double else { throw mismatch("a number") }
        return number
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard let whole = value.int else { throw mismatch(T.isSigned ? "an integer" : "a non-negative integer") }
        guard let exact = T(exactly: whole) else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "\(whole) does not fit \(T.self)"))
        }
        return exact
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        return try T(from: self)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let path: String
    let decoder: ValueDecoder

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] {
        for key in members.keys { decoder.state.asked(key, in: path) }
        return members.keys.sorted().compactMap { Key(stringValue: $0) }
    }

    func contains(_ key: Key) -> Bool {
        decoder.state.asked(key.stringValue, in: path)
        return members[key.stringValue] != nil
    }

    private func member(_ key: Key) throws -> ValueDecoder {
        decoder.state.asked(key.stringValue, in: path)
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return decoder.child(value, key: key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key).decodeNil() }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try member(key).decode(type) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try member(key).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try member(key).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try member(key).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try member(key).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try member(key).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try member(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try member(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder { try member(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let decoder: ValueDecoder
    var currentIndex = 0

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "has only \(elements.count) elements"))
        }
        defer { currentIndex += 1 }
        return decoder.child(elements[currentIndex], key: JSONKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: JSONKey.self) {
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
            } else if let value = try? container.decode(Int.self) {
                self = .integer(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .integer(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(values): try container.encode(values)
        case let .object(members): try container.encode(members)
        }
    }
}
