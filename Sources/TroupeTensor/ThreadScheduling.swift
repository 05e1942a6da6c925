import Foundation

/// Linux scheduling classes for compute threads (sched(7)). A thread in `SCHED_IDLE` runs only on
/// cycles no normal thread of any process wants, and gives its core up the moment one wakes: what an
/// actor's sampling threads use when they share cores with a learner that sets the pace.
public enum ThreadScheduling {
    /// `SCHED_IDLE` (not exported by Swift's Glibc module).
    public static let idle: Int32 = 5

    /// Moves kernel thread `thread` (0: the calling thread) to `SCHED_IDLE`. Returns 0 or the errno.
    /// An unprivileged process may lower its threads this way but not raise them back.
    @discardableResult
    public static func makeIdle(thread: Int32 = 0) -> Int32 {
        var parameters = sched_param(sched_priority: 0)
        return sched_setscheduler(thread, idle, &parameters) == 0 ? 0 : errno
    }

    /// The scheduling policy of kernel thread `thread` (0: the calling thread), or -1 with errno set.
    public static func policy(thread: Int32 = 0) -> Int32 { sched_getscheduler(thread) }
}
