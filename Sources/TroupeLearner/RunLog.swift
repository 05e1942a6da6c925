import Foundation
import TroupeJSON
import TroupeModel
import TroupeWire

/// The run log: the source of truth of a run (docs/ARCHITECTURE.md §5). Append-only JSON lines; each line holds
/// `seq`, `type`, `prev` (the previous line's hash) and its own `hash` as the last key, where hash is
/// the line's bytes before `,"hash":`, plus "}", hashed (`ChainHash`). Any edit, reordering or lost line
/// breaks the chain and is reported with its line number.
///
/// Durability is explicit. `append` with `sync` (the default) returns once the record is on disk;
/// without it, a later `sync()` or `commit()` covers it. The learner writes through threads of the
/// log's own (`Writing.thread`): its hot path (accepted groups) appends without waiting, and each ack
/// waits until `durableCount()` covers the records appended before it — group commit: one fsync covers
/// many records, and nothing the learner acknowledges is ever ahead of the disk. A crash in the middle
/// of a write leaves complete lines and at most one torn last line, without its closing newline (lines
/// are written whole, in order, each ending with it): opening the log cuts that off. A complete line
/// that fails its checks is damage, never a torn write: an error naming it.
package final class RunLog {
    package struct Record {
        package let seq: Int
        package let type: String
        /// Every key of the line but `hash` (so `seq`, `type` and `prev` too).
        package let body: [String: JSONValue]
        /// Byte offset just after this record's line.
        package let endOffset: Int
        package let hash: String
    }

    package enum LogError: Error, CustomStringConvertible {
        case unreadable(String, String)
        case brokenChain(path: String, line: Int, reason: String)

        package var description: String {
            switch self {
            case .unreadable(let p, let r): return "run log \(p): \(r)"
            case .brokenChain(let p, let line, let r): return "run log \(p):\(line): \(r)"
            }
        }
    }

    /// Where records are encoded, hashed, written and synced.
    package enum Writing {
        /// On the appending thread, when it appends (and fsyncs when it syncs): tools, tests that step a
        /// learner turn by turn.
        case inline
        /// On the log's own threads, a writer and a syncer that makes what the writer wrote durable with
        /// one fsync (the learner). A record that cannot be written stops them: every later call throws.
        case thread
    }

    package let path: String
    /// Records appended (written or queued), the opened ones included.
    package private(set) var count = 0
    /// Bytes of a torn final line removed on open (0 when the log was clean).
    package private(set) var truncatedBytes = 0
    /// Where those bytes were kept before they were cut (`RUN.log.torn-UNIXTIME`), nil when none were.
    package private(set) var tornTailPath: String?
    private let writer: RunLogWriter

    /// Opens (creating if needed) and verifies the whole chain; returns the records too.
    package init(path: String, writing: Writing = .inline) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let (records, validBytes, total) = try RunLog.scan(path: path)
        if validBytes < total {
            truncatedBytes = total - validBytes
            // Kept beside the log before it is cut: nothing a crash left is thrown away.
            let kept = path + ".torn-\(Int(Date().timeIntervalSince1970))"
            guard let handle = FileHandle(forReadingAtPath: path) else { throw LogError.unreadable(path, "cannot read the torn tail") }
            handle.seek(toFileOffset: UInt64(validBytes))
            let tail = handle.readDataToEndOfFile()
            handle.closeFile()
            do { try AtomicFile.write(tail, to: kept) } catch {
                throw LogError.unreadable(path, "cannot keep its torn tail in \(kept) before cutting it: \(error)")
            }
            tornTailPath = kept
            guard truncate(path, off_t(validBytes)) == 0 else { throw LogError.unreadable(path, "cannot cut the torn tail") }
        }
        let fd = open(path, O_WRONLY | O_APPEND)
        guard fd >= 0 else { throw LogError.unreadable(path, String(cString: strerror(errno))) }
        count = records.count
        writer = RunLogWriter(path: path, fd: fd, count: records.count, lastHash: records.last?.hash ?? ChainHash.xxh64.genesis,
                              size: validBytes, threaded: writing == .thread)
        opened = records
    }

    /// The records found when the log was opened.
    package private(set) var opened: [Record] = []

    /// The writer's threads, if any, write and sync what is queued before the log closes.
    deinit { writer.stop() }

    /// The hash of the last record written (with `Writing.thread`, queued records are not yet).
    package var lastHash: String { writer.lastHash }
    /// Bytes written (with `Writing.thread`, queued records are not yet).
    package var size: Int { writer.size }
    /// True while some appended record may not be on disk yet.
    package var unsynced: Bool { writer.unsynced }
    /// Readable when more records are durable (`Writing.thread`; nil inline): for the owner's poller.
    package var wakeFileDescriptor: Int32? { writer.wakeFileDescriptor }

    /// Appends one typed record (the learner's way); see `append(_:_:sync:)` for `sync`. With
    /// `Writing.thread`, the record's body is built on the writer's thread.
    package func append(_ record: RunRecord, sync: Bool = true) throws {
        try append(record.type, body: { try record.body() }, sync: sync)
    }

    /// Appends one record of any type (tests, benchmarks); `seq`, `type` and `prev` are added.
    package func append(_ type: String, _ members: [String: JSONValue] = [:], sync: Bool = true) throws {
        try append(type, RecordBody(members: members), sync: sync)
    }

    /// Appends one record; with `sync` (the default) it is on disk when this returns, without it the
    /// next `sync()` makes it so, or with `Writing.thread` the writer once `commit()` (or 16 queued
    /// records, or its 50 ms timeout) wakes it, then its syncer.
    package func append(_ type: String, _ body: RecordBody, sync: Bool) throws {
        try append(type, body: { body }, sync: sync)
    }

    private func append(_ type: String, body: @escaping () throws -> RecordBody, sync: Bool) throws {
        // A record that need not be durable yet does not wake the writer: `commit()` does, once for all
        // of a turn's records (a wake per group cost a futex call each and wrote the groups in batches of 3–7).
        try writer.submit(RunLogWriter.Pending(seq: count + 1, type: type, body: body), wake: sync)
        count += 1
        if sync { try writer.waitUntilDurable(count) }
    }

    /// Makes every record appended so far durable before it returns (one fsync; nothing to do when all are).
    package func sync() throws { try writer.waitUntilDurable(count) }

    /// Asks for every record appended so far to become durable and returns how many that is: inline it
    /// fsyncs now; with `Writing.thread` the syncer's next fsync does, and `durableCount()` says when
    /// (and throws what stopped the writer threads).
    package func commit() throws -> Int {
        if !writer.threaded { try sync() }
        writer.startWriting()
        return count
    }

    /// Records known to be on disk (taking the wake-ups of `wakeFileDescriptor`); throws the error that
    /// stopped the writer threads.
    package func durableCount() throws -> Int { try writer.durableCount() }

    /// Reads and verifies a log without opening it for writing. A torn final line (no closing newline)
    /// is ignored; any other damage, the last complete line's included, is an error naming the line.
    package static func read(path: String) throws -> [Record] { try scan(path: path).records }

    static func scan(path: String) throws -> (records: [Record], validBytes: Int, totalBytes: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { throw LogError.unreadable(path, "cannot read") }
        var records: [Record] = []
        var prev: String?  // nil before the first line, whose prev is its hash's genesis
        var offset = 0
        var lineNumber = 0
        let bytes = [UInt8](data)
        let marker = Array(",\"hash\":\"".utf8)
        while offset < bytes.count {
            lineNumber += 1
            guard let nl = bytes[offset...].firstIndex(of: 0x0A) else {
                return (records, offset, bytes.count) // torn tail: no newline
            }
            let line = Array(bytes[offset..<nl])
            func fail(_ reason: String) throws -> (records: [Record], validBytes: Int, totalBytes: Int) {
                throw LogError.brokenChain(path: path, line: lineNumber, reason: reason)
            }
            guard line.count > marker.count + 18, let m = lastRange(of: marker, in: line), line.suffix(2).elementsEqual("\"}".utf8),
                  m + marker.count <= line.count - 2 else { return try fail("no hash as the line's last key") }
            let hashBytes = line[(m + marker.count)..<(line.count - 2)]
            guard let stated = String(bytes: hashBytes, encoding: .utf8), let chain = ChainHash(digestLength: stated.utf8.count) else {
                return try fail("malformed hash")
            }
            var hashed = Data(line[0..<m])
            hashed.append(0x7D)
            guard hashed.withUnsafeBytes({ chain.hex($0) }) == stated else { return try fail("hash does not match the line's content (edited or corrupt)") }
            guard let object = (try? JSONValue.parse(hashed))?.object else { return try fail("not JSON") }
            guard object["prev"]?.string == prev ?? chain.genesis else {
                return try fail("prev does not match the previous line's hash (lines lost or reordered)")
            }
            guard let seq = object["seq"]?.int, seq == records.count + 1, let type = object["type"]?.string else {
                return try fail("sequence number out of order")
            }
            offset = nl + 1
            records.append(Record(seq: seq, type: type, body: object, endOffset: offset, hash: stated))
            prev = stated
        }
        return (records, offset, bytes.count)
    }

    private static func lastRange(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var i = hay.count - needle.count
        while i >= 0 {
            if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
            i -= 1
        }
        return nil
    }
}

/// The hash that chains the run log's lines. It catches damage, lost lines and reordering, not forgery:
/// it is unkeyed, so whoever edits a line can recompute every hash after it, and a cryptographic hash
/// would add nothing but cost. Lines are written with XXH64 (16 hex digits; the envelope's checksum,
/// about 9× faster than BLAKE2b on a 12 KB line here: docs/benchmarks.md); lines written before carry BLAKE2b-256
/// (64 hex digits) and are still read, so a log may hold both. Each line's digest length says which.
package enum ChainHash {
    case xxh64, blake2b256

    /// The hash a line of `digestLength` hex digits was written with; nil for any other length.
    package init?(digestLength: Int) {
        switch digestLength {
        case 16: self = .xxh64
        case 64: self = .blake2b256
        default: return nil
        }
    }

    /// The first line's `prev`.
    package var genesis: String { self == .xxh64 ? String(repeating: "0", count: 16) : String(repeating: "0", count: 64) }

    /// Lowercase hex of the digest.
    package func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        switch self {
        case .blake2b256: return WeightsHash.hex(bytes: bytes)
        case .xxh64:
            let digest = XXH64.digest(bytes)
            return String(unsafeUninitializedCapacity: 16) { out in
                for i in 0..<16 { out[i] = RecordEncoder.hexDigits[Int(digest >> (60 - 4 * UInt64(i)) & 15)] }
                return 16
            }
        }
    }
}

/// Exact, compact encodings of numeric arrays for the run log.
package enum Base64Arrays {
    package static func encode(_ values: [Int32]) -> String { values.withUnsafeBytes { base64($0) } }
    package static func encode(_ values: [Float]) -> String { values.withUnsafeBytes { base64($0) } }

    /// Two base64 digits for every 12-bit value: two lookups per 3 input bytes instead of four.
    private static let digitPairs: [UInt16] = {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        // Stored little-endian, so that the pair's bytes land in order.
        return (0..<4096).map { UInt16(alphabet[$0 >> 6]) | UInt16(alphabet[$0 & 63]) << 8 }
    }()

    /// Standard base64 with padding (RFC 4648 §4), into a native string: Foundation's encoder hands
    /// back a bridged string that is slow to read byte by byte.
    static func base64(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: (bytes.count + 2) / 3 * 4) { out in
            write(bytes, to: UnsafeMutableRawPointer(out.baseAddress!))
        }
    }

    /// Appends the base64 of `bytes` to `out`, written in place (the run log's hot path writes JSON
    /// straight into bytes).
    package static func append(_ bytes: UnsafeRawBufferPointer, to out: LineBuffer) {
        let digits = (bytes.count + 2) / 3 * 4
        out.appendInPlace(maxBytes: digits) { write(bytes, to: UnsafeMutableRawPointer($0)) }
    }

    /// Writes (n + 2) / 3 * 4 digits at `out`; returns how many.
    private static func write(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) -> Int {
        let n = bytes.count
        guard n > 0, let input = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        return digitPairs.withUnsafeBufferPointer { pairs in
            var o = 0, i = 0
            // Six bytes a turn from one unaligned 8-byte load: four pair lookups, one 8-byte store.
            while i + 8 <= n {
                let w = UInt64(bigEndian: UnsafeRawPointer(input + i).loadUnaligned(as: UInt64.self))
                let digits = UInt64(pairs[Int(truncatingIfNeeded: w >> 52)])
                    | UInt64(pairs[Int(truncatingIfNeeded: (w >> 40) & 4095)]) << 16
                    | UInt64(pairs[Int(truncatingIfNeeded: (w >> 28) & 4095)]) << 32
                    | UInt64(pairs[Int(truncatingIfNeeded: (w >> 16) & 4095)]) << 48
                out.storeBytes(of: digits, toByteOffset: o, as: UInt64.self)
                i += 6; o += 8
            }
            while i + 3 <= n {
                let v = Int(input[i]) << 16 | Int(input[i + 1]) << 8 | Int(input[i + 2])
                out.storeBytes(of: pairs[v >> 12], toByteOffset: o, as: UInt16.self)
                out.storeBytes(of: pairs[v & 4095], toByteOffset: o + 2, as: UInt16.self)
                i += 3; o += 4
            }
            if i < n {
                let v = Int(input[i]) << 16 | (i + 1 < n ? Int(input[i + 1]) << 8 : 0)
                out.storeBytes(of: pairs[v >> 12], toByteOffset: o, as: UInt16.self)
                let third = UInt8(truncatingIfNeeded: pairs[v & 4095])
                out.storeBytes(of: i + 1 < n ? third : 0x3D, toByteOffset: o + 2, as: UInt8.self)
                out.storeBytes(of: UInt8(0x3D), toByteOffset: o + 3, as: UInt8.self)
                o += 4
            }
            return o
        }
    }
    package static func int32s(_ text: String) -> [Int32]? {
        guard let d = Data(base64Encoded: text), d.count % 4 == 0 else { return nil }
        return d.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    }
    package static func floats(_ text: String) -> [Float]? {
        guard let d = Data(base64Encoded: text), d.count % 4 == 0 else { return nil }
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
