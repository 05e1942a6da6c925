import Foundation

/// One thing that happened in a process, in each form its readers want: a durable record (`Record`:
/// the learner's run-log record; `Never` for processes without a log), the log stream's event
/// (monitors) and the metrics file's line (reports). `ProcessEvents` hands it to every sink, so a
/// process says what happened once and tests read it from an `InMemoryProcessEvents`.
package struct ProcessEvent<Record> {
    package struct Stream {
        package var kind: String
        package var step = 0
        package var metrics: [String: Double] = [:]
        package var fields: [String: String] = [:]

        package init(kind: String, step: Int = 0, metrics: [String: Double] = [:], fields: [String: String] = [:]) {
            self.kind = kind
            self.step = step
            self.metrics = metrics
            self.fields = fields
        }
    }

    package struct MetricsLine {
        package var kind: String
        package var step: Int
        package var metrics: [String: Double]

        package init(kind: String, step: Int, metrics: [String: Double]) {
            self.kind = kind
            self.step = step
            self.metrics = metrics
        }
    }

    package var record: Record?
    package var stream: Stream?
    package var metricsLine: MetricsLine?

    package init(record: Record? = nil, stream: Stream? = nil, metricsLine: MetricsLine? = nil) {
        self.record = record
        self.stream = stream
        self.metricsLine = metricsLine
    }

    /// An event only monitors see.
    package static func stream(_ kind: String, step: Int = 0, metrics: [String: Double] = [:], fields: [String: String] = [:]) -> Self {
        Self(stream: Stream(kind: kind, step: step, metrics: metrics, fields: fields))
    }

    /// An event only the metrics file gets.
    package static func metrics(_ kind: String, step: Int, _ metrics: [String: Double]) -> Self {
        Self(metricsLine: MetricsLine(kind: kind, step: step, metrics: metrics))
    }
}

/// A reader of a process's events.
package protocol ProcessEventSink<Record>: AnyObject {
    associatedtype Record
    func emit(_ event: ProcessEvent<Record>) throws
}

/// Hands each event to every sink in order; a durable log comes first, so nothing is announced that
/// did not reach it.
package final class ProcessEvents<Record> {
    package private(set) var sinks: [any ProcessEventSink<Record>]

    package init(_ sinks: [any ProcessEventSink<Record>] = []) { self.sinks = sinks }

    package func add(_ sink: any ProcessEventSink<Record>) { sinks.append(sink) }

    package func remove(_ sink: any ProcessEventSink<Record>) { sinks.removeAll { $0 === sink } }

    package func emit(_ event: ProcessEvent<Record>) throws {
        for sink in sinks { try sink.emit(event) }
    }
}

/// The log stream: publishes each event's stream form.
package final class LogStreamSink<Record>: ProcessEventSink {
    let publisher: any LogStreamPublisher
    package init(_ publisher: any LogStreamPublisher) { self.publisher = publisher }
    package func emit(_ event: ProcessEvent<Record>) throws {
        guard let s = event.stream else { return }
        publisher.publish(kind: s.kind, step: s.step, metrics: s.metrics, fields: s.fields, text: "")
    }
}

/// metrics.jsonl: writes each event's metrics line.
package final class MetricsFileSink<Record>: ProcessEventSink {
    let writer: MetricsWriter
    package init(_ writer: MetricsWriter) { self.writer = writer }
    package func emit(_ event: ProcessEvent<Record>) throws {
        guard let m = event.metricsLine else { return }
        writer.write(kind: m.kind, step: m.step, metrics: m.metrics)
    }
}

/// Keeps every event, for tests.
package final class InMemoryProcessEvents<Record>: ProcessEventSink {
    package private(set) var events: [ProcessEvent<Record>] = []
    package init() {}
    package func emit(_ event: ProcessEvent<Record>) throws { events.append(event) }
    package var streamKinds: [String] { events.compactMap { $0.stream?.kind } }
}
