import Testing
import TroupeProto
import TroupeWire

#if canImport(Glibc)
import Glibc
#endif

private func elapsed(_ body: () throws -> Void) rethrows -> Duration {
    let start = ContinuousClock.now
    try body()
    return ContinuousClock.now - start
}

private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// Receives until a message arrives or the deadline passes; fails the test on timeout.
private func receiveFrames(_ socket: ZMQSocket, within ms: Int = 5000, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Frame]? {
    switch try socket.receive(deadline: .afterMilliseconds(ms)) {
    case .message(let frames): return frames
    case .timedOut:
        Issue.record("no message within \(ms) ms", sourceLocation: sourceLocation)
        return nil
    case .overLimit:
        Issue.record("unexpected over-limit message", sourceLocation: sourceLocation)
        return nil
    }
}

@Test func receiveReturnsTimedOutAtItsDeadline() throws {
    let context = try ZMQContext()
    let socket = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try socket.bind(.inproc(name: uniqueName("idle")))
    let took = try elapsed {
        guard case .timedOut = try socket.receive(deadline: .afterMilliseconds(80)) else {
            Issue.record("expected a timeout")
            return
        }
    }
    #expect(milliseconds(took) >= 75 && milliseconds(took) < 1000, "took \(took)")

    let immediate = try elapsed {
        guard case .timedOut = try socket.receive(deadline: .now) else { Issue.record("expected a timeout"); return }
        guard case .timedOut = try socket.receiveMessage(deadline: .now, limits: .control) else { Issue.record("expected a timeout"); return }
    }
    #expect(milliseconds(immediate) < 50)

    let poller = Poller()
    poller.register(socket)
    let pollTook = try elapsed { () throws in #expect(try poller.poll(until: .afterMilliseconds(60)).isEmpty) }
    #expect(milliseconds(pollTook) >= 55 && milliseconds(pollTook) < 1000, "poll took \(pollTook)")
}

@Test func routerAndDealerExchangeMessagesOverTCP() throws {
    let context = try ZMQContext()
    let router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    try router.set([.routerMandatory(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                    .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 3000, ttlMilliseconds: 3000)])
    let bound = try router.bind(.tcp(host: "127.0.0.1", port: 0))
    guard case .tcp(_, let port, _) = bound else { Issue.record("bound \(bound)"); return }
    #expect(port != 0)
    #expect(try router.lastEndpoint() == bound.description)

    let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try dealer.set([.immediate(true), .reconnectInterval(milliseconds: 100, maximumMilliseconds: 5000),
                    .routingID(Array("actor-1".utf8)), .tcpKeepalive(idleSeconds: 60, intervalSeconds: 10, probes: 3)])
    try dealer.connect(try ListenAddress(bind: bound).advertised(boundTo: bound))

    // Every message kind crosses the wire intact, in both directions.
    for original in sampleMessages() {
        #expect(try dealer.send(original, deadline: .afterMilliseconds(5000)) == .sent)
        guard case .message(let peer, let received) = try router.receiveFromPeer(deadline: .afterMilliseconds(5000), limits: .permissive) else {
            Issue.record("router did not receive \(original.kind)")
            return
        }
        #expect(peer == PeerID(Array("actor-1".utf8)))
        #expect(received.body == original.body && received.frames == original.frames)

        #expect(try router.send(original, to: peer, deadline: .afterMilliseconds(1000)) == .sent)
        guard case .message(let echoed) = try dealer.receiveMessage(deadline: .afterMilliseconds(5000), limits: .permissive) else {
            Issue.record("dealer did not receive \(original.kind)")
            return
        }
        #expect(echoed.body == original.body && echoed.frames == original.frames)
    }

    // A peer that is not (or no longer) connected is a value, not an error.
    #expect(try router.send(sampleMessages()[0], to: PeerID(Array("nobody".utf8))) == .peerUnreachable)
}

@Test func routerReportsBadMessagesWithTheirSender() throws {
    let context = try ZMQContext()
    let endpoint = Endpoint.inproc(name: uniqueName("bad"))
    let router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    try router.bind(endpoint)
    let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try dealer.set(.routingID([7, 7]))
    try dealer.connect(endpoint)

    // Too many frames: dropped while reading, but the sender is still known.
    #expect(try dealer.send(Array(repeating: Frame([1]), count: 50), deadline: .afterMilliseconds(1000)) == .sent)
    guard case .rejected(let peer, let error) = try router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: .control) else {
        Issue.record("expected a rejection"); return
    }
    #expect(peer == PeerID([7, 7]))
    #expect(error.reason == .tooManyFrames)

    // Garbage header.
    #expect(try dealer.send([Frame([0xFF, 0x00, 0x13])], deadline: .afterMilliseconds(1000)) == .sent)
    guard case .rejected(let garbagePeer, let garbage) = try router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: .control) else {
        Issue.record("expected a rejection"); return
    }
    #expect(garbagePeer == PeerID([7, 7]))
    #expect([.malformedHeader, .checksumMissing].contains(garbage.reason))

    // Over the byte cap.
    let big = Frame([UInt8](repeating: 0, count: 2 << 20))
    #expect(try dealer.send([big, big], deadline: .afterMilliseconds(1000)) == .sent)
    let small = WireLimits(maxRawFrames: 3, maxHeaderBytes: 1024, maxFrameBytes: 1 << 20, maxMessageBytes: 1 << 20)
    guard case .rejected(_, let tooBig) = try router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: small) else {
        Issue.record("expected a rejection"); return
    }
    #expect(tooBig.reason == .messageTooLarge)

    // The socket still works afterwards.
    #expect(try dealer.send(sampleMessages()[0]) == .sent)
    guard case .message = try router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: .control) else {
        Issue.record("expected a message"); return
    }
}

@Test func fullQueuesAndMissingPeersGiveWouldBlockAtTheDeadline() throws {
    let context = try ZMQContext()
    // With .immediate, a DEALER that has no completed connection queues nothing.
    let lonely = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try lonely.set(.immediate(true))
    try lonely.connect(.ipc(path: "/tmp/\(uniqueName("troupe-nobody")).sock"))
    let took = try elapsed { () throws in
        #expect(try lonely.send([Frame([1])], deadline: .afterMilliseconds(60)) == .wouldBlock)
    }
    #expect(milliseconds(took) >= 55 && milliseconds(took) < 1000, "took \(took)")

    // A peer that never reads: the send queue fills up to the HWM, then sends report .wouldBlock.
    let endpoint = Endpoint.inproc(name: uniqueName("hwm"))
    let sink = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    try sink.set(.receiveHighWaterMark(2))
    try sink.bind(endpoint)
    let source = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try source.set(.sendHighWaterMark(2))
    try source.connect(endpoint)
    var accepted = 0
    while try source.send([Frame([0])], deadline: .afterMilliseconds(20)) == .sent {
        accepted += 1
        if accepted > 1000 { break }
    }
    #expect(accepted >= 2 && accepted <= 10, "accepted \(accepted) messages with HWM 2 + 2")
}

@Test func zeroCopySendDeliversTheBytesAndReleasesTheBuffer() throws {
    let context = try ZMQContext()
    let endpoint = Endpoint.ipc(path: "/tmp/\(uniqueName("troupe-zc")).sock")
    let receiver = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try receiver.bind(endpoint)
    let sender = try ZMQSocket(context, type: .dealer, linger: .upTo(milliseconds: 2000))
    try sender.connect(endpoint)

    let size = 8 << 20
    weak var weakBuffer: SharedBuffer?
    do {
        let buffer = SharedBuffer(count: size) { bytes in
            for index in 0..<bytes.count { bytes[index] = UInt8(truncatingIfNeeded: index &* 2654435761 >> 13) }
        }
        weakBuffer = buffer
        let chunk = Frame(sharing: buffer, range: 1000..<(size - 1000))
        #expect(chunk.isZeroCopy && chunk.count == size - 2000)
        var header = Troupe_V1_Chunk()
        header.status = .ok
        header.offset = 1000
        #expect(try sender.send(WireMessage(.chunk(header), frames: [chunk]), deadline: .afterMilliseconds(2000)) == .sent)
        guard case .message(let received) = try receiver.receiveMessage(deadline: .afterMilliseconds(5000), limits: .weights) else {
            Issue.record("no chunk arrived"); return
        }
        #expect(received.frames == [chunk])
        #expect(!received.frames[0].isZeroCopy)
    }
    // libzmq released its reference once the bytes were written: no leak.
    let deadline = Deadline.afterMilliseconds(2000)
    while weakBuffer != nil && !deadline.hasPassed { usleep(1000) }
    #expect(weakBuffer == nil)
}

@Test func lingerBoundsClosingWithUnsentMessages() throws {
    // A DEALER connected to nobody holds a queued message; closing it and terminating the context
    // waits exactly the linger, never forever.
    func closeTime(_ linger: Linger) throws -> Double {
        var context: ZMQContext? = try ZMQContext()
        var socket: ZMQSocket? = try ZMQSocket(context!, type: .dealer, linger: linger)
        try socket!.connect(.tcp(host: "127.0.0.1", port: 9))  // discard port: nothing listens
        #expect(try socket!.send([Frame([UInt8](repeating: 1, count: 100))]) == .sent)
        return milliseconds(elapsed {
            socket = nil
            context = nil  // zmq_ctx_term: waits for lingering messages
        })
    }
    let bounded = try closeTime(.upTo(milliseconds: 800))
    #expect(bounded >= 750 && bounded < 3000, "linger 800 ms took \(bounded) ms")
    let discarded = try closeTime(.discardUnsent)
    #expect(discarded < 400, "discard took \(discarded) ms")

    // 0 must be said explicitly.
    let context = try ZMQContext()
    #expect(throws: ZMQError.self) { try ZMQSocket(context, type: .dealer, linger: .upTo(milliseconds: 0)) }
    #expect(try ZMQSocket(context, type: .dealer, linger: .upTo(milliseconds: 1500)).lingerMilliseconds() == 1500)
}

@Test func forwarderProxyForwardsPublishedMessages() throws {
    let context = try ZMQContext()
    let proxy = try ZMQProxy.startPubSubForwarder(
        context: context,
        publishersBind: .tcp(host: "127.0.0.1", port: 0),
        subscribersBind: .ipc(path: "/tmp/\(uniqueName("troupe-logs")).sock"))
    guard case .tcp(_, let port, _) = proxy.frontendEndpoint, port != 0 else {
        Issue.record("frontend bound \(proxy.frontendEndpoint)"); return
    }

    let subscriber = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
    try subscriber.set(.subscribe([]))
    try subscriber.connect(proxy.backendEndpoint)
    let publisher = try ZMQSocket(context, type: .publish, linger: .discardUnsent)
    try publisher.connect(proxy.frontendEndpoint)

    // Subscriptions take a moment to propagate (slow joiner), so publish until one arrives.
    var event = Troupe_V1_LogEvent()
    event.source = "test"
    var received: WireMessage?
    let deadline = Deadline.afterMilliseconds(5000)
    var sequence: UInt64 = 0
    while received == nil && !deadline.hasPassed {
        sequence += 1
        event.sequence = sequence
        #expect(try publisher.send(WireMessage(.logEvent(event))) == .sent)
        if case .message(let message) = try subscriber.receiveMessage(deadline: .afterMilliseconds(20), limits: .headerOnly) {
            received = message
        }
    }
    guard case .logEvent(let got)? = received?.body else { Issue.record("nothing forwarded"); return }
    #expect(got.source == "test" && got.sequence >= 1 && got.sequence <= sequence)

    let stopTook = elapsed { proxy.stop() }
    #expect(milliseconds(stopTook) < 1000)
    proxy.stop()  // idempotent
}

@Test func proxyStopsWhenTheContextShutsDown() throws {
    let context = try ZMQContext()
    let proxy = try ZMQProxy.startPubSubForwarder(context: context, publishersBind: .inproc(name: uniqueName("pub")),
                                                  subscribersBind: .inproc(name: uniqueName("sub")))
    context.shutdown()
    let took = elapsed { proxy.stop() }
    #expect(milliseconds(took) < 1500)
}

@Test func pollerReportsReadySockets() throws {
    let context = try ZMQContext()
    let endpointA = Endpoint.inproc(name: uniqueName("a"))
    let endpointB = Endpoint.inproc(name: uniqueName("b"))
    let a = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
    let b = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
    try a.bind(endpointA)
    try b.bind(endpointB)
    let toA = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
    try toA.connect(endpointA)
    let toB = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
    try toB.connect(endpointB)

    let poller = Poller()
    poller.register(a)
    poller.register(b)
    #expect(try toB.send([Frame([42])], deadline: .afterMilliseconds(1000)) == .sent)
    let ready = try poller.poll(until: .afterMilliseconds(2000))
    #expect(ready.contains(b) && !ready.contains(a))
    #expect(ready.readyCount == 1)
    #expect(try receiveFrames(b) == [Frame([42])])

    // A pipe's read end as a plain file descriptor.
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    defer { close(fds[0]); close(fds[1]) }
    poller.register(fileDescriptor: fds[0])
    #expect(try poller.poll(until: .now).isEmpty)
    var byte: UInt8 = 1
    #expect(write(fds[1], &byte, 1) == 1)
    #expect(try poller.poll(until: .afterMilliseconds(1000)).contains(fileDescriptor: fds[0]))

    poller.unregister(fileDescriptor: fds[0])
    poller.unregister(b)
    #expect(poller.count == 1)
    b.close()
    #expect(throws: ZMQError.self) { try b.receive(deadline: .now) }
}

@Test func monitorSeesConnectsAndDisconnects() throws {
    let context = try ZMQContext()
    let router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    let monitor = try SocketMonitor(watching: router, kinds: [.accepted, .disconnected, .handshakeSucceeded])
    let bound = try router.bind(.tcp(host: "127.0.0.1", port: 0))
    let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try dealer.connect(bound)
    #expect(try monitor.waitFor(.accepted, deadline: .afterMilliseconds(3000)) != nil)
    dealer.close()
    #expect(try monitor.waitFor(.disconnected, deadline: .afterMilliseconds(3000)) != nil)
    monitor.close()
}

@Test func maxMessageSizeDropsOversizedFramesAtTheSocket() throws {
    let context = try ZMQContext()
    let receiver = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    try receiver.set(.maxMessageSize(1024))
    let bound = try receiver.bind(.tcp(host: "127.0.0.1", port: 0))
    let sender = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try sender.connect(bound)
    #expect(try sender.send([Frame([UInt8](repeating: 0, count: 4096))], deadline: .afterMilliseconds(1000)) == .sent)
    guard case .timedOut = try receiver.receive(deadline: .afterMilliseconds(300)) else {
        Issue.record("an oversized frame got through"); return
    }
}

@Test func unbindAndDisconnectStopTraffic() throws {
    let context = try ZMQContext()
    let server = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    try server.set(.routerMandatory(true))
    // Unbinding a tcp endpoint needs the resolved port, which bind returns.
    let bound = try server.bind(.tcp(host: "127.0.0.1", port: 0))
    let client = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try client.set(.immediate(true))
    try client.connect(bound)
    #expect(try client.send([Frame([1])], deadline: .afterMilliseconds(3000)) == .sent)
    #expect(try receiveFrames(server)?.count == 2)

    // zmq_disconnect takes effect asynchronously: within a moment there is no pipe left to queue in.
    try client.disconnect(bound)
    let deadline = Deadline.afterMilliseconds(3000)
    var result = SendResult.sent
    while result == .sent && !deadline.hasPassed {
        result = try client.send([Frame([2])], deadline: .afterMilliseconds(50))
    }
    #expect(result == .wouldBlock)
    try server.unbind(bound)
    #expect(throws: ZMQError.self) { try server.unbind(bound) }
    #expect(throws: ZMQError.self) { try server.bind(.tcp(host: "203.0.113.1", port: 0)) }  // not a local address
}
