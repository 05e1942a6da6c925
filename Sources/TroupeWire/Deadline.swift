/// A point in time after which a wait gives up. Every receive and poll in this module takes one:
/// there is deliberately no "wait forever".
///
/// Monotonic (`ContinuousClock`), so wall-clock jumps do not shorten or stretch waits.
public struct Deadline: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let instant: ContinuousClock.Instant

    public init(_ instant: ContinuousClock.Instant) {
        self.instant = instant
    }

    /// Do not wait: check once and return.
    public static var now: Deadline { Deadline(ContinuousClock.now) }

    public static func after(_ duration: Duration) -> Deadline {
        Deadline(ContinuousClock.now.advanced(by: duration))
    }

    public static func afterMilliseconds(_ milliseconds: Int) -> Deadline {
        after(.milliseconds(milliseconds))
    }

    public var hasPassed: Bool { ContinuousClock.now >= instant }

    /// Time left, zero once passed.
    public var remaining: Duration {
        let left = instant - ContinuousClock.now
        return left > .zero ? left : .zero
    }

    /// Time left in whole milliseconds for `zmq_poll`, rounded up so that a wait with 0.3 ms left
    /// sleeps 1 ms instead of spinning; clamped to Int32.
    public var remainingMilliseconds: Int32 {
        let left = remaining
        if left == .zero { return 0 }
        let (seconds, attoseconds) = left.components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.instant < rhs.instant }

    public var description: String { "Deadline(in \(remaining))" }
}
