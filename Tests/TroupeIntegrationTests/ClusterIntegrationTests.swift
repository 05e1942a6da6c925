import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a batch system needs of the processes (docs/cli.md, docs/RELIABILITY.md): finding the learner
/// through RUN_DIR/endpoints.json, giving up on a learner gone for good, stopping cleanly on SIGTERM
/// within the stated time, `troupe doctor`, and clear refusals of bad input. Real processes on loopback.
@Suite(.serialized) struct ClusterIntegrationTests {
    /// The endpoints file, parsed as a test reads it.
    static func endpointsFile(_ run: IntegrationRun) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: run.runDirectory + "/endpoints.json") else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    // An actor and a monitor started before the learner find it through the run directory, the
    // file says where the learner is, and the run finishes with both.
    @Test func anActorAndAMonitorStartedBeforeTheLearnerFindItThroughItsEndpointsFile() throws {
        let run = try IntegrationRun("learner-file")
        defer { run.finish() }
        let actor = try run.start("actor-f1", ["actor", "--learner-file", run.runDirectory, "--identity", "f1", "--connect-timeout", "60"]
                                                     + IntegrationRun.plaintext)
        let monitor = try run.start("monitor", ["monitor", "--learner-file", run.runDirectory + "/endpoints.json", "--json", "--until-finished",
                                                "--duration", "120"] + IntegrationRun.plaintext)
        Thread.sleep(forTimeInterval: 1.5)
        run.check(actor.isRunning && monitor.isRunning, "an actor or monitor did not wait for the endpoints file")
        let learner = try run.startLearner(maxSteps: 3)
        run.expectExit(learner, .code(0), within: 90)
        run.expectExit(actor, .code(0), within: 20)
        run.expectExit(monitor, .code(0), within: 20)
        let file = Self.endpointsFile(run)
        run.check(file?["control"] as? String == run.controlEndpoint, "endpoints.json control is \(file?["control"] ?? "missing"), expected \(run.controlEndpoint)")
        run.check(file?["logs"] as? String == "tcp://127.0.0.1:\(run.ports.logs)", "endpoints.json logs is \(file?["logs"] ?? "missing")")
        run.check((file?["pid"] as? NSNumber)?.int32Value == learner.pid, "endpoints.json pid \(file?["pid"] ?? "missing") is not the learner's \(learner.pid)")
        run.check(file?["learner_public_key"] is NSNull, "a plaintext learner's file names a key: \(file?["learner_public_key"] ?? "missing")")
        run.check(file?["epoch"] as? String == run.records.of("epoch_started").last?.string("epoch"), "endpoints.json epoch is not the run log's")
        run.check(file?["finished_at"] is String, "the finished run's endpoints.json has no finished_at: \(file?["finished_at"] ?? "missing")")
        // A monitor started after the end has nothing to wait for.
        let (late, lateMonitor) = try run.runToCompletion("monitor-late", ["monitor", "--learner-file", run.runDirectory, "--json", "--until-finished",
                                                                          "--duration", "60"] + IntegrationRun.plaintext, within: 20)
        run.check(late == .code(0) && lateMonitor.secondsSinceStart < 10, "a monitor of the finished run ended with \(late?.description ?? "a timeout") after \(lateMonitor.secondsSinceStart) s")
        run.check(lateMonitor.stderr.contains("the run finished at") && lateMonitor.stdout.contains("monitor_summary"),
                  "the late monitor does not say the run finished: \(lateMonitor.stderr) \(lateMonitor.stdout)")
        // An actor started after the end finds no learner, and its error says why.
        let (lateStatus, lateActor) = try run.runToCompletion("actor-late", ["actor", "--learner-file", run.runDirectory, "--identity", "f2",
                                                                             "--connect-timeout", "2"] + IntegrationRun.plaintext, within: 20)
        run.check(lateStatus == .code(1) && lateActor.stderr.contains("says its run finished at"),
                  "a late actor ended with \(lateStatus?.description ?? "a timeout"): \(lateActor.stderr.suffix(400))")
        run.check(run.records.of("actor_joined").contains { $0.string("actor") == "f1" }, "f1 never joined")
        run.check(monitor.stdout.contains("\"run_finished\""), "the monitor did not see run_finished")
        RuntimeIntegrationTests.expectConsistentEnd(run, steps: 3)
    }

    // The learner stops (SIGTERM) and is resumed on other ports: the actor and the monitor, told only
    // the run directory, read the rewritten file; the actor joins the resumed learner, the monitor
    // follows its log stream.
    @Test func anActorFollowsAResumedLearnerToItsNewPortsThroughTheFile() throws {
        let run = try IntegrationRun("learner-file-moves")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 30, ["learner.checkpoint_every=1"])
        let actor = try run.start("actor-m1", ["actor", "--learner-file", run.runDirectory, "--identity", "m1", "--connect-timeout", "60"]
                                                     + IntegrationRun.plaintext)
        let monitor = try run.start("monitor", ["monitor", "--learner-file", run.runDirectory, "--json", "--duration", "150"]
                                                + IntegrationRun.plaintext)
        try run.require(run.waitUntil("step 2", within: 60) { run.records.stepsDone.contains(2) }, "no second step")
        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 30) == .code(0), "the learner did not stop on SIGTERM")
        run.check(Self.endpointsFile(run)?["finished_at"] is NSNull, "a stopped (not finished) run's endpoints.json says finished_at \(Self.endpointsFile(run)?["finished_at"] ?? "missing")")
        let moved = try PortBlock.random()
        let resumed = try run.start("learner-moved", ["learner", "--resume", run.runDirectory] + IntegrationRun.plaintext
                                                              + moved.overrides.flatMap { ["--set", $0] })
        run.expectExit(resumed, .code(0), within: 120)
        run.expectExit(actor, .code(0), within: 20)
        run.check(Self.endpointsFile(run)?["control"] as? String == "tcp://127.0.0.1:\(moved.control)", "endpoints.json was not rewritten for the resumed learner")
        run.check(actor.stdout.contains("\(moved.control)") || actor.stderr.contains("\(moved.control)"), "the actor never said it moved to port \(moved.control)")
        let epochs = Set(run.records.accepted.filter { $0.actor == "m1" }.map(\.epoch))
        run.check(epochs.count == 2, "m1 contributed in \(epochs.count) learner epochs, expected both")
        run.check(monitor.isRunning && monitor.stdout.contains("\"run_finished\""), "the monitor did not follow the resumed learner's log stream to run_finished")
        run.check(monitor.stderr.contains("\(moved.logs)"), "the monitor never said it moved to port \(moved.logs)")
        monitor.send(SIGTERM)
        run.expectExit(monitor, .code(0), within: 10)
    }

    // Two learners on one cluster node: with its control port taken, `--free-ports` binds a free block,
    // writes it into endpoints.json, and an actor given only the run directory joins and finishes.
    @Test func aLearnerWhosePortsAreTakenBindsAFreeBlockWithFreePorts() throws {
        let run = try IntegrationRun("free-ports")
        defer { run.finish() }
        let squatter = listenOnLoopback(port: run.ports.control)
        defer { squatter.map { _ = close($0) } }
        try run.require(squatter != nil, "could not take port \(run.ports.control)")
        let learner = try run.start("learner", ["learner", "--free-ports"] + run.learnerSettings(maxSteps: 3) + IntegrationRun.plaintext)
        let actor = try run.start("actor-p1", ["actor", "--learner-file", run.runDirectory, "--identity", "p1", "--connect-timeout", "60"]
                                                + IntegrationRun.plaintext)
        run.expectExit(learner, .code(0), within: 120)
        run.expectExit(actor, .code(0), within: 30)
        let control = Self.endpointsFile(run)?["control"] as? String ?? "none"
        run.check(!control.hasSuffix(":\(run.ports.control)") && control.hasPrefix("tcp://127.0.0.1:"), "endpoints.json's control is \(control)")
        run.check(learner.stderr.contains("binding") || learner.stdout.contains("configured ports are taken"), "the learner did not say it moved")
    }

    // An authenticated learner: the file carries its public key, so an actor, a monitor and doctor
    // given only their own keys and the run directory get in; a plaintext client is told to give --key.
    @Test func theLearnersKeyComesThroughTheEndpointsFile() throws {
        let run = try IntegrationRun("learner-file-keys")
        defer { run.finish() }
        let keys = run.directory + "/keys"
        try run.makeKeys([("learner", "learner", keys), ("k1", "actor", keys + "/allowed"), ("watch", "monitor", keys + "/allowed")])
        let learner = try run.start("learner", ["learner", "--key", keys + "/learner.key_secret", "--allow", keys + "/allowed"]
                                    + run.learnerSettings(maxSteps: 3))
        let actor = try run.start("actor-k1", ["actor", "--learner-file", run.runDirectory, "--key", keys + "/allowed/k1.key_secret"])
        let monitor = try run.start("monitor", ["monitor", "--learner-file", run.runDirectory, "--key", keys + "/allowed/watch.key_secret",
                                                "--json", "--until-finished", "--duration", "90"])
        try run.require(run.waitUntil("endpoints.json", within: 60) { Self.endpointsFile(run) != nil }, "no endpoints.json")
        let publicKey = try String(contentsOfFile: keys + "/learner.key", encoding: .utf8)
        let fileKey = Self.endpointsFile(run)?["learner_public_key"] as? String ?? "none"
        run.check(fileKey.count == 40 && publicKey.contains(fileKey), "endpoints.json names key \(fileKey), not the learner's")
        let (doctor, doctorChild) = try run.runToCompletion("doctor", ["doctor", "--learner-file", run.runDirectory, "--json",
                                                                       "--key", keys + "/allowed/k1.key_secret"], within: 40)
        run.check(doctor == .code(0) && doctorChild.stdout.contains("\"name\":\"protocol\",\"verdict\":\"ok\""),
                  "doctor with a key from the file: \(doctor?.description ?? "a timeout") \(doctorChild.stdout)")
        let (plain, plainChild) = try run.runToCompletion("actor-plain", ["actor", "--learner-file", run.runDirectory], within: 20)
        run.check(plain == .code(1) && plainChild.stderr.contains("give this process's --key"), "a keyless actor: \(plainChild.stderr)")
        run.expectExit(learner, .code(0), within: 90)
        run.expectExit(actor, .code(0), within: 20)
        run.expectExit(monitor, .code(0), within: 20)
        run.check(run.records.of("actor_joined").contains { $0.string("actor") == "k1" }, "k1 never joined")
        run.check(monitor.stdout.contains("\"run_finished\""), "the monitor did not see run_finished")
    }

    // An actor whose learner dies for good exits 1 within --learner-gone-timeout (plus the silence
    // before it notices and slack), saying what it waited for and where.
    @Test func anActorGivesUpOnALearnerGoneForGood() throws {
        let run = try IntegrationRun("learner-gone")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 500)
        let actor = try run.startActor("g1", ["--learner-gone-timeout", "8"])
        // A group of g1's accepted, so g1 surely had its Welcome (an `actor_joined` record alone is written
        // before the Welcome reaches the actor, and an actor never welcomed waits out --connect-timeout instead).
        try run.require(run.waitUntil("a group from g1", within: 60) { run.records.accepted.contains { LogRecord.actor(ofGroup: $0.key) == "g1" } },
                        "g1 landed no group")
        learner.killHard()
        let killed = Date()
        let status = actor.waitForExit(within: 8 + 12)
        let took = Date().timeIntervalSince(killed)
        print("[learner-gone] the actor exited \(String(format: "%.2f", took)) s after the learner's SIGKILL (limit 8 s)")
        run.check(status == .code(1), "the actor ended with \(status?.description ?? "nothing: still running \(took) s after the learner died")")
        // The limit counts from the last message heard, at most a heartbeat interval before the kill.
        run.check(took >= 5, "the actor gave up after \(took) s, well before its 8 s limit")
        run.check(actor.stderr.contains("gone for") && actor.stderr.contains("--learner-gone-timeout 8") && actor.stderr.contains("\(run.ports.control)"),
                  "the message does not say what the actor waited for, how long and where: \(actor.stderr)")
    }

    // An actor frozen (SIGSTOP) past the end of its run and the learner's last Byes (it lingers up to
    // 10 s for them) stops with status 0 once thawed: its learner file says the run it was welcomed to
    // finished. Without that it would wait its --learner-gone-timeout (120 s here).
    @Test func anActorFrozenPastTheEndStopsThroughItsLearnerFile() throws {
        let run = try IntegrationRun("frozen-past-end")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 6)
        let actor = try run.start("actor-e1", ["actor", "--learner-file", run.runDirectory, "--identity", "e1", "--learner-gone-timeout", "120"]
                                              + IntegrationRun.plaintext)
        try run.require(run.waitUntil("a group from e1", within: 60) { run.records.accepted.contains { LogRecord.actor(ofGroup: $0.key) == "e1" } },
                        "e1 landed no group")
        actor.send(SIGSTOP)
        let second = try run.startActor("e2")
        try run.require(run.expectExit(learner, .code(0), within: 90) == .code(0), "the learner did not finish")
        run.expectExit(second, .code(0), within: 20)
        run.check(Self.endpointsFile(run)?["finished_at"] is String, "no finished_at in \(String(describing: Self.endpointsFile(run)))")
        actor.send(SIGCONT)
        let thawed = Date()
        let status = actor.waitForExit(within: 30)
        let took = Date().timeIntervalSince(thawed)
        print("[frozen-past-end] the actor exited \(String(format: "%.2f", took)) s after SIGCONT")
        run.check(status == .code(0), "the thawed actor ended with \(status?.description ?? "nothing: still running \(took) s after SIGCONT")")
        // The file, read after the silence; a Bye still queued on the old connection would say the same.
        run.check(actor.stderr.contains("run finished"), "the actor does not say why it stopped: \(actor.stderr.suffix(600))")
    }

    // --learner-file naming a place that never gets the file: exit 1 within --connect-timeout, naming it.
    @Test func anActorWhoseEndpointsFileNeverAppearsGivesUpNamingIt() throws {
        let run = try IntegrationRun("no-file")
        defer { run.finish() }
        let missing = run.directory + "/never/endpoints.json"
        let (status, actor) = try run.runToCompletion("actor", ["actor", "--learner-file", missing, "--connect-timeout", "2"] + IntegrationRun.plaintext, within: 20)
        run.check(status == .code(1), "ended with \(status?.description ?? "a timeout")")
        run.check(actor.secondsSinceStart < 2 + 8, "took \(actor.secondsSinceStart) s with --connect-timeout 2")
        run.check(actor.stderr.contains(missing) && actor.stderr.contains("did not appear within 2 s"), "does not name the file: \(actor.stderr)")

        try FileManager.default.createDirectory(atPath: run.directory + "/damaged", withIntermediateDirectories: true)
        try Data("{\"control\": 5}".utf8).write(to: URL(fileURLWithPath: run.directory + "/damaged/endpoints.json"))
        let (damaged, child) = try run.runToCompletion("monitor-damaged", ["monitor", "--learner-file", run.directory + "/damaged"] + IntegrationRun.plaintext, within: 20)
        run.check(damaged == .code(1), "a damaged file: \(damaged?.description ?? "a timeout")")
        run.check(child.stderr.contains(run.directory + "/damaged/endpoints.json") && child.stderr.contains("control must be a string"),
                  "the damaged file is not named with its problem: \(child.stderr)")
    }

    // SIGTERM, what Slurm and Kubernetes send, twice to the learner as a batch system may: each process
    // exits 0 within the stated bound, the learner with a checkpoint of its last step.
    @Test func sigtermStopsLearnerActorAndMonitorWithinTheStatedTime() throws {
        let run = try IntegrationRun("sigterm-times")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 500, ["learner.checkpoint_every=1000"])
        let actor = try run.startActor("s1")
        let monitor = try run.start("monitor", ["monitor", "tcp://127.0.0.1:\(run.ports.logs)", "--json"] + IntegrationRun.plaintext)
        try run.require(run.waitUntil("step 3", within: 60) { run.records.stepsDone.contains(3) }, "no third step")
        var took: [String: Double] = [:]
        for child in [monitor, actor] {
            let sent = Date()
            child.send(SIGTERM)
            run.expectExit(child, .code(0), within: 10)
            took[child.name] = Date().timeIntervalSince(sent)
        }
        let sent = Date()
        learner.send(SIGTERM)
        usleep(50_000)
        learner.send(SIGTERM)
        run.expectExit(learner, .code(0), within: 25)
        took["learner"] = Date().timeIntervalSince(sent)
        let records = run.records
        run.check(records.latestCheckpointStep == records.stepsDone.last, "checkpoint at \(records.latestCheckpointStep ?? -1), last step \(records.stepsDone.last ?? -1)")
        run.check(records.of("learner_stopped").count == 1, "no learner_stopped record")
        print("[sigterm-times] seconds from SIGTERM to exit: " + took.keys.sorted().map { "\($0) \(String(format: "%.2f", took[$0]!))" }.joined(separator: ", "))
        for (name, seconds) in took { run.check(seconds < 10, "\(name) took \(seconds) s to stop on SIGTERM (stated: under 10 s)") }
    }

    // `troupe run` forwards SIGTERM to its learner and actors and exits within the stated time.
    @Test func sigtermStopsTroupeRunWithinTheStatedTime() throws {
        let run = try IntegrationRun("sigterm-run")
        defer { run.finish() }
        let local = try run.start("run", ["run", "--no-eval", "--insecure-plaintext", "--actors", "1"] + run.learnerSettings(maxSteps: 500))
        try run.require(run.waitUntil("step 2", within: 90) { run.records.stepsDone.contains(2) }, "no second step")
        let sent = Date()
        local.send(SIGTERM)
        let status = local.waitForExit(within: 30)
        let took = Date().timeIntervalSince(sent)
        print("[sigterm-run] troupe run stopped \(String(format: "%.2f", took)) s after SIGTERM with \(status?.description ?? "nothing")")
        run.check(status == .code(0), "troupe run ended with \(status?.description ?? "nothing within 30 s")")
        run.check(took < 15, "troupe run took \(took) s to stop (stated: under 15 s)")
        run.check(run.records.of("learner_stopped").count == 1, "its learner did not stop cleanly")
    }

    // `troupe doctor`: a learner that advertises an address it does not bind, a port where nothing
    // listens, and a healthy learner.
    @Test func doctorCatchesAWrongAdvertisedAddressAndAnUnreachablePort() throws {
        let run = try IntegrationRun("doctor")
        defer { run.finish() }
        let (closed, closedChild) = try run.runToCompletion("doctor-closed", ["doctor", "--learner", run.controlEndpoint, "--timeout", "1"] + IntegrationRun.plaintext, within: 30)
        run.check(closed == .code(1), "doctor against a closed port: \(closed?.description ?? "a timeout")")
        run.check(closedChild.stdout.contains("FAIL  reach_control"), "no FAIL for the closed port: \(closedChild.stdout)")

        // Binds 127.0.0.1, advertises 127.0.0.2: nothing answers at the advertised address.
        let wrong = try run.startLearner(maxSteps: 500, ["endpoints.advertise_host=127.0.0.2"])
        try run.require(run.waitUntil("endpoints.json", within: 60) { Self.endpointsFile(run) != nil }, "no endpoints.json")
        let (wrongStatus, wrongChild) = try run.runToCompletion("doctor-wrong", ["doctor", "--learner-file", run.runDirectory, "--timeout", "1"] + IntegrationRun.plaintext, within: 40)
        run.check(wrongStatus == .code(1), "doctor against a wrong advertised address: \(wrongStatus?.description ?? "a timeout")")
        for line in ["FAIL  reach_control", "FAIL  bind_vs_advertised"] {
            run.check(wrongChild.stdout.contains(line), "doctor does not say \(line): \(wrongChild.stdout)")
        }
        wrong.send(SIGTERM)
        run.expectExit(wrong, .code(0), within: 25)

        let healthy = try run.start("learner-healthy", ["learner", "--resume", run.runDirectory, "--set", "endpoints.advertise_host=127.0.0.1"]
                                     + IntegrationRun.plaintext)
        try run.require(run.waitUntil("the rewritten endpoints.json", within: 60) {
            (Self.endpointsFile(run)?["pid"] as? NSNumber)?.int32Value == healthy.pid
        }, "the resumed learner did not rewrite endpoints.json")
        let (okStatus, okChild) = try run.runToCompletion("doctor-ok", ["doctor", "--learner-file", run.runDirectory, "--json"] + IntegrationRun.plaintext, within: 40)
        run.check(okStatus == .code(0), "doctor against a healthy learner: \(okStatus?.description ?? "a timeout") \(okChild.stdout)")
        let report = (try? JSONSerialization.jsonObject(with: Data(okChild.stdout.utf8))) as? [String: Any]
        let checks = (report?["checks"] as? [[String: Any]]) ?? []
        func verdict(_ name: String) -> String? { checks.first { $0["name"] as? String == name }?["verdict"] as? String }
        for name in ["reach_control", "reach_weights", "reach_announce", "reach_logs", "protocol", "bind_vs_advertised"] {
            run.check(verdict(name) == "ok", "\(name): \(verdict(name) ?? "missing") in \(okChild.stdout)")
        }
        let skew = checks.first { $0["name"] as? String == "clock_skew" }?["detail"] as? String ?? ""
        run.check(skew.contains("log events"), "the clock skew was not measured from the log stream: \(skew)")
        run.check(!run.records.of("actor_joined").contains { ($0.string("actor") ?? "").hasPrefix("doctor") }, "doctor joined the run")
        healthy.send(SIGTERM)
        run.expectExit(healthy, .code(0), within: 25)
    }

    // Bad input: a learner whose port is taken, a learner advertising a wildcard, an actor whose
    // learner's name does not resolve. Each ends with a non-zero status and a message that says why.
    @Test func badAddressesAreRefusedWithAClearMessage() throws {
        let run = try IntegrationRun("bad-addresses")
        defer { run.finish() }
        // Take the control port first.
        let occupier = listenOnLoopback(port: run.ports.control)
        defer { occupier.map { _ = close($0) } }
        try run.require(occupier != nil, "could not occupy port \(run.ports.control)")
        let (inUse, learner) = try run.runToCompletion("learner-port-in-use", ["learner"] + IntegrationRun.plaintext + run.learnerSettings(maxSteps: 2), within: 30)
        run.check(inUse != nil && inUse != .code(0), "a learner on a taken port ended with \(inUse?.description ?? "a timeout")")
        run.check(learner.stderr.contains("\(run.ports.control)") && learner.stderr.lowercased().contains("in use"),
                  "the message does not say the port is in use: \(learner.stderr)")

        for wildcard in ["0.0.0.0", "::"] {
            let (status, child) = try run.runToCompletion("learner-advertise-\(wildcard == "::" ? "v6" : "v4")",
                                                          ["learner"] + IntegrationRun.plaintext + run.learnerSettings(maxSteps: 2, ["endpoints.advertise_host=\(wildcard)"]), within: 30)
            run.check(status != nil && status != .code(0), "advertise_host=\(wildcard) ended with \(status?.description ?? "a timeout")")
            run.check(child.stderr.contains("endpoints.advertise_host"), "the refusal does not name endpoints.advertise_host: \(child.stderr)")
        }

        let (unresolved, actor) = try run.runToCompletion("actor-unresolved", ["actor", "--learner", "tcp://no-such-host.invalid:5555",
                                                                               "--connect-timeout", "2", "--insecure-plaintext"], within: 20)
        run.check(unresolved == .code(1), "an actor with an unresolvable learner ended with \(unresolved?.description ?? "a timeout")")
        run.check(actor.stderr.contains("no-such-host.invalid") && actor.stderr.contains("does not resolve"),
                  "the message does not say the learner's name does not resolve: \(actor.stderr)")
    }
}
