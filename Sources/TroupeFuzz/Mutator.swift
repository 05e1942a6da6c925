import TroupeTensor

/// Seeded mutations of byte strings, the moves of coverage-free fuzzers (AFL's havoc stage): bit
/// flips, interesting integers, inserted, deleted, duplicated and spliced ranges, and tokens from a
/// dictionary. The same seed gives the same inputs, so a failure is reproduced by its seed and index.
struct Mutator {
    private var rng: Xoshiro256
    /// Tokens worth inserting whole (JSON punctuation, extreme numbers, protobuf varints…).
    let dictionary: [[UInt8]]

    init(seed: UInt64, dictionary: [[UInt8]]) {
        rng = Xoshiro256(seed: seed)
        self.dictionary = dictionary
    }

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }

    static let interestingBytes: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x22, 0x5C, 0x0A]
    static let interestingWords: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
                                             0xFFFF_FFFF, 0x1_0000_0000, .max, .max >> 1]

    /// 1 to 8 stacked mutations of `input`; `other` is a second seed input to splice from.
    mutating func mutate(_ input: [UInt8], splicingWith other: [UInt8]) -> [UInt8] {
        var out = input
        for _ in 0...below(8) { apply(&out, other: other) }
        return out
    }

    private mutating func apply(_ out: inout [UInt8], other: [UInt8]) {
        let n = out.count
        switch below(11) {
        case 0 where n > 0: // flip one bit
            out[below(n)] ^= UInt8(1) << UInt8(below(8))
        case 1 where n > 0: // an interesting byte
            out[below(n)] = Self.interestingBytes[below(Self.interestingBytes.count)]
        case 2 where n > 0: // a random byte
            out[below(n)] = UInt8(truncatingIfNeeded: rng.next())
        case 3 where n >= 2: // an interesting 1–8-byte integer, either byte order
            let width = [2, 4, 8][below(3)]
            guard n >= width else { return }
            let at = below(n - width + 1)
            var word = Self.interestingWords[below(Self.interestingWords.count)]
            if below(2) == 0 { word = word.byteSwapped >> UInt64(64 - 8 * width) }
            for i in 0..<width { out[at + i] = UInt8(truncatingIfNeeded: word >> UInt64(8 * i)) }
        case 4 where n > 0: // delete a range
            let at = below(n)
            out.removeSubrange(at..<min(n, at + 1 + below(16)))
        case 5: // insert random bytes
            let bytes = (0...below(16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            out.insert(contentsOf: bytes, at: below(n + 1))
        case 6 where n > 0: // duplicate a range
            let at = below(n)
            let piece = out[at..<min(n, at + 1 + below(32))]
            out.insert(contentsOf: piece, at: below(n + 1))
        case 7 where !other.isEmpty: // splice a piece of the other input
            let at = below(other.count)
            let piece = other[at..<min(other.count, at + 1 + below(64))]
            if n > 0 && below(2) == 0 {
                let start = below(n)
                out.replaceSubrange(start..<min(n, start + piece.count), with: piece)
            } else {
                out.insert(contentsOf: piece, at: below(n + 1))
            }
        case 8 where !dictionary.isEmpty: // a dictionary token, inserted or overwriting
            let token = dictionary[below(dictionary.count)]
            let at = below(n + 1)
            if below(2) == 0 || at + token.count > n { out.insert(contentsOf: token, at: at) } else {
                out.replaceSubrange(at..<(at + token.count), with: token)
            }
        case 9 where n > 1: // truncate
            out.removeLast(1 + below(n - 1))
        default: // repeat a byte many times (long strings, deep nesting)
            guard n > 0 else { out.append(0); return }
            let at = below(n)
            out.insert(contentsOf: repeatElement(out[at], count: 1 + below(512)), at: at)
        }
    }
}
