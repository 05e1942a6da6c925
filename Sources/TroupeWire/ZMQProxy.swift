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
    /// Whether the thread runs `forwardChecked`, which alone can drop the subscribers.
    private let checksFrontend: Bool
    static let terminate = "TERMINATE", dropSubscribersCommand = "DROP-SUBSCRIBERS"

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
    /// frontend is forwarded only if it says yes to the sender's ZAP user id and key (nil: none) and frames;
    /// without it, libzmq's own proxy forwards everything.
    public init(context: ZMQContext, frontend: Side, backend: Side, threadName: String = "zmq-proxy",
                admitFrontend: (@Sendable (_ user: String?, _ key: String?, _ frames: [Frame]) -> Bool)? = nil) throws(ZMQError) {
        let (front, frontBound) = try frontend.make(context)
        let back: ZMQSocket, backBound: Endpoint
        do { (back, backBound) = try backend.make(context) } catch {
            front.close()
            throw error
        }
        frontendEndpoint = frontBound
        backendEndpoint = backBound
        checksFrontend = admitFrontend != nil

        let controlEndpoint = Endpoint.inproc(name: "troupe-proxy-control-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))")
        let proxyControl = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
        try proxyControl.bind(controlEndpoint)
        control = try ZMQSocket(context, type: .pair, linger: .discardUnsent)
        try control.connect(controlEndpoint)

        let handoff = SocketHandoff(frontend: front, backend: back, control: proxyControl)
        let remakeBackend = { @Sendable (old: ZMQSocket) throws(ZMQError) -> ZMQSocket in
            try backend.remake(replacing: old, boundAt: backBound, in: context)
        }
        thread = try JoinableThread(name: threadName) {
            if let admitFrontend {
                ZMQProxy.forwardChecked(handoff, admit: admitFrontend, remakeBackend: remakeBackend)
            } else {
                // Returns 0 on TERMINATE, -1 with ETERM when the context shuts down.
                _ = zmq_proxy_steerable(handoff.frontend.handle, handoff.backend.handle, nil, handoff.control.handle)
            }
            handoff.frontend.close()
            handoff.backend.close()  // closing twice is harmless; forwardChecked closes its current one
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
                                            admitPublisher: (@Sendable (_ user: String?, _ key: String?, _ frames: [Frame]) -> Bool)? = nil) throws(ZMQError) -> ZMQProxy {
        try ZMQProxy(
            context: context,
            frontend: Side(type: .xsubscribe, bind: publishersBind, linger: .discardUnsent,
                           options: [.receiveHighWaterMark(publisherQueue), .maxMessageSize(maxFrameBytes)] + publishersSecurity),
            backend: Side(type: .xpublish, bind: subscribersBind, linger: .discardUnsent,
                          options: [.sendHighWaterMark(subscriberQueue)] + subscribersSecurity),
            threadName: "log-proxy", admitFrontend: admitPublisher)
    }

    /// The proxy loop when each frontend message is checked: frontend → backend through `admit`,
    /// backend → frontend (subscriptions) as they are, until TERMINATE or the context ends. On
    /// DROP-SUBSCRIBERS the backend is bound anew (`remakeBackend`) and the outcome answered.
    private static func forwardChecked(_ sockets: SocketHandoff, admit: @Sendable (String?, String?, [Frame]) -> Bool,
                                       remakeBackend: (ZMQSocket) throws(ZMQError) -> ZMQSocket) {
        let poller = Poller()
        var backend = sockets.backend
        poller.register(sockets.frontend)
        poller.register(backend)
        poller.register(sockets.control)
        defer { backend.close() }
        do {
            while true {
                let ready = try poller.poll(until: .afterMilliseconds(100))
                if ready.contains(sockets.control) {
                    guard case .message(let command) = try sockets.control.receive(deadline: .now, maxFrames: 1, maxBytes: 64),
                          command.first?.bytes == Array(dropSubscribersCommand.utf8) else { return }
                    poller.unregister(backend)
                    do {
                        backend = try remakeBackend(backend)
                        poller.register(backend)
                        _ = try sockets.control.send([Frame(Array("OK".utf8))])
                    } catch {
                        // The address could not be bound again: no subscriber is served from here on.
                        _ = try sockets.control.send([Frame(Array("\(error)".utf8))])
                    }
                }
                if ready.contains(sockets.frontend) {
                    while case .message(let frames) = try sockets.frontend.receive(deadline: .now, maxFrames: 64, maxBytes: 1 << 20) {
                        if admit(sockets.frontend.lastUserID, sockets.frontend.lastUserKey, frames), !backend.isClosed {
                            _ = try backend.send(frames)
                        }
                    }
                }
                if ready.contains(backend) {
                    while case .message(let frames) = try backend.receive(deadline: .now, maxFrames: 4, maxBytes: 4096) {
                        _ = try sockets.frontend.send(frames)
                    }
                }
            }
        } catch {
            // ETERM: the context is shutting down; any other failure ends forwarding too (monitors see silence).
        }
    }

    /// Closes every subscriber's connection by binding the backend anew at its address (only a proxy
    /// that checks its frontend can): a subscriber whose key was withdrawn cannot come back, the others
    /// reconnect and miss what was published meanwhile (LogEvents are numbered: they count the gap).
    /// Throws when the proxy cannot, or when the address could not be bound again.
    public func dropSubscribers() throws(ZMQError) {
        guard checksFrontend, !stopped else { throw ZMQError(code: ENOTSUP, operation: "dropping the subscribers of a proxy that does not check its frontend") }
        guard try control.send([Frame(Array(Self.dropSubscribersCommand.utf8))], deadline: .afterMilliseconds(1000)) == .sent,
              case .message(let answer) = try control.receive(deadline: .afterMilliseconds(5000), maxFrames: 1, maxBytes: 4096) else {
            throw ZMQError(code: ETIMEDOUT, operation: "dropping the log stream's subscribers (the proxy did not answer)")
        }
        let text = String(decoding: answer.first?.bytes ?? [], as: UTF8.self)
        guard text == "OK" else { throw ZMQError(code: EADDRINUSE, operation: "binding the log stream's subscriber side again: \(text)") }
    }

    /// Stops the proxy and waits for its thread, which closes the proxied sockets. Idempotent.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        // If the context was shut down the proxy has already returned; the send then fails or
        // times out, and join returns at once.
        _ = try? control.send([Frame(Array(Self.terminate.utf8))], deadline: .afterMilliseconds(1000))
        thread.join()
        control.close()
    }

    deinit {
        stop()
    }
}
