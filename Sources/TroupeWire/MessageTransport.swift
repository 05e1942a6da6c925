import Foundation

/// The learner's side of a conversation endpoint (control, weights): many peers, each message tagged
/// with its sender. `ZMQSocket` (a ROUTER) is the real one; `InMemoryRouter` carries messages
/// between objects of one process, so learner and actor logic are tested without sockets or timers.
public protocol RouterTransport: AnyObject {
    func receiveFromPeer(deadline: Deadline, limits: WireLimits) throws -> RouterReceive
    func send(_ message: WireMessage, to peer: PeerID, deadline: Deadline) throws -> SendResult
}

/// The actor's side of a conversation endpoint: one learner. `ZMQSocket` (a DEALER) or `InMemoryDealer`.
public protocol DealerTransport: AnyObject {
    func receiveMessage(deadline: Deadline, limits: WireLimits) throws -> WireReceive
    func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult
}

/// A one-way broadcast (the learner's announcements): `ZMQSocket` (a PUB) or `InMemoryPublisher`.
public protocol PublishTransport: AnyObject {
    func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult
}

extension ZMQSocket: RouterTransport, DealerTransport, PublishTransport {}

/// Queues of encoded frames between one `InMemoryRouter` and the `InMemoryDealer`s connected to it.
/// Every message is encoded on send and decoded with the receiver's limits on receive, so what a test
/// drives through it takes the same path through `WireMessage` as over ZeroMQ. Receives never wait:
/// a test decides when each side runs. Thread-safe (a learner's trainer thread may be running).
public final class InMemoryRouter: RouterTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var inbound: [(PeerID, [Frame])] = []
    private var outbound: [PeerID: [[Frame]]] = [:]
    private var connected: Set<PeerID> = []

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
            guard connected.contains(peer) else { return .peerUnreachable }
            outbound[peer, default: []].append(frames)
            return .sent
        }
    }

    fileprivate func deliver(_ frames: [Frame], from peer: PeerID) -> SendResult {
        lock.withLock {
            guard connected.contains(peer) else { return .peerUnreachable }
            inbound.append((peer, frames))
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
}

/// Keeps what is published, for tests to read.
public final class InMemoryPublisher: PublishTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [WireMessage] = []

    public init() {}

    public func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult {
        let frames = try message.encode()
        let decoded = try WireMessage.decode(frames, limits: .permissive)
        lock.withLock { messages.append(decoded) }
        return .sent
    }

    /// Everything published since the last call.
    public func takeAll() -> [WireMessage] { lock.withLock { defer { messages.removeAll() }; return messages } }
}
