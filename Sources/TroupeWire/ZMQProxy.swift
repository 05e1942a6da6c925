import CZeroMQ

/// Hands sockets to another thread. libzmq allows moving a socket between threads with a full
/// memory barrier, which starting the thread provides; after the handoff only that thread uses them.
private struct SocketHandoff: @unchecked Sendable {
    let frontend: ZMQSocket
    let backend: ZMQSocket
    let control: ZMQSocket
}

/// A ZeroMQ proxy (`zmq_proxy_steerable`) running on its own thread, forwarding between a
/// frontend and a backend socket in both directions until `stop()`.
///
/// The learner's log stream is the intended use (`startPubSubForwarder`): every process's PUB
/// connects to the XSUB side, every monitor's SUB to the XPUB side, and subscriptions flow back
/// upstream. Slow subscribers lose messages at the XPUB's high-water mark rather than slowing
/// anyone (LogEvents are numbered, so subscribers count the gaps).
///
/// Owned by the thread that started it (`stop` and `deinit` use an inproc control socket).
public final class ZMQProxy {
    /// Where the frontend and backend actually bound (wildcard ports resolved).
    public let frontendEndpoint: Endpoint
    public let backendEndpoint: Endpoint

    private let control: ZMQSocket
    private let thread: JoinableThread
    private var stopped = false

    /// One side of the proxy: socket type, where to bind and options (applied before binding).
    public struct Side: Sendable {
        public var type: SocketType
        public var bind: Endpoint
        public var linger: Linger
        public var options: [SocketOption]

        public init(type: SocketType, bind: Endpoint, linger: Linger, options: [SocketOption] = []) {
            self.type = type
            self.bind = bind
            self.linger = linger
            self.options = options
        }
    }

    /// Creates and binds both sides here (so bind errors and resolved ports come back to the
    /// caller), then runs the proxy on a new thread. With `admitFrontend`, each message from the
    /// frontend is forwarded only if it says yes to the sender's ZAP user id (nil: none) and frames;
    /// without it, libzmq's own proxy forwards everything.
    public init(context: ZMQContext, frontend: Side, backend: Side, threadName: String = "zmq-proxy",
                admitFrontend: (@Sendable (_ user: String?, _ frames: [Frame]) -> Bool)? = nil) throws(ZMQError) {
        let front = try ZMQSocket(context, type: frontend.type, linger: frontend.linger)
        try front.set(frontend.options)
        let back = try ZMQSocket(context, type: backend.type, linger: backend.linger)
        try back.set(backend.options)
        frontendEndpoint = try front.bind(frontend.bind)
        backendEndpoint = try back.bind(backend.bind)

        let controlEndpoint = Endpoint.inproc(name: "troupe-proxy-control-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))")
        let proxyControl = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
        try proxyControl.bind(controlEndpoint)
        control = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
        try control.connect(controlEndpoint)

        let handoff = SocketHandoff(frontend: front, backend: back, control: proxyControl)
        thread = try JoinableThread(name: threadName) {
            if let admitFrontend {
                ZMQProxy.forwardChecked(handoff, admit: admitFrontend)
            } else {
                // Returns 0 on TERMINATE, -1 with ETERM when the context shuts down.
                _ = zmq_proxy_steerable(handoff.frontend.handle, handoff.backend.handle, nil, handoff.control.handle)
            }
            handoff.frontend.close()
            handoff.backend.close()
            handoff.control.close()
        }
    }

    /// A log-stream forwarder: publishers connect to `publishersBind` (XSUB), subscribers to
    /// `subscribersBind` (XPUB). `subscriberQueue` bounds what is buffered per slow subscriber
    /// (messages; beyond it messages are dropped for that subscriber). `publishersSecurity` and
    /// `subscribersSecurity` make the two sides CURVE servers; `admitPublisher` then re-checks each
    /// event's sender (see `init`).
    public static func startPubSubForwarder(context: ZMQContext, publishersBind: Endpoint, subscribersBind: Endpoint,
                                            subscriberQueue: Int32 = 10_000, publisherQueue: Int32 = 10_000,
                                            maxFrameBytes: Int64 = WireLimits.headerOnly.socketMaxFrameBytes,
                                            publishersSecurity: [SocketOption] = [], subscribersSecurity: [SocketOption] = [],
                                            admitPublisher: (@Sendable (_ user: String?, _ frames: [Frame]) -> Bool)? = nil) throws(ZMQError) -> ZMQProxy {
        try ZMQProxy(
            context: context,
            frontend: Side(type: .xsubscribe, bind: publishersBind, linger: .discardUnsent,
                           options: [.receiveHighWaterMark(publisherQueue), .maxMessageSize(maxFrameBytes)] + publishersSecurity),
            backend: Side(type: .xpublish, bind: subscribersBind, linger: .discardUnsent,
                          options: [.sendHighWaterMark(subscriberQueue)] + subscribersSecurity),
            threadName: "log-proxy", admitFrontend: admitPublisher)
    }

    /// The proxy loop when each frontend message is checked: frontend → backend through `admit`,
    /// backend → frontend (subscriptions) as they are, until TERMINATE or the context ends.
    private static func forwardChecked(_ sockets: SocketHandoff, admit: @Sendable (String?, [Frame]) -> Bool) {
        let poller = Poller()
        poller.register(sockets.frontend)
        poller.register(sockets.backend)
        poller.register(sockets.control)
        do {
            while true {
                let ready = try poller.poll(until: .afterMilliseconds(100))
                if ready.contains(sockets.control) { return }
                if ready.contains(sockets.frontend) {
                    while case .message(let frames) = try sockets.frontend.receive(deadline: .now, maxFrames: 64, maxBytes: 1 << 20) {
                        if admit(sockets.frontend.lastUserID, frames) { _ = try sockets.backend.send(frames) }
                    }
                }
                if ready.contains(sockets.backend) {
                    while case .message(let frames) = try sockets.backend.receive(deadline: .now, maxFrames: 4, maxBytes: 4096) {
                        _ = try sockets.frontend.send(frames)
                    }
                }
            }
        } catch {
            // ETERM: the context is shutting down; any other failure ends forwarding too (monitors see silence).
        }
    }

    /// Stops the proxy and waits for its thread, which closes the proxied sockets. Idempotent.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        // If the context was shut down the proxy has already returned; the send then fails or
        // times out, and join returns at once.
        _ = try? control.send([Frame(Array("TERMINATE".utf8))], deadline: .afterMilliseconds(1000))
        thread.join()
        control.close()
    }

    deinit {
        stop()
    }
}
