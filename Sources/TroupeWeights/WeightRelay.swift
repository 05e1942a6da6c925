import Foundation
import TroupeProto
import TroupeRuntime
import TroupeWire

/// An actor's relay (protocol 2.1, `RelayPlan`): a router (a ZeroMQ ROUTER, or an in-memory one) that serves the chunks of the transfers
/// this actor holds, finished or under way, to the actors the learner placed below it, with the
/// learner's own ChunkRequest/Chunk messages. A request for a chunk that has not arrived yet waits
/// for it, so a chain forwards each chunk as soon as it lands; a request for a version this actor
/// neither holds nor has asked for, or one that is not a chunk of it, gets VERSION_GONE and the
/// asker goes to the learner. Chunks are zero-copy views of the transfer's buffer, never copied here.
package final class WeightRelay {
    package let router: any RouterTransport
    /// The relay's ZeroMQ socket, for a caller's poller (nil in memory).
    package var socket: ZMQSocket? { router as? ZMQSocket }
    /// What actors below this one connect to.
    package let endpoint: Endpoint
    /// The newest transfers offered, newest last (an actor below may still be on the previous one).
    private var transfers: [WeightFetch] = []
    private var waiting: [(peer: PeerID, request: Troupe_V1_ChunkRequest)] = []
    private var expected: PolicyVersion?
    package private(set) var chunksServed = 0
    package private(set) var bytesServed = 0
    /// Requests refused (version not held, not a chunk, malformed message).
    package private(set) var refused = 0
    /// Requests that wait for a chunk still on its way; bounded so a misbehaving peer cannot grow it.
    static let maxWaiting = 4096

    /// Serves on `router`, which actors below reach at `endpoint`.
    package init(router: any RouterTransport, endpoint: Endpoint) {
        self.router = router
        self.endpoint = endpoint
    }

    /// Over ZeroMQ (`bindZeroMQ`).
    package convenience init(context: ZMQContext, listen: ListenAddress, security: (keyPair: CurveKeyPair, zap: ZAPHandler)? = nil) throws {
        let (socket, endpoint) = try WeightRelay.bindZeroMQ(context: context, listen: listen, security: security)
        self.init(router: socket, endpoint: endpoint)
    }

    /// The relay's ROUTER bound at `listen`, with the address to advertise. `security`: in an
    /// authenticated run, a CURVE server with this actor's key pair, admitting the run's actors
    /// through `zap` (the process's ZAP handler, already bound).
    package static func bindZeroMQ(context: ZMQContext, listen: ListenAddress,
                                   security: (keyPair: CurveKeyPair, zap: ZAPHandler)? = nil) throws -> (ZMQSocket, Endpoint) {
        let socket = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        try socket.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                        .sendHighWaterMark(1000)] + SocketProfile.acceptedConnectionLiveness)
        if let (keyPair, zap) = security {
            try socket.set(CurveRole.server(keyPair, domain: ZAPDomain.relay).options)
            socket.admitsUser = { zap.currentPolicy.admits(user: $0, key: $1, domain: ZAPDomain.relay) }
        }
        let bound = try socket.bind(listen.bind)
        return (socket, try listen.advertised(boundTo: bound))
    }

    /// Says that this actor has asked the learner where to fetch `version` from: the learner may place
    /// actors below this one before its own answer is here, so their requests for that version wait
    /// instead of being refused.
    package func expect(_ version: PolicyVersion) { expected = version }

    /// This actor gave up on `version` (its transfer failed): requests for it are refused from now on.
    package func withdraw(_ version: PolicyVersion) {
        if expected == version { expected = nil }
        transfers.removeAll { $0.version == version && !$0.isComplete }
        try? serveWaiting()
    }

    /// Serves `fetch` from now on (its chunks as they arrive). The transfer before it stays served
    /// while this one is under way (actors below may still be finishing it, and this actor's model
    /// uses its buffer anyway) and goes once this one completes: see `completed`.
    package func offer(_ fetch: WeightFetch) {
        transfers.removeAll { $0 === fetch || $0.version == fetch.version }
        transfers.append(fetch)
        if transfers.count > 2 { transfers.removeFirst(transfers.count - 2) }
        // Waiting requests for a version no longer held are answered now rather than left to time out.
        try? serveWaiting()
    }

    /// `fetch` holds verified weights, which become this actor's model: older transfers are dropped,
    /// so the relay never keeps a second copy of the model alive.
    package func completed(_ fetch: WeightFetch) {
        transfers.removeAll { $0 !== fetch }
        try? serveWaiting()
    }

    /// Answers what is queued on the router (never waits).
    package func drain() throws {
        for _ in 0..<256 {
            switch try router.receiveFromPeer(deadline: .now, limits: .control) {
            case .timedOut: return
            case .rejected: refused += 1
            case .message(let peer, let message):
                guard case .chunkRequest(let r) = message.body else { refused += 1; continue }
                try answer(r, to: peer)
            }
        }
    }

    /// Sends what waiting requests can now have (call after a chunk arrived).
    package func serveWaiting() throws {
        guard !waiting.isEmpty else { return }
        let pending = waiting
        waiting.removeAll(keepingCapacity: true)
        for (peer, r) in pending { try answer(r, to: peer) }
    }

    package func close() { router.close() }

    private func answer(_ r: Troupe_V1_ChunkRequest, to peer: PeerID) throws {
        let version = PolicyVersion(r.version)
        var c = Troupe_V1_Chunk()
        c.version = r.version
        c.offset = r.offset
        let transfer = transfers.last { $0.version == version && !$0.mappedSharedMemory }
        if let frame = transfer?.heldChunk(offset: r.offset, length: r.length) {
            c.status = .ok
            if try router.send(WireMessage(.chunk(c), frames: [frame]), to: peer, deadline: .now) == .sent {
                chunksServed += 1
                bytesServed += frame.count
            }
            return
        }
        // Not here yet: a chunk of a transfer under way, or of the version this actor has asked about.
        let onItsWay = transfer.map { !$0.isComplete && $0.isChunk(offset: r.offset, length: r.length) } ?? (version == expected)
        if onItsWay && waiting.count < WeightRelay.maxWaiting {
            waiting.append((peer, r))
            return
        }
        refused += 1
        c.status = .versionGone
        _ = try router.send(WireMessage(.chunk(c)), to: peer, deadline: .now)
    }

    /// The relay address an actor uses by default: on loopback when its learner is (everything on one
    /// host); otherwise every interface, advertised as the address of the interface that routes to the
    /// learner (other actors of the run reach the learner's network too), or this host's name when
    /// that cannot be told.
    package static func defaultAddress(learner: Endpoint, advertiseHost: String? = nil) throws -> ListenAddress {
        func tcp(_ host: String) -> String { host.contains(":") ? "tcp://[\(host)]:0" : "tcp://\(host):0" }
        if let host = advertiseHost { return try ListenAddress(bind: "tcp://*:0", advertise: tcp(host)) }
        if learner.isLoopback { return try ListenAddress(bind: "tcp://127.0.0.1:0") }
        guard case .tcp(let learnerHost, _, _) = learner, let local = localAddress(toward: learnerHost) else {
            return try ListenAddress(bind: "tcp://*:0", advertise: tcp(ProcessInfo.processInfo.hostName))
        }
        return try ListenAddress(bind: "tcp://*:0", advertise: tcp(local))
    }

    /// This host's address on the interface that routes to `host`: a UDP socket connected there
    /// (which sends nothing) and asked for its local address. Nil when the name does not resolve.
    static func localAddress(toward host: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, "9", &hints, &found) == 0, let info = found else { return nil }
        defer { freeaddrinfo(found) }
        let fd = Glibc.socket(info.pointee.ai_family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let ok = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                getsockname(fd, address, &length) == 0
                    && getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0
            }
        }
        guard ok else { return nil }
        let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return address.isEmpty || address == "0.0.0.0" ? nil : address
    }
}
