import Foundation
import Testing
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeWire

/// Rules of docs/PROTOCOL.md that a third-party actor relies on: the Hello's own protocol major, the
/// Welcome's configuration digest, and Rejects on the weights socket, bounded per peer.
@Suite(.serialized) struct LearnerProtocolTests {
    func hello(_ actor: TestActor, major: UInt32) throws {
        var h = Troupe_V1_Hello()
        h.actorIdentity = actor.identity
        h.actorRunID = actor.runId
        h.protocolMajor = major
        try actor.send(.hello(h))
    }

    @Test func aHelloThatNamesAnotherProtocolMajorIsRefused() throws {
        let h = try LearnerHarness()
        for major: UInt32 in [0, 1, WireProtocol.major + 1] {
            let a = h.connect("a\(major)")
            try hello(a, major: major)  // the Envelope itself says major 2
            try h.turn()
            guard case .reject(let r)? = try a.replies().first else { Issue.record("no Reject for Hello major \(major)"); continue }
            #expect(r.reason == .protocolMajor)
            #expect(r.text.contains("Hello.protocol_major is \(major)"))
        }
        #expect(try h.records("actor_joined").isEmpty)
        #expect(h.learner.core.actors.isEmpty)

        let good = h.connect("good")
        try hello(good, major: WireProtocol.major)
        try h.turn()
        #expect(try good.welcome().credit > 0)
    }

    @Test func theWelcomeCarriesTheDigestOfTheFrozenConfiguration() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        try a.hello()
        try h.turn()
        let w = try a.welcome()
        let frozen = try Data(contentsOf: URL(fileURLWithPath: h.directory + "/config.json"))
        #expect(w.configDigest.count == 32)
        #expect(w.configDigest == Data(Blake2b.hash([UInt8](frozen))), "BLAKE2b-256 of RUN/config.json")
        #expect(w.configDigest == h.learner.config.configDigest)

        // Another configuration, another digest.
        let other = try LearnerHarness(["sampling.temperature=0.7"])
        let b = other.connect("b")
        try b.hello()
        try other.turn()
        #expect(try b.welcome().configDigest != w.configDigest)
    }

    @Test func theWeightsSocketAnswersBadRequestsWithARejectAndStillServesGoodOnes() throws {
        let h = try LearnerHarness()
        let dealer = h.network.weights.connect(identity: "fetcher")
        func reply() throws -> WireBody? {
            try h.turn()
            let all = try dealer.receiveAll()
            #expect(all.count == 1, "one reply, got \(all.map(\.kind))")
            return all.first?.body
        }

        #expect(dealer.send(frames: [Frame([0xFF, 0x00, 0x13])]) == .sent)
        guard case .reject(let garbage)? = try reply() else { Issue.record("no Reject for garbage"); return }
        #expect(garbage.reason == .malformed)

        var oldMajor = WireMessage(.weightManifestRequest(Troupe_V1_WeightManifestRequest()))
        oldMajor.protocolMajor = 1
        #expect(try dealer.send(oldMajor, deadline: .now) == .sent)
        guard case .reject(let major)? = try reply() else { Issue.record("no Reject for protocol major 1"); return }
        #expect(major.reason == .protocolMajor)

        var bye = Troupe_V1_Bye()
        bye.reason = "wrong socket"
        #expect(try dealer.send(WireMessage(.bye(bye)), deadline: .now) == .sent)
        guard case .reject(let misplaced)? = try reply() else { Issue.record("no Reject for a Bye on the weights socket"); return }
        #expect(misplaced.reason == .malformed)
        #expect(misplaced.text.contains("weights socket"))

        #expect(try dealer.send(WireMessage(.weightManifestRequest(Troupe_V1_WeightManifestRequest())), deadline: .now) == .sent)
        guard case .weightManifest(let manifest)? = try reply() else { Issue.record("no manifest"); return }
        #expect(manifest.status == .ok)

        // An offset at the end of the 64-bit range: refused as out of range, not an overflow.
        var r = Troupe_V1_ChunkRequest()
        r.version = manifest.version
        r.offset = UInt64.max - 10
        r.length = 100
        #expect(try dealer.send(WireMessage(.chunkRequest(r)), deadline: .now) == .sent)
        guard case .chunk(let chunk)? = try reply() else { Issue.record("no Chunk"); return }
        #expect(chunk.status == .outOfRange)
    }

    @Test func aFloodOfBadMessagesGetsABurstOfRejectsThenAFewPerSecond() throws {
        let h = try LearnerHarness()
        let dealer = h.network.weights.connect(identity: "flood")
        for _ in 0..<50 { #expect(dealer.send(frames: [Frame([0xFF])]) == .sent) }
        try h.turn()
        #expect(try dealer.receiveAll().count == 8)
        h.now += 1
        for _ in 0..<50 { #expect(dealer.send(frames: [Frame([0xFF])]) == .sent) }
        try h.turn()
        #expect(try dealer.receiveAll().count == 2)

        // The budget is per peer: another connection is answered.
        let other = h.network.weights.connect(identity: "other")
        #expect(other.send(frames: [Frame([0xFF])]) == .sent)
        try h.turn()
        #expect(try other.receiveAll().count == 1)
    }

    @Test func theRejectBudgetRefillsAndForgetsPeersBeyondItsBound() {
        var budget = RejectBudget(burst: 2, perSecond: 1, maxPeers: 2)
        let a = PeerID([1]), b = PeerID([2]), c = PeerID([3])
        // (time, peer) → allowed? (`#expect` cannot call a mutating method itself.)
        let steps: [(Double, PeerID, Bool)] = [
            (0, a, true), (0, a, true), (0.5, a, false),  // the burst, then nothing
            (1.5, a, true),                                 // refilled at 1 a second
            (1.5, b, true),
            // A third peer past the bound: state is dropped, never grown; a new peer gets its burst.
            (1.5, c, true), (1.5, c, true), (1.5, c, false),
        ]
        for (index, (now, peer, expected)) in steps.enumerated() {
            let allowed = budget.allows(peer, now: now)
            #expect(allowed == expected, "step \(index): peer \(peer) at \(now)")
        }
    }
}
