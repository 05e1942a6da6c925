import Foundation
import Synchronization

/// Fork-join with one persistent helper thread. A decoding step makes about 50 matrix products per
/// token, each a few tens of microseconds; a Dispatch hand-off per product costs a thread wake-up each
/// time. The helper instead polls briefly after each job (the next product usually follows within
/// microseconds), then parks until the next one.
///
/// A job is split into chunks that the caller and the helper claim one at a time, so when the helper
/// is slow to start (its core busy with another process) the caller simply does more of the chunks
/// instead of waiting for a fixed half. One caller at a time owns the helper; a concurrent caller
/// (another sampler, tests running in parallel) runs all chunks itself. Callers must make each chunk's
/// result independent of which thread runs it and in what order.
public final class PairedWorker: @unchecked Sendable {
    public static let shared = PairedWorker()

    /// How long an idle helper polls for the next job before it parks, and how long a caller that has
    /// run out of chunks polls for the helper's last one before it blocks.
    private static let idleSpinSeconds = 50e-6
    private static let callerSpinSeconds = 20e-6

    /// The posted job: generation << 32 | chunk count << 16 | next unclaimed chunk.
    private let work = Atomic<UInt64>(0)
    /// Chunks of the current job the helper has finished.
    private let helperDone = Atomic<Int>(0)
    private let helperParked = Atomic<Bool>(false)
    private let callerBlocked = Atomic<Bool>(false)
    private let owned = Atomic<Bool>(false)
    /// Set by `lowerHelperToIdle()`; the helper applies it to itself when it next wakes.
    private let helperIdleRequested = Atomic<Bool>(false)
    /// Whether the helper has acted on it (touched by the helper only; a failure is not retried).
    private var helperIdleApplied = false
    private let helperWake = NSCondition()
    private let callerWake = NSCondition()
    private let helperAvailable: Bool
    /// Written by the owner before it posts the job; the helper reads it only after claiming a chunk,
    /// and the owner does not replace it before every claimed chunk is done.
    private var job: ((Int, Int) -> Void)?
    private var generation: UInt64 = 0

    public static let maxChunks = 0xFFFF

    private init() {
        helperAvailable = ProcessInfo.processInfo.activeProcessorCount > 1
        guard helperAvailable else { return }
        let thread = Thread { [unowned self] in
            nameCurrentThread("paired-worker")
            self.helperLoop()
        }
        thread.name = "troupe.paired-worker"
        thread.start()
    }

    /// Moves the helper thread to `SCHED_IDLE` (`ThreadScheduling`) before its next job, so it computes
    /// only on cycles other threads leave. For a process whose matrix work should yield to others on
    /// its cores (an actor beside its learner); it cannot be undone.
    public func lowerHelperToIdle() { helperIdleRequested.store(true, ordering: .releasing) }

    /// Runs body(chunk, worker) for chunk in 0..<chunks, each exactly once, on this thread (worker 0)
    /// and the helper (worker 1); returns when all are done. `worker` lets a body use per-thread scratch.
    public func run(chunks: Int, _ body: @escaping (_ chunk: Int, _ worker: Int) -> Void) {
        precondition(chunks >= 0 && chunks <= Self.maxChunks, "PairedWorker: chunk count \(chunks) out of range")
        guard chunks > 1, helperAvailable,
              owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for c in 0..<chunks { body(c, 0) }
            return
        }
        job = body
        helperDone.store(0, ordering: .relaxed)
        generation = (generation &+ 1) & 0xFFFF_FFFF
        // Sequentially consistent with the helper's `helperParked` store and `work` load: one of the
        // two sides sees the other, so a parking helper cannot miss this job.
        work.store(generation << 32 | UInt64(chunks) << 16, ordering: .sequentiallyConsistent)
        if helperParked.load(ordering: .sequentiallyConsistent) {
            helperWake.lock()
            helperWake.signal()
            helperWake.unlock()
        }
        var mine = 0
        while let c = claim() {
            body(c, 0)
            mine += 1
        }
        waitForHelper(chunks: chunks - mine)
        job = nil
        owned.store(false, ordering: .releasing)
    }

    /// The next unclaimed chunk of the posted job, if any.
    @inline(__always)
    private func claim() -> Int? {
        var v = work.load(ordering: .acquiring)
        while true {
            let total = Int(truncatingIfNeeded: v >> 16 & 0xFFFF), next = Int(truncatingIfNeeded: v & 0xFFFF)
            if next >= total { return nil }
            let (exchanged, original) = work.compareExchange(expected: v, desired: v + 1, ordering: .acquiringAndReleasing)
            if exchanged { return next }
            v = original
        }
    }

    private func waitForHelper(chunks: Int) {
        var spins = 0
        var deadline = 0.0
        while helperDone.load(ordering: .acquiring) != chunks {
            spins += 1
            if spins < 64 { continue }
            // Past a microsecond or so, poll politely: if the helper shares this core, it gets to run.
            sched_yield()
            let now = monotonicSeconds()
            if deadline == 0 {
                deadline = now + Self.callerSpinSeconds
            } else if now > deadline {
                callerWake.lock()
                callerBlocked.store(true, ordering: .sequentiallyConsistent)
                while helperDone.load(ordering: .sequentiallyConsistent) != chunks { callerWake.wait() }
                callerBlocked.store(false, ordering: .relaxed)
                callerWake.unlock()
                return
            }
        }
    }

    private func helperLoop() {
        while true {
            if !helperIdleApplied && helperIdleRequested.load(ordering: .acquiring) {
                ThreadScheduling.makeIdle()
                helperIdleApplied = true
            }
            while let c = claim() {
                job!(c, 1)
                helperDone.add(1, ordering: .sequentiallyConsistent)
                if callerBlocked.load(ordering: .sequentiallyConsistent) {
                    callerWake.lock()
                    callerWake.signal()
                    callerWake.unlock()
                }
            }
            idle()
        }
    }

    private static func hasWork(_ v: UInt64) -> Bool { v & 0xFFFF < v >> 16 & 0xFFFF }

    /// Polls for a posted job, then parks until one is posted.
    private func idle() {
        var spins = 0
        var deadline = 0.0
        while !Self.hasWork(work.load(ordering: .relaxed)) {
            spins += 1
            if spins < 256 { continue }
            // Poll politely (a process sharing this core gets it back at once), then park.
            sched_yield()
            let now = monotonicSeconds()
            if deadline == 0 {
                deadline = now + Self.idleSpinSeconds
            } else if now > deadline {
                helperWake.lock()
                helperParked.store(true, ordering: .sequentiallyConsistent)
                while !Self.hasWork(work.load(ordering: .sequentiallyConsistent)) { helperWake.wait() }
                helperParked.store(false, ordering: .relaxed)
                helperWake.unlock()
                return
            }
        }
    }
}
