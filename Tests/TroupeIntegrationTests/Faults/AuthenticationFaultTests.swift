import Foundation
import Testing
import TroupeWire
#if canImport(Glibc)
import Glibc
#endif

/// The authentication cases of the fault suite: a learner authenticated with CURVE keys from `troupe
/// keygen`, real actor processes with and without keys on its allowlist, and would-be intruders'
/// sockets in the test's own process (`IntruderProbe`), whose every received byte is counted. Like the
/// other scenarios, each has a hard bound and ends with the accounting identity and `replay --verify`.
extension FaultInjectionTests {
    /// The names and groups of the actors that joined, or landed a group, other than `allowed`.
    static func strangers(in run: IntegrationRun, allowed: Set<String>) -> (joined: Set<String>, groups: Int) {
        let records = run.records
        let joined = Set(records.of("actor_joined").compactMap { $0.string("actor") }).subtracting(allowed)
        let groups = (records.of("group_accepted") + records.of("group_rejected"))
            .compactMap { $0.string("group") }.map(LogRecord.actor(ofGroup:)).filter { !allowed.contains($0) }
        return (joined, groups.count)
    }

    /// The CURVE options of a client with the secret key in `secretFile` that pins the learner key in `learnerKeyFile`.
    static func clientOptions(secretFile: String, learnerKeyFile: String) throws -> [SocketOption] {
        try CurveRole.client(serverKey: CurveKeyFile.readPublic(learnerKeyFile), own: CurveKeyFile.readSecret(secretFile).pair).options
    }

    // Across the link (the learner in a namespace of its own, weights as chunks): two allowlisted actors
    // train, while three real `troupe actor`s get no Welcome: one with a key not on the allowlist, one
    // in plaintext, and one with an allowlisted key that pins a learner key that is not the learner's.
    // The test's own sockets of each kind ask for weights for 8 s of training and get zero bytes; no
    // stranger joins or lands a group. Then SIGTERM ends the run.
    @Test(.enabled(if: NetworkLab.shouldRun, Comment(rawValue: NetworkLab.unavailableReason ?? "")), .timeLimit(.minutes(2)))
    func onlyAllowlistedKeysGetWeightsOrLandGroups() throws {
        let net = try NetworkNamespace()
        defer { net.remove() }
        let scenario = try FaultScenario("authentication", boundSeconds: 110)
        defer { scenario.finish() }
        let run = scenario.run
        let keys = scenario.keysDirectory
        try scenario.keygen("intruder", role: "actor", in: keys + "/outside")
        try scenario.keygen("misled", role: "actor", in: keys + "/allowed")
        try scenario.keygen("learner", role: "learner", in: keys + "/impostor")
        let (learner, actors) = try Self.startAcrossLink(scenario, net, maxSteps: 1_000_000, chunks: true)
        let control = "tcp://\(net.namespaceAddress):\(run.ports.control)"
        let knock = ["--learner", control, "--connect-timeout", "10"]
        let intruders = [
            try scenario.start("actor-intruder", ["actor"] + knock + ["--key", keys + "/outside/intruder.key_secret", "--learner-key", keys + "/learner.key"]),
            try scenario.start("actor-plain", ["actor"] + knock + ["--identity", "plain"] + IntegrationRun.plaintext),
            try scenario.start("actor-misled", ["actor"] + knock + ["--key", keys + "/allowed/misled.key_secret", "--learner-key", keys + "/impostor/learner.key"]),
        ]
        let probe = try IntruderProbe(host: net.namespaceAddress, ports: run.ports, ways: [
            try Self.clientOptions(secretFile: keys + "/outside/intruder.key_secret", learnerKeyFile: keys + "/learner.key"),
            [],
            try Self.clientOptions(secretFile: keys + "/allowed/misled.key_secret", learnerKeyFile: keys + "/impostor/learner.key"),
        ])
        defer { probe.close() }
        try run.require(scenario.waitUntil("step_done 1", within: 60) { run.records.stepsDone.contains(1) }, "no first step over the link")
        let stepBefore = run.records.stepsDone.last ?? 0
        let intruderBytes = try probe.bytesReceived(asking: 8)
        let stepsWhileKnocking = (run.records.stepsDone.last ?? 0) - stepBefore
        run.check(stepsWhileKnocking > 0, "no step while the intruders knocked")

        learner.send(SIGTERM)
        try run.require(run.expectExit(learner, .code(0), within: 30) == .code(0), "the learner did not stop cleanly")
        for actor in actors { actor.send(SIGTERM) }
        for actor in actors { run.expectExit(actor, .code(0), within: 20) }
        for intruder in intruders {
            run.expectExit(intruder, .code(1), within: 20)
            run.check(intruder.stderr.contains("no learner answered"), "\(intruder.name) should have given up waiting for a Welcome")
            run.check(!intruder.stderr.contains("weights applied"), "\(intruder.name) applied weights")
        }
        run.check(intruderBytes == 0, "the intruders' sockets received \(intruderBytes) bytes from the learner")
        let strangers = Self.strangers(in: run, allowed: ["n1", "n2"])
        run.check(strangers.joined.isEmpty, "actor_joined for \(strangers.joined.sorted()), expected only n1 and n2")
        run.check(strangers.groups == 0, "\(strangers.groups) groups from actors other than n1 and n2")
        run.check(!run.records.of("group_accepted").isEmpty, "the allowlisted actors landed no group")
        scenario.record("intruder_ways", 3)
        scenario.record("intruder_bytes", intruderBytes)
        scenario.record("intruder_joins", strangers.joined.count)
        scenario.record("intruder_groups", strangers.groups)
        scenario.record("steps_while_knocking", stepsWhileKnocking)
        try scenario.expectSoundEnd(steps: run.records.stepsDone.last ?? 0, finished: false)
    }

    // The learner's ZAP handler dies after step 3 in the worst way (its endpoint gone, which makes
    // libzmq admit any key) while an intruder knocks: the learner closes every socket and exits 1 (it
    // fails closed), the intruder gets zero bytes and lands nothing, and `--resume` with a working
    // handler finishes the run with the same allowlisted actors.
    @Test(.timeLimit(.minutes(2))) func aDeadAuthenticationHandlerNeverOpensTheGate() throws {
        let scenario = try FaultScenario("dead-handler", boundSeconds: 110)
        defer { scenario.finish() }
        let run = scenario.run
        let maxSteps = 10, failAfter = 3
        let names = ["k1", "k2"]
        let keys = try scenario.makeKeys(actors: names)
        let outside = scenario.keysDirectory + "/outside"
        try scenario.keygen("intruder", role: "actor", in: outside)
        let learner = try scenario.startLearner(maxSteps: maxSteps, ["learner.shared_memory_dir="],
                                                arguments: keys.learner + ["--test-fail-authentication-after-step", "\(failAfter)"])
        let actors = try names.map { try scenario.startActor($0, keys.actor($0)) }
        let learnerKey = scenario.keysDirectory + "/learner.key"
        let intruder = try scenario.start("actor-intruder", ["actor", "--learner", run.controlEndpoint, "--connect-timeout", "30",
                                                             "--key", outside + "/intruder.key_secret", "--learner-key", learnerKey])
        let probe = try IntruderProbe(host: "127.0.0.1", ports: run.ports, ways: [
            try Self.clientOptions(secretFile: outside + "/intruder.key_secret", learnerKeyFile: learnerKey), [],
        ])
        defer { probe.close() }
        var intruderBytes = 0
        let knockingSince = Date()
        while learner.isRunning && !scenario.expired && Date().timeIntervalSince(knockingSince) < 60 {
            intruderBytes += try probe.bytesReceived(asking: 0.5)
        }
        try run.require(run.expectExit(learner, .code(1), within: 1) == .code(1), "the learner did not stop when its ZAP handler died")
        run.check(learner.stderr.contains("ZAP authentication handler"), "the learner's error does not name its ZAP handler")
        let stoppedAt = run.records.stepsDone.last ?? 0
        run.check(stoppedAt >= failAfter && stoppedAt < maxSteps, "the learner stopped at step \(stoppedAt); its handler died after step \(failAfter)")

        let resumedAt = Date()
        let second = try scenario.resumeLearner("learner-resumed", arguments: keys.learner)
        intruderBytes += try probe.bytesReceived(asking: 3)
        try run.require(run.expectExit(second, .code(0), within: 60) == .code(0), "the resumed learner did not finish the run")
        let resumedRun = Date().timeIntervalSince(resumedAt)
        for actor in actors { run.expectExit(actor, .code(0), within: 20) }
        run.expectExit(intruder, .code(1), within: 40)
        run.check(!intruder.stderr.contains("weights applied"), "the intruder applied weights")
        run.check(intruderBytes == 0, "the intruder's sockets received \(intruderBytes) bytes from the learner")
        let strangers = Self.strangers(in: run, allowed: Set(names))
        run.check(strangers.joined.isEmpty && strangers.groups == 0,
                  "strangers joined \(strangers.joined.sorted()) and landed \(strangers.groups) groups")
        scenario.record("handler_died_after_step", failAfter)
        scenario.record("learner_stopped_at_step", stoppedAt)
        scenario.record("intruder_bytes", intruderBytes)
        scenario.record("intruder_groups", strangers.groups)
        scenario.record("resumed_run_s", resumedRun)
        try scenario.expectSoundEnd(steps: maxSteps, finished: true)
    }
}
