import Foundation
import Testing
import TroupeProto
import TroupeWire

/// The in-memory transports the actor and learner tests run on: what a subscriber hears, what a
/// closed router does, and how the switchboard resolves addresses.
@Suite struct InMemoryTransportTests {
    func announce(step: UInt64) -> WireMessage {
        var a = Troupe_V1_WeightAnnounce()
        a.version.step = step
        return WireMessage(.weightAnnounce(a))
    }

    func step(_ r: WireReceive) -> UInt64? {
        if case .message(let m) = r, case .weightAnnounce(let a) = m.body { return a.version.step }
        return nil
    }

    @Test func aSubscriberHearsWhatIsPublishedAfterItSubscribedUntilItCloses() throws {
        let publisher = InMemoryPublisher()
        _ = try publisher.send(announce(step: 1), deadline: .now)
        let early = publisher.subscribe()
        _ = try publisher.send(announce(step: 2), deadline: .now)
        let late = publisher.subscribe()
        _ = try publisher.send(announce(step: 3), deadline: .now)
        #expect(step(try early.receiveMessage(deadline: .now, limits: .headerOnly)) == 2)
        #expect(step(try early.receiveMessage(deadline: .now, limits: .headerOnly)) == 3)
        #expect(step(try late.receiveMessage(deadline: .now, limits: .headerOnly)) == 3)
        guard case .timedOut = try late.receiveMessage(deadline: .now, limits: .headerOnly) else { Issue.record("more than was published"); return }
        late.close()
        _ = try publisher.send(announce(step: 4), deadline: .now)
        guard case .timedOut = try late.receiveMessage(deadline: .now, limits: .headerOnly) else { Issue.record("heard after closing"); return }
        #expect(step(try early.receiveMessage(deadline: .now, limits: .headerOnly)) == 4)
        #expect(publisher.takeAll().count == 4, "the publisher still keeps everything for tests")
    }

    @Test func aSubscriberDecodesWithItsOwnLimits() throws {
        let publisher = InMemoryPublisher()
        let subscriber = publisher.subscribe()
        // A chunk with its payload frame, where only header-only messages belong (the announcements).
        var chunk = Troupe_V1_Chunk()
        chunk.status = .ok
        _ = try publisher.send(WireMessage(.chunk(chunk), frames: [Frame(Array(repeating: 0, count: 64))]), deadline: .now)
        guard case .rejected = try subscriber.receiveMessage(deadline: .now, limits: .headerOnly) else {
            Issue.record("a payload frame passed header-only limits"); return
        }
    }

    @Test func aClosedRouterDropsWhatWasQueuedAndWhatComesAfter() throws {
        let router = InMemoryRouter()
        let dealer = router.connect(identity: "a")
        _ = try dealer.send(announce(step: 1), deadline: .now)
        router.close()
        #expect(router.isClosed)
        #expect(router.pendingInbound == 0)
        #expect(try dealer.send(announce(step: 2), deadline: .now) == .sent, "like a DEALER queueing toward a dead peer")
        guard case .timedOut = try router.receiveFromPeer(deadline: .now, limits: .control) else { Issue.record("a closed router read"); return }
        #expect(try router.send(announce(step: 3), to: dealer.peer, deadline: .now) == .peerUnreachable)
    }

    @Test func theSwitchboardConnectsByAddressAndARebindServesOnlyNewConnections() throws {
        let switchboard = InMemorySwitchboard()
        let address = try Endpoint(parsing: "tcp://127.0.0.1:5555")
        let first = InMemoryRouter()
        switchboard.bind(first, at: address)
        let old = switchboard.connect(to: address, identity: "a")
        _ = try old.send(announce(step: 1), deadline: .now)
        #expect(first.pendingInbound == 1)

        let second = InMemoryRouter()
        switchboard.bind(second, at: address)
        _ = try old.send(announce(step: 2), deadline: .now)
        let new = switchboard.connect(to: address, identity: "a")
        _ = try new.send(announce(step: 3), deadline: .now)
        #expect(first.pendingInbound == 2)
        guard case .message(let peer, _) = try second.receiveFromPeer(deadline: .now, limits: .control) else { Issue.record("nothing at the new router"); return }
        #expect(peer == new.peer)
        #expect(new.peer != old.peer, "every connection has its own routing id")

        // An address nobody serves swallows what is sent, as a DEALER's queue toward it.
        let nowhere = switchboard.connect(to: try Endpoint(parsing: "tcp://127.0.0.1:1"))
        #expect(try nowhere.send(announce(step: 4), deadline: .now) == .sent)
    }

    @Test func aRouterBoundAtPortZeroGetsAPortOfItsOwn() throws {
        let switchboard = InMemorySwitchboard()
        let listen = try ListenAddress(bind: "tcp://127.0.0.1:0")
        let (a, aAddress) = try switchboard.bindRouter(listen)
        let (_, bAddress) = try switchboard.bindRouter(listen)
        #expect(aAddress != bAddress)
        guard case .tcp("127.0.0.1", let port, _) = aAddress else { Issue.record("\(aAddress)"); return }
        #expect(port != 0)
        #expect(switchboard.router(at: aAddress) === a)
        #expect(throws: EndpointError.self) { try switchboard.bindRouter(ListenAddress(bind: "tcp://*:0")) }
    }
}
