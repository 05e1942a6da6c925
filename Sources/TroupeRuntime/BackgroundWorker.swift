import Foundation
import TroupeTensor

/// Runs one job at a time on its own thread, so an I/O loop that owns sockets keeps serving them while
/// the job computes (the learner's training steps, an actor's sampling). The owner submits a job when
/// the worker is idle and polls for outcomes without blocking; `wakeFileDescriptor` turns readable when
/// an outcome is ready, so the owner's poller wakes at once instead of at its next timeout.
package final class BackgroundWorker<Job, Outcome>: @unchecked Sendable {
    /// Readable while an outcome waits (`poll()` drains it).
    package var wakeFileDescriptor: Int32 { wakePipe.fileDescriptor }
    private let wakePipe = WakePipe()
    private let condition = NSCondition()
    private var job: Job?
    private var outcomes: [Outcome] = []
    private var stopping = false
    private let work: (Job) -> Outcome
    private var started = false
    /// The worker thread's kernel id (nil if /proc could not say), known once `init` returns.
    package private(set) var threadID: Int32?

    package init(name: String, work: @escaping (Job) -> Outcome) {
        self.work = work
        let thread = Thread { [weak self] in
            nameCurrentThread(name)
            self?.loop()
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
        condition.lock()
        while !started { condition.wait() }
        condition.unlock()
    }

    /// A job is submitted and not finished yet.
    package var busy: Bool { condition.lock(); defer { condition.unlock() }; return job != nil }

    package func submit(_ j: Job) {
        condition.lock()
        precondition(job == nil, "worker is busy")
        job = j
        condition.broadcast()
        condition.unlock()
    }

    /// Finished jobs' outcomes since the last call (non-blocking).
    package func poll() -> [Outcome] {
        wakePipe.drain()
        condition.lock()
        defer { condition.unlock() }
        let o = outcomes
        outcomes = []
        return o
    }

    /// Waits for the job in progress, if any, then returns the outcomes not yet polled.
    package func waitForIdle() -> [Outcome] {
        condition.lock()
        while job != nil { condition.wait() }
        let o = outcomes
        outcomes = []
        condition.unlock()
        return o
    }

    /// As `waitForIdle`, but returns after at most `seconds` (with the outcomes so far, maybe none), so
    /// the caller can do something else while a long job runs.
    package func waitForIdle(upTo seconds: Double) -> [Outcome] {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        while job != nil && condition.wait(until: deadline) {}
        let o = outcomes
        outcomes = []
        condition.unlock()
        return o
    }

    /// Ends the thread after the job in progress.
    package func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        threadID = ProcessThreads.currentID()
        started = true
        condition.broadcast()
        condition.unlock()
        while true {
            condition.lock()
            while job == nil && !stopping { condition.wait() }
            guard let j = job else { condition.unlock(); return }
            condition.unlock()
            let outcome = work(j)
            condition.lock()
            outcomes.append(outcome)
            job = nil
            condition.broadcast()
            condition.unlock()
            wakePipe.wake()
        }
    }
}
