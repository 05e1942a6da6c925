/// Encodes `Encodable` types into a `JSONValue`: the writing half of `JSONValueDecoder`. Integers
/// stay `.integer` (an unsigned one past `Int.max` is an error, never a rounded double), `Float`
/// widens to `Double` exactly, and a nil optional leaves its key out (`encodeIfPresent`), so a
/// record's keys are the ones its type has values for.
public struct JSONValueEncoder {
    public var userInfo: [CodingUserInfoKey: Any] = [:]

    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        if let primitive = try EncodingSlot.primitive(value, codingPath: []) { return primitive }
        let slot = EncodingSlot()
        try value.encode(to: ValueEncoder(slot: slot, codingPath: [], userInfo: userInfo))
        return slot.value
    }
}

/// One value under construction; containers fill it in place, as `Encoder` requires.
final class EncodingSlot {
    private enum Content {
        case empty
        case value(JSONValue)
        case object([String: EncodingSlot])
        case array([EncodingSlot])
    }

    private var content = Content.empty

    var value: JSONValue {
        switch content {
        case .empty: return .object([:])
        case let .value(value): return value
        case let .object(members): return .object(members.mapValues(\.value))
        case let .array(elements): return .array(elements.map(\.value))
        }
    }

    func set(_ value: JSONValue) { content = .value(value) }

    /// The member `key`, made an object first if this was anything else (an encoder may ask twice).
    func member(_ key: String) -> EncodingSlot {
        var members: [String: EncodingSlot] = [:]
        if case let .object(existing) = content { members = existing }
        let slot = EncodingSlot()
        members[key] = slot
        content = .object(members)
        return slot
    }

    func makeObject() { if case .object = content {} else { content = .object([:]) } }
    func makeArray() { if case .array = content {} else { content = .array([]) } }

    var count: Int { if case let .array(elements) = content { elements.count } else { 0 } }

    func appendElement() -> EncodingSlot {
        var elements: [EncodingSlot] = []
        if case let .array(existing) = content { elements = existing }
        let slot = EncodingSlot()
        elements.append(slot)
        content = .array(elements)
        return slot
    }

    /// The JSON of a value that needs no container; nil for anything that encodes itself.
    static func primitive<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws -> JSONValue? {
        switch value {
        case let value as String: return .string(value)
        case let value as Int: return .integer(value)
        case let value as Double: return .number(value)
        case let value as Bool: return .bool(value)
        case let value as Float: return .number(Double(value))
        case let value as Int32: return .integer(Int(value))
        case let value as Int64: return .integer(Int(value))
        case let value as UInt32: return .integer(Int(value))
        case let value as UInt64:
            guard let exact = Int(exactly: value) else {
                throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: codingPath,
                                                                              debugDescription: "\(value) does not fit a JSON integer"))
            }
            return .integer(exact)
        case let value as JSONValue: return value
        default: return nil
        }
    }

    func encode<T: Encodable>(_ value: T, codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: Any]) throws {
        if let primitive = try Self.primitive(value, codingPath: codingPath) { return set(primitive) }
        try value.encode(to: ValueEncoder(slot: self, codingPath: codingPath, userInfo: userInfo))
    }
}

private struct ValueEncoder: Encoder {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]
    let userInfo: [CodingUserInfoKey: Any]

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        slot.makeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(slot: slot, codingPath: codingPath, userInfo: userInfo))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        slot.makeArray()
        return UnkeyedContainer(slot: slot, codingPath: codingPath, userInfo: userInfo)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(slot: slot, codingPath: codingPath, userInfo: userInfo)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]
    let userInfo: [CodingUserInfoKey: Any]

    mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue).set(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try slot.member(key.stringValue).encode(value, codingPath: codingPath + [key], userInfo: userInfo)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        ValueEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key], userInfo: userInfo).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        ValueEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key], userInfo: userInfo).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        ValueEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key], userInfo: userInfo)
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]
    let userInfo: [CodingUserInfoKey: Any]

    var count: Int { slot.count }
    private var nextPath: [any CodingKey] { codingPath + [JSONKey(intValue: count)] }

    mutating func encodeNil() throws { slot.appendElement().set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = nextPath
        try slot.appendElement().encode(value, codingPath: path, userInfo: userInfo)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath
        return ValueEncoder(slot: slot.appendElement(), codingPath: path, userInfo: userInfo).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        return ValueEncoder(slot: slot.appendElement(), codingPath: path, userInfo: userInfo).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let path = nextPath
        return ValueEncoder(slot: slot.appendElement(), codingPath: path, userInfo: userInfo)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let slot: EncodingSlot
    let codingPath: [any CodingKey]
    let userInfo: [CodingUserInfoKey: Any]

    mutating func encodeNil() throws { slot.set(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try slot.encode(value, codingPath: codingPath, userInfo: userInfo) }
}
