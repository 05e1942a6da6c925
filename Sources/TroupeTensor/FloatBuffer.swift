#if canImport(Glibc)
import Glibc
#endif

/// An owned, fixed-size, 64-byte-aligned buffer of Float32 — the storage under parameters, gradients,
/// optimizer moments and activations. One buffer per role keeps a checkpoint or a weight broadcast a
/// single contiguous copy (llm.c's flat-parameter layout).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Buffers at least this large are 2 MiB-aligned and asked to be backed by transparent huge pages
    /// (before their first touch): streaming a model's weights through 4 KiB pages spends a TLB miss
    /// every 1 024 floats. Where the kernel does not do huge pages the hint is ignored.
    static let hugePageThreshold = 4 << 20

    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let bytes = max(count, 1) * 4
        let huge = bytes >= FloatBuffer.hugePageThreshold
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: huge ? 2 << 20 : 64)
        if huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    /// Takes over memory allocated elsewhere (a mapped file, say); `release` frees it when the
    /// buffer goes away.
    public init(adopting pointer: UnsafeMutablePointer<Float>, count: Int, release: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        self.pointer = pointer
        self.release = release
    }

    private var release: (@Sendable (UnsafeMutablePointer<Float>, Int) -> Void)?

    deinit {
        if let release { release(pointer, count) } else { pointer.deallocate() }
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer.copy: size mismatch \(other.count) vs \(count)")
        pointer.update(from: other.pointer, count: count)
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// Raw bytes of the buffer (little-endian Float32 on every platform we run on).
    public var rawBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count * 4) }

    /// True when every element is finite.
    public func allFinite() -> Bool {
        var bad = false
        for i in 0..<count where !pointer[i].isFinite { bad = true; break }
        return !bad
    }
}
