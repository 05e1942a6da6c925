import ArgumentParser
import Foundation
import TroupeJSON
#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#else
import Darwin
private let systemWrite = Darwin.write
#endif
import TroupeRuntime
import TroupeWire
import TroupeMonitor

package struct MonitorCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Watch a run's log stream: a live terminal dashboard, or every event as a JSON line.",
        discussion: """
        ENDPOINT is the learner's log endpoint (endpoints.logs_port, default 5558), e.g. tcp://learner-host:5558; \
        or --learner-file RUN_DIR/endpoints.json names it (its `logs`). \
        The stream is lossy by design: a slow monitor never slows the learner; the events it misses are counted \
        from their sequence numbers and shown (dashboard) or reported in a final summary line (--json). \
        See docs/monitor.md.
        """)

    @Argument(help: "The learner's log endpoint, e.g. tcp://127.0.0.1:5558.")
    package var endpoint: String?

    @Option(name: .long, help: ArgumentHelp("The learner's endpoints file (RUN_DIR/endpoints.json, or the run directory): its `logs` endpoint instead of ENDPOINT.", valueName: "path"))
    package var learnerFile: String?

    @Option(name: .customLong("connect-timeout"), help: "With --learner-file: seconds to wait for the file to appear (default: 60).")
    package var connectTimeoutOption: Double?
    package var connectTimeout: Double { connectTimeoutOption ?? 60 }

    @Flag(name: .long, help: "Print each event as one JSON line (the default when standard output is not a terminal).")
    package var json = false

    @Option(name: .long, help: "Stop after this many seconds.")
    package var duration: Double?

    @Flag(name: .long, help: "Stop when the learner reports run_finished or learner_stopped.")
    package var untilFinished = false

    @Option(name: .customLong("refresh"), help: "Dashboard redraws per second (default: 4).")
    package var refreshOption: Double?
    package var refresh: Double { refreshOption ?? 4 }

    @OptionGroup var keys: ClientKeyOptions

    package init() {}

    package func validate() throws {
        try keys.validate(learnerFileGiven: learnerFile != nil)
        guard (endpoint == nil) != (learnerFile == nil) else {
            throw ValidationError(endpoint == nil ? "give ENDPOINT (the learner's log endpoint) or --learner-file" : "give ENDPOINT or --learner-file, not both")
        }
        guard connectTimeout.isFinite, connectTimeout > 0 else { throw ValidationError("--connect-timeout must be a positive number of seconds") }
        if connectTimeoutOption != nil && learnerFile == nil {
            throw ValidationError("--connect-timeout is how long to wait for --learner-file to appear; with ENDPOINT the monitor subscribes at once")
        }
        if refreshOption != nil && json { throw ValidationError("--refresh sets the dashboard's redraws; --json prints each event as it comes") }
        if let endpoint {
            let parsed: Endpoint
            do {
                parsed = try Endpoint(parsing: endpoint)
                try parsed.validateForConnect()
            } catch {
                throw ValidationError("ENDPOINT: \(error)")
            }
            if case .inproc = parsed {
                throw ValidationError("ENDPOINT: inproc endpoints exist only inside one process; use tcp://host:port or ipc://path")
            }
        }
        if let duration, !(duration.isFinite && duration > 0 && duration <= 1e9) {
            throw ValidationError("--duration must be a positive number of seconds up to 1e9 (leave it out to watch without a limit), got \(duration)")
        }
        guard refresh.isFinite, refresh >= 0.5, refresh <= 30 else {
            throw ValidationError("--refresh must be between 0.5 and 30 redraws per second, got \(refresh)")
        }
    }

    package func run() throws {
        Shutdown.installHandlers()
        let context = try ZMQContext()
        defer { context.shutdown() }
        var file: LearnerEndpointsFile?
        if let learnerFile {
            do { file = try LearnerEndpointsFile.wait(for: learnerFile, timeout: connectTimeout, shouldStop: { Shutdown.requested }) } catch {
                throw CommandError("\(error)")
            }
        }
        if let file, let finished = file.finishedAt {
            let when = "the run finished at \(LearnerEndpointsFile.timestamp(finished)) (epoch \(String(file.epoch, radix: 16)), \(LearnerEndpointsFile.resolve(learnerFile!)))"
            if untilFinished {
                // Its run_finished event is long gone: nothing to wait for.
                StandardStream.error.write("troupe monitor: \(when); nothing to follow\n")
                if json || OutputMode.detect() == .jsonLines { _ = StandardOutput.writeJSONLine(MonitorJSON.summary(MonitorState())) }
                return
            }
            Console(role: "monitor").warn("\(when); following its log endpoint in case a learner resumes it")
        }
        let endpoint = self.endpoint ?? file!.logs
        let learner = try Endpoint(parsing: endpoint)
        let security = try keys.security(connectingTo: learner, endpointsFile: file, path: learnerFile, console: Console(role: "monitor")).security
        // With --learner-file the subscription follows a resumed learner to its new log endpoint.
        let subscriber = try FollowingSubscriber(context: context, endpoint: learner, security: security?.toLearner ?? [], learnerFile: learnerFile)
        subscriber.onMove = { Console(role: "monitor").info("the learner endpoints file names \($0); following the log stream there") }
        var refusalsSaid = 0
        subscriber.onKeyRefused = { status in
            // A fresh subscription tries again every 6 s: say it the first time and then every 10th.
            if refusalsSaid % 10 == 0 {
                Console(role: "monitor").warn("the learner refused this monitor's key at the handshake (ZAP status \(status)): is it on the learner's allowlist (--allow) with role monitor? It may have been removed; trying again")
            }
            refusalsSaid += 1
        }
        defer { subscriber.close() }
        var options = MonitorSubscriber.RunOptions(updatesPerSecond: refresh, stopWhenRunEnds: untilFinished)
        options.deadline = duration.map { .after(.milliseconds(Int64($0 * 1000))) }
        var state = MonitorState()
        if json || OutputMode.detect() == .jsonLines {
            try streamJSON(subscriber, &state, options)
        } else {
            try showDashboard(subscriber, &state, options, title: "troupe monitor \(endpoint)")
        }
        if state.eventCount == 0 {
            StandardStream.error.write("troupe monitor: no events received from \(endpoint)\n")
        }
    }

    /// One JSON object per event, then a `monitor_summary` line. Stops early if the reader goes away.
    private func streamJSON(_ subscriber: FollowingSubscriber, _ state: inout MonitorState,
                            _ options: MonitorSubscriber.RunOptions) throws {
        var readerGone = false
        _ = try subscriber.run(into: &state, options: options, shouldStop: { Shutdown.requested || readerGone },
                               onEvent: { event in
                                   if !readerGone { readerGone = !StandardOutput.writeJSONLine(event.json) }
                               })
        if !readerGone { _ = StandardOutput.writeJSONLine(MonitorJSON.summary(state)) }
    }

    /// Redraws the dashboard in place; leaves the last frame on the screen.
    private func showDashboard(_ subscriber: FollowingSubscriber, _ state: inout MonitorState,
                               _ options: MonitorSubscriber.RunOptions, title: String) throws {
        _ = StandardOutput.write(DashboardRenderer.clearScreen + DashboardRenderer.hideCursor)
        defer { _ = StandardOutput.write(DashboardRenderer.showCursor + "\n") }
        _ = try subscriber.run(into: &state, options: options, shouldStop: { Shutdown.requested }, onUpdate: { state in
            let size = StandardOutput.terminalSize()
            let renderer = DashboardRenderer(width: size.columns, height: size.rows, title: title)
            _ = StandardOutput.write(renderer.frame(state, now: Date().timeIntervalSince1970))
        })
    }
}

/// Writes to standard output with write(2): a closed pipe (`troupe monitor --json | head`) is an
/// answer (false), not a crash as FileHandle.write would make it.
enum StandardOutput {
    static func write(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { systemWrite(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    static func writeJSONLine(_ object: JSONValue) -> Bool {
        guard let line = try? JSONOutput.string(object) else { return true }
        return write(line + "\n")
    }

    /// The terminal's size, else $COLUMNS/$LINES, else 100 × 30.
    static func terminalSize() -> (columns: Int, rows: Int) {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 {
            return (Int(size.ws_col), Int(size.ws_row))
        }
        let env = ProcessInfo.processInfo.environment
        return (env["COLUMNS"].flatMap(Int.init) ?? 100, env["LINES"].flatMap(Int.init) ?? 30)
    }
}
