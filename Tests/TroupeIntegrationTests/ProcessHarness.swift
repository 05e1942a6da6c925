import Foundation
import Testing
import TroupeLocalRun
import TroupeRuntime
#if canImport(Glibc)
import Glibc
#endif

// Process management for the multi-process integration tests: real `troupe` processes on loopback,
// each test in its own temporary directory with its own block of ports, every wait bounded by a
// deadline, and only the processes a test started are ever signalled.

/// The `troupe` executable built from this checkout.
enum TroupeBinary {
    /// <repo>/ from <repo>/Tests/TroupeIntegrationTests/ProcessHarness.swift.
    static let repository = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var fixtureModel: String { repository.appendingPathComponent("Tests/Fixtures/llama-tiny").path }

    /// `TROUPE_BINARY` if set, else the newer of .build/debug/troupe and .build/release/troupe.
    static func path() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["TROUPE_BINARY"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw HarnessError("TROUPE_BINARY=\(explicit) is not an executable file")
            }
            return explicit
        }
        let candidates = ["debug", "release"].map { repository.appendingPathComponent(".build/\($0)/troupe").path }
            .filter { FileManager.default.isExecutableFile(atPath: $0) }
        func modified(_ p: String) -> Date {
            ((try? FileManager.default.attributesOfItem(atPath: p))?[.modificationDate] as? Date) ?? .distantPast
        }
        guard let newest = candidates.max(by: { modified($0) < modified($1) }) else {
            throw HarnessError("no troupe binary at \(repository.path)/.build/debug/troupe or .build/release/troupe: run `swift build` in \(repository.path) first")
        }
        return newest
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Five consecutive free loopback ports: control, weights, announce, logs (XPUB side), logs_in (XSUB side).
struct PortBlock {
    let base: Int
    var control: Int { base }
    var weights: Int { base + 1 }
    var announce: Int { base + 2 }
    var logs: Int { base + 3 }
    var logsIn: Int { base + 4 }

    var overrides: [String] {
        ["endpoints.control_port=\(control)", "endpoints.weights_port=\(weights)", "endpoints.announce_port=\(announce)",
         "endpoints.logs_port=\(logs)", "endpoints.logs_in_port=\(logsIn)"]
    }

    /// A random block whose five ports can be bound on 127.0.0.1 right now (below the kernel's
    /// ephemeral range, so outgoing connections of other programs do not take them meanwhile).
    static func random() throws -> PortBlock {
        for _ in 0..<50 {
            let base = Int.random(in: 0..<((32_000 - 20_000) / 5)) * 5 + 20_000
            if (base..<(base + 5)).allSatisfy({ FreePorts.isFree($0) }) { return PortBlock(base: base) }
        }
        throw HarnessError("no free block of 5 loopback ports found in 20000..<32000")
    }
}

/// How a child process ended.
enum ExitStatus: Equatable, CustomStringConvertible {
    case code(Int32)
    case signal(Int32)

    var description: String {
        switch self {
        case .code(let c): return "exit \(c)"
        case .signal(let s): return "killed by signal \(s)"
        }
    }
}

/// One started process, its output going to files in the test's directory.
final class Child {
    let name: String
    let executable: String
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String
    let startedAt = Date()
    private let process: Process

    init(name: String, executable: String, arguments: [String], directory: String, environment: [String: String]) throws {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        stdoutPath = directory + "/\(name).stdout"
        stderrPath = directory + "/\(name).stderr"
        for p in [stdoutPath, stderrPath] {
            guard FileManager.default.createFile(atPath: p, contents: nil) else { throw HarnessError("cannot create \(p)") }
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        // A child inherits the spawning thread's signal mask, and the test runner's threads block
        // SIGTERM and SIGINT: spawn with none blocked, as a shell would.
        var none = sigset_t(), previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var secondsSinceStart: Double { Date().timeIntervalSince(startedAt) }

    var exitStatus: ExitStatus? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal ? .signal(process.terminationStatus) : .code(process.terminationStatus)
    }

    /// Waits at most `seconds` for the process to end; nil if it is still running then.
    @discardableResult
    func waitForExit(within seconds: Double) -> ExitStatus? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return exitStatus
    }

    /// Sends `sig` if the process is still running (so a reused pid is never hit).
    func send(_ sig: Int32) {
        if process.isRunning { kill(process.processIdentifier, sig) }
    }

    /// SIGKILL, then waits (bounded) until the kernel has reaped it.
    func killHard() {
        send(SIGKILL)
        waitForExit(within: 5)
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func tail(_ lines: Int = 25) -> String {
        func last(_ text: String) -> String {
            text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }
        return "--- \(name) (pid \(pid), \(exitStatus?.description ?? "running")): \((executable as NSString).lastPathComponent) \(arguments.joined(separator: " "))\n"
            + "stderr (last \(lines) lines):\n\(last(stderr))\nstdout (last \(lines) lines):\n\(last(stdout))"
    }
}

/// One test's world: a temporary directory (run directory, process output, actors' TMPDIR), a port
/// block, the processes it started, and checks that print every process's output on the first failure.
final class IntegrationRun {
    let name: String
    let directory: String
    let ports: PortBlock
    let binary: String
    private(set) var children: [Child] = []
    private(set) var failed = false
    private var dumped = false
    /// Set in the environment of the children started after it is, on top of `environment`'s.
    var environmentOverrides: [String: String] = [:]

    init(_ name: String) throws {
        self.name = name
        binary = try TroupeBinary.path()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-itest-\(name)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/shm", withIntermediateDirectories: true)
        directory = dir
        ports = try PortBlock.random()
    }

    var runDirectory: String { directory + "/run" }
    var controlEndpoint: String { "tcp://127.0.0.1:\(ports.control)" }
    var records: RunRecords { RunRecords(runDirectory: runDirectory) }

    /// The small configuration every test starts from: the tiny fixture model, 16 add2 prompts,
    /// groups of 4, batches of 2 groups, this test's ports and run directory.
    /// The learner's weight files: a directory of the test's own, so that the test can see them go.
    var sharedMemoryDirectory: String { directory + "/shm" }

    func learnerSettings(maxSteps: Int, _ extra: [String] = []) -> [String] {
        let settings = ["run.directory=\(runDirectory)", "run.max_steps=\(maxSteps)", "model.path=\(TroupeBinary.fixtureModel)",
                        "task.spec=arith:add2", "task.count=16", "sampling.group_size=4", "learner.batch_groups=2",
                        "sampling.max_new_tokens=6", "learner.shared_memory_dir=\(sharedMemoryDirectory)"] + ports.overrides + extra
        return settings.flatMap { ["--set", $0] }
    }

    /// Children share this environment: one BLAS thread each (the machine may have only two cores
    /// and replay must use the run's thread count) and TMPDIR inside the test's directory.
    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        env["TMPDIR"] = directory + "/tmp"
        env.merge(environmentOverrides) { $1 }
        return env
    }

    /// Starts `troupe ARGUMENTS`, or `LAUNCHER… troupe ARGUMENTS` (e.g. `ip netns exec NS`, which
    /// execs troupe in the same process, so signals sent to the child still reach troupe itself).
    @discardableResult
    func start(_ name: String, _ arguments: [String], launcher: [String] = []) throws -> Child {
        try startProgram(name, launcher + [binary] + arguments)
    }

    /// Starts `command` (a program and its arguments) as one of this test's children.
    @discardableResult
    func startProgram(_ name: String, _ command: [String]) throws -> Child {
        precondition(!children.contains { $0.name == name }, "child names must be unique in a test")
        let child = try Child(name: name, executable: command[0], arguments: Array(command.dropFirst()), directory: directory,
                              environment: environment)
        children.append(child)
        return child
    }

    /// What a learner, actor or monitor without keys needs: plaintext TCP is refused unless asked for.
    static let plaintext = ["--insecure-plaintext"]

    /// `arguments`, asking for plaintext TCP unless they give keys.
    static func keysOrPlaintext(_ arguments: [String]) -> [String] {
        arguments.contains("--key") ? arguments : arguments + plaintext
    }

    func startLearner(_ name: String = "learner", maxSteps: Int, _ extra: [String] = []) throws -> Child {
        try start(name, ["learner"] + Self.plaintext + learnerSettings(maxSteps: maxSteps, extra))
    }

    func startActor(_ identity: String, _ extra: [String] = []) throws -> Child {
        try start("actor-\(identity)", ["actor", "--learner", controlEndpoint, "--identity", identity, "--connect-timeout", "30"]
                  + Self.keysOrPlaintext(extra))
    }

    /// `troupe keygen NAME --role ROLE --directory FOLDER` for each key, each required to succeed.
    func makeKeys(_ keys: [(name: String, role: String, folder: String)]) throws {
        for (name, role, folder) in keys {
            let (status, _) = try runToCompletion("keygen-\(name)", ["keygen", name, "--role", role, "--directory", folder], within: 20)
            try require(status == .code(0), "troupe keygen \(name) failed")
        }
    }

    /// Runs a command to completion within `seconds` (killed and reported if it takes longer).
    func runToCompletion(_ name: String, _ arguments: [String], within seconds: Double,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> (status: ExitStatus?, child: Child) {
        let child = try start(name, arguments)
        let status = child.waitForExit(within: seconds)
        if status == nil {
            child.killHard()
            fail("\(name) did not finish within \(seconds) s", sourceLocation: sourceLocation)
        }
        return (status, child)
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass; a timeout is a recorded failure.
    @discardableResult
    func waitUntil(_ what: String, within seconds: Double, sourceLocation: SourceLocation = #_sourceLocation,
                   _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        if condition() { return true }
        fail("timed out after \(seconds) s waiting for: \(what)", sourceLocation: sourceLocation)
        return false
    }

    /// Waits for a child to exit and checks its status.
    @discardableResult
    func expectExit(_ child: Child, _ expected: ExitStatus, within seconds: Double,
                    sourceLocation: SourceLocation = #_sourceLocation) -> ExitStatus? {
        let status = child.waitForExit(within: seconds)
        check(status == expected, "\(child.name): expected \(expected), got \(status?.description ?? "still running after \(seconds) s")",
              sourceLocation: sourceLocation)
        return status
    }

    /// Records a failure (with every process's output the first time) unless `condition` holds.
    @discardableResult
    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if !condition { fail(message(), sourceLocation: sourceLocation) }
        return condition
    }

    /// Like `check`, but ends the test (throws) when the condition does not hold.
    func require(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if !condition {
            let text = message()
            fail(text, sourceLocation: sourceLocation)
            throw HarnessError(text)
        }
    }

    func fail(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        failed = true
        var text = "[\(name)] \(message)"
        if !dumped {
            dumped = true
            text += "\n(test directory kept: \(directory))\n" + children.map { $0.tail() }.joined(separator: "\n")
        }
        Issue.record(Comment(rawValue: text), sourceLocation: sourceLocation)
    }

    /// Kills whatever this test started and is still running; removes the directory if nothing failed.
    func finish() {
        for child in children where child.isRunning { child.killHard() }
        if !failed { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// A helper command (a script, a setup tool) run to completion by a test.
enum Command {
    /// Runs `command` to completion within `seconds` (else kills it and throws). Its output goes to a file,
    /// not a pipe: a daemon it starts may keep the stream open long after the command itself has ended.
    static func run(_ command: [String], environment: [String: String]? = nil, within seconds: Double) throws -> (Int32, String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-command-\(UUID().uuidString).out").path
        guard FileManager.default.createFile(atPath: outputPath, contents: nil), let output = FileHandle(forWritingAtPath: outputPath) else {
            throw HarnessError("cannot create \(outputPath)")
        }
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        if let environment { process.environment = environment }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        var none = sigset_t(), previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        try process.run()
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        try? output.close()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError("\(command.joined(separator: " ")) did not finish within \(seconds) s:\n\(text)")
        }
        return (process.terminationStatus, text)
    }
}
