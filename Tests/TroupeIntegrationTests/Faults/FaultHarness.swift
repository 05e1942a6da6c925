import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// What the fault-injection scenarios add to the integration harness: a hard time bound per scenario,
// actor churn, a learner slowed by SIGSTOP/SIGCONT, resident memory from /proc, the closing checks
// every scenario shares, and the figures each scenario prints (docs/RELIABILITY.md quotes them).

/// One fault scenario: an `IntegrationRun` (its own directory, ports and processes) with a hard time
/// bound. When the bound passes, every process the scenario started is killed, its waits (each bounded
/// too) return at once, it starts nothing more, and the test fails instead of hanging.
final class FaultScenario {
    let name: String
    let run: IntegrationRun
    let boundSeconds: Double
    let startedAt = Date()
    private let watchdog: Watchdog
    private var figures: [(String, String)] = []

    init(_ name: String, boundSeconds: Double) throws {
        self.name = name
        self.boundSeconds = boundSeconds
        run = try IntegrationRun("fault-\(name)")
        watchdog = Watchdog(seconds: boundSeconds, scenario: name)
    }

    var elapsed: Double { Date().timeIntervalSince(startedAt) }

    /// The hard bound has passed (and the scenario's processes were killed).
    var expired: Bool { watchdog.fired }

    /// `run.waitUntil`, but it also returns, as a failure, once the scenario's hard bound has passed.
    @discardableResult
    func waitUntil(_ what: String, within seconds: Double, sourceLocation: SourceLocation = #_sourceLocation,
                   _ condition: () -> Bool) -> Bool {
        let held = run.waitUntil(what, within: seconds, sourceLocation: sourceLocation) { expired || condition() }
        if expired {
            run.fail("the scenario's hard bound of \(Int(boundSeconds)) s passed while waiting for: \(what)", sourceLocation: sourceLocation)
            return false
        }
        return held
    }

    /// The learner settings of every scenario: the built-in model on two-digit additions, evictions
    /// after 3 s of silence (so a scenario sees them quickly), plus the scenario's own.
    static let builtInModel = TroupeBinary.repository.appendingPathComponent("models/arith-base").path

    func learnerSettings(maxSteps: Int, _ extra: [String]) -> [String] {
        run.learnerSettings(maxSteps: maxSteps, ["model.path=\(Self.builtInModel)", "learner.heartbeat_timeout_s=3",
                                                 "learner.lease_timeout_s=3"] + extra)
    }

    @discardableResult
    /// `arguments`: flags before the settings (keys; without them the learner is told to take plaintext).
    func startLearner(_ name: String = "learner", maxSteps: Int, _ extra: [String] = [], arguments: [String] = [],
                      launcher: [String] = []) throws -> Child {
        try start(name, ["learner"] + IntegrationRun.keysOrPlaintext(arguments) + learnerSettings(maxSteps: maxSteps, extra), launcher: launcher)
    }

    /// `troupe learner --resume RUN`: the frozen config.json carries the ports and settings; the keys
    /// (`arguments`) do not.
    func resumeLearner(_ name: String, arguments: [String] = [], launcher: [String] = []) throws -> Child {
        try start(name, ["learner", "--resume", run.runDirectory] + IntegrationRun.keysOrPlaintext(arguments), launcher: launcher)
    }

    @discardableResult
    func startActor(_ identity: String, learner endpoint: String? = nil, _ extra: [String] = []) throws -> Child {
        try start("actor-\(identity)", ["actor", "--learner", endpoint ?? run.controlEndpoint, "--identity", identity,
                                        "--connect-timeout", "30"] + IntegrationRun.keysOrPlaintext(extra))
    }

    /// CURVE keys from `troupe keygen` for the learner and `actors` (each key named as its actor):
    /// the learner's arguments, and each actor's: the scenarios that pass them run authenticated and encrypted.
    func makeKeys(actors: [String]) throws -> (learner: [String], actor: (String) -> [String]) {
        try keygen("learner", role: "learner", in: keysDirectory)
        for name in actors { try keygen(name, role: "actor", in: keysDirectory + "/allowed") }
        return (["--key", keysDirectory + "/learner.key_secret", "--allow", keysDirectory + "/allowed"],
                { ["--key", self.keysDirectory + "/allowed/\($0).key_secret", "--learner-key", self.keysDirectory + "/learner.key"] })
    }

    /// Where `makeKeys` writes: the learner's pair, and the allowlist in allowed/.
    var keysDirectory: String { run.directory + "/keys" }

    /// `troupe keygen NAME --role ROLE --directory DIRECTORY` (NAME.key and NAME.key_secret there).
    func keygen(_ name: String, role: String, in directory: String) throws {
        let (status, _) = try run.runToCompletion("keygen-\(name)-\(UUID().uuidString.prefix(4))",
                                                  ["keygen", name, "--role", role, "--directory", directory], within: 20)
        try run.require(status == .code(0), "troupe keygen \(name) failed")
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String], launcher: [String] = []) throws -> Child {
        if expired { throw HarnessError("the scenario's hard bound of \(Int(boundSeconds)) s has passed: \(name) not started") }
        let child = try run.start(name, arguments, launcher: launcher)
        watchdog.watch(child)
        return child
    }

    /// Seconds from `since` until `condition` holds (polled as `waitUntil` does); nil, and a recorded
    /// failure, when it does not within `seconds`.
    func secondsUntil(_ what: String, since: Date, within seconds: Double, sourceLocation: SourceLocation = #_sourceLocation,
                      _ condition: () -> Bool) -> Double? {
        var after: Double?
        waitUntil(what, within: seconds, sourceLocation: sourceLocation) {
            guard condition() else { return false }
            after = Date().timeIntervalSince(since)
            return true
        }
        return after
    }

    /// Seconds from `since` until a step beyond `step` is done (nil when none comes within `seconds`).
    func secondsUntilStep(after step: Int, since: Date, within seconds: Double, sourceLocation: SourceLocation = #_sourceLocation) -> Double? {
        secondsUntil("a step after step \(step)", since: since, within: seconds, sourceLocation: sourceLocation) {
            (run.records.stepsDone.last ?? 0) > step
        }
    }

    /// `actor_left` records of evictions (of `actor`, or of anyone).
    func evictions(of actor: String? = nil) -> [LogRecord] {
        run.records.of("actor_left").filter {
            ($0.string("reason") ?? "").hasPrefix("evicted") && (actor == nil || $0.string("actor") == actor)
        }
    }

    /// A figure this run measured; printed together when the scenario ends.
    func record(_ key: String, _ value: Any) {
        let text: String
        if let d = value as? Double { text = String(format: "%.2f", d) } else { text = "\(value)" }
        figures.append((key, text))
    }

    /// The accounting of learner-summary.json as figures: what the run produced and what became of it.
    func recordAccounting() {
        guard let a = run.records.accounting else { return }
        for key in ["produced", "trained", "rejected", "duplicates", "lost_uncommitted", "in_flight"] { record(key, a[key] ?? -1) }
        for (key, value) in a.filter({ $0.key.hasPrefix("rejected/") }).sorted(by: { $0.key < $1.key }) { record(key, value) }
    }

    /// What every scenario ends with: the accounting identity holds in the (last) learner's summary,
    /// the run log's chain links hold, the surviving history trains each group once with weights it may
    /// use, and `troupe replay --verify` re-executes every surviving step bit for bit.
    func expectSoundEnd(steps: Int, finished: Bool, replayWithin seconds: Double = 90,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        recordAccounting()
        RuntimeIntegrationTests.expectConsistentEnd(run, steps: steps, finished: finished, sourceLocation: sourceLocation)
        let replayStart = Date()
        // The replay process is the test's own, not the scenario's: it gets what is left of the bound.
        let limit = min(seconds, max(1, boundSeconds - elapsed))
        try RuntimeIntegrationTests.expectReplayVerifies(run, steps: steps, within: limit, sourceLocation: sourceLocation)
        record("replay_s", Date().timeIntervalSince(replayStart))
    }

    /// Stops the watchdog, prints the figures, kills whatever is left and cleans up.
    func finish() {
        watchdog.cancel()
        record("scenario_s", elapsed)
        print("[fault] \(name): " + figures.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
        run.finish()
    }
}

/// Kills the processes it watches once `seconds` have passed (only those, by their own `Child`).
final class Watchdog {
    private let lock = NSLock()
    private var children: [Child] = []
    private var cancelled = false
    private var hasFired = false
    private let timer: DispatchSourceTimer

    var fired: Bool {
        lock.lock()
        defer { lock.unlock() }
        return hasFired
    }

    init(seconds: Double, scenario: String) {
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + seconds)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            self.lock.lock()
            defer { self.lock.unlock() }
            guard !self.cancelled else { return }
            self.hasFired = true
            print("[fault] \(scenario): hard bound of \(Int(seconds)) s reached, killing its processes")
            for child in self.children { child.send(SIGCONT); child.send(SIGKILL) }
        }
        timer.resume()
    }

    func watch(_ child: Child) {
        lock.lock()
        children.append(child)
        lock.unlock()
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
        timer.cancel()
    }
}

/// Keeps `count` actors running and, every `period` seconds, kills one at random with SIGKILL and
/// starts a fresh one (a new identity) in its place. Driven by `tick()` from the scenario's waits, so
/// every process is started from the test's own thread.
final class ActorChurn {
    private let scenario: FaultScenario
    private let period: Double
    private let extraArguments: [String]
    private(set) var live: [Child] = []
    private(set) var kills = 0
    private var started = 0
    private var nextKill: Date

    init(_ scenario: FaultScenario, actors count: Int, every period: Double, _ extraArguments: [String] = []) throws {
        self.scenario = scenario
        self.period = period
        self.extraArguments = extraArguments
        nextKill = Date().addingTimeInterval(period)
        for _ in 0..<count { try startOne() }
    }

    private func startOne() throws {
        started += 1
        live.append(try scenario.startActor("churn\(started)", extraArguments))
    }

    /// Kills and replaces one actor if its time has come.
    func tick() {
        guard Date() >= nextKill else { return }
        nextKill = nextKill.addingTimeInterval(period)
        live.removeAll { !$0.isRunning }
        if let victim = live.randomElement() {
            victim.killHard()
            kills += 1
            live.removeAll { $0 === victim }
        }
        do { try startOne() } catch { scenario.run.fail("could not start a replacement actor: \(error)") }
    }

    /// Runs the churn for `seconds` (less if the scenario's hard bound passes meanwhile).
    func run(for seconds: Double) {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until && !scenario.expired {
            tick()
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// SIGTERM to every live actor; each must leave with exit 0.
    func stopAll(within seconds: Double = 15) {
        for actor in live { actor.send(SIGTERM) }
        for actor in live { scenario.run.expectExit(actor, .code(0), within: seconds) }
    }
}

/// Slows a process by letting it run `running` seconds out of every `period` (SIGSTOP, SIGCONT), on a
/// thread of its own, until `stop()`, which always leaves the process running.
final class DutyCycle {
    private final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
        func set() { lock.lock(); value = true; lock.unlock() }
    }

    private let stopRequested = Flag()
    private let finished = DispatchSemaphore(value: 0)

    init(_ child: Child, running: Double, period: Double) {
        let stopRequested = stopRequested, finished = finished
        Thread {
            while !stopRequested.isSet {
                Thread.sleep(forTimeInterval: running)
                child.send(SIGSTOP)
                Thread.sleep(forTimeInterval: period - running)
                child.send(SIGCONT)
            }
            finished.signal()
        }.start()
    }

    func stop() {
        stopRequested.set()
        finished.wait()
    }
}

/// Resident memory of a process, from /proc/PID/status (kB lines).
enum ProcessMemory {
    static func kilobytes(_ field: String, pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// Resident set size now.
    static func residentMiB(_ pid: Int32) -> Double? { kilobytes("VmRSS", pid: pid).map { Double($0) / 1024 } }
    /// The highest resident set size the process has had.
    static func peakResidentMiB(_ pid: Int32) -> Double? { kilobytes("VmHWM", pid: pid).map { Double($0) / 1024 } }
}
