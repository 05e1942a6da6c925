import Foundation
import Testing
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeWire

/// Identity binding on authenticated endpoints, without sockets: the in-memory transport carries each
/// connection's authenticated user (the name of its allowlisted key), as a CURVE socket does.
@Suite(.serialized) struct LearnerAuthenticationTests {
    let keys: [String: CurveKeyPair]
    let allowlist: CurveAllowlist

    init() throws {
        keys = ["a": try .generate(), "b": try .generate(), "watcher": try .generate()]
        allowlist = try CurveAllowlist(keys.map { .init(name: $0.key, role: $0.key == "watcher" ? .monitor : .actor, publicKey: $0.value.publicKey) })
    }

    @Test func anActorIsTheNameOfItsKeyAndNoConnectionSpeaksForAnotherKey() throws {
        let h = try LearnerHarness(allowlist: allowlist)
        let a = h.connect("a", authenticatedAs: "a")
        try a.hello()
        try h.turn()
        let welcome = try a.welcome()
        // The Welcome tells the actors one another's keys, for their relays.
        #expect(welcome.configJson.contains("\"relay_peers\""))
        #expect(welcome.configJson.contains(keys["a"]!.publicKey.z85.replacingOccurrences(of: "/", with: "\\/"))
                || welcome.configJson.contains(keys["a"]!.publicKey.z85))

        // b's key claiming a's identity: refused, and nobody joins.
        let impostor = h.connect("a", runId: 2, authenticatedAs: "b")
        try impostor.hello()
        try h.turn()
        guard case .reject(let r)? = try impostor.replies().first else { Issue.record("no Reject"); return }
        #expect(r.reason == .configMismatch && r.text.contains("allowlisted as b"))
        #expect(try h.records("actor_joined").count == 1)

        // b's key on a's routing id (as ROUTER_HANDOVER would allow) is another peer: it is not a.
        let hijack = h.network.control.connect(identity: "a#1", authenticatedAs: "b")
        var header = Troupe_V1_LeaseRequest()
        header.maxPrompts = 1
        #expect(try hijack.send(WireMessage(.leaseRequest(header)), deadline: .now) == .sent)
        try h.turn()
        guard case .reject(let unknown)? = try hijack.receiveAll(limits: .control).first?.body else { Issue.record("no Reject"); return }
        #expect(unknown.reason == .unknownActor)
    }

    @Test func anUnauthenticatedConnectionIsNotHeardAndLandsNoGroup() throws {
        let h = try LearnerHarness(allowlist: allowlist)
        let stranger = h.connect("c")
        try stranger.hello()
        try h.turn()
        #expect(try stranger.replies().isEmpty)
        try stranger.submit(prompt: 0, lease: 1, version: PolicyVersion(epoch: h.epoch, step: 0))
        try h.turn()
        #expect(try stranger.replies().isEmpty)
        #expect(try h.records("actor_joined").isEmpty)
        #expect(try h.records("group_accepted").isEmpty)
    }

    @Test func theRelayTreePlacesTheAuthenticatedActorAndNamesItsKey() throws {
        let h = try LearnerHarness(["learner.relay_fanout=1"], allowlist: allowlist)
        func ask(_ user: String, claiming claimed: String, relay: String) throws -> Troupe_V1_WeightSource {
            let dealer = h.network.weights.connect(identity: "\(user)-weights", authenticatedAs: user)
            #expect(try dealer.send(WireMessage(.weightManifestRequest(Troupe_V1_WeightManifestRequest())), deadline: .now) == .sent)
            try h.turn()
            guard case .weightManifest(let manifest)? = try dealer.receiveAll().first?.body else { throw HarnessError.missing("manifest") }
            var r = Troupe_V1_WeightSourceRequest()
            r.version = manifest.version
            r.relayEndpoint = relay
            r.actorIdentity = claimed
            r.actorRunID = 1
            #expect(try dealer.send(WireMessage(.weightSourceRequest(r)), deadline: .now) == .sent)
            try h.turn()
            guard case .weightSource(let source)? = try dealer.receiveAll().first?.body else { throw HarnessError.missing("source") }
            return source
        }
        // Only live actors take a place in the tree: both join on the control socket first.
        for name in ["a", "b"] {
            try h.connect(name, runId: 1, authenticatedAs: name).hello()
            try h.turn()
        }
        // a claims to be b: the tree places a (the key's name), so b's later request is b's own.
        let first = try ask("a", claiming: "b", relay: "tcp://10.0.0.1:7000")
        #expect(first.upstreamEndpoint.isEmpty && first.upstreamPublicKey.isEmpty)
        let second = try ask("b", claiming: "b", relay: "tcp://10.0.0.2:7000")
        #expect(second.upstreamEndpoint == "tcp://10.0.0.1:7000")
        #expect(second.upstreamPublicKey == keys["a"]!.publicKey.z85, "the actor below pins the relay's key, a's")
    }
}

/// The learner's real sockets: when its ZAP handler dies (here in the worst way, its endpoint gone,
/// which makes libzmq admit any key), the next check closes every socket, and an unlisted key gets nothing.
@Suite(.serialized) struct LearnerEndpointsAuthenticationTests {
    @Test func aDeadZAPHandlerClosesEveryEndpoint() throws {
        let actor = try CurveKeyPair.generate()
        let security = try LearnerSecurity(keyPair: .generate(), allowlist: CurveAllowlist([.init(name: "a1", role: .actor, publicKey: actor.publicKey)]))
        var settings = try RunConfig.load(path: nil, overrides: []).endpoints
        var endpoints: LearnerEndpoints?
        for _ in 0..<20 where endpoints == nil {
            let base = Int.random(in: 0..<2400) * 5 + 20_000
            (settings.controlPort, settings.weightsPort, settings.announcePort, settings.logsPort, settings.logsInPort) = (base, base + 1, base + 2, base + 3, base + 4)
            endpoints = try? LearnerEndpoints.zeroMQ(settings, epoch: 1, security: security)
        }
        let learner = try #require(endpoints)
        defer { learner.close() }
        let context = try ZMQContext()
        defer { context.shutdown() }
        func client(_ own: CurveKeyPair) throws -> ZMQSocket {
            let s = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            try s.set(CurveRole.client(serverKey: security.keyPair.publicKey, own: own).options)
            try s.connect(.tcp(host: "127.0.0.1", port: UInt16(settings.controlPort)))
            _ = try s.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())))
            return s
        }
        let a1 = try client(actor)
        defer { a1.close() }
        guard case .message(let peer, _) = try learner.control.receiveFromPeer(deadline: .afterMilliseconds(3000), limits: .control) else {
            Issue.record("the allowlisted actor was not heard"); return
        }
        #expect(peer.authenticatedUser == "a1")
        try learner.checkAuthentication()

        learner.zapHandler!.failForTesting(closeSocket: true)
        let deadline = Deadline.afterMilliseconds(3000)
        var failed = false
        while !failed && !deadline.hasPassed {
            do { try learner.checkAuthentication(); usleep(10_000) } catch { failed = true }
        }
        #expect(failed, "the learner kept serving without its ZAP handler")
        let intruder = try client(.generate())
        defer { intruder.close() }
        #expect(throws: (any Error).self, "the control socket is closed") {
            _ = try learner.control.receiveFromPeer(deadline: .afterMilliseconds(500), limits: .control)
        }
        guard case .timedOut = try intruder.receive(deadline: .afterMilliseconds(500)) else { Issue.record("the intruder got bytes"); return }
    }
}
