import Foundation
import TroupeRuntime
import TroupeTensor

/// Why a runtime benchmark could not produce a number: a role that missed its deadline, a message
/// that was refused where none should be, a child process that failed. Never a made-up figure.
package struct RuntimeBenchError: Error, CustomStringConvertible {
    package let phase: String
    package let problem: String
    package init(_ phase: String, _ problem: String) {
        self.phase = phase
        self.problem = problem
    }
    package var description: String { "runtime benchmark, \(phase): \(problem)" }
}

/// The targets docs/benchmarks.md states for these benchmarks.
package enum RuntimeTargets {
    /// Extra time per ingested group over raw libzmq, in percent.
    package static let ingestionOverheadPercent = 10.0
    /// The widest spread (interquartile range / median) of a figure's trials, its baseline's included,
    /// that a target is judged on; wider, the machine moved too much during the run to say.
    package static let maxTrialSpread = 0.25

    /// Why trials this far apart give no verdict, or nil: the first list (named as a sentence's
    /// subject, "the trials of raw libzmq") whose spread passes `maxSpread`.
    package static func noiseProblem(_ lists: [(name: String, trials: [Double])], maxSpread: Double = maxTrialSpread) -> String? {
        lists.lazy.compactMap { spreadProblem($0.name, spread: BenchStats.relativeSpread($0.trials), maxSpread: maxSpread) }.first
    }

    /// Why trials of this spread (interquartile range / median; NaN counts as too wide) give no verdict, or nil.
    package static func spreadProblem(_ name: String, spread: Double, maxSpread: Double = maxTrialSpread) -> String? {
        guard !(spread <= maxSpread) else { return nil }
        return String(format: "%@ spread %.0f%% (interquartile range / median), beyond the %.0f%% bound: too noisy to judge",
                      name, 100 * spread, 100 * maxSpread)
    }
    /// Distribution of one version to 4 actors, in units of one raw ZeroMQ transfer of the same bytes.
    package static let weightsToFourActorsRatio = 2.0
    /// Share of wall time the trainer waits for a batch, when actors keep up.
    package static let learnerIdleRatio = 0.10
    /// Share of the groups actors produced that the learner discards as stale, with max_staleness ≥ 1.
    package static let staleShare = 0.02
    /// The RL step's share of its arithmetic limit (matrix FLOPs / sgemm rate): with the OpenBLAS kernel
    /// the environment pins, and with the one OpenBLAS picks for the machine.
    package static func rlStepShareOfLimit(environmentKernel: Bool) -> Double { environmentKernel ? 0.85 : 0.70 }
    /// Asynchronous steps per second over synchronous ones, on the same work.
    package static let asyncOverSync = 1.0
}

/// One bench role on its own OS thread, with its own sockets (sockets belong to the thread that
/// creates them). `join(timeoutSeconds:)` never waits forever: every role also runs against its
/// own deadline, so a missed join means a role is stuck in a bounded wait, not a hang.
final class BenchThread: @unchecked Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var failure: Error?

    init(name: String, _ body: @escaping () throws -> Void) {
        let thread = Thread { [self] in
            nameCurrentThread(name)
            do { try body() } catch {
                lock.lock()
                failure = error
                lock.unlock()
            }
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// The role's error, once it has ended with one.
    var error: Error? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    /// Waits for the role to end; rethrows its error, or throws if it is still running at the timeout.
    /// A role may be joined again (it stays ended).
    func join(timeoutSeconds: Double, phase: String) throws {
        guard finished.wait(timeout: .now() + timeoutSeconds) == .success else {
            throw RuntimeBenchError(phase, "a role did not finish within \(Int(timeoutSeconds)) s")
        }
        finished.signal()
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
    }
}

/// Joins every thread (each with the same timeout) and throws the first error.
func joinAll(_ threads: [BenchThread], timeoutSeconds: Double, phase: String) throws {
    var first: Error?
    for t in threads {
        do { try t.join(timeoutSeconds: timeoutSeconds, phase: phase) } catch { if first == nil { first = error } }
    }
    if let first { throw first }
}

/// A one-shot gate: roles get ready, wait at the gate, and all start when the coordinator opens it
/// (the coordinator's clock reading at that moment is the start of the timed phase).
final class StartGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready = 0
    private var opened = false
    private var cancelled = false

    /// A role is ready; blocks until the gate opens. Throws when the gate is cancelled or at the deadline.
    func arriveAndWait(deadline: Double, phase: String) throws {
        condition.lock()
        defer { condition.unlock() }
        ready += 1
        condition.broadcast()
        while !opened {
            if cancelled { throw RuntimeBenchError(phase, "cancelled before the start") }
            let left = deadline - monotonicSeconds()
            if left <= 0 { throw RuntimeBenchError(phase, "the start gate did not open in time") }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(0.1, left)))
        }
    }

    /// Waits until `count` roles are ready, then opens; returns the start time. Cancels on timeout.
    func open(whenReady count: Int, deadline: Double, phase: String) throws -> Double {
        condition.lock()
        defer { condition.unlock() }
        while ready < count {
            if cancelled { throw RuntimeBenchError(phase, "a role failed before the start") }
            if monotonicSeconds() >= deadline {
                cancelled = true
                condition.broadcast()
                throw RuntimeBenchError(phase, "only \(ready) of \(count) roles got ready in time")
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(0.1, max(0.001, deadline - monotonicSeconds()))))
        }
        let start = monotonicSeconds()
        opened = true
        condition.broadcast()
        return start
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A value set once by one thread and read by another with a deadline (a bound endpoint, an end time).
final class Mailbox<Value>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Value?

    func put(_ v: Value) {
        condition.lock()
        value = v
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for the value; gives up at the deadline, or at once when one of `watching` has failed.
    func take(deadline: Double, phase: String, what: String, watching: [BenchThread] = []) throws -> Value {
        condition.lock()
        defer { condition.unlock() }
        while value == nil {
            if let failed = watching.lazy.compactMap(\.error).first { throw failed }
            if monotonicSeconds() >= deadline { throw RuntimeBenchError(phase, "no \(what) in time") }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(0.1, max(0.001, deadline - monotonicSeconds()))))
        }
        return value!
    }

    var current: Value? {
        condition.lock()
        defer { condition.unlock() }
        return value
    }
}

/// A flag one thread raises and others poll (stop serving, stop listening).
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    func raise() { lock.lock(); raised = true; lock.unlock() }
    var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}

/// A sum several threads add to.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var sum = 0
    func add(_ n: Int) { lock.lock(); sum += n; lock.unlock() }
    var total: Int { lock.lock(); defer { lock.unlock() }; return sum }
}

/// Values several threads add, a list at a time (a trial's round trips, clients' finish times).
final class Collected<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Value] = []
    func add(_ more: [Value]) { lock.lock(); values += more; lock.unlock() }
    var all: [Value] { lock.lock(); defer { lock.unlock() }; return values }
}

/// CPU seconds this process has used, every thread's user and system time (the kernel's work for its
/// sockets and files included; other processes' and the kernel's own threads' not).
package func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

package enum BenchStats {
    package static func median(_ xs: [Double]) -> Double {
        let s = xs.filter { $0.isFinite }.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The q-quantile, interpolating linearly between order statistics (numpy's default).
    package static func quantile(_ xs: [Double], _ q: Double) -> Double {
        let s = xs.filter { $0.isFinite }.sorted()
        guard !s.isEmpty else { return .nan }
        let position = q * Double(s.count - 1), below = Int(position.rounded(.down))
        let above = min(below + 1, s.count - 1)
        return s[below] + (position - Double(below)) * (s[above] - s[below])
    }

    /// Interquartile range over median: how far apart a figure's repeats are, robust to one outlier
    /// (0 for one repeat).
    package static func relativeSpread(_ xs: [Double]) -> Double {
        (quantile(xs, 0.75) - quantile(xs, 0.25)) / median(xs)
    }
}
