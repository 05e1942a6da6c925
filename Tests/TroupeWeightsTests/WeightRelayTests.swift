import Foundation
import Testing
import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWeights
import TroupeWire

/// The relay tree (protocol 2.1): where the learner places chunk-fetching actors, and actors
/// fetching through one another over real sockets on loopback, including an upstream that hangs.
@Suite struct RelayPlanTests {
    let v1 = PolicyVersion(epoch: 1, step: 1)
    let v2 = PolicyVersion(epoch: 1, step: 2)

    @Test func fanoutOneIsAChainInArrivalOrder() {
        var plan = RelayPlan(fanout: 1)
        let a = plan.assign(version: v1, identity: "a", runId: 1, relayEndpoint: "tcp://a:1")
        let b = plan.assign(version: v1, identity: "b", runId: 1, relayEndpoint: "tcp://b:1")
        let c = plan.assign(version: v1, identity: "c", runId: 1, relayEndpoint: "tcp://c:1")
        #expect(a == .init(upstream: "", depth: 1))
        #expect(b == .init(upstream: "tcp://a:1", depth: 2, upstreamIdentity: "a"))
        #expect(c == .init(upstream: "tcp://b:1", depth: 3, upstreamIdentity: "b"))
    }

    @Test func fanoutTwoFillsBreadthFirst() {
        var plan = RelayPlan(fanout: 2)
        let got = ["a", "b", "c", "d", "e", "f"].map { plan.assign(version: v1, identity: $0, runId: 1, relayEndpoint: "tcp://\($0):1") }
        #expect(got.map(\.upstream) == ["", "", "tcp://a:1", "tcp://a:1", "tcp://b:1", "tcp://b:1"])
        #expect(got.map(\.depth) == [1, 1, 2, 2, 2, 2])
    }

    @Test func actorsThatDoNotRelayGetNobodyBelowThem() {
        var plan = RelayPlan(fanout: 1)
        _ = plan.assign(version: v1, identity: "quiet", runId: 1, relayEndpoint: "")
        let b = plan.assign(version: v1, identity: "b", runId: 1, relayEndpoint: "tcp://b:1")
        let c = plan.assign(version: v1, identity: "c", runId: 1, relayEndpoint: "tcp://c:1")
        // The learner's one slot is taken by "quiet", which cannot serve: the learner serves "b" too.
        #expect(b == .init(upstream: "", depth: 1))
        #expect(c == .init(upstream: "tcp://b:1", depth: 2, upstreamIdentity: "b"))
    }

    @Test func aNewVersionStartsANewTreeAndAnAskerAgainGoesToTheLearner() {
        var plan = RelayPlan(fanout: 1)
        _ = plan.assign(version: v1, identity: "a", runId: 1, relayEndpoint: "tcp://a:1")
        _ = plan.assign(version: v1, identity: "b", runId: 1, relayEndpoint: "tcp://b:1")
        // "b" failed its transfer and asks again: from the learner, keeping its place for "c".
        #expect(plan.assign(version: v1, identity: "b", runId: 1, relayEndpoint: "tcp://b:1") == .init(upstream: "", depth: 1))
        #expect(plan.assign(version: v1, identity: "c", runId: 1, relayEndpoint: "tcp://c:1").upstream == "tcp://b:1")
        // Version 2: "c" asks first and is the learner's.
        #expect(plan.assign(version: v2, identity: "c", runId: 1, relayEndpoint: "tcp://c:1") == .init(upstream: "", depth: 1))
        #expect(plan.assign(version: v2, identity: "a", runId: 1, relayEndpoint: "tcp://a:1").upstream == "tcp://c:1")
        #expect(plan.version == v2 && plan.nodes.count == 2)
    }

    /// An actor goes only below relays that admit it (welcomed after its key was allowlisted): "new"
    /// skips "a" and "b", which do not, for the learner's free slot and then for "c".
    @Test func anActorGoesOnlyBelowARelayThatAdmitsIt() {
        var plan = RelayPlan(fanout: 2)
        for name in ["a", "b"] { _ = plan.assign(version: v1, identity: name, runId: 1, relayEndpoint: "tcp://\(name):1") }
        _ = plan.assign(version: v1, identity: "c", runId: 1, relayEndpoint: "tcp://c:1")
        let admitted = plan.assign(version: v1, identity: "new", runId: 1, relayEndpoint: "tcp://new:1") { $0 == "c" }
        #expect(admitted == .init(upstream: "tcp://c:1", depth: 3, upstreamIdentity: "c"))
        let nobody = plan.assign(version: v1, identity: "other", runId: 1, relayEndpoint: "tcp://other:1") { _ in false }
        #expect(nobody == .init(upstream: "", depth: 1), "with no relay admitting it, the learner serves it")
    }

    @Test func aRemovedActorGetsNobodyNew() {
        var plan = RelayPlan(fanout: 1)
        _ = plan.assign(version: v1, identity: "a", runId: 1, relayEndpoint: "tcp://a:1")
        _ = plan.assign(version: v1, identity: "b", runId: 1, relayEndpoint: "tcp://b:1")
        plan.remove(identity: "b")
        // "a" still has its one child slot taken, the learner too: "c" goes to the learner.
        #expect(plan.assign(version: v1, identity: "c", runId: 1, relayEndpoint: "tcp://c:1") == .init(upstream: "", depth: 1))
    }

    @Test func anEvictedActorThatAsksAgainIsNeverPlacedBelowItsOwnDescendants() {
        var plan = RelayPlan(fanout: 1)
        for id in ["a", "b", "c"] { _ = plan.assign(version: v1, identity: id, runId: 1, relayEndpoint: "tcp://\(id):1") }
        plan.remove(identity: "a")
        // "a" is alive after all and asks again: below "c" it would fetch from its own descendants.
        #expect(plan.assign(version: v1, identity: "a", runId: 2, relayEndpoint: "tcp://a:1") == .init(upstream: "", depth: 1))
    }

    @Test func aLoopbackRelayServesOnlyActorsOnItsOwnHost() {
        var plan = RelayPlan(fanout: 1)
        _ = plan.assign(version: v1, identity: "local", runId: 1, relayEndpoint: "tcp://127.0.0.1:4001")
        // A remote actor cannot reach 127.0.0.1 of another host: the learner serves it.
        #expect(plan.assign(version: v1, identity: "remote", runId: 1, relayEndpoint: "tcp://10.0.0.2:4001") == .init(upstream: "", depth: 1))
        #expect(plan.assign(version: v1, identity: "quiet", runId: 1, relayEndpoint: "").upstream == "tcp://10.0.0.2:4001")
        #expect(plan.assign(version: v1, identity: "local2", runId: 1, relayEndpoint: "tcp://127.0.0.1:4002").upstream == "tcp://127.0.0.1:4001")
    }

    @Test func theDefaultRelayAddressIsReachableFromWhereTheLearnerIs() throws {
        let local = try WeightRelay.defaultAddress(learner: Endpoint(parsing: "tcp://127.0.0.1:5555"))
        #expect(local.bind == .tcp(host: "127.0.0.1", port: 0) && local.advertise == nil)
        let named = try WeightRelay.defaultAddress(learner: Endpoint(parsing: "tcp://learner:5555"), advertiseHost: "node7")
        #expect(named.bind.isWildcard && named.advertise == .tcp(host: "node7", port: 0))
        let v6 = try WeightRelay.defaultAddress(learner: Endpoint(parsing: "tcp://learner:5555"), advertiseHost: "fd00::7")
        #expect(v6.advertise == .tcp(host: "fd00::7", port: 0))
        // Another host: every interface, advertised as a connectable address (this host's address
        // toward the learner, or its name), never the wildcard.
        let remote = try WeightRelay.defaultAddress(learner: Endpoint(parsing: "tcp://192.0.2.1:5555"))
        #expect(remote.bind.isWildcard)
        let advertised = try #require(remote.advertise)
        #expect(!advertised.isWildcard && !advertised.isLoopback)
    }

    @Test func fanoutZeroSendsEveryoneToTheLearner() {
        var plan = RelayPlan(fanout: 0)
        for id in ["a", "b", "c"] {
            #expect(plan.assign(version: v1, identity: id, runId: 1, relayEndpoint: "tcp://\(id):1") == .init(upstream: "", depth: 1))
        }
    }
}

@Suite struct WeightRelayTests {
    let model: LlamaModel
    let snapshot: WeightSnapshot

    init() throws {
        let config = ModelConfig(vocabularySize: 64, hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2)
        model = try LlamaModel.random(config: config, seed: 9)
        // Small chunks, so a transfer takes many round trips and the relays forward while fetching.
        snapshot = WeightSnapshot.make(model: model, version: PolicyVersion(epoch: 3, step: 4), chunkSize: 512).snapshot
    }

    /// A learner's weights socket and actors with relays, all driven from this thread.
    final class Rig {
        struct Member {
            let receiver: WeightReceiver
            let relay: WeightRelay?
            /// False: the relay's requests are never read, as from a hung actor.
            var serving: Bool
            var events: [WeightReceiver.Event] = []
        }
        let context: ZMQContext
        let learner: ZMQSocket
        var service: WeightService
        var members: [Member] = []

        init(snapshot: WeightSnapshot, fanout: Int) throws {
            context = try ZMQContext(ioThreads: 1)
            learner = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            try learner.set(.routerMandatory(true))
            service = WeightService(snapshot: snapshot, relayFanout: fanout)
            endpoint = try learner.bind(Endpoint(parsing: "tcp://127.0.0.1:0"))
        }
        let endpoint: Endpoint

        func addActor(_ name: String, layout: ParameterLayout, relays: Bool = true, serving: Bool = true, stallSeconds: Double = 3) throws {
            let relay = relays ? try WeightRelay(context: context, listen: ListenAddress(bind: "tcp://127.0.0.1:0")) : nil
            var options = WeightReceiver.Options()
            options.stallSeconds = stallSeconds
            options.window = 4
            let receiver = try WeightReceiver(context: context, learnerWeights: endpoint, layout: layout, relay: relay,
                                              identity: name, runId: UInt64(members.count + 1), options: options)
            members.append(Member(receiver: receiver, relay: relay, serving: serving))
        }

        /// Starts member `i` and pumps every socket until each started member has its weights.
        func run(starting order: [Int], seconds: Double = 20) throws {
            for (k, i) in order.enumerated() {
                try members[i].receiver.start(now: monotonicSeconds())
                // Each has its place in the tree before the next starts, so the tree follows `order`.
                try pump(until: { self.service.plan.nodes.count > k }, seconds: seconds)
            }
            try pump(until: { order.allSatisfy { i in self.members[i].events.contains { if case .applied = $0 { return true }; return false } } },
                     seconds: seconds)
        }

        func pump(until done: () -> Bool, seconds: Double) throws {
            let deadline = monotonicSeconds() + seconds
            while !done() {
                guard monotonicSeconds() < deadline else { throw WireTimeout() }
                let poller = Poller()
                poller.register(learner)
                for m in members {
                    for s in m.receiver.sockets { poller.register(s) }
                    if let s = m.relay?.socket, m.serving { poller.register(s) }
                }
                let ready = try poller.poll(until: .afterMilliseconds(5))
                if ready.contains(learner) {
                    drain: while true {
                        switch try learner.receiveFromPeer(deadline: .now, limits: .control) {
                        case .message(let peer, let m):
                            if let reply = service.reply(to: m.body) { _ = try learner.send(reply, to: peer) }
                        case .rejected: continue
                        case .timedOut: break drain
                        }
                    }
                }
                for i in members.indices {
                    if let r = members[i].relay, members[i].serving, let s = r.socket, ready.contains(s) { try r.drain() }
                    let now = monotonicSeconds()
                    members[i].events += try members[i].receiver.receive(now: now) + members[i].receiver.tick(now: now)
                }
            }
        }

        func close() {
            for m in members { m.receiver.close(); m.relay?.close() }
            learner.close()
            context.shutdown()
        }
    }

    struct WireTimeout: Error {}

    func applied(_ m: Rig.Member) -> (parameters: [UInt8], via: String)? {
        for e in m.events {
            if case .applied(let f, let via) = e, let p = f.parameters {
                return (Array(UnsafeRawBufferPointer(start: p.pointer, count: p.count * 4)), via)
            }
        }
        return nil
    }

    var parameterBytes: [UInt8] { Array(UnsafeRawBufferPointer(start: model.parameters.pointer, count: model.parameters.count * 4)) }

    /// A source request the learner does not vouch for (no live actor of that run) or whose relay address
    /// is not TCP is served from the learner and takes no place in the tree: nobody is put below it.
    @Test func onlyVouchedRequestsWithATCPRelayTakeAPlaceInTheTree() throws {
        var service = WeightService(snapshot: snapshot, relayFanout: 1)
        func ask(_ identity: String, relay: String, placeable: Bool = true) throws -> Troupe_V1_WeightSource {
            var r = Troupe_V1_WeightSourceRequest()
            r.version = snapshot.version.proto
            r.actorIdentity = identity
            r.actorRunID = 1
            r.relayEndpoint = relay
            guard case .weightSource(let s)? = service.reply(to: .weightSourceRequest(r), placeable: placeable)?.body else {
                throw WeightTestFailure("no WeightSource for \(identity)")
            }
            return s
        }
        let stranger = try ask("stranger", relay: "tcp://10.9.9.9:1", placeable: false)
        let odd = try ask("odd", relay: "not an address")
        #expect(stranger.depth == 1 && stranger.upstreamEndpoint.isEmpty && odd.depth == 1 && odd.upstreamEndpoint.isEmpty)
        // The first vouched actor is the tree's root, the next below it: neither below the two above.
        let first = try ask("a", relay: "tcp://127.0.0.1:7001"), second = try ask("b", relay: "tcp://127.0.0.1:7002")
        #expect(first.depth == 1 && first.upstreamEndpoint.isEmpty)
        #expect(second.depth == 2 && second.upstreamEndpoint == "tcp://127.0.0.1:7001")
    }

    @Test func aChainOfThreeGetsByteExactWeightsThroughOneAnother() throws {
        let rig = try Rig(snapshot: snapshot, fanout: 1)
        defer { rig.close() }
        for name in ["a", "b", "c"] { try rig.addActor(name, layout: model.layout) }
        try rig.run(starting: [0, 1, 2])
        let got = rig.members.map { applied($0) }
        #expect(got.map { $0?.via } == ["chunks", "relay", "relay"])
        #expect(got.allSatisfy { $0?.parameters == parameterBytes })
        #expect(rig.members.map(\.receiver.depth) == [1, 2, 3])
        // "a" and "b" each served the whole blob once; "c" served nobody.
        let chunks = snapshot.manifest.chunkRanges().count
        #expect(rig.members.map { $0.relay!.chunksServed } == [chunks, chunks, 0])
        #expect(!rig.members.contains { $0.events.contains { if case .fellBack = $0 { return true }; return false } })
    }

    @Test func anActorBelowAHungRelayFallsBackToTheLearner() throws {
        let rig = try Rig(snapshot: snapshot, fanout: 1)
        defer { rig.close() }
        try rig.addActor("a", layout: model.layout)
        try rig.addActor("hung", layout: model.layout, serving: false)
        try rig.addActor("c", layout: model.layout, stallSeconds: 0.3)
        try rig.run(starting: [0, 1, 2])
        let c = rig.members[2]
        #expect(c.events.contains { if case .fellBack(let up, _) = $0 { return up == rig.members[1].relay!.endpoint.description }; return false })
        #expect(applied(c)?.via == "chunks" && applied(c)?.parameters == parameterBytes)
        #expect(applied(rig.members[1])?.via == "relay")
    }

    /// A relay of its own and one DEALER asking it for chunks, driven from this thread.
    final class RelayProbe {
        let context: ZMQContext
        let relay: WeightRelay
        let asker: ZMQSocket

        init() throws {
            context = try ZMQContext(ioThreads: 1)
            relay = try WeightRelay(context: context, listen: ListenAddress(bind: "tcp://127.0.0.1:0"))
            asker = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            try asker.connect(relay.endpoint)
        }

        /// Asks for 512 bytes at `offset` and lets the relay read the request.
        func request(_ version: PolicyVersion, offset: UInt64 = 0) throws {
            var r = Troupe_V1_ChunkRequest()
            r.version = version.proto
            r.offset = offset
            r.length = 512
            _ = try asker.send(WireMessage(.chunkRequest(r)))
            #expect(try #require(relay.socket).wait(for: .readable, until: .afterMilliseconds(5000)).contains(.readable))
            try relay.drain()
        }

        /// The relay's answer, or nil when none came within `milliseconds`.
        func reply(within milliseconds: Int = 300) throws -> (chunk: Troupe_V1_Chunk, payload: Frame?)? {
            guard case .message(let m) = try asker.receiveMessage(deadline: .afterMilliseconds(milliseconds), limits: .weights),
                  case .chunk(let c) = m.body else { return nil }
            return (c, m.frames.first)
        }

        func status(of version: PolicyVersion, offset: UInt64 = 0) throws -> Troupe_V1_WeightStatus? {
            try request(version, offset: offset)
            return try reply(within: 2000)?.chunk.status
        }

        func close() {
            asker.close()
            relay.close()
            context.shutdown()
        }
    }

    /// Feeds `fetch` every chunk it asks for from `source` (what the learner's weights socket does).
    func complete(_ fetch: WeightFetch, from source: WeightSnapshot, chunks limit: Int = .max) throws {
        var fed = 0
        var requests = fetch.nextRequests()
        while !requests.isEmpty {
            for r in requests {
                guard fed < limit else { return }
                let reply = source.chunk(offset: r.offset, length: r.length)
                guard case .chunk(let header) = reply.body else { Issue.record("not a chunk"); return }
                try fetch.accept(header, payload: reply.frames.first)
                fed += 1
            }
            requests = fetch.nextRequests()
        }
    }

    /// Has the probe's relay hold the whole of `source`, as after a finished transfer.
    func hold(_ source: WeightSnapshot, in probe: RelayProbe) throws {
        let fetch = try WeightFetch(manifest: source.manifest, layout: model.layout)
        probe.relay.offer(fetch)
        try complete(fetch, from: source)
        probe.relay.completed(fetch)
    }

    // The learner can place an actor below this one before this one has the learner's answer: a
    // request for the version this actor asked about waits for its transfer instead of being refused.
    @Test func aRequestForTheVersionAskedAboutWaitsForItsTransfer() throws {
        let probe = try RelayProbe()
        defer { probe.close() }
        probe.relay.expect(snapshot.version)
        try probe.request(snapshot.version)
        #expect(try probe.reply() == nil, "answered before holding anything")
        let fetch = try WeightFetch(manifest: snapshot.manifest, layout: model.layout, window: 1)
        probe.relay.offer(fetch)
        try complete(fetch, from: snapshot, chunks: 1)
        try probe.relay.serveWaiting()
        let answer = try #require(try probe.reply())
        #expect(answer.chunk.status == .ok && answer.payload?.bytes == Array(parameterBytes[0..<512]))

        // A version it expected and then gave up on: waiting requests are refused.
        let next = PolicyVersion(epoch: 3, step: 5)
        probe.relay.expect(next)
        try probe.request(next)
        #expect(try probe.reply() == nil)
        probe.relay.withdraw(next)
        #expect(try probe.reply()?.chunk.status == .versionGone)
    }

    // The relay keeps the previous version while the next is under way (actors below may still be
    // finishing it), and lets it go once the next is complete: never a second copy of the model.
    @Test func thePreviousVersionIsServedUntilTheNextIsComplete() throws {
        let probe = try RelayProbe()
        defer { probe.close() }
        try hold(snapshot, in: probe)
        let next = WeightSnapshot.make(model: model, version: PolicyVersion(epoch: 3, step: 5), chunkSize: 512).snapshot
        let second = try WeightFetch(manifest: next.manifest, layout: model.layout)
        probe.relay.offer(second)
        #expect(try probe.status(of: snapshot.version) == .ok)
        try complete(second, from: next)
        probe.relay.completed(second)
        #expect(try probe.status(of: snapshot.version) == .versionGone)
        #expect(try probe.status(of: next.version) == .ok)
    }

    @Test func aRelayRefusesVersionsItDoesNotHold() throws {
        let probe = try RelayProbe()
        defer { probe.close() }
        try hold(snapshot, in: probe)
        #expect(try probe.status(of: PolicyVersion(epoch: 3, step: 99)) == .versionGone)
        // A held version but not one of its chunks (an offset inside a chunk) is refused as well.
        #expect(try probe.status(of: snapshot.version, offset: 7) == .versionGone)
        #expect(try probe.status(of: snapshot.version) == .ok)
        #expect(probe.relay.refused == 2)
    }
}

private struct WeightTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
