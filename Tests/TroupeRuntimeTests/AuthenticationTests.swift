import Foundation
import Testing
import TroupeProto
import TroupeRuntime
import TroupeWire

/// The run's authentication policy: who each ZAP domain admits, log events bound to their
/// publisher's key, the plaintext rule, and the learner's watchdog over its ZAP handler.
@Suite(.serialized) struct AuthenticationTests {
    @Test func eachDomainAdmitsItsRolesAndLogEventsOnlyUnderTheirOwnName() throws {
        let actor = try CurveKeyPair.generate(), monitor = try CurveKeyPair.generate()
        let security = try LearnerSecurity(keyPair: .generate(), allowlist: CurveAllowlist([
            .init(name: "a1", role: .actor, publicKey: actor.publicKey), .init(name: "watch", role: .monitor, publicKey: monitor.publicKey)]))
        let policy = security.policy
        #expect(policy.admit(key: actor.publicKey, domain: ZAPDomain.control) == "a1")
        #expect(policy.admit(key: actor.publicKey, domain: ZAPDomain.logs) == nil, "an actor's key does not open the log stream")
        #expect(policy.admit(key: monitor.publicKey, domain: ZAPDomain.logs) == "watch")
        #expect(policy.admit(key: monitor.publicKey, domain: ZAPDomain.weights) == nil, "a monitor's key opens nothing else")
        #expect(policy.admit(key: security.keyPair.publicKey, domain: ZAPDomain.logsIn) == LearnerSecurity.learnerName)

        func event(_ source: String) throws -> [Frame] {
            var e = Troupe_V1_LogEvent()
            e.source = source
            return try WireMessage(.logEvent(e)).encode()
        }
        let a1 = actor.publicKey.z85, learner = security.keyPair.publicKey.z85
        #expect(security.admitsLogEvent(user: "a1", key: a1, frames: try event("actor/a1")))
        #expect(!security.admitsLogEvent(user: "a1", key: a1, frames: try event("actor/a2")), "an actor publishes only as itself")
        #expect(!security.admitsLogEvent(user: "a1", key: a1, frames: try event("learner")))
        #expect(security.admitsLogEvent(user: "learner", key: learner, frames: try event("learner")))
        #expect(!security.admitsLogEvent(user: "watch", key: monitor.publicKey.z85, frames: try event("actor/watch")), "monitors do not publish")
        #expect(!security.admitsLogEvent(user: nil, key: nil, frames: try event("learner")))
        #expect(!security.admitsLogEvent(user: "a1", key: monitor.publicKey.z85, frames: try event("actor/a1")),
                "a name heard with another key than its allowlisted one (a key replaced under that name)")
        #expect(!security.admitsLogEvent(user: "a1", key: nil, frames: try event("actor/a1")), "a name without its key")
        #expect(throws: (any Error).self) {
            try LearnerSecurity(keyPair: .generate(), allowlist: CurveAllowlist([.init(name: "learner", role: .actor, publicKey: actor.publicKey)]))
        }
    }

    @Test func plaintextIsRefusedEverywhereUnlessAskedAndThenWarned() throws {
        #expect(try PlaintextPolicy.check(host: "127.0.0.1", keysGiven: true, insecurePlaintext: false, keyFlags: "--key") == nil)
        for host in ["127.0.0.1", "localhost", "*", "10.1.2.3"] {
            let error = #expect(throws: (any Error).self) {
                try PlaintextPolicy.check(host: host, keysGiven: false, insecurePlaintext: false, keyFlags: "--key")
            }
            let text = error.map { String(describing: $0) } ?? ""
            #expect(text.contains("refusing plaintext") && text.contains("give --key") && text.contains("--insecure-plaintext"), "\(host): \(text)")
        }
        #expect(try PlaintextPolicy.check(host: "127.0.0.1", keysGiven: false, insecurePlaintext: true, keyFlags: "--key")?
            .contains("INSECURE: plaintext TCP on 127.0.0.1 (--insecure-plaintext): any process on this host") == true)
        #expect(try PlaintextPolicy.check(host: "10.1.2.3", keysGiven: false, insecurePlaintext: true, keyFlags: "--key")?
            .contains("INSECURE: plaintext TCP on 10.1.2.3 (--insecure-plaintext): anyone who reaches it") == true)
        #expect(throws: (any Error).self) { try PlaintextPolicy.check(host: "10.1.2.3", keysGiven: true, insecurePlaintext: true, keyFlags: "--key") }
    }

    @Test func theWatchdogFailsWhenTheHandlerStopsOrStopsAnswering() throws {
        let context = try ZMQContext()
        defer { context.shutdown() }
        let handler = try ZAPHandler(context: context, policy: ZAPDomain.policy(CurveAllowlist()))
        defer { handler.stop() }
        let watchdog = AuthenticationWatchdog(handler: handler, probeInterval: 0)
        try watchdog.check()
        handler.failForTesting(closeSocket: false)
        let deadline = Date().addingTimeInterval(2)
        while handler.isServing && Date() < deadline { usleep(5000) }
        #expect(throws: (any Error).self) { try watchdog.check() }
        // A second handler cannot take the endpoint while the first holds it.
        #expect(throws: (any Error).self) { try ZAPHandler(context: context, policy: ZAPDomain.policy(CurveAllowlist())) }
    }

    /// A learner with keys asks its reward workers only over CURVE: no worker keys is refused, one key
    /// file serves every endpoint, a list gives each its own, and the learner presents its own key
    /// unless `reward_workers.client_key` names another. Each error names the key and the file.
    @Test func rewardWorkerKeysAreRequiredOfALearnerWithKeysAndReadPerEndpoint() throws {
        let directory = NSTemporaryDirectory() + "troupe-reward-keys-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let w1 = try CurveKeyPair.generate(), w2 = try CurveKeyPair.generate(), presented = try CurveKeyPair.generate()
        try CurveKeyFile.create(name: "w1", role: .rewardWorker, pair: w1, directory: directory)
        try CurveKeyFile.create(name: "w2", role: .rewardWorker, pair: w2, directory: directory)
        try CurveKeyFile.create(name: "rewards", role: .learner, pair: presented, directory: directory)
        let learner = try CurveKeyPair.generate()
        var settings = try RunConfig.parse(.object([:]), overrides: [
            "reward_workers.endpoints=[\"tcp://127.0.0.1:5570\",\"tcp://127.0.0.1:5571\"]", "reward_workers.version=v1",
            "algorithm.reward.kind=external"]).rewardWorkers

        func problem(_ learnerKeys: CurveKeyPair?) -> String {
            do { _ = try RewardWorkerKeys.resolve(settings, learner: learnerKeys.map { .pair($0) } ?? .insecurePlaintext); return "accepted" } catch { return "\(error)" }
        }
        #expect(problem(learner).hasPrefix("config key reward_workers.server_keys: is empty, but this learner authenticates its actors"))
        #expect(try RewardWorkerKeys.resolve(settings, learner: .insecurePlaintext) == nil, "a plaintext learner asks plaintext workers")

        settings.serverKeys = [directory + "/w1.key"]
        let shared = try RewardWorkerKeys.resolve(settings, learner: .pair(learner))
        #expect(shared?.serverKeys == [w1.publicKey, w1.publicKey] && shared?.client == learner)
        #expect(problem(nil).hasPrefix("config key reward_workers.client_key: is empty and the learner has no key of its own"))
        #expect(throws: ConfigError.self, "troupe run's learner key is new each run: no worker can admit it") {
            try RewardWorkerKeys.resolve(settings, learner: .madeForEachRun)
        }
        settings.clientKey = directory + "/rewards.key_secret"
        #expect(try RewardWorkerKeys.resolve(settings, learner: .madeForEachRun)?.client == presented)
        #expect(try RewardWorkerKeys.resolve(settings, learner: .insecurePlaintext)?.client == presented)

        settings.serverKeys = [directory + "/w1.key", directory + "/w2.key"]
        #expect(try RewardWorkerKeys.resolve(settings, learner: .pair(learner))?.serverKeys == [w1.publicKey, w2.publicKey])
        settings.serverKeys = [directory + "/w1.key", directory + "/missing.key"]
        #expect(problem(learner).hasPrefix("config key reward_workers.server_keys: ") && problem(learner).contains(directory + "/missing.key"))
        settings.serverKeys = [directory + "/w1.key"]
        settings.clientKey = directory + "/w2.key"
        #expect(problem(learner).hasPrefix("config key reward_workers.client_key: ") && problem(learner).contains(directory + "/w2.key"),
                "a public file cannot be presented: \(problem(learner))")
    }
}
