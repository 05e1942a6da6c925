/// GPT-2's reversible byte ↔ character mapping (`bytes_to_unicode` in openai/gpt-2 `encoder.py`,
/// Hugging Face `tokenizers` `ByteLevel`): byte-level BPE vocabularies spell every byte as one visible
/// character. Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves; the other 68
/// bytes map, in increasing order, to U+0100, U+0101, … (so a space, 0x20, is `Ġ` U+0120).
enum ByteLevelAlphabet {
    /// The character standing for each byte value.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte`, indexed by scalar value (all are below 0x144); -1 where no byte maps.
    private static let byteForScalarValue: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = Int(scalar.value)
        guard value < byteForScalarValue.count, byteForScalarValue[value] >= 0 else { return nil }
        return UInt8(byteForScalarValue[value])
    }

    /// The byte-level spelling of `bytes`, e.g. `" hi"` → `"Ġhi"`.
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var result = String.UnicodeScalarView()
        for byte in bytes { result.append(scalarForByte[Int(byte)]) }
        return String(result)
    }

    /// The bytes a token contributes to decoded text, as the `ByteLevel` decoder of Hugging Face
    /// `tokenizers` computes them: the mapped bytes when every character of the token is in the
    /// alphabet, else the token's own UTF-8 (e.g. an added token `" [X] "` containing a plain space).
    static func decodedBytes(of token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byte(for: scalar) else { return Array(token.utf8) }
            bytes.append(byte)
        }
        return bytes
    }

    /// The bytes of a vocabulary entry if it is spelled in the alphabet, else nil.
    static func strictBytes(of token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for scalar in token.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
