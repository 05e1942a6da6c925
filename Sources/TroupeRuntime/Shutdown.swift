import Foundation

/// Set by SIGINT/SIGTERM; long-running loops check it and wind down cleanly (checkpoint, bye).
package enum Shutdown {
    nonisolated(unsafe) package private(set) static var requested = false
    nonisolated(unsafe) private static var count: Int32 = 0

    /// Installs the handlers. A second Ctrl-C exits at once.
    package static func installHandlers() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            Shutdown.count += 1
            Shutdown.requested = true
            if Shutdown.count >= 2 { _exit(128 + sig) }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        signal(SIGPIPE, SIG_IGN)
        // A parent may have started us with these blocked (test runners do); we must hear them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    package static func request() { requested = true }
}


/// Lines for people on a terminal, JSON when piped: every process reports through this.
package struct Console {
    package static let isTerminal = isatty(STDERR_FILENO) != 0
    package let role: String

    package init(role: String) { self.role = role }

    package func info(_ message: String, _ fields: [String: Any] = [:]) { emit("info", message, fields) }
    package func warn(_ message: String, _ fields: [String: Any] = [:]) { emit("warn", message, fields) }
    package func error(_ message: String, _ fields: [String: Any] = [:]) { emit("error", message, fields) }

    private func emit(_ level: String, _ message: String, _ fields: [String: Any]) {
        var line: String
        if Console.isTerminal {
            let extra = fields.keys.sorted().map { "\($0)=\(fields[$0]!)" }.joined(separator: " ")
            line = "[\(role)] \(level == "info" ? "" : level.uppercased() + ": ")\(message)\(extra.isEmpty ? "" : "  " + extra)"
        } else {
            var object: [String: Any] = ["role": role, "level": level, "msg": message, "t": Date().timeIntervalSince1970]
            for (k, v) in fields { object[k] = v }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            line = String(data: data, encoding: .utf8) ?? message
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
