import Foundation
import TroupeModel
#if canImport(Glibc)
import Glibc
#endif

/// A failed export write is reported, never fatal: training does not stop because a dashboard's file
/// could not be written. Each distinct failure is reported once.
final class ExportFailureReporter {
    private let report: (String) -> Void
    private var last: String?
    init(_ report: @escaping (String) -> Void) { self.report = report }
    func failed(_ message: String) {
        if message != last { report(message) }
        last = message
    }
    func succeeded() { last = nil }
}

/// The latest Prometheus exposition a process rendered, for its HTTP `/metrics` endpoint to serve
/// from another thread. Empty until the first metrics line.
package final class PrometheusExposition: @unchecked Sendable {
    private let lock = NSLock()
    private var current = ""
    package init() {}
    package var text: String { lock.withLock { current } }
    func update(_ text: String) { lock.withLock { current = text } }
}

/// metrics.prom: the latest value of each metric in Prometheus's text format, rewritten whole (temp
/// file and rename) after every metrics line, for node-exporter's textfile collector or any scraper
/// of files; the same text goes to `exposition` for an HTTP endpoint. Log-stream events of the kinds in
/// `streamKinds` count as metrics lines too (the learner's once-a-second `learner_stats`, as kind
/// `learner`). Every metric is a gauge labelled `run` (the run directory's name) and `kind` (`train`
/// for the learner's steps); `troupe_step` is the line's step and `troupe_metric_lines_total` counts
/// the lines of that kind this process exported.
package final class PrometheusTextfileSink<Record>: ProcessEventSink {
    package let path: String
    let run: String
    let failures: ExportFailureReporter
    package let exposition: PrometheusExposition
    let streamKinds: [String: String]
    private var latest: [String: (step: Int, metrics: [String: Double])] = [:]
    private var lines: [String: Int] = [:]

    static var reservedNames: Set<String> { ["troupe_step", "troupe_metric_lines_total"] }

    package init(path: String, run: String, exposition: PrometheusExposition = PrometheusExposition(),
                 streamKinds: [String: String] = [:], onFailure: @escaping (String) -> Void) {
        self.path = path
        self.run = run
        self.exposition = exposition
        self.streamKinds = streamKinds
        failures = ExportFailureReporter(onFailure)
    }

    package func emit(_ event: ProcessEvent<Record>) throws {
        let fromStream = event.stream.flatMap { stream in
            streamKinds[stream.kind].map { ProcessEvent<Record>.MetricsLine(kind: $0, step: stream.step, metrics: stream.metrics) }
        }
        guard let line = event.metricsLine ?? fromStream else { return }
        var metrics = latest[line.kind]?.metrics ?? [:]
        metrics.merge(line.metrics) { $1 }
        latest[line.kind] = (line.step, metrics)
        lines[line.kind, default: 0] += 1
        let text = PrometheusText.render(families)
        exposition.update(text)
        do {
            try AtomicFile.write(Data(text.utf8), to: path, durable: false)   // a view, not a record: no fsync on the step path
            failures.succeeded()
        } catch {
            failures.failed("cannot write \(path): \(error)")
        }
    }

    /// The families the file holds now. Two metric names that sanitise to the same Prometheus name
    /// keep the one first in name order (the file would otherwise be unreadable).
    package var families: [PrometheusText.Family] {
        var byName: [String: PrometheusText.Family] = [:]
        var sources: [String: String] = [:]
        for kind in latest.keys.sorted() {
            let (step, metrics) = latest[kind]!
            let labels = [(name: "run", value: run), (name: "kind", value: kind)]
            byName["troupe_step", default: .init(name: "troupe_step", type: .gauge, help: "Step of the latest metrics line.", samples: [])]
                .samples.append(.init(labels: labels, value: Double(step)))
            byName["troupe_metric_lines_total", default: .init(name: "troupe_metric_lines_total", type: .counter,
                                                               help: "Metrics lines this process wrote.", samples: [])]
                .samples.append(.init(labels: labels, value: Double(lines[kind] ?? 0)))
            for raw in metrics.keys.sorted() {
                let name = PrometheusText.metricName(raw)
                guard !Self.reservedNames.contains(name) else { continue }
                if let source = sources[kind + "\u{0}" + name], source != raw { continue }
                sources[kind + "\u{0}" + name] = raw
                byName[name, default: .init(name: name, type: .gauge, help: "Latest value of \(raw) (the kind label says which lines).", samples: [])]
                    .samples.append(.init(labels: labels, value: metrics[raw]!))
            }
        }
        return Array(byName.values)
    }
}

/// RUN_DIR/tensorboard/events.out.tfevents.<time>.<host>: each metrics line as one event of scalar
/// summaries (tag = the metric's name, `reward/mean`), for TensorBoard. A new file per process, as
/// TensorBoard's own writers do; non-finite values are left out, as in metrics.jsonl.
package final class TensorBoardSink<Record>: ProcessEventSink {
    package let path: String
    /// -1 when the file could not be made: reported once, and the run goes on without it.
    private let fd: Int32
    let failures: ExportFailureReporter

    package init(directory: String, now: Date = Date(), onFailure: @escaping (String) -> Void) {
        failures = ExportFailureReporter(onFailure)
        path = directory + "/" + TensorBoardEvents.fileName(time: now, host: Self.hostName)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            fd = -1
            failures.failed("cannot create the TensorBoard directory \(directory): \(error.localizedDescription); no TensorBoard events this run")
            return
        }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else {
            failures.failed("cannot create \(path): \(String(cString: strerror(errno))); no TensorBoard events this run")
            return
        }
        append(TensorBoardEvents.fileVersionEvent(wallTime: now.timeIntervalSince1970))
    }

    deinit { if fd >= 0 { close(fd) } }

    package func emit(_ event: ProcessEvent<Record>) throws {
        guard let line = event.metricsLine else { return }
        let scalars = line.metrics.filter(\.value.isFinite).sorted { $0.key < $1.key }.map { (tag: $0.key, value: Float($0.value)) }
        guard !scalars.isEmpty else { return }
        append(TensorBoardEvents.scalarsEvent(wallTime: Date().timeIntervalSince1970, step: Int64(line.step), scalars: scalars))
    }

    /// A record cut short by a full disk is taken back: a torn one would end the file for TensorBoard's reader.
    private func append(_ event: [UInt8]) {
        guard fd >= 0 else { return }
        let record = TensorBoardEvents.record(event)
        if record.withUnsafeBytes({ AtomicFile.appendWhole(fd, $0) }) { failures.succeeded() } else {
            failures.failed("cannot append to \(path): \(String(cString: strerror(errno)))")
        }
    }

    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer)
        return name.isEmpty ? "localhost" : name
    }
}

package struct ExportError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
