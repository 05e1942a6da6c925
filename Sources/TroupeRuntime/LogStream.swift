import Foundation
import TroupeJSON
import TroupeModel
import TroupeProto
import TroupeWire

/// Where a process's log-stream events go: `LogPublisher` over ZeroMQ, `InMemoryLogStream` in tests.
package protocol LogStreamPublisher: AnyObject {
    func publish(kind: String, step: Int, metrics: [String: Double], fields: [String: String], text: String)
    /// The sequence number of the last event published (0: none yet).
    var lastSequence: UInt64 { get }
    func close()
}

extension LogStreamPublisher {
    package func publish(kind: String, step: Int = 0, metrics: [String: Double] = [:], fields: [String: String] = [:]) {
        publish(kind: kind, step: step, metrics: metrics, fields: fields, text: "")
    }
}

/// Publishes numbered LogEvents into the learner's log proxy. A PUB socket never blocks: a slow
/// or absent subscriber costs nothing; subscribers count gaps from the sequence numbers.
package final class LogPublisher: LogStreamPublisher {
    package let source: String
    package let runId: UInt64
    private var sequence: UInt64
    private let socket: ZMQSocket

    /// `security`: CURVE client options when the learner's log proxy is authenticated. `after`: the last
    /// sequence number this source and run id published on an earlier connection, so that numbering goes
    /// on instead of starting again (a subscriber would take the repeats for events out of order).
    package init(context: ZMQContext, endpoint: Endpoint, source: String, runId: UInt64, security: [SocketOption] = [],
                 after sequence: UInt64 = 0) throws {
        self.source = source
        self.runId = runId
        self.sequence = sequence
        socket = try ZMQSocket(context, type: .publish, linger: .upTo(milliseconds: 200))
        try socket.set([.sendHighWaterMark(10_000)] + security)
        try socket.connect(endpoint)
    }

    package func publish(kind: String, step: Int, metrics: [String: Double], fields: [String: String], text: String) {
        sequence += 1
        _ = try? socket.send(WireMessage(.logEvent(LogPublisher.event(source: source, runId: runId, sequence: sequence, kind: kind,
                                                                      step: step, metrics: metrics, fields: fields, text: text))))
    }

    static func event(source: String, runId: UInt64, sequence: UInt64, kind: String, step: Int, metrics: [String: Double],
                      fields: [String: String], text: String) -> Troupe_V1_LogEvent {
        var e = Troupe_V1_LogEvent()
        e.source = source
        e.sourceRunID = runId
        e.sequence = sequence
        e.wallTimeUnixNs = Int64(Date().timeIntervalSince1970 * 1e9)
        e.kind = kind
        e.step = UInt64(max(0, step))
        e.metrics = metrics.filter { $0.value.isFinite }
        e.fields = fields
        e.text = text
        return e
    }

    package var lastSequence: UInt64 { sequence }

    package func close() { socket.close() }
}

/// Keeps the events a process publishes, for tests to read.
package final class InMemoryLogStream: LogStreamPublisher, @unchecked Sendable {
    private let lock = NSLock()
    private var sequence: UInt64
    private var stored: [Troupe_V1_LogEvent] = []
    package let source: String

    package init(source: String, after sequence: UInt64 = 0) {
        self.source = source
        self.sequence = sequence
    }

    package var lastSequence: UInt64 { lock.withLock { sequence } }

    package func publish(kind: String, step: Int, metrics: [String: Double], fields: [String: String], text: String) {
        lock.withLock {
            sequence += 1
            stored.append(LogPublisher.event(source: source, runId: 0, sequence: sequence, kind: kind, step: step,
                                             metrics: metrics, fields: fields, text: text))
        }
    }

    package func close() {}

    package var events: [Troupe_V1_LogEvent] { lock.withLock { stored } }
    package func events(kind: String) -> [Troupe_V1_LogEvent] { events.filter { $0.kind == kind } }
}

/// metrics.jsonl: one JSON object per line with `step`, `time_s`, `kind` and flat metric keys
/// (the format `troupe report` reads). Opened with O_APPEND so the learner and `troupe run` can both
/// append whole lines to the same file. A file that cannot be opened or written is reported through
/// `onFailure` (each distinct problem once), never fatal: it is for watching a run, and the run log
/// is written apart from it.
package final class MetricsWriter {
    private let fd: Int32
    private let path: String
    private let start: Date
    private let failures: ExportFailureReporter

    package init(path: String, start: Date = Date(), onFailure: @escaping (String) -> Void = { _ in }) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        self.path = path
        self.start = start
        failures = ExportFailureReporter(onFailure)
        if fd < 0 { failures.failed("cannot open \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { if fd >= 0 { close(fd) } }

    package func write(kind: String, step: Int, metrics: [String: Double]) {
        guard fd >= 0 else { return }
        var object: [String: JSONValue] = ["kind": .string(kind), "step": .integer(step), "time_s": .number(Date().timeIntervalSince(start))]
        for (k, v) in metrics where v.isFinite { object[k] = .number(v) }
        guard var data = try? JSONValue.object(object).serialized(compact: true) else { return }
        data.append(0x0A)
        // One write per line, so lines appended by two processes never interleave; a line cut short by a
        // full disk is taken back, so the file stays one JSON object per line.
        if data.withUnsafeBytes({ AtomicFile.appendWhole(fd, $0) }) { failures.succeeded() } else {
            failures.failed("cannot append to \(path): \(String(cString: strerror(errno)))")
        }
    }
}
