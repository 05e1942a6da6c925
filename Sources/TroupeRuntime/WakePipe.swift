import Foundation

/// A pipe that a thread writes a byte to when it has something for an I/O loop, so the loop's poller
/// (which watches `fileDescriptor`) wakes at once instead of at its next timeout. Both ends are
/// non-blocking: a full pipe already says "wake up", and draining never waits.
package final class WakePipe: @unchecked Sendable {
    /// Readable while a wake-up waits.
    package let fileDescriptor: Int32
    private let writer: Int32

    package init() {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "pipe: \(String(cString: strerror(errno)))")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        fileDescriptor = fds[0]
        writer = fds[1]
    }

    deinit {
        close(fileDescriptor)
        close(writer)
    }

    /// Makes `fileDescriptor` readable (from any thread).
    package func wake() {
        var byte: UInt8 = 1
        _ = write(writer, &byte, 1)
    }

    /// Takes every pending wake-up (the loop's side, before it looks at what woke it).
    package func drain() {
        var sink: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        while read(fileDescriptor, &sink, MemoryLayout.size(ofValue: sink)) > 0 {}
    }
}
