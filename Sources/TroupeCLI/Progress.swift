import Foundation
import TroupeJSON
import TroupeRuntime

/// Where a long command's progress goes: a person at a terminal reads a status line rewritten in
/// place and one line per event; a pipe (a log file, `jq`, a job scheduler) gets one JSON object per
/// line with sorted keys.
package enum OutputMode {
    case terminal
    case jsonLines

    /// JSON lines unless standard output is a terminal.
    package static func detect() -> OutputMode { isatty(STDOUT_FILENO) != 0 ? .terminal : .jsonLines }
}

/// JSON output helpers: sorted keys, `/` unescaped; JSON cannot spell NaN or ±Inf, so non-finite
/// numbers become null.
package enum JSONOutput {
    package static func data(_ value: JSONValue, pretty: Bool = false) throws -> Data {
        try finite(value).serialized(compact: !pretty)
    }

    package static func string(_ value: JSONValue, pretty: Bool = false) throws -> String {
        String(decoding: try data(value, pretty: pretty), as: UTF8.self)
    }

    /// Prints one JSON document (or line) on standard output and flushes it, so pipes see it at once.
    package static func print(_ value: JSONValue, pretty: Bool = false) throws {
        StandardStream.output.write(try data(value, pretty: pretty) + Data("\n".utf8))
    }

    /// A 64-bit seed: an integer while it fits a signed 64-bit one, else its decimal digits as a string
    /// (a JSON number would round it, and the seed would no longer reproduce its sample).
    package static func unsigned(_ value: UInt64) -> JSONValue { Int(exactly: value).map(JSONValue.integer) ?? .string(String(value)) }

    package static func finite(_ value: JSONValue) -> JSONValue {
        switch value {
        case let .number(d): return d.isFinite ? value : .null
        case let .object(members): return .object(members.mapValues(finite))
        case let .array(elements): return .array(elements.map(finite))
        default: return value
        }
    }
}

/// Progress of a job of `totalSteps` steps that processes tokens: rate in tokens per second and ETA
/// from the time spent in steps (evaluation and saving excluded), reported after every step.
final class ProgressReporter {
    let mode: OutputMode
    let totalSteps: Int
    private var stepSeconds = 0.0
    private var stepTokens = 0
    private var statusShown = false

    init(totalSteps: Int, mode: OutputMode = .detect()) {
        self.mode = mode
        self.totalSteps = totalSteps
    }

    /// Tokens per second over all steps so far.
    var tokensPerSecond: Double { stepSeconds > 0 ? Double(stepTokens) / stepSeconds : 0 }

    /// Records step `step` (1-based) that took `seconds` over `tokens` tokens, and shows it with `fields`
    /// (already formatted for the terminal in `summary`).
    func step(_ step: Int, seconds: Double, tokens: Int, fields: [String: JSONValue], summary: String) {
        stepSeconds += seconds
        stepTokens += tokens
        let remaining = Double(totalSteps - step) * stepSeconds / Double(max(step, 1))
        switch mode {
        case .jsonLines:
            var line = fields
            line["event"] = "step"
            line["step"] = .integer(step)
            line["steps"] = .integer(totalSteps)
            line["tokens_per_s"] = .number(tokensPerSecond)
            line["eta_s"] = .number(remaining)
            emit(line)
        case .terminal:
            let text = "step \(step)/\(totalSteps)  \(summary)  \(Int(tokensPerSecond.rounded())) tok/s  ETA \(Self.duration(remaining))"
            write("\r\u{1B}[K" + text)
            statusShown = true
        }
    }

    /// A permanent line: an evaluation, a save, the end. `fields` go to JSON, `message` to the terminal.
    func event(_ name: String, fields: [String: JSONValue], message: String) {
        switch mode {
        case .jsonLines:
            var line = fields
            line["event"] = .string(name)
            emit(line)
        case .terminal:
            write((statusShown ? "\r\u{1B}[K" : "") + message + "\n")
            statusShown = false
        }
    }

    /// Ends the status line so later output starts on a fresh line.
    func finish() {
        if mode == .terminal && statusShown { write("\n") }
        statusShown = false
    }

    private func emit(_ line: [String: JSONValue]) {
        // Progress must never abort a job; `finite` already made every number writable.
        let text = (try? JSONOutput.string(.object(line))) ?? "{\"event\":\"unprintable\"}"
        write(text + "\n")
    }

    private func write(_ text: String) {
        StandardStream.output.write(text)
    }

    /// `42s`, `3m05s`, `2h07m`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite && seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }
}
