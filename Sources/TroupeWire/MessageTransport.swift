import Foundation

/// The learner's side of a conversation endpoint (control, weights): many peers, each message tagged
/// with its sender. `ZMQSocket` (a ROUTER) is the real one; `InMemoryRouter` carries messages
/// between objects of one process, so learner and actor logic are tested without sockets or timers.
public protocol RouterTransport: AnyObject {
    func receiveFromPeer(deadline: Deadline, limits: WireLimits) throws -> RouterReceive
    func send(_ message: WireMessage, to peer: PeerID, deadline: Deadline) throws -> SendResult
    /// Stops the endpoint: what it had queued is dropped.
    func close()
}

/// The actor's side of a conversation endpoint: one learner. `ZMQSocket` (a DEALER) or `InMemoryDealer`.
public protocol DealerTransport: AnyObject {
    func receiveMessage(deadline: Deadline, limits: WireLimits) throws -> WireReceive
    func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult
    /// Ends the connection: what either side had queued for it is dropped.
    func close()
}

/// A one-way broadcast (the learner's announcements): `ZMQSocket` (a PUB) or `InMemoryPublisher`.
public protocol PublishTransport: AnyObject {
    func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult
}

/// The other end of a broadcast (the actor's announcements): `ZMQSocket` (a SUB) or `InMemorySubscriber`.
/// It hears what is published after it subscribed, nothing before.
public protocol SubscribeTransport: AnyObject {
    func receiveMessage(deadline: Deadline, limits: WireLimits) throws -> WireReceive
    func close()
}

extension ZMQSocket: RouterTransport, DealerTransport, PublishTransport, SubscribeTransport {}

/// Queues of encoded frames between one `InMemoryRouter` and the `InMemoryDealer`s connected to it.
/// Every message is encoded on send and decoded with the receiver's limits on receive, so what a test
/// drives through it takes the same path through `WireMessage` as over ZeroMQ. Receives never wait:
/// a test decides when each side runs. Thread-safe (a learner's trainer thread may be running).
public final class InMemoryRouter: RouterTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var inbound: [(PeerID, [Frame])] = []
    private var outbound: [PeerID: [[Frame]]] = [:]
    private var connected: Set<PeerID> = []
    private var closed = false

    public init() {}

    /// A new peer with routing id `identity` (unique per connection, as ZeroMQ's are). `authenticatedAs`
    /// plays a CURVE connection whose key the ZAP handler admitted under that user id.
    public func connect(identity: String, authenticatedAs user: String? = nil) -> InMemoryDealer {
        let peer = PeerID(Array(identity.utf8), authenticatedUser: user)
        lock.withLock {
            connected.insert(peer)
            outbound[peer] = []
        }
        return InMemoryDealer(router: self, peer: peer)
    }

    /// Messages waiting for the router to read.
    public var pendingInbound: Int { lock.withLock { inbound.count } }

    /// The router's process is gone: what was queued either way is lost, and what its peers send from
    /// now on goes nowhere (as a ZeroMQ DEALER's queue toward an endpoint nobody serves).
    public func close() {
        lock.withLock {
            closed = true
            inbound.removeAll()
            for peer in outbound.keys { outbound[peer] = [] }
        }
    }

    public var isClosed: Bool { lock.withLock { closed } }

    public func receiveFromPeer(deadline: Deadline, limits: WireLimits) throws -> RouterReceive {
        guard let (peer, frames) = lock.withLock({ inbound.isEmpty ? nil : inbound.removeFirst() }) else { return .timedOut }
        do {
            return .message(from: peer, try WireMessage.decode(frames, limits: limits))
        } catch {
            return .rejected(from: peer, error)
        }
    }

    public func send(_ message: WireMessage, to peer: PeerID, deadline: Deadline) throws -> SendResult {
        let frames = try message.encode()
        return lock.withLock {
            guard connected.contains(peer), !closed else { return .peerUnreachable }
            outbound[peer, default: []].append(frames)
            return .sent
        }
    }

    fileprivate func deliver(_ frames: [Frame], from peer: PeerID) -> SendResult {
        lock.withLock {
            guard connected.contains(peer) else { return .peerUnreachable }
            if !closed { inbound.append((peer, frames)) }
            return .sent
        }
    }

    fileprivate func take(for peer: PeerID) -> [Frame]? {
        lock.withLock {
            guard var queue = outbound[peer], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            outbound[peer] = queue
            return first
        }
    }

    fileprivate func disconnect(_ peer: PeerID) {
        lock.withLock {
            connected.remove(peer)
            outbound.removeValue(forKey: peer)
            inbound.removeAll { $0.0 == peer }
        }
    }
}

/// One peer of an `InMemoryRouter`.
public final class InMemoryDealer: DealerTransport, @unchecked Sendable {
    private let router: InMemoryRouter
    public let peer: PeerID

    fileprivate init(router: InMemoryRouter, peer: PeerID) {
        self.router = router
        self.peer = peer
    }

    public func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult {
        router.deliver(try message.encode(), from: peer)
    }

    /// Frames as they would arrive off the wire, for tests of what the receiver refuses.
    public func send(frames: [Frame]) -> SendResult { router.deliver(frames, from: peer) }

    public func receiveMessage(deadline: Deadline, limits: WireLimits) throws -> WireReceive {
        guard let frames = router.take(for: peer) else { return .timedOut }
        do {
            return .message(try WireMessage.decode(frames, limits: limits))
        } catch {
            return .rejected(error)
        }
    }

    /// Every message waiting for this peer, decoded with `limits`.
    public func receiveAll(limits: WireLimits = .permissive) throws -> [WireMessage] {
        var out: [WireMessage] = []
        while case .message(let m) = try receiveMessage(deadline: .now, limits: limits) { out.append(m) }
        return out
    }

    /// The connection drops: the router's sends to this peer are unreachable from now on, and what
    /// either side had queued is lost (as when a process dies).
    public func disconnect() { router.disconnect(peer) }

    /// This side closes the connection (as `disconnect`).
    public func close() { disconnect() }
}

/// Keeps what is published, for tests to read, and hands a copy to each `InMemorySubscriber`.
public final class InMemoryPublisher: PublishTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [WireMessage] = []
    private var subscribers: [ObjectIdentifier: InMemorySubscriber] = [:]

    public init() {}

    public func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult {
        let frames = try message.encode()
        let decoded = try WireMessage.decode(frames, limits: .permissive)
        let listening = lock.withLock {
            messages.append(decoded)
            return Array(subscribers.values)
        }
        for subscriber in listening { subscriber.enqueue(frames) }
        return .sent
    }

    /// Everything published since the last call.
    public func takeAll() -> [WireMessage] { lock.withLock { defer { messages.removeAll() }; return messages } }

    /// A subscriber to everything published from now on.
    public func subscribe() -> InMemorySubscriber {
        let subscriber = InMemorySubscriber(publisher: self)
        lock.withLock { subscribers[ObjectIdentifier(subscriber)] = subscriber }
        return subscriber
    }

    fileprivate func unsubscribe(_ subscriber: InMemorySubscriber) {
        _ = lock.withLock { subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }
}

/// One subscriber of an `InMemoryPublisher`: the frames as published, decoded with the receiver's limits.
public final class InMemorySubscriber: SubscribeTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [[Frame]] = []
    private weak var publisher: InMemoryPublisher?

    fileprivate init(publisher: InMemoryPublisher) { self.publisher = publisher }

    fileprivate func enqueue(_ frames: [Frame]) { lock.withLock { queue.append(frames) } }

    public func receiveMessage(deadline: Deadline, limits: WireLimits) throws -> WireReceive {
        guard let frames = lock.withLock({ queue.isEmpty ? nil : queue.removeFirst() }) else { return .timedOut }
        do {
            return .message(try WireMessage.decode(frames, limits: limits))
        } catch {
            return .rejected(error)
        }
    }

    public func close() {
        publisher?.unsubscribe(self)
        lock.withLock { queue.removeAll() }
    }
}
