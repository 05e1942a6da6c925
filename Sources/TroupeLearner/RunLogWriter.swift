import Foundation
import TroupeModel
import TroupeRuntime
import TroupeTensor

/// Encodes, chains and writes `RunLog`'s records: on the appending thread (`.inline`), or on threads of
/// its own (`.thread`): a writer that takes every record queued since its last pass and writes them in
/// one go, and a syncer that makes everything written so far durable with one fsync (group commit),
/// then wakes the owner's poller. The writer goes on with the next batch while the syncer waits for
/// the disk, so a record waits for one fsync, not for the fsync and the encoding of everything queued
/// before it. A record's encoding (base64 of its arrays, JSON) and hash leave the learner's I/O
/// thread, and so does the fsync: the I/O thread goes on receiving, and holds each ack until
/// `durableCount` covers the records before it.
final class RunLogWriter: @unchecked Sendable {
    /// The last record written: its hash (the next record's `prev`) and the file's size after it.
    struct ChainEnd {
        var hash: String
        var size: Int
    }

    /// A record to write: its place in the chain, and its body, built on the writer's side.
    struct Pending {
        let seq: Int
        let type: String
        let body: () throws -> RecordBody
    }

    /// How long a record queued without a wake may wait for the writer.
    static let unwokenDelay = 0.05
    /// Records queued without a wake that wake the writer anyway (once), so that it works through a long turn.
    static let wakeAfter = 16

    let path: String
    let threaded: Bool
    private let fd: Int32
    private let wakePipe: WakePipe?
    private let condition = NSCondition()
    // Guarded by `condition` when threaded; the chain's end is written by the writer only.
    private var queue: [Pending] = []
    private var chainEnd: ChainEnd
    private var written = 0, durable = 0
    private var failure: Error?
    private var stopping = false, writerDone = false, syncerDone = false
    /// The lines of the batch being written (the writer's side only; reused, so no allocation per record).
    private let buffer = LineBuffer(capacity: 1 << 16)

    /// `count` records, ending in `lastHash` at byte `size`, are on disk already (the log as opened).
    init(path: String, fd: Int32, count: Int, lastHash: String, size: Int, threaded: Bool) {
        self.path = path
        self.fd = fd
        self.threaded = threaded
        chainEnd = ChainEnd(hash: lastHash, size: size)
        written = count
        durable = count
        wakePipe = threaded ? WakePipe() : nil
        guard threaded else { return }
        for (name, loop) in [("run-log", writeLoop), ("run-log-sync", syncLoop)] {
            let thread = Thread {
                nameCurrentThread(name)
                loop()
            }
            thread.name = name
            thread.start()
        }
    }

    deinit { close(fd) }

    /// Readable when more records are durable (threaded only).
    var wakeFileDescriptor: Int32? { wakePipe?.fileDescriptor }

    var lastHash: String { locked { chainEnd.hash } }
    var size: Int { locked { chainEnd.size } }
    /// Some written record is not known to be on disk.
    var unsynced: Bool { locked { written > durable || !queue.isEmpty } }

    /// Inline: encodes and writes `record` now (an encoding error leaves the log as it was). Threaded:
    /// queues it, or throws the error that stopped the writer; with `wake` false the writer is not
    /// woken for it: the next `startWriting`, a waking submit or the writer's own timeout takes it.
    func submit(_ record: Pending, wake: Bool = true) throws {
        guard threaded else {
            chainEnd = try write([record], after: chainEnd)
            written = record.seq
            return
        }
        try locked {
            if let failure { throw failure }
            queue.append(record)
            // The syncer waits on the same condition: a broadcast per record woke both threads for each group.
            if wake || queue.count == Self.wakeAfter { condition.broadcast() }
        }
    }

    /// Wakes the writer for what is queued (threaded; inline everything is written already).
    func startWriting() {
        guard threaded else { return }
        locked { if !queue.isEmpty { condition.broadcast() } }
    }

    /// Returns once the records up to `seq` are durable. Inline: fsyncs now if needed.
    func waitUntilDurable(_ seq: Int) throws {
        guard threaded else {
            guard durable < seq else { return }
            try fsyncLog()
            durable = written
            return
        }
        try locked {
            if !queue.isEmpty { condition.broadcast() }
            while durable < seq && failure == nil { condition.wait() }
            if let failure { throw failure }
        }
    }

    /// How many records are durable, after taking the pending wake-ups; throws the writer's error.
    func durableCount() throws -> Int {
        wakePipe?.drain()
        return try locked {
            if let failure { throw failure }
            return durable
        }
    }

    /// Writes and syncs what is queued, then ends the threads (inline: nothing to do).
    func stop() {
        guard threaded else { return }
        locked {
            stopping = true
            condition.broadcast()
            while !(writerDone && syncerDone) { condition.wait() }
        }
    }

    // MARK: the threads' side

    /// Takes what is queued, writes it, hands it to the syncer, and goes on with the next batch while
    /// the disk works.
    private func writeLoop() {
        while true {
            condition.lock()
            // Records queued without a wake are taken within `unwokenDelay` at the latest.
            while queue.isEmpty && !stopping && failure == nil { _ = condition.wait(until: Date(timeIntervalSinceNow: Self.unwokenDelay)) }
            if queue.isEmpty || failure != nil {
                writerDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let start = chainEnd
            condition.unlock()
            do {
                let end = try write(batch, after: start)
                locked {
                    chainEnd = end
                    written = batch.last!.seq
                    condition.broadcast()
                }
            } catch {
                fail(error)
            }
        }
    }

    /// Makes what has been written durable, one fsync for all of it: a record whose write returned
    /// before the fsync began is on disk when it returns.
    private func syncLoop() {
        while true {
            condition.lock()
            while written == durable && !writerDone && failure == nil { condition.wait() }
            if failure != nil || written == durable {
                syncerDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let target = written
            condition.unlock()
            do {
                try fsyncLog()
                locked {
                    durable = target
                    condition.broadcast()
                }
                wakePipe?.wake()
            } catch {
                fail(error)
            }
        }
    }

    private func fail(_ error: Error) {
        locked {
            if failure == nil { failure = error }
            condition.broadcast()
        }
        wakePipe?.wake()
    }

    /// Encodes `records` into one reused buffer, a line each (the body with `seq`, `type` and `prev`, then
    /// its hash as the last key), and writes the buffer with as few calls as the kernel allows; returns
    /// the new end of the chain. A record that cannot be encoded ends the batch: the lines before it are
    /// written, then its error is thrown (inline, with one record, the log stays as it was).
    private func write(_ records: [Pending], after start: ChainEnd) throws -> ChainEnd {
        buffer.removeAll(keepingAtMost: 1 << 24)
        var end = start
        var encodingError: Error?
        for record in records {
            let lineStart = buffer.count
            do {
                var body = try record.body()
                body.members["seq"] = .integer(record.seq)
                body.members["type"] = .string(record.type)
                body.members["prev"] = .string(end.hash)
                try RecordEncoder.encode(body, into: buffer)
            } catch {
                buffer.truncate(to: lineStart)
                encodingError = error
                break
            }
            let hash = buffer.withUnsafeBytes(from: lineStart) { ChainHash.xxh64.hex($0) }
            buffer.truncate(to: buffer.count - 1) // the closing brace: the hash goes in as the last key
            buffer.append(",\"hash\":\"")
            buffer.append(utf8: hash)
            buffer.append("\"}\n")
            end = ChainEnd(hash: hash, size: end.size + buffer.count - lineStart)
        }
        guard buffer.withUnsafeBytes({ AtomicFile.writeAll(fd, $0) }) else {
            throw RunLog.LogError.unreadable(path, "write failed: \(String(cString: strerror(errno)))")
        }
        if let encodingError { throw encodingError }
        return end
    }

    private func fsyncLog() throws {
        guard fsync(fd) == 0 else { throw RunLog.LogError.unreadable(path, "fsync failed: \(String(cString: strerror(errno)))") }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }
}
