#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An immutable, reference-counted byte buffer that can be sent without copying.
///
/// `Frame(sharing:range:)` hands a slice of it to libzmq with `zmq_msg_init_data`; libzmq reads the
/// bytes from its I/O thread after `send` returns and calls a free function when done, which
/// releases the reference taken at send time. The buffer is therefore never written after
/// `init` returns (that is what makes the sharing safe), and it lives as long as any send of it is
/// in flight, even if every other owner has dropped it.
///
/// Typical use: the learner's flat weights blob for one version; each weight chunk is a `Frame`
/// sharing a range of it.
public final class SharedBuffer: @unchecked Sendable {
    // Immutable after init, so concurrent reads (ours and libzmq's I/O thread) are safe.
    let base: UnsafeMutableRawPointer
    public let count: Int

    /// Allocates `count` bytes and lets `fill` write them once.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let size = max(count, 0)
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 64)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: base, count: size))
        } catch {
            base.deallocate()
            throw error
        }
        self.base = base
        self.count = size
    }

    /// Copies raw bytes.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { destination in
            if bytes.count > 0 { destination.copyMemory(from: bytes) }
        }
    }

    /// Copies the in-memory representation of an array of plain values (bytes, Int32, Float, ...).
    public convenience init<Element: BitwiseCopyable>(copying array: [Element]) {
        self.init(count: array.count * MemoryLayout<Element>.stride) { destination in
            array.withUnsafeBytes { source in
                if source.count > 0 { destination.copyMemory(from: source) }
            }
        }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Takes over memory allocated elsewhere (a mapped shared-memory file, say); `release` frees it
    /// once the last reference, ours or a zero-copy frame's in flight, is gone.
    public init(adopting base: UnsafeMutableRawPointer, count: Int, release: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void) {
        self.base = base
        self.count = max(count, 0)
        self.release = release
    }

    private var release: (@Sendable (UnsafeMutableRawPointer, Int) -> Void)?

    deinit {
        if let release { release(base, count) } else { base.deallocate() }
    }
}

/// One part of a ZeroMQ multipart message.
///
/// Received frames always own an array copy of the bytes. Frames built with `init(sharing:range:)`
/// are sent zero-copy.
public struct Frame: Sendable {
    enum Storage: Sendable {
        case array([UInt8])
        case shared(SharedBuffer, Range<Int>)
    }

    let storage: Storage

    public init(_ bytes: [UInt8]) {
        storage = .array(bytes)
    }

    /// A zero-copy frame over `buffer[range]` (the whole buffer by default).
    /// A range outside the buffer is clamped to it.
    public init(sharing buffer: SharedBuffer, range: Range<Int>? = nil) {
        let whole = 0..<buffer.count
        storage = .shared(buffer, (range ?? whole).clamped(to: whole))
    }

    /// Byte length.
    public var count: Int {
        switch storage {
        case .array(let bytes): return bytes.count
        case .shared(_, let range): return range.count
        }
    }

    /// True for frames that `send` hands to libzmq without copying.
    public var isZeroCopy: Bool {
        if case .shared = storage { return true }
        return false
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .array(let bytes):
            return try bytes.withUnsafeBytes(body)
        case .shared(let buffer, let range):
            return try body(UnsafeRawBufferPointer(start: buffer.base + range.lowerBound, count: range.count))
        }
    }

    /// The bytes as an array (a copy for shared frames).
    public var bytes: [UInt8] {
        switch storage {
        case .array(let bytes): return bytes
        case .shared: return withUnsafeBytes { [UInt8]($0) }
        }
    }
}

extension Frame: Equatable {
    /// Byte-wise equality, whatever the storage.
    public static func == (lhs: Frame, rhs: Frame) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.count == 0 { return true }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
    }
}

extension Frame: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: UInt8...) {
        self.init(elements)
    }
}
