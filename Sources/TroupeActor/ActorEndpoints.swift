import Foundation
import TroupeRuntime
import TroupeWeights
import TroupeWire

/// What the actor talks through, and where it gets new connections: the control conversation (a
/// new connection at the start, after the learner went silent, and when the endpoints file names
/// another learner), the weights connections (to the learner and to another actor's relay), the
/// announcements, its log stream, the router of its own relay, and how to wait for input. Over
/// ZeroMQ (`ZeroMQActorEndpoints`) these are sockets and a poller; in memory
/// (`InMemoryActorEndpoints`) they reach the objects bound on an `InMemorySwitchboard`, and a test
/// runs each side when it chooses. The mirror of the learner's `LearnerEndpoints`.
package protocol ActorEndpoints: AnyObject {
    /// A new control connection to the learner at `learner`, with routing id `routingID`.
    func connectControl(to learner: Endpoint, routingID: String, security: ClientSecurity?) throws -> any DealerTransport
    /// The ZAP status code of a handshake the learner refused on the current control connection since the
    /// last call (its key is not on the learner's allowlist); nil when none was.
    func controlHandshakeRefusal() -> UInt32?
    /// A new weights connection (`WeightReceiver`): to the learner's weights endpoint or to another
    /// actor's relay, with these CURVE client options (empty: plaintext).
    func connectWeights(to endpoint: Endpoint, security: [SocketOption]) throws -> any DealerTransport
    /// A subscription to the learner's announcements.
    func subscribeAnnouncements(at endpoint: Endpoint, security: ClientSecurity?) throws -> any SubscribeTransport
    /// This actor's log stream into the learner's log proxy, numbering its events from `after` + 1.
    func connectLogStream(at endpoint: Endpoint, source: String, runId: UInt64, security: ClientSecurity?, after: UInt64) throws -> any LogStreamPublisher
    /// This actor's relay router bound at `listen`, with the address actors below it connect to. With
    /// `security`, only the keys given to `admitRelayPeers` get in (nobody before).
    func bindRelay(_ listen: ListenAddress, security: ClientSecurity?) throws -> (router: any RouterTransport, endpoint: Endpoint)
    /// The run's actors, allowed into the relay from now on (an authenticated run; the Welcome names them).
    func admitRelayPeers(_ peers: CurveAllowlist)
    /// Throws when the relay's authentication can no longer be enforced (its ZAP handler stopped):
    /// the actor then closes the relay and stops (fail closed). Checked at every turn.
    func checkAuthentication() throws
    /// Blocks until a connection may be readable, the file descriptor (the sampler's wake pipe) is,
    /// or the deadline passes. In memory: returns at once.
    func waitForInput(until deadline: Deadline, wake: Int32?) throws
    /// How long the actor lets its last messages (the Bye) leave before closing.
    var lingerSeconds: Double { get }
    /// Ends what remains once the actor has closed its connections.
    func close()
}

/// The relay's ZAP handler stopped, so the relay would admit anyone.
package struct RelayAuthenticationStopped: Error, CustomStringConvertible {
    package let reason: String
    package var description: String { "the relay's ZAP authentication handler stopped (\(reason))" }
}

/// The actor's ZeroMQ sockets, made in one context: control and weights DEALERs, the announcement
/// SUB, the log PUB, and the relay ROUTER with its ZAP handler in an authenticated run.
package final class ZeroMQActorEndpoints: ActorEndpoints {
    let context: ZMQContext
    /// Every socket to poll: made here, still open and still held by its owner (held weakly, so a
    /// socket its owner lets go of closes as it always did).
    private var polled: [WeakSocket] = []
    private struct WeakSocket { weak var socket: ZMQSocket? }
    /// Authenticates the actors that fetch from this actor's relay (an authenticated run only).
    private var zap: ZAPHandler?
    /// The current control connection's refused handshakes.
    private var controlMonitor: SocketMonitor?

    package init() throws {
        context = try ZMQContext(ioThreads: 1)
    }

    package func connectControl(to learner: Endpoint, routingID: String, security: ClientSecurity?) throws -> any DealerTransport {
        let s = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
        let heartbeat = SocketOption.heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)
        try s.set(SocketProfile.actorDealer(limits: .controlReplies, routingID: Array(routingID.utf8), heartbeat: heartbeat)
                  + [.sendHighWaterMark(1000), .reconnectInterval(milliseconds: 100, maximumMilliseconds: 2000)]
                  + (security?.toLearner ?? []))
        // The previous connection was closed by the caller; its monitor goes with it.
        controlMonitor?.close()
        controlMonitor = security == nil ? nil : try SocketMonitor(watching: s, kinds: [.handshakeFailedAuth])
        try s.connect(learner)
        polled.append(WeakSocket(socket: s))
        return s
    }

    package func controlHandshakeRefusal() -> UInt32? {
        var status: UInt32?
        while let monitor = controlMonitor, let event = (try? monitor.next(deadline: .now)) ?? nil { status = event.value }
        return status
    }

    package func connectWeights(to endpoint: Endpoint, security: [SocketOption]) throws -> any DealerTransport {
        let s = try WeightReceiver.dealer(context, to: endpoint, security: security)
        polled.append(WeakSocket(socket: s))
        return s
    }

    package func subscribeAnnouncements(at endpoint: Endpoint, security: ClientSecurity?) throws -> any SubscribeTransport {
        let sub = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
        try sub.set([.subscribe([]), .maxMessageSize(WireLimits.headerOnly.socketMaxFrameBytes), SocketProfile.connectTimeout,
                     SocketProfile.connectingHandshake] + (security?.toLearner ?? []))
        try sub.connect(endpoint)
        polled.append(WeakSocket(socket: sub))
        return sub
    }

    package func connectLogStream(at endpoint: Endpoint, source: String, runId: UInt64, security: ClientSecurity?, after: UInt64) throws -> any LogStreamPublisher {
        try LogPublisher(context: context, endpoint: endpoint, source: source, runId: runId, security: security?.toLearner ?? [], after: after)
    }

    package func bindRelay(_ listen: ListenAddress, security: ClientSecurity?) throws -> (router: any RouterTransport, endpoint: Endpoint) {
        // Bound before the relay binds, admitting nobody until the Welcome names the run's actors.
        let handler = try security.map { _ in try ZAPHandler(context: context, policy: ZAPDomain.policy(CurveAllowlist())) }
        do {
            let (socket, endpoint) = try WeightRelay.bindZeroMQ(context: context, listen: listen,
                                                                security: security.map { ($0.keyPair, handler!) })
            zap = handler
            polled.append(WeakSocket(socket: socket))
            return (socket, endpoint)
        } catch {
            handler?.stop()
            throw error
        }
    }

    package func admitRelayPeers(_ peers: CurveAllowlist) {
        zap?.update(ZAPDomain.policy(peers))
    }

    package func checkAuthentication() throws {
        if let zap, !zap.isServing { throw RelayAuthenticationStopped(reason: zap.failureReason ?? "no reason") }
    }

    package func waitForInput(until deadline: Deadline, wake: Int32?) throws {
        polled.removeAll { $0.socket?.isClosed ?? true }
        let poller = Poller()
        for s in polled.compactMap(\.socket) { poller.register(s) }
        if let wake { poller.register(fileDescriptor: wake) }
        _ = try poller.poll(until: deadline)
    }

    package var lingerSeconds: Double { 0.1 }

    package func close() {
        // Sockets first, the handler last: without a handler libzmq would admit anyone.
        for s in polled.compactMap(\.socket) { s.close() }
        controlMonitor?.close()
        polled.removeAll()
        context.shutdown()
        zap?.stop()
    }
}

/// An actor's endpoints in memory: every connection reaches what is bound on `switchboard` at its
/// address (a learner's `InMemoryLearnerNetwork`, another actor's relay); the log stream is kept for
/// the test to read; waiting returns at once. `security` stands for the key its name is allowlisted
/// under: the connection is `authenticatedAs` that name.
package final class InMemoryActorEndpoints: ActorEndpoints {
    package let switchboard: InMemorySwitchboard
    /// Every control connection asked for, in order (a reconnect or a followed endpoints file adds one).
    package private(set) var controlConnections: [Endpoint] = []
    /// Every weights connection asked for, in order: the learner's, then any relay's.
    package private(set) var weightsConnections: [Endpoint] = []
    /// This actor's log streams, one per Welcome.
    package private(set) var logStreams: [InMemoryLogStream] = []
    /// The relay's router, once bound.
    package private(set) var relay: (router: InMemoryRouter, endpoint: Endpoint)?

    package init(switchboard: InMemorySwitchboard) {
        self.switchboard = switchboard
    }

    /// The log stream of the current session.
    package var logs: InMemoryLogStream? { logStreams.last }

    package func connectControl(to learner: Endpoint, routingID: String, security: ClientSecurity?) throws -> any DealerTransport {
        controlConnections.append(learner)
        return switchboard.connect(to: learner, identity: routingID, authenticatedAs: security?.name)
    }

    package func controlHandshakeRefusal() -> UInt32? { nil }

    package func connectWeights(to endpoint: Endpoint, security: [SocketOption]) throws -> any DealerTransport {
        weightsConnections.append(endpoint)
        return switchboard.connect(to: endpoint, identity: "weights")
    }

    package func subscribeAnnouncements(at endpoint: Endpoint, security: ClientSecurity?) throws -> any SubscribeTransport {
        switchboard.subscribe(to: endpoint)
    }

    package func connectLogStream(at endpoint: Endpoint, source: String, runId: UInt64, security: ClientSecurity?, after: UInt64) throws -> any LogStreamPublisher {
        let stream = InMemoryLogStream(source: source, after: after)
        logStreams.append(stream)
        return stream
    }

    package func bindRelay(_ listen: ListenAddress, security: ClientSecurity?) throws -> (router: any RouterTransport, endpoint: Endpoint) {
        let bound = try switchboard.bindRouter(listen)
        relay = bound
        return bound
    }

    package func admitRelayPeers(_ peers: CurveAllowlist) {}
    package func checkAuthentication() throws {}
    package func waitForInput(until deadline: Deadline, wake: Int32?) throws {}
    package var lingerSeconds: Double { 0 }
    package func close() {}
}
