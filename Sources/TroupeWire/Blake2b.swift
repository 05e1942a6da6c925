import CSodium

/// BLAKE2b via libsodium's `crypto_generichash`: the hash for tensors, weight manifests and
/// anything else that identifies content across processes (32-byte digests by default).
public struct Blake2b: ~Copyable {
    // Heap-allocated: libsodium declares the state 64-byte aligned, more than Swift guarantees
    // for a stored property.
    // (The struct itself does not import into Swift because of that alignment attribute, so the
    // functions take it as an OpaquePointer.)
    private let state: OpaquePointer
    private let digestLength: Int

    /// - Parameter digestLength: 16...64 bytes.
    public init(digestLength: Int = 32) {
        _ = sodiumReady
        self.digestLength = min(max(digestLength, Int(crypto_generichash_BYTES_MIN)), Int(crypto_generichash_BYTES_MAX))
        state = OpaquePointer(UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64))
        crypto_generichash_init(state, nil, 0, self.digestLength)
    }

    deinit {
        UnsafeMutableRawPointer(state).deallocate()
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        crypto_generichash_update(state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Hashes a length-prefixed field (little-endian UInt64 length, then the bytes), so that
    /// concatenated fields cannot be confused with one another.
    public mutating func updateField(_ bytes: [UInt8]) {
        updateInteger(UInt64(bytes.count))
        update(bytes)
    }

    public mutating func updateInteger(_ value: UInt64) {
        var littleEndian = value.littleEndian
        withUnsafeBytes(of: &littleEndian) { update($0) }
    }

    public consuming func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: digestLength)
        let length = digestLength
        let state = self.state
        digest.withUnsafeMutableBufferPointer { buffer in
            _ = crypto_generichash_final(state, buffer.baseAddress!, length)
        }
        return digest
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer, digestLength: Int = 32) -> [UInt8] {
        var hasher = Blake2b(digestLength: digestLength)
        hasher.update(bytes)
        return hasher.finalize()
    }

    public static func hash(_ bytes: [UInt8], digestLength: Int = 32) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0, digestLength: digestLength) }
    }
}

/// libsodium must be initialised once before use (it picks the fastest implementation for the CPU).
let sodiumReady: Bool = sodium_init() >= 0
