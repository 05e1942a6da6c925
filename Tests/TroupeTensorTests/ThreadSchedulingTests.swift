import Foundation
import Testing
import TroupeTensor

struct ThreadSchedulingTests {
    /// A thread of the test's own moves itself to SCHED_IDLE and reads it back; the test's threads
    /// (shared with other tests) are left alone.
    @Test func aThreadMovesItselfToIdle() {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var before: Int32 = -2, result: Int32 = -2, after: Int32 = -2
        let thread = Thread {
            before = ThreadScheduling.policy()
            result = ThreadScheduling.makeIdle()
            after = ThreadScheduling.policy()
            done.signal()
        }
        thread.start()
        done.wait()
        #expect(before == 0, "a new thread starts in SCHED_OTHER, got \(before)")
        #expect(result == 0, "makeIdle failed: \(String(cString: strerror(result)))")
        #expect(after == ThreadScheduling.idle)
    }

    @Test func aThreadThatDoesNotExistIsAnError() {
        // Thread ids are below /proc/sys/kernel/pid_max (at most 2^22).
        #expect(ThreadScheduling.makeIdle(thread: 1 << 30) == ESRCH)
        #expect(ThreadScheduling.policy(thread: 1 << 30) == -1)
    }
}
