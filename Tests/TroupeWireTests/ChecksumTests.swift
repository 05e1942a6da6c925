import Testing
import TroupeWire

/// Reference values from the xxhash Python package 3.5 (`xxhash.xxh64_intdigest`).
@Test func xxh64MatchesReferenceVectors() {
    #expect(XXH64.digest([]) == 0xEF46_DB37_51D8_E999)
    #expect(XXH64.digest(Array("a".utf8)) == 0xD24E_C4F1_A98C_6E5B)
    #expect(XXH64.digest(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
    let ramp = (0..<768).map { UInt8($0 % 256) }
    #expect(XXH64.digest(ramp) == 0x8E03_C838_C596_036F)
}

@Test func xxh64StreamingEqualsOneShot() {
    let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let whole = XXH64.digest(bytes)
    for split in [0, 1, 7, 8, 31, 32, 33, 63, 64, 500, 999, 1000] {
        for secondSplit in [split, min(split + 3, 1000), min(split + 40, 1000)] {
            var hasher = XXH64()
            hasher.update(Array(bytes[0..<split]))
            hasher.update(Array(bytes[split..<secondSplit]))
            hasher.update(Array(bytes[secondSplit...]))
            #expect(hasher.finalize() == whole, "splits at \(split), \(secondSplit)")
        }
    }
}

/// RFC 7693 appendix A (BLAKE2b-512 of "abc") and the well-known BLAKE2b-256 of the empty string.
@Test func blake2bMatchesReferenceVectors() {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
    #expect(hex(Blake2b.hash(Array("abc".utf8), digestLength: 64))
        == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
    #expect(hex(Blake2b.hash([])) == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
    var streaming = Blake2b()
    streaming.update(Array("a".utf8))
    streaming.update(Array("bc".utf8))
    #expect(streaming.finalize() == Blake2b.hash(Array("abc".utf8)))
}
