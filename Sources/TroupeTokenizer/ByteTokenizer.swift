/// The built-in tokenizer of the built-in models: one token per UTF-8 byte, then three special tokens.
///
/// | ids        | token                                   |
/// | ---------- | --------------------------------------- |
/// | 0...255    | the byte with that value                |
/// | 256        | `<|bos|>` beginning of sequence         |
/// | 257        | `<|eos|>` end of sequence               |
/// | 258        | `<|pad|>` padding                       |
///
/// `vocabularySize` is 259. Encoding is lossless for every string. Where `recognizingSpecialTokens`
/// is true (the default), the exact texts `<|bos|>`, `<|eos|>` and `<|pad|>` in the input become
/// ids 256, 257 and 258; otherwise they are encoded byte by byte.
///
/// Decoding concatenates the bytes (a special token contributes its text) and decodes them as UTF-8;
/// a byte sequence that is not valid UTF-8 (e.g. a sampled lone continuation byte, or a multi-byte
/// character cut short) becomes U+FFFD, the replacement character, one per maximal invalid subpart.
public struct ByteTokenizer: Tokenizer {
    public static let bosToken = "<|bos|>"
    public static let eosToken = "<|eos|>"
    public static let padToken = "<|pad|>"
    public static let bosId: Int32 = 256
    public static let eosId: Int32 = 257
    public static let padId: Int32 = 258
    /// 256 byte tokens and three special tokens.
    public static let size = 259

    private static let specialTexts: [(text: [UInt8], id: Int32)] = [
        (Array(bosToken.utf8), bosId), (Array(eosToken.utf8), eosId), (Array(padToken.utf8), padId),
    ]

    public init() {}

    public var vocabularySize: Int { Self.size }
    public var bosTokenId: Int32? { Self.bosId }
    public var eosTokenId: Int32? { Self.eosId }
    public var padTokenId: Int32? { Self.padId }
    public var specialTokens: [String: Int32] {
        [Self.bosToken: Self.bosId, Self.eosToken: Self.eosId, Self.padToken: Self.padId]
    }

    public func encode(_ text: String, recognizingSpecialTokens: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        var ids: [Int32] = []
        ids.reserveCapacity(utf8.count)
        var position = 0
        while position < utf8.count {
            // All three special texts start with "<|"; checking that first keeps plain text fast.
            if recognizingSpecialTokens, utf8[position] == UInt8(ascii: "<"),
               let special = Self.specialTexts.first(where: { utf8[position...].starts(with: $0.text) }) {
                ids.append(special.id)
                position += special.text.count
            } else {
                ids.append(Int32(utf8[position]))
                position += 1
            }
        }
        return ids
    }

    public func decode(_ ids: [Int32]) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count)
        for id in ids {
            guard id >= 0, Int(id) < Self.size else {
                throw TokenizerError.idOutOfRange(id: id, vocabularySize: Self.size)
            }
            bytes.append(contentsOf: self.bytes(of: id))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func bytes(of id: Int32) -> [UInt8] {
        switch id {
        case 0...255: return [UInt8(id)]
        case Self.bosId: return Array(Self.bosToken.utf8)
        case Self.eosId: return Array(Self.eosToken.utf8)
        case Self.padId: return Array(Self.padToken.utf8)
        default: return []
        }
    }

    /// Printable ASCII (space through `~`) as itself, other bytes as `<0xNN>`, specials by their text.
    public func tokenString(for id: Int32) -> String? {
        switch id {
        case 0x20...0x7E: return String(UnicodeScalar(UInt8(id)))
        case 0...255: return "<0x" + hex2(UInt8(id)) + ">"
        case Self.bosId: return Self.bosToken
        case Self.eosId: return Self.eosToken
        case Self.padId: return Self.padToken
        default: return nil
        }
    }
}

private func hex2(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}
