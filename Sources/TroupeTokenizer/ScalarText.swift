/// A piece of UTF-8 text decoded once into Unicode scalars with their character classes, so the
/// pre-tokenizer scanners can walk it by index. Scalar `i` occupies bytes `byteStart[i]..<byteStart[i+1]`.
struct ScalarText {
    var bytes: [UInt8]
    var scalars: [UInt32]
    var kinds: [ScalarKind]
    /// `scalars.count + 1` entries; the last is `bytes.count`.
    var byteStart: [Int]

    var count: Int { scalars.count }

    private init(bytes: [UInt8], scalars: [UInt32], kinds: [ScalarKind], byteStart: [Int]) {
        self.bytes = bytes
        self.scalars = scalars
        self.kinds = kinds
        self.byteStart = byteStart
    }

    /// `bytes` must be valid UTF-8 (it always comes from a Swift `String`).
    init(utf8 bytes: some Collection<UInt8>) {
        let utf8 = Array(bytes)
        var scalars: [UInt32] = []
        var kinds: [ScalarKind] = []
        var byteStart: [Int] = []
        scalars.reserveCapacity(utf8.count)
        kinds.reserveCapacity(utf8.count)
        byteStart.reserveCapacity(utf8.count + 1)
        var position = 0
        while position < utf8.count {
            let lead = utf8[position]
            var value: UInt32
            let length: Int
            if lead < 0x80 {
                value = UInt32(lead); length = 1
            } else if lead < 0xE0 {
                value = UInt32(lead & 0x1F); length = 2
            } else if lead < 0xF0 {
                value = UInt32(lead & 0x0F); length = 3
            } else {
                value = UInt32(lead & 0x07); length = 4
            }
            var offset = 1
            while offset < length {
                value = value << 6 | UInt32(utf8[position + offset] & 0x3F)
                offset += 1
            }
            byteStart.append(position)
            scalars.append(value)
            kinds.append(ScalarKind.of(value))
            position += length
        }
        byteStart.append(utf8.count)
        self.bytes = utf8
        self.scalars = scalars
        self.kinds = kinds
        self.byteStart = byteStart
    }

    func byteRange(_ scalarRange: Range<Int>) -> Range<Int> {
        byteStart[scalarRange.lowerBound]..<byteStart[scalarRange.upperBound]
    }

    /// A copy with a space (U+0020) inserted before every piece that does not start with one, and the
    /// pieces moved accordingly: the `add_prefix_space` of the `ByteLevel` pre-tokenizer, which Hugging
    /// Face applies to every piece the earlier stages produced.
    func prefixingSpaces(to pieces: [Range<Int>]) -> (ScalarText, [Range<Int>]) {
        var result = ScalarText(bytes: [], scalars: [], kinds: [], byteStart: [])
        var moved: [Range<Int>] = []
        moved.reserveCapacity(pieces.count)
        var copiedUpTo = 0
        func copy(upTo end: Int) {
            for index in copiedUpTo..<end {
                result.byteStart.append(result.bytes.count)
                result.scalars.append(scalars[index])
                result.kinds.append(kinds[index])
                result.bytes.append(contentsOf: bytes[byteStart[index]..<byteStart[index + 1]])
            }
            copiedUpTo = end
        }
        for piece in pieces where !piece.isEmpty {
            copy(upTo: piece.lowerBound)
            let start = result.scalars.count
            if scalars[piece.lowerBound] != 0x20 {
                result.byteStart.append(result.bytes.count)
                result.scalars.append(0x20)
                result.kinds.append(ScalarKind.of(0x20))
                result.bytes.append(0x20)
            }
            copy(upTo: piece.upperBound)
            moved.append(start..<result.scalars.count)
        }
        copy(upTo: count)
        result.byteStart.append(result.bytes.count)
        return (result, moved)
    }
}

/// The character classes the pre-tokenizer regexes test, as bits.
struct ScalarKind: OptionSet {
    let rawValue: UInt8

    /// `\p{L}`: general category Lu, Ll, Lt, Lm or Lo.
    static let letter = ScalarKind(rawValue: 1)
    /// `\p{N}`: general category Nd, Nl or No.
    static let number = ScalarKind(rawValue: 2)
    /// `\s`: the Unicode White_Space property (Oniguruma's `\s` for UTF-8, and Rust's `is_whitespace`).
    static let whitespace = ScalarKind(rawValue: 4)
    /// `[\r\n]` (also whitespace).
    static let newline = ScalarKind(rawValue: 8)
    /// `\w` of Rust's regex crate: Alphabetic, marks, Nd, connector punctuation, join controls. Used by
    /// the `single_word` rule of added tokens.
    static let word = ScalarKind(rawValue: 16)

    /// `[^\s\p{L}\p{N}]`: punctuation, symbols, controls that are not whitespace, and so on.
    var isOther: Bool { isDisjoint(with: [.letter, .number, .whitespace]) }

    static func of(_ value: UInt32) -> ScalarKind {
        value < 128 ? asciiKinds[Int(value)] : classify(value)
    }

    private static let asciiKinds: [ScalarKind] = (0..<128).map { classify(UInt32($0)) }

    private static func classify(_ value: UInt32) -> ScalarKind {
        guard let scalar = Unicode.Scalar(value) else { return [] }
        let properties = scalar.properties
        var kind: ScalarKind = []
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            kind.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            kind.insert(.number)
        default:
            break
        }
        if properties.isWhitespace { kind.insert(.whitespace) }
        if value == 0x0A || value == 0x0D { kind.insert(.newline) }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            kind.insert(.word)
        default:
            if properties.isAlphabetic || properties.isJoinControl { kind.insert(.word) }
        }
        return kind
    }
}
