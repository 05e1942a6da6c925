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
