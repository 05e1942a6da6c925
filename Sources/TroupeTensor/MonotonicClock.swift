import Foundation

/// Seconds on the monotonic clock: what every timing and timeout in Troupe is measured with, so wall
/// clock jumps never stretch or shorten one.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
