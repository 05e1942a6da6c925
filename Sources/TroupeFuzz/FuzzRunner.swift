import Foundation
import TroupeRuntime
import TroupeTensor

/// Runs a target on mutated inputs: a seeded mutation loop (no coverage feedback; libFuzzer needs
/// an instrumented build, see docs/testing.md). A crash is caught by a signal handler that writes
/// the input to `crash-<target>.bin` before the process dies; an input that runs longer than
/// `hangSeconds` is written to `hang-<target>.bin` and ends the process; a resident set above
/// `rssLimitMB` is reported with the last input as a runaway allocation.
package struct FuzzRunner {
    package struct Report: Sendable {
        package var target: String
        package var inputs: Int
        package var seconds: Double
        package var slowestInputMs: Double
        package var residentMB: Double
    }

    package enum Failure: Error, CustomStringConvertible {
        case runawayAllocation(target: String, residentMB: Double, input: String)
        package var description: String {
            switch self {
            case .runawayAllocation(let t, let mb, let input):
                return "\(t): resident memory reached \(Int(mb)) MB; the last input is in \(input)"
            }
        }
    }

    package var inputs: Int
    package var seed: UInt64
    package var hangSeconds: Double = 10
    package var rssLimitMB: Double = 3072
    /// Where failing inputs are written.
    package var outputDirectory: String

    package init(inputs: Int, seed: UInt64, outputDirectory: String) {
        self.inputs = inputs
        self.seed = seed
        self.outputDirectory = outputDirectory
    }

    /// Runs `target` on its seeds, then on `inputs` mutations; `progress` is called every few thousand inputs.
    package func run(_ target: FuzzTarget, progress: (Int) -> Void = { _ in }) throws -> Report {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        FailureCapture.arm(directory: outputDirectory, target: target.name, hangSeconds: hangSeconds)
        defer { FailureCapture.disarm() }
        var mutator = Mutator(seed: seed ^ Self.hash(target.name), dictionary: target.dictionary)
        var slowest = 0.0
        let start = monotonicSeconds()
        func attempt(_ input: [UInt8]) {
            FailureCapture.begin(input)
            let t0 = monotonicSeconds()
            target.run(input)
            slowest = max(slowest, monotonicSeconds() - t0)
            FailureCapture.end()
        }
        for s in target.seeds { attempt(s) }
        for i in 0..<inputs {
            let base = target.seeds[mutator.below(target.seeds.count)]
            let other = target.seeds[mutator.below(target.seeds.count)]
            let input = mutator.mutate(base, splicingWith: other)
            attempt(input)
            if i & 1023 == 1023 {
                progress(i + 1)
                let rss = residentMegabytes()
                if rss > rssLimitMB {
                    let path = outputDirectory + "/rss-\(FailureCapture.fileName(target.name)).bin"
                    let saved = FileManager.default.createFile(atPath: path, contents: Data(input))
                    throw Failure.runawayAllocation(target: target.name, residentMB: rss, input: saved ? path : "(not saved: cannot write \(path))")
                }
            }
        }
        return Report(target: target.name, inputs: inputs + target.seeds.count, seconds: monotonicSeconds() - start,
                      slowestInputMs: slowest * 1000, residentMB: residentMegabytes())
    }

    static func hash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }
}

/// The input under test, where a signal handler and a watchdog thread can reach it without locks.
/// Only async-signal-safe calls (open, write, close, _exit) happen after a fault.
enum FailureCapture {
    nonisolated(unsafe) private static var current: UnsafeMutablePointer<UInt8>?
    nonisolated(unsafe) private static var currentCount = 0
    nonisolated(unsafe) private static var capacity = 0
    nonisolated(unsafe) private static var crashPath: [CChar] = []
    nonisolated(unsafe) private static var hangPath: [CChar] = []
    nonisolated(unsafe) private static var startedAt = 0.0
    nonisolated(unsafe) private static var running = false
    nonisolated(unsafe) private static var armed = false
    nonisolated(unsafe) private static var watchdog: Thread?

    static func fileName(_ target: String) -> String { target.replacingOccurrences(of: "/", with: "_") }

    static func arm(directory: String, target: String, hangSeconds: Double) {
        crashPath = Array((directory + "/crash-\(fileName(target)).bin").utf8CString)
        hangPath = Array((directory + "/hang-\(fileName(target)).bin").utf8CString)
        armed = true
        for sig in [SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGABRT, SIGFPE] {
            signal(sig) { sig in
                FailureCapture.writeInput(to: FailureCapture.crashPath)
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
        let thread = Thread {
            while FailureCapture.armed {
                usleep(200_000)
                if FailureCapture.running && monotonicSeconds() - FailureCapture.startedAt > hangSeconds {
                    FailureCapture.writeInput(to: FailureCapture.hangPath)
                    let message = "troupe-fuzz: \(target): an input ran longer than \(hangSeconds) s (a hang); written to \(String(cString: FailureCapture.hangPath))\n"
                    try? FileHandle.standardError.write(contentsOf: Data(message.utf8))
                    _exit(3)
                }
            }
        }
        thread.start()
        watchdog = thread
    }

    static func disarm() {
        armed = false
        for sig in [SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGABRT, SIGFPE] { signal(sig, SIG_DFL) }
    }

    static func begin(_ input: [UInt8]) {
        if input.count > capacity {
            current?.deallocate()
            capacity = max(input.count, 2 * capacity)
            current = .allocate(capacity: capacity)
        }
        input.withUnsafeBufferPointer { if let b = $0.baseAddress, let c = current { c.update(from: b, count: input.count) } }
        currentCount = input.count
        startedAt = monotonicSeconds()
        running = true
    }

    static func end() { running = false }

    private static func writeInput(to path: [CChar]) {
        let fd = path.withUnsafeBufferPointer { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        guard fd >= 0 else { return }
        if let c = current { _ = write(fd, c, currentCount) }
        close(fd)
    }
}
