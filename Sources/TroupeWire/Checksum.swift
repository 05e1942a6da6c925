/// XXH64 (xxHash, 64-bit, seed 0): the checksum in every Envelope.
///
/// Spec: https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md ("XXH64 Algorithm
/// Description"). Chosen over BLAKE2b for the per-message checksum because BLAKE2b (libsodium)
/// hashes about 0.75 GB/s on this project's machines, as slow as loopback ZeroMQ itself
/// (0.6–1 GB/s), so it would double the per-byte cost of group ingestion and weight chunks, while
/// the checksum only has to catch truncation, corruption and framing bugs, not forgery (CURVE's
/// MAC does that when enabled). For the same reason it is the per-tensor hash of weight manifests
/// (protocol 2: BLAKE2b made each actor's verification slower than the transfer); the manifest hash
/// over the tensor list stays BLAKE2b (`Blake2b`).
///
/// Streaming: `update` may be called any number of times; the digest equals that of the
/// concatenated input.
public struct XXH64: Sendable {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    private let seed: UInt64
    private var v1: UInt64, v2: UInt64, v3: UInt64, v4: UInt64
    private var totalLength: UInt64 = 0
    // Input not yet consumed: fewer than 32 bytes, kept as four little-endian lanes.
    private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var pendingCount = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXH64.prime1 &+ XXH64.prime2
        v2 = seed &+ XXH64.prime2
        v3 = seed
        v4 = seed &- XXH64.prime1
    }

    /// One-shot digest.
    public static func digest(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var hasher = XXH64(seed: seed)
        hasher.update(bytes)
        return hasher.finalize()
    }

    public static func digest(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { digest($0, seed: seed) }
    }

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        var acc = accumulator &+ input &* prime2
        acc = (acc << 31) | (acc >> 33)
        return acc &* prime1
    }

    @inline(__always)
    private static func merge(_ accumulator: UInt64, _ value: UInt64) -> UInt64 {
        let acc = accumulator ^ round(0, value)
        return acc &* prime1 &+ prime4
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var pointer = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        totalLength &+= UInt64(remaining)
        if pendingCount > 0 {
            // Top up the pending stripe byte by byte, then consume it.
            withUnsafeMutableBytes(of: &pending) { stripe in
                while pendingCount < 32 && remaining > 0 {
                    stripe[pendingCount] = pointer.load(as: UInt8.self)
                    pendingCount += 1
                    pointer += 1
                    remaining -= 1
                }
            }
            if pendingCount < 32 { return }
            v1 = XXH64.round(v1, UInt64(littleEndian: pending.0))
            v2 = XXH64.round(v2, UInt64(littleEndian: pending.1))
            v3 = XXH64.round(v3, UInt64(littleEndian: pending.2))
            v4 = XXH64.round(v4, UInt64(littleEndian: pending.3))
            pendingCount = 0
        }
        var a = v1, b = v2, c = v3, d = v4
        while remaining >= 32 {
            a = XXH64.round(a, UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self)))
            b = XXH64.round(b, UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            c = XXH64.round(c, UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
            d = XXH64.round(d, UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
            pointer += 32
            remaining -= 32
        }
        v1 = a; v2 = b; v3 = c; v4 = d
        if remaining > 0 {
            let tail = UnsafeRawBufferPointer(start: pointer, count: remaining)
            withUnsafeMutableBytes(of: &pending) { stripe in
                stripe.copyMemory(from: tail)
            }
            pendingCount = remaining
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func finalize() -> UInt64 {
        var hash: UInt64
        if totalLength >= 32 {
            hash = XXH64.rotl(v1, 1) &+ XXH64.rotl(v2, 7) &+ XXH64.rotl(v3, 12) &+ XXH64.rotl(v4, 18)
            hash = XXH64.merge(hash, v1)
            hash = XXH64.merge(hash, v2)
            hash = XXH64.merge(hash, v3)
            hash = XXH64.merge(hash, v4)
        } else {
            hash = seed &+ XXH64.prime5
        }
        hash &+= totalLength
        var stripe = pending
        withUnsafeBytes(of: &stripe) { tail in
            var offset = 0
            while pendingCount - offset >= 8 {
                let lane = UInt64(littleEndian: tail.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                hash ^= XXH64.round(0, lane)
                hash = XXH64.rotl(hash, 27) &* XXH64.prime1 &+ XXH64.prime4
                offset += 8
            }
            if pendingCount - offset >= 4 {
                let word = UInt64(UInt32(littleEndian: tail.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                hash ^= word &* XXH64.prime1
                hash = XXH64.rotl(hash, 23) &* XXH64.prime2 &+ XXH64.prime3
                offset += 4
            }
            while offset < pendingCount {
                hash ^= UInt64(tail[offset]) &* XXH64.prime5
                hash = XXH64.rotl(hash, 11) &* XXH64.prime1
                offset += 1
            }
        }
        hash ^= hash >> 33
        hash &*= XXH64.prime2
        hash ^= hash >> 29
        hash &*= XXH64.prime3
        hash ^= hash >> 32
        return hash
    }
}
