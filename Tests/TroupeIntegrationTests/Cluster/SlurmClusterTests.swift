import Foundation
import Testing

/// The Slurm recipes of cluster/slurm on a real Slurm cluster (cluster/lab/slurm-lab.sh): six nodes,
/// each its own network namespace and address, so the learner and every actor run on different
/// "hosts" — weights travel as chunks through the relay tree, actors find the learner by the address it
/// advertises, and nothing is shared but the file system. CI runs it after the other tests
/// (scripts/bootstrap.sh installs Slurm); elsewhere it needs root and the Slurm packages.
@Suite(.serialized) struct SlurmClusterTests {
    /// Every process of the scenario is a Slurm job, so the bound is enforced by tearing the lab down.
    static let boundSeconds = 420.0

    @Test(.enabled(if: SlurmLabAvailability.shouldRun, "\(SlurmLabAvailability.unavailableReason ?? "")"), .timeLimit(.minutes(10)))
    func aHeterogeneousJobScalesLosesActorsAndResumesItsLearner() throws {
        let run = try IntegrationRun("slurm")
        let started = Date()
        let lab = try SlurmLab(directory: run.directory + "/lab", nodes: 6, cpusPerNode: 2)
        let bound = DispatchWorkItem { lab.down() }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.boundSeconds, execute: bound)
        defer {
            bound.cancel()
            lab.down()
            run.finish()
        }
        let scenario = SlurmScenario(run: run, lab: lab)
        try scenario.prepare()

        // A heterogeneous job: the learner on one node, actors 1 and 2 on two others.
        let hetjob = try scenario.troupeSlurm(["submit", run.runDirectory, "--layout", "hetjob", "--actors", "2"])
        let hetjobID = try #require(hetjob.split(separator: " ").first { $0.allSatisfy(\.isNumber) }.map(String.init))
        try scenario.waitForContributions(from: ["actor-1", "actor-2"], within: 90)
        let firstMonitor = try scenario.startMonitor("monitor-1")
        let endpoints = try scenario.endpoints()
        run.check(endpoints.control.hasPrefix("tcp://\(lab.environment["LAB_PREFIX"] ?? "?")."),
                  "the learner advertises \(endpoints.control), not its lab address")
        // troupe doctor from the login host and from a compute node finds every advertised endpoint reachable.
        let doctor = try scenario.troupeSlurm(["doctor", run.runDirectory], lastLineOnly: false)
        run.check(doctor.contains("reach_control") && !doctor.contains("FAIL"), "troupe-slurm doctor:\n\(doctor)")
        scenario.mark("hetjob")

        // Scale to four actors: a job array of two more.
        try scenario.troupeSlurm(["scale", run.runDirectory, "up", "2"])
        try scenario.waitForContributions(from: ["actor-3", "actor-4"], within: 90)
        scenario.mark("scaled to 4")

        // Scale down by one (the newest array task, actor-4, leaves with Bye); requeue actor-3 (it comes back as
        // itself and works again).
        let tasks = try scenario.arrayTasks()
        let actor3 = try #require(tasks["actor-3"])
        try scenario.troupeSlurm(["scale", run.runDirectory, "down", "1"])
        scenario.waitForRecord("actor-4 leaving", within: 60) { $0.type == "actor_left" && $0.string("actor") == "actor-4" }
        scenario.mark("scaled down to 3")
        let joinsBefore = scenario.joins(of: "actor-3")
        let requeuedAt = run.records.all.count
        try scenario.troupeSlurm(["requeue", run.runDirectory, actor3], within: 90)
        run.waitUntil("actor-3 to join again after its requeue", within: 90) { scenario.joins(of: "actor-3") > joinsBefore }
        try scenario.waitForContributions(from: ["actor-3"], after: requeuedAt, within: 60)
        scenario.mark("requeued actor-3")

        // Cancel the learner's job (SIGTERM: it checkpoints and leaves); resubmit it: the run resumes, and the
        // array's actor follows it through endpoints.json to wherever Slurm placed it.
        try scenario.troupeSlurm(["cancel", run.runDirectory, hetjobID])
        run.waitUntil("the learner to stop after scancel", within: 60) { !run.records.of("learner_stopped").isEmpty }
        try scenario.waitUntilGone(hetjobID, within: 60)
        let stoppedAt = run.records.stepsDone.last ?? 0
        let finalSteps = stoppedAt + 30
        let stoppedRecords = run.records.all.count
        run.check(run.expectExit(firstMonitor, .code(0), within: 30) == .code(0), "the monitor did not end with the learner it followed")
        run.check(firstMonitor.stdout.contains("\"learner_stopped\""), "the monitor never saw the learner stop")
        try scenario.troupeSlurm(["resume", run.runDirectory, "--set", "run.max_steps=\(finalSteps)"])
        try scenario.waitForContributions(from: ["actor-3"], after: stoppedRecords, within: 120)
        let secondMonitor = try scenario.startMonitor("monitor-2")
        run.waitUntil("the resumed run to finish its \(finalSteps) steps", within: 120) { !run.records.of("run_finished").isEmpty }
        scenario.mark("resumed")
        try scenario.waitUntilQueueEmpty(within: 60)
        run.check(run.expectExit(secondMonitor, .code(0), within: 30) == .code(0), "troupe monitor --until-finished did not end with the run")

        // The run as a whole: each actor contributed, training went on after each change, the accounts hold,
        // no group trained twice, and the surviving history replays bit for bit.
        let records = run.records
        let contributors = Set(records.accepted.map { LogRecord.actor(ofGroup: $0.key) })
        run.check(contributors.isSuperset(of: ["actor-1", "actor-2", "actor-3", "actor-4"]), "groups came from \(contributors.sorted())")
        scenario.expectProgressAfterEachChange()
        run.check(records.of("resumed").count == 1, "expected one resume, found \(records.of("resumed").count)")
        run.check(secondMonitor.stdout.contains("\"run_finished\""), "the monitor never saw the run finish")
        run.check(firstMonitor.stdout.contains("\"kind\":\"step\"") && secondMonitor.stdout.contains("\"kind\":\"step\""),
                  "a monitor saw no steps")
        let via = scenario.weightRoutes()
        run.check(!via.contains("shared_memory"), "an actor mapped the learner's shared memory across hosts: \(via)")
        run.check(via.contains("relay"), "no actor took its weights through another actor's relay: \(via)")
        RuntimeIntegrationTests.expectConsistentEnd(run, steps: finalSteps, finished: true, maxStaleness: 1)
        try RuntimeIntegrationTests.expectReplayVerifies(run, steps: finalSteps, within: 120)
        print("[slurm] " + scenario.figures(total: Date().timeIntervalSince(started)))
    }

    /// The two other layouts, side by side on one lab: a single allocation running `srun --multi-prog`,
    /// and a learner job with its actors as a job array that depends on it. Each runs to its last step.
    @Test(.enabled(if: SlurmLabAvailability.shouldRun, "\(SlurmLabAvailability.unavailableReason ?? "")"), .timeLimit(.minutes(10)))
    func theSingleAllocationAndSplitLayoutsRunToTheEnd() throws {
        let multiprog = try IntegrationRun("slurm-multiprog"), split = try IntegrationRun("slurm-split")
        let lab = try SlurmLab(directory: multiprog.directory + "/lab", nodes: 6, cpusPerNode: 2)
        let bound = DispatchWorkItem { lab.down() }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.boundSeconds, execute: bound)
        defer {
            bound.cancel()
            lab.down()
            multiprog.finish()
            split.finish()
        }
        let steps = 12
        let scenarios = [(multiprog, "multiprog"), (split, "split")].map { (SlurmScenario(run: $0.0, lab: lab), $0.1) }
        for (scenario, layout) in scenarios {
            try scenario.prepare(maxSteps: steps)
            try scenario.troupeSlurm(["submit", scenario.run.runDirectory, "--layout", layout, "--actors", "2"])
        }
        for (scenario, layout) in scenarios {
            let run = scenario.run
            run.waitUntil("the \(layout) run to finish its \(steps) steps", within: 120) { !run.records.of("run_finished").isEmpty }
            try scenario.waitUntilQueueEmpty(within: 60)
            let contributors = Set(run.records.accepted.map { LogRecord.actor(ofGroup: $0.key) })
            run.check(contributors == ["actor-1", "actor-2"], "\(layout): groups came from \(contributors.sorted())")
            run.check(!scenario.weightRoutes().contains("shared_memory"), "\(layout): an actor mapped the learner's shared memory")
            RuntimeIntegrationTests.expectConsistentEnd(run, steps: steps, finished: true, maxStaleness: 1)
            try RuntimeIntegrationTests.expectReplayVerifies(run, steps: steps, within: 60)
        }
    }
}

/// The steps of the scenario: troupe-slurm on the login host, and what the run log says.
final class SlurmScenario {
    let run: IntegrationRun
    let lab: SlurmLab
    private var marks: [(String, Int, Date)] = []
    private let siteFile: String

    init(run: IntegrationRun, lab: SlurmLab) {
        self.run = run
        self.lab = lab
        siteFile = run.directory + "/site.env"
    }

    var troupeSlurmScript: String { TroupeBinary.repository.appendingPathComponent("cluster/slurm/troupe-slurm").path }

    /// The site settings of the lab (cluster/slurm/site.env's keys) and the run directory.
    func prepare(maxSteps: Int = 1_000_000) throws {
        let site = """
            TROUPE_BIN=\(run.binary)
            TROUPE_SBATCH_OPTIONS="--time=15"
            TROUPE_LEARNER_CPUS=2
            TROUPE_LEARNER_MEMORY=500M
            TROUPE_ACTOR_CPUS=2
            TROUPE_ACTOR_MEMORY=500M
            TROUPE_ADVERTISE_INTERFACE=lab0
            TROUPE_CONNECT_TIMEOUT=120
            TROUPE_LEARNER_GONE_TIMEOUT=120
            export OPENBLAS_NUM_THREADS=1

            """
        try site.write(toFile: siteFile, atomically: true, encoding: .utf8)
        let settings = ["model.path=\(FaultScenario.builtInModel)", "run.max_steps=\(maxSteps)", "learner.heartbeat_timeout_s=3",
                        "learner.lease_timeout_s=3", "learner.max_staleness=1",
                        // Every node sees the same /dev/shm here; a real cluster's nodes do not. Weights go over the network.
                        "learner.shared_memory_dir="]
        try troupeSlurm(["init", run.runDirectory, "--actors-max", "8"] + settings.flatMap { ["--set", $0] })
    }

    @discardableResult
    func troupeSlurm(_ arguments: [String], within seconds: Double = 60, lastLineOnly: Bool = true,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        var env = run.environment
        env["TROUPE_SITE_ENV"] = siteFile
        let (status, output) = try lab.login(["/bin/bash", troupeSlurmScript] + arguments, environment: env, within: seconds)
        try run.require(status == 0, "troupe-slurm \(arguments.joined(separator: " ")) exited \(status):\n\(output)\n\(jobOutputs())",
                        sourceLocation: sourceLocation)
        return lastLineOnly ? output.split(separator: "\n").last.map(String.init) ?? "" : output
    }

    /// `troupe-slurm follow RUN --until-finished` on the login host (JSON lines, since its output is a file).
    func startMonitor(_ name: String) throws -> Child {
        try run.startProgram(name, lab.onLogin(["/usr/bin/env", "TROUPE_SITE_ENV=\(siteFile)", "/bin/bash", troupeSlurmScript,
                                                "follow", run.runDirectory, "--until-finished"]))
    }

    /// The learner's endpoints file.
    func endpoints() throws -> (control: String, host: String) {
        let data = try Data(contentsOf: URL(fileURLWithPath: run.runDirectory + "/endpoints.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return (object["control"] as? String ?? "", object["host"] as? String ?? "")
    }

    /// Waits until each actor has a group accepted (after run-log record `after`, if given).
    func waitForContributions(from actors: [String], after: Int = 0, within seconds: Double,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let held = run.waitUntil("groups from \(actors.joined(separator: ", "))", within: seconds, sourceLocation: sourceLocation) {
            let from = Set(run.records.accepted.filter { $0.seq > after }.map { LogRecord.actor(ofGroup: $0.key) })
            return actors.allSatisfy(from.contains)
        }
        try run.require(held, "no groups from \(actors) within \(seconds) s\n\(jobOutputs())", sourceLocation: sourceLocation)
    }

    func waitForRecord(_ what: String, within seconds: Double, _ match: (LogRecord) -> Bool) {
        run.waitUntil(what, within: seconds) { run.records.all.contains(where: match) }
    }

    func joins(of actor: String) -> Int { run.records.of("actor_joined").filter { $0.string("actor") == actor }.count }

    /// Array task ids ("JOB_TASK") by actor name, from troupe-slurm's job list.
    func arrayTasks() throws -> [String: String] {
        let text = try String(contentsOfFile: run.runDirectory + "/slurm/jobs.tsv", encoding: .utf8)
        var tasks: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t").map(String.init)
            guard f.count >= 4, f[0] == "actors", let first = Int(f[2]), let last = Int(f[3]) else { continue }
            for i in first...last { tasks["actor-\(i)"] = "\(f[1])_\(i)" }
        }
        return tasks
    }

    /// The queue's entries ("JOB[_TASK|+COMPONENT] STATE") of this run's jobs (troupe-slurm's job list).
    func queue() throws -> String {
        let (status, output) = try lab.login(["squeue", "--noheader", "--array", "--format=%i %T"])
        try run.require(status == 0, "squeue failed: \(output)")
        let list = (try? String(contentsOfFile: run.runDirectory + "/slurm/jobs.tsv", encoding: .utf8)) ?? ""
        let ids = Set(list.split(separator: "\n").compactMap { $0.split(separator: "\t").dropFirst().first.map(String.init) })
        return output.split(separator: "\n").filter { line in
            ids.contains(String(line.prefix { $0.isNumber }))
        }.joined(separator: "\n")
    }

    func waitUntilGone(_ job: String, within seconds: Double) throws {
        let gone = run.waitUntil("job \(job) to leave the queue", within: seconds) {
            ((try? queue()) ?? job).split(separator: "\n").allSatisfy { !$0.hasPrefix(job + " ") && !$0.hasPrefix(job + "+") }
        }
        try run.require(gone, "job \(job) is still queued: \((try? queue()) ?? "?")")
    }

    func waitUntilQueueEmpty(within seconds: Double) throws {
        let empty = run.waitUntil("every job of the run to end", within: seconds) {
            ((try? queue()) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        }
        try run.require(empty, "jobs still queued after the run finished: \((try? queue()) ?? "?")\n\(jobOutputs())")
    }

    /// A point of the scenario, once training has gone on after it: the step reached, at least three
    /// steps beyond the previous mark's.
    func mark(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let previous = marks.last?.1 ?? 0
        run.waitUntil("three steps after step \(previous), before \"\(what)\"", within: 60, sourceLocation: sourceLocation) {
            (run.records.stepsDone.last ?? 0) >= previous + 3
        }
        marks.append((what, run.records.stepsDone.last ?? 0, Date()))
    }

    /// Training went on after each change: the step at each mark is beyond the one before.
    func expectProgressAfterEachChange() {
        for (previous, next) in zip(marks, marks.dropFirst()) {
            run.check(next.1 > previous.1, "no step between \"\(previous.0)\" (step \(previous.1)) and \"\(next.0)\" (step \(next.1))")
        }
    }

    /// How actors received their weights (`via` of their "weights applied" lines) across every job's output.
    func weightRoutes() -> Set<String> {
        var routes = Set<String>()
        for text in jobOutputTexts().values {
            // Job output is a file, so the console writes JSON lines: {"msg":"weights applied",…,"via":"relay",…}.
            for line in text.split(separator: "\n") where line.contains("\"weights applied\"") {
                guard let r = line.range(of: "\"via\":\"") else { continue }
                routes.insert(String(line[r.upperBound...].prefix { $0 != "\"" }))
            }
        }
        return routes
    }

    private func jobOutputTexts() -> [String: String] {
        let dir = run.runDirectory + "/slurm"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var texts: [String: String] = [:]
        for name in names where name.hasSuffix(".out") {
            texts[name] = (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? ""
        }
        return texts
    }

    /// The tail of every job's output, for a failure message.
    func jobOutputs() -> String {
        jobOutputTexts().sorted { $0.key < $1.key }.map { name, text in
            "--- \(name):\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(15).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    func figures(total: Double) -> String {
        let start = marks.first?.2 ?? Date()
        return marks.map { "\($0.0.replacingOccurrences(of: " ", with: "_"))=step\($0.1)@\(String(format: "%.1f", $0.2.timeIntervalSince(start)))s" }
            .joined(separator: " ") + " total_s=\(String(format: "%.1f", total))"
    }
}
