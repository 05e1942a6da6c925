import Foundation

/// Set by SIGINT/SIGTERM; long-running loops check it and wind down cleanly (checkpoint, bye).
package enum Shutdown {
    nonisolated(unsafe) package private(set) static var requested = false
    nonisolated(unsafe) private static var interrupts: Int32 = 0

    /// Installs the handlers. A second Ctrl-C (SIGINT) exits at once; SIGTERM never does: a batch
    /// system may deliver it twice (Slurm signals a step's processes and srun forwards its own), and the
    /// learner's checkpoint must still be written. SIGKILL is what stops at once.
    package static func installHandlers() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            Shutdown.requested = true
            guard sig == SIGINT else { return }
            Shutdown.interrupts += 1
            if Shutdown.interrupts >= 2 { _exit(128 + sig) }
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
        stopWithParent()
    }

    package static func request() { requested = true }

    /// The environment variable `troupe run` sets for the processes it starts: its own process id.
    package static let parentVariable = "TROUPE_STOP_WITH_PARENT"

    /// A process `troupe run` started stops as on SIGTERM (the learner checkpoints, actors say Bye) once
    /// that parent is gone, whatever ended it (SIGKILL included): polled, because Linux's parent-death
    /// signal follows the thread that spawned the child, not the process.
    package static func stopWithParent(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let text = environment[parentVariable], let parent = pid_t(text) else { return }
        let thread = Thread {
            while getppid() == parent { Thread.sleep(forTimeInterval: 0.25) }
            request()
        }
        thread.name = "parent-watch"
        thread.start()
    }

    /// Starts a child that stops with this process (`parentVariable`): `executable` with `arguments` and
    /// `environment`, no input, its output and errors written to `log` (after the file's earlier lines
    /// when `appending`, otherwise over them).
    package static func launchChild(_ executable: String, _ arguments: [String], log: String, appending: Bool = false,
                                    environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Process
    {
        if !appending || !FileManager.default.fileExists(atPath: log) {
            guard FileManager.default.createFile(atPath: log, contents: nil) else {
                throw RuntimeError.invalid("cannot create \(log): \(String(cString: strerror(errno)))")
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        var environment = environment
        environment[parentVariable] = String(getpid())
        process.environment = environment
        try process.run()
        return process
    }
}
