import Foundation
import Logging
import TroupeJSON

/// What a process says to people, through swift-log: `Console(role:)` is a `Logger` labelled with the
/// process's role, and `TroupeLogging.bootstrap()` (once, in the executable) sends every logger to the
/// terminal or standard error as JSON lines (`ConsoleLogHandler`) and its warnings and errors into the
/// run's log stream (`LogStreamLogHandler`). Tests give a logger an `InMemoryLogHandler`.
package struct Console {
    package let logger: Logger
    package var role: String { logger.label }

    package init(role: String) { logger = Logger(label: role) }
    package init(logger: Logger) { self.logger = logger }

    package func info(_ message: String, _ fields: [String: JSONValue] = [:]) { logger.info("\(message)", metadata: Self.metadata(fields)) }
    package func warn(_ message: String, _ fields: [String: JSONValue] = [:]) { logger.warning("\(message)", metadata: Self.metadata(fields)) }
    package func error(_ message: String, _ fields: [String: JSONValue] = [:]) { logger.error("\(message)", metadata: Self.metadata(fields)) }

    /// Numbers and flags stay numbers and flags (JSON output writes them unquoted).
    static func metadata(_ fields: [String: JSONValue]) -> Logger.Metadata {
        fields.mapValues { value -> Logger.MetadataValue in
            switch value {
            case let .integer(v): return .stringConvertible(v)
            case let .number(v): return .stringConvertible(v)
            case let .bool(v): return .stringConvertible(v)
            case let .string(v): return .string(v)
            default: return .string(value.description)
            }
        }
    }
}

package enum TroupeLogging {
    /// Every logger of the process writes to the console and, at warning and above, to the log stream.
    package static func bootstrap() {
        LoggingSystem.bootstrap { label in
            MultiplexLogHandler([ConsoleLogHandler(label: label), LogStreamLogHandler(label: label)])
        }
    }
}

/// A handler whose own metadata (`logger[metadataKey:]`) is merged under each message's.
package protocol MetadataLogHandler: LogHandler {}

extension MetadataLogHandler {
    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The handler's metadata with the message's own on top.
    func fields(of event: LogEvent) -> Logger.Metadata { metadata.merging(event.metadata ?? [:]) { $1 } }
}

/// Lines for people on a terminal (`[role] message  key=value`), one JSON object per line when
/// standard error is a pipe (`role`, `level`, `msg`, `t` and the metadata, keys sorted).
package struct ConsoleLogHandler: MetadataLogHandler {
    package static let isTerminal = isatty(STDERR_FILENO) != 0
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    let label: String

    package init(label: String) { self.label = label }

    package func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        let fields = fields(of: event)
        StandardStream.error.write(Self.format(role: label, level: level, message: "\(message)", fields: fields,
                                               terminal: Self.isTerminal) + "\n")
    }

    package static func format(role: String, level: Logger.Level, message: String, fields: Logger.Metadata, terminal: Bool) -> String {
        let name = level >= .warning ? (level == .warning ? "warn" : "error") : "info"
        if terminal {
            let extra = fields.keys.sorted().map { "\($0)=\(fields[$0]!)" }.joined(separator: " ")
            return "[\(role)] \(name == "info" ? "" : name.uppercased() + ": ")\(message)\(extra.isEmpty ? "" : "  " + extra)"
        }
        var object: [String: JSONValue] = ["role": .string(role), "level": .string(name), "msg": .string(message),
                                           "t": .number(Date().timeIntervalSince1970)]
        for (key, value) in fields { object[key] = jsonValue(value) }
        return JSONValue.object(object).serializedString(pretty: false)
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let v):
            if let n = v as? Int { return .integer(n) }
            if let n = v as? any BinaryInteger { return Int(exactly: n).map(JSONValue.integer) ?? .string("\(n)") }
            if let d = v as? Double { return d.isFinite ? .number(d) : .string("\(d)") }
            if let b = v as? Bool { return .bool(b) }
            return .string("\(v)")
        case .array(let items): return .array(items.map(jsonValue))
        case .dictionary(let d): return .object(d.mapValues(jsonValue))
        }
    }
}

/// The log stream a process's warnings go to, once it has one, and the thread that owns its socket.
package final class LogStreamAttachment: @unchecked Sendable {
    /// The process's own (what `TroupeLogging.bootstrap` uses); tests make their own.
    package static let process = LogStreamAttachment()

    private let lock = NSLock()
    private var stream: (any LogStreamPublisher)?
    private var owner: pthread_t?

    package init() {}

    /// Warnings go to `publisher` from now on. Its socket belongs to the thread that attaches it: what
    /// other threads log stays on the console.
    package func attach(_ publisher: any LogStreamPublisher) {
        lock.withLock {
            stream = publisher
            owner = pthread_self()
        }
    }

    /// Stops using `publisher` (before it closes), unless another one has been attached since.
    package func detach(_ publisher: any LogStreamPublisher) {
        lock.withLock {
            if stream === publisher { stream = nil; owner = nil }
        }
    }

    func publish(fields: [String: String], text: String) {
        lock.withLock {
            guard let stream, let owner, pthread_equal(owner, pthread_self()) != 0 else { return }
            stream.publish(kind: "log", step: 0, metrics: [:], fields: fields, text: text)
        }
    }
}

/// Warnings and errors of every logger, published into the run's log stream as `log` events (through
/// a `LogStreamAttachment`), so a monitor sees every process's problems in one place.
package struct LogStreamLogHandler: MetadataLogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .warning
    let label: String
    let attachment: LogStreamAttachment

    package init(label: String, attachment: LogStreamAttachment = .process) {
        self.label = label
        self.attachment = attachment
    }

    package func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        var fields = fields(of: event).mapValues { "\($0)" }
        fields["role"] = label
        fields["level"] = level == .warning ? "warn" : "\(level)"
        attachment.publish(fields: fields, text: "\(message)")
    }
}

/// Keeps what is logged, for tests.
package final class InMemoryLogHandler: MetadataLogHandler, @unchecked Sendable {
    package struct Entry: Sendable {
        package let level: Logger.Level
        package let message: String
        package let metadata: [String: String]
    }
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .trace
    private let lock = NSLock()
    private var stored: [Entry] = []

    package init() {}

    package func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        let fields = fields(of: event).mapValues { "\($0)" }
        lock.withLock { stored.append(Entry(level: level, message: "\(message)", metadata: fields)) }
    }

    package var entries: [Entry] { lock.withLock { stored } }

    /// A console that logs here.
    package func console(role: String) -> Console { Console(logger: Logger(label: role) { _ in self }) }
}

/// Standard output or error, written without trapping. Foundation's `FileHandle.write(_:)` stops the
/// process when the reader has gone (a closed pipe): `troupe run | head` killed the run and left its
/// learner and actors running. Here such a write is dropped and the process goes on.
package enum StandardStream {
    case output, error

    package func write(_ data: Data) {
        try? (self == .output ? FileHandle.standardOutput : FileHandle.standardError).write(contentsOf: data)
    }

    package func write(_ text: String) { write(Data(text.utf8)) }
}
