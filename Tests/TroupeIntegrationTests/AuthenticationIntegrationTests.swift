import Foundation
import Testing
import TroupeProto
import TroupeWire

/// CURVE authentication with real processes on loopback: keys from `troupe keygen`, a learner that
/// admits only its allowlist, and an intruder with a valid key pair (pinning the right learner key)
/// that is not on it.
@Suite(.serialized) struct AuthenticationIntegrationTests {
    @Test func anActorWithoutAnAllowlistedKeyGetsNoWeightsAndLandsNoGroups() throws {
        let run = try IntegrationRun("curve")
        defer { run.finish() }
        let keys = run.directory + "/keys"
        try run.makeKeys([("learner", "learner", keys), ("a1", "actor", keys + "/allowed"), ("a2", "actor", keys + "/allowed"),
                                     ("watch", "monitor", keys + "/allowed"),
                                     ("intruder", "actor", keys + "/outside")])
        let learnerKey = keys + "/learner.key"
        // No shared memory: every byte of weights crosses a socket, from the learner or through the other actor's relay.
        let learner = try run.start("learner", ["learner", "--key", keys + "/learner.key_secret", "--allow", keys + "/allowed"]
                                    + run.learnerSettings(maxSteps: 4, ["learner.shared_memory_dir="]))
        let logs = "tcp://127.0.0.1:\(run.ports.logs)"
        let monitor = try run.start("monitor", ["monitor", logs, "--json", "--until-finished", "--duration", "90",
                                                "--key", keys + "/allowed/watch.key_secret", "--learner-key", learnerKey])
        let blindMonitor = try run.start("monitor-plaintext", ["monitor", logs, "--json", "--duration", "8"] + IntegrationRun.plaintext)
        let intruder = try run.start("actor-intruder", ["actor", "--learner", run.controlEndpoint, "--connect-timeout", "8",
                                                       "--key", keys + "/outside/intruder.key_secret", "--learner-key", learnerKey])
        let actors = try ["a1", "a2"].map { try run.startActor($0, ["--key", keys + "/allowed/\($0).key_secret", "--learner-key", learnerKey]) }

        // The intruder's own sockets, from this process: weights and announcements give it nothing.
        let intruderKeys = try CurveKeyFile.readSecret(keys + "/outside/intruder.key_secret").pair
        let pinned = try CurveRole.client(serverKey: CurveKeyFile.readPublic(learnerKey), own: intruderKeys).options
        let probe = try IntruderProbe(host: "127.0.0.1", ports: run.ports, ways: [pinned, []])
        defer { probe.close() }
        let bytesReceived = try probe.bytesReceived(asking: 5)
        run.check(bytesReceived == 0, "an unlisted key received \(bytesReceived) bytes from the learner")

        try run.require(run.expectExit(learner, .code(0), within: 90) == .code(0), "the learner did not finish the run")
        for actor in actors { run.expectExit(actor, .code(0), within: 10) }
        run.expectExit(intruder, .code(1), within: 20)
        run.check(intruder.stderr.contains("refused this actor's key at the handshake (ZAP status 400)"),
                  "the intruder did not say the learner refused its key: \(intruder.stderr.suffix(300))")
        run.check(intruder.stderr.contains("no learner answered") && intruder.stderr.contains("on the learner's allowlist"),
                  "the intruder should have given up waiting for a Welcome, asking about its key: \(intruder.stderr.suffix(300))")
        run.check(!intruder.stderr.contains("weights applied"), "the intruder applied weights")

        let records = run.records
        let joined = Set(records.of("actor_joined").compactMap { $0.string("actor") })
        run.check(joined == ["a1", "a2"], "actor_joined for \(joined.sorted()), expected only a1 and a2")
        let accepted = records.of("group_accepted")
        let contributors = Set(accepted.compactMap { $0.string("group") }.map(LogRecord.actor(ofGroup:)))
        run.check(contributors.isSubset(of: ["a1", "a2"]) && !contributors.isEmpty, "groups landed from \(contributors.sorted()), expected only a1 and a2")
        run.check(records.stepsDone == [1, 2, 3, 4], "step_done records \(records.stepsDone)")
        // The relay chain works authenticated: each actor below pins the key the learner names.
        let actorLogs = actors.map(\.stderr)
        run.check(actorLogs.contains { $0.contains("\"via\":\"relay\"") }, "no actor took weights through the other's relay")
        run.check(!actorLogs.contains { $0.contains("stopped serving") }, "a relay was left (an authentication failure?)")

        // The allowlisted monitor saw the run; the plaintext one saw nothing.
        run.expectExit(monitor, .code(0), within: 10)
        run.check(monitor.stdout.contains("\"run_finished\""), "the allowlisted monitor did not see the run end")
        run.expectExit(blindMonitor, .code(0), within: 10)
        run.check(blindMonitor.stdout.contains("\"events\":0,"), "a plaintext monitor received log events: \(blindMonitor.stdout.prefix(300))")

        // As every fault scenario ends: the accounts balance and every step replays bit for bit.
        RuntimeIntegrationTests.expectAccountingIdentity(run)
        try RuntimeIntegrationTests.expectReplayVerifies(run, steps: 4)
    }

    /// The allowlist changes while the run goes on: a key copied into `--allow`'s directory lets its
    /// actor, already knocking, join and land groups; a key removed from it takes its actor out of the
    /// run, whose messages land nothing from then on, and cuts a monitor following the log stream off
    /// it; a key replaced under the same name takes out the actor still holding a connection with the
    /// old one. Weights travel as chunks: the newcomer is never placed below the relay of an actor
    /// welcomed before its key came (that relay would refuse it).
    @Test func keysAddedToAndRemovedFromTheAllowlistTakeEffectMidRun() throws {
        let run = try IntegrationRun("curve-live")
        defer { run.finish() }
        let keys = run.directory + "/keys"
        try run.makeKeys([("learner", "learner", keys), ("a1", "actor", keys + "/allowed"), ("a2", "actor", keys + "/later"),
                          ("watch", "monitor", keys + "/allowed")])
        let learnerKey = keys + "/learner.key"
        let learner = try run.start("learner", ["learner", "--key", keys + "/learner.key_secret", "--allow", keys + "/allowed"]
                                    + run.learnerSettings(maxSteps: 100_000, ["learner.shared_memory_dir=", "learner.heartbeat_timeout_s=3"]))
        let first = try run.startActor("a1", ["--key", keys + "/allowed/a1.key_secret", "--learner-key", learnerKey])
        let late = try run.startActor("a2", ["--key", keys + "/later/a2.key_secret", "--learner-key", learnerKey, "--connect-timeout", "60"])
        let monitor = try run.start("monitor", ["monitor", "tcp://127.0.0.1:\(run.ports.logs)", "--json", "--duration", "120",
                                                "--key", keys + "/allowed/watch.key_secret", "--learner-key", learnerKey])
        /// The events the monitor has printed (its closing summary line excluded).
        func monitored() -> Int { monitor.stdout.split(separator: "\n").filter { !$0.contains("\"monitor_summary\"") }.count }
        try run.require(run.waitUntil("step 3", within: 60) { run.records.stepsDone.count >= 3 }, "no third step")
        func joined() -> Set<String> { Set(run.records.of("actor_joined").compactMap { $0.string("actor") }) }
        run.check(joined() == ["a1"], "joined before its key was allowlisted: \(joined().sorted())")

        try FileManager.default.copyItem(atPath: keys + "/later/a2.key", toPath: keys + "/allowed/a2.key")
        let added = Date()
        run.waitUntil("a2 joined", within: 20) { joined().contains("a2") }
        run.waitUntil("a group of a2 accepted", within: 20) { run.records.accepted.contains { $0.actor == "a2" } }
        print("[curve-live] a2 joined \(String(format: "%.1f", Date().timeIntervalSince(added))) s after its key was added")
        // a1, welcomed before a2's key came, is told to admit it to its relay (RelayPeers).
        func relayListed(_ actor: Child, _ count: Int) -> Bool {
            actor.stderr.split(separator: "\n").contains { $0.contains("the relay admits the actors the learner listed") && $0.contains("\"actors\":\(count)") }
        }
        run.waitUntil("a1's relay told of a2's key", within: 10) { relayListed(first, 2) }

        try FileManager.default.removeItem(atPath: keys + "/allowed/a1.key")
        func withdrawn() -> LogRecord? {
            run.records.of("actor_left").first { $0.string("actor") == "a1" && ($0.string("reason") ?? "").hasPrefix("key withdrawn") }
        }
        run.waitUntil("a1 taken out of the run", within: 10) { withdrawn() != nil }
        run.waitUntil("a2's relay told that a1's key is gone", within: 10) { relayListed(late, 1) }
        let cut = withdrawn()?.seq ?? .max
        let doneAtCut = run.records.stepsDone.count
        run.waitUntil("3 more steps without a1", within: 30) { run.records.stepsDone.count >= doneAtCut + 3 }
        let afterCut = run.records.accepted.filter { $0.actor == "a1" && $0.seq > cut }
        run.check(afterCut.isEmpty, "\(afterCut.count) groups of a1 accepted after its key was removed")
        run.check(learner.stderr.contains("\"msg\":\"allowlist changed\""), "the learner did not say the allowlist changed")

        // The monitor's key removed: the log stream drops its subscribers, and only the others come back.
        // No actor's key changed, so no relay is sent its keys again.
        func relayUpdates(_ actor: Child) -> Int { actor.stderr.split(separator: "\n").filter { $0.contains("the relay admits the actors the learner listed") }.count }
        let relayUpdatesBefore = relayUpdates(late)
        run.check(monitored() > 0, "the monitor saw no event while its key was allowlisted")
        try FileManager.default.copyItem(atPath: keys + "/allowed/watch.key", toPath: keys + "/watch.key.kept")
        try FileManager.default.removeItem(atPath: keys + "/allowed/watch.key")
        run.waitUntil("the monitor's key withdrawn", within: 10) { learner.stderr.contains("\"removed\":\"watch\"") }
        Thread.sleep(forTimeInterval: 0.5)  // what was in flight when its connection was dropped
        let seenAtCut = monitored(), stepsAtCut = run.records.stepsDone.count
        run.waitUntil("2 more steps", within: 30) { run.records.stepsDone.count >= stepsAtCut + 2 }
        Thread.sleep(forTimeInterval: 3)
        run.check(monitored() == seenAtCut, "the monitor whose key was removed saw \(monitored() - seenAtCut) more events")
        run.check(relayUpdates(late) == relayUpdatesBefore, "a2's relay was sent the same keys again after a monitor's key was removed")
        run.waitUntil("the monitor says its key was refused", within: 10) { monitor.stderr.contains("refused this monitor's key") }
        // Its key put back, the monitor follows the run again: on a fresh connection, since libzmq does not
        // retry one whose handshake was refused.
        try FileManager.default.copyItem(atPath: keys + "/watch.key.kept", toPath: keys + "/allowed/watch.key")
        run.check(run.waitUntil("the monitor sees events again", within: 20) { monitored() > seenAtCut },
                  "the monitor saw no event in the 20 s after its key was put back")

        // a2's key replaced by another under the same name: a2's process, still holding the old key's
        // connection, is taken out of the run and lands nothing from then on.
        let (replacing, _) = try run.runToCompletion("keygen-a2-again", ["keygen", "a2", "--role", "actor", "--directory", keys + "/again"], within: 20)
        try run.require(replacing == .code(0), "troupe keygen a2 (again) failed")
        try FileManager.default.removeItem(atPath: keys + "/allowed/a2.key")
        try FileManager.default.copyItem(atPath: keys + "/again/a2.key", toPath: keys + "/allowed/a2.key")
        func replaced() -> LogRecord? {
            run.records.of("actor_left").first { $0.string("actor") == "a2" && $0.string("reason") == "key withdrawn: replaced in the allowlist" }
        }
        run.waitUntil("a2 taken out of the run", within: 10) { replaced() != nil }
        let replacedAt = replaced()?.seq ?? .max
        Thread.sleep(forTimeInterval: 3)
        let afterReplacement = run.records.accepted.filter { $0.actor == "a2" && $0.seq > replacedAt }
        run.check(afterReplacement.isEmpty, "\(afterReplacement.count) groups of a2 accepted after its key was replaced")

        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 30) == .code(0), "the learner did not stop cleanly")
        // A stopped learner's actors wait for its resume: they are stopped too.
        for actor in [first, late, monitor] {
            actor.send(SIGTERM)
            run.expectExit(actor, .code(0), within: 10)
        }
        run.check(late.stderr.contains("refused this actor's key at the handshake"), "a2 did not say its key was refused before it was listed")
        run.check(!late.stderr.contains("stopped serving"), "a2 was placed below a relay that refused it: \(late.stderr.suffix(500))")
        run.check(late.stderr.contains("\"via\":\"chunks\"") || late.stderr.contains("\"via\":\"relay\""), "a2 applied no weights fetched as chunks")
        RuntimeIntegrationTests.expectAccountingIdentity(run)
        try RuntimeIntegrationTests.expectReplayVerifies(run, steps: run.records.stepsDone.last ?? 0, within: 120)
    }

    /// Without keys a learner, an actor and a monitor refuse to start, on loopback as elsewhere, and say
    /// what to do; with --insecure-plaintext they start and warn.
    @Test func keylessProcessesRefusePlaintextUnlessAskedAndThenWarn() throws {
        let run = try IntegrationRun("plaintext")
        defer { run.finish() }
        let logs = "tcp://127.0.0.1:\(run.ports.logs)"
        let keyless: [(String, [String], String)] = [
            ("learner-loopback", ["learner"] + run.learnerSettings(maxSteps: 1), "--key and --allow"),
            ("learner-any", ["learner"] + run.learnerSettings(maxSteps: 1, ["endpoints.bind_host=0.0.0.0"]), "--key and --allow"),
            ("actor", ["actor", "--learner", run.controlEndpoint, "--connect-timeout", "5"], "--key and --learner-key"),
            ("monitor", ["monitor", logs, "--json", "--duration", "5"], "--key and --learner-key"),
        ]
        for (name, arguments, keyFlags) in keyless {
            let (refused, child) = try run.runToCompletion(name, arguments, within: 20)
            run.check(refused == .code(1) && child.stderr.contains("refusing plaintext") && child.stderr.contains(keyFlags)
                      && child.stderr.contains("--insecure-plaintext"), "keyless \(name) was not refused as expected: \(child.stderr)")
        }
        run.check(!FileManager.default.fileExists(atPath: run.runDirectory + "/run.log"), "a refused learner created run.log")
        let insecure = try run.start("learner-insecure", ["learner", "--insecure-plaintext"] + run.learnerSettings(maxSteps: 1))
        run.waitUntil("the insecure learner warns", within: 20) { insecure.stderr.contains("INSECURE") }
        insecure.killHard()
    }
}
