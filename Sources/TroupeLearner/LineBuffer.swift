/// Bytes appended through a raw pointer: the run log's writer builds each batch of lines in one,
/// from a few hundred small pieces per accepted group. `[UInt8].append(contentsOf:)` cost a call, a
/// uniqueness check and a `memmove` per piece, a fifth of the writer's time (docs/benchmarks.md).
package final class LineBuffer {
    // Unchecked: one thread owns a buffer, and the runtime's exclusivity checks of these three cost
    // about a tenth of the writer's time.
    @exclusivity(unchecked) private var base: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) package private(set) var capacity: Int
    @exclusivity(unchecked) package private(set) var count = 0

    package init(capacity: Int = 4096) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    package var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Room for `extra` more bytes, growing by doubling.
    @inline(__always) package func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private func grow(to needed: Int) {
        let grown = max(needed, 2 * capacity)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        moved.update(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = grown
    }

    @inline(__always) package func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    package func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    package func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// The UTF-8 of `text`, as it is (no escaping).
    package func append(utf8 text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Lets `body` write at most `maxBytes` at the end; it returns how many it wrote.
    package func appendInPlace(maxBytes: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        reserve(maxBytes)
        let written = body(base + count)
        precondition(written <= maxBytes)
        count += written
    }

    /// Keeps the first `length` bytes.
    package func truncate(to length: Int) {
        precondition(length >= 0 && length <= count)
        count = length
    }

    /// Empties the buffer, keeping its memory unless that grew past `keptCapacity` (a burst of large
    /// records once should not hold its memory for the rest of the run).
    package func removeAll(keepingAtMost keptCapacity: Int = .max) {
        count = 0
        guard capacity > keptCapacity else { return }
        base.deallocate()
        capacity = max(keptCapacity, 16)
        base = .allocate(capacity: capacity)
    }

    /// The bytes from `start` to the end.
    package func withUnsafeBytes<R>(from start: Int = 0, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base + start, count: count - start))
    }
}
