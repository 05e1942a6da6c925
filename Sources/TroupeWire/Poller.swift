import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// At least one message can be received without waiting.
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// At least one message can be sent without waiting (for a ROUTER: to some peer).
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// File descriptors only: an error condition.
    public static let error = PollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Waits on several sockets (and plain file descriptors, e.g. a signal pipe) at once, over
/// `zmq_poll`. Owned by one thread, like the sockets it holds; it keeps them alive.
///
/// ```swift
/// let poller = Poller()
/// poller.register(control, for: .readable)
/// poller.register(weights, for: .readable)
/// let ready = try poller.poll(until: .afterMilliseconds(100))
/// if ready.contains(control, .readable) { ... }
/// ```
public final class Poller {
    private enum Target {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }

    private var targets: [Target] = []
    private var events: [PollEvents] = []

    public init() {}

    /// Adds a socket, or changes the events it is polled for.
    public func register(_ socket: ZMQSocket, for events: PollEvents = .readable) {
        if let index = index(of: socket) {
            self.events[index] = events
        } else {
            targets.append(.socket(socket))
            self.events.append(events)
        }
    }

    /// Adds a file descriptor, or changes the events it is polled for.
    public func register(fileDescriptor: Int32, for events: PollEvents = .readable) {
        if let index = index(of: fileDescriptor) {
            self.events[index] = events
        } else {
            targets.append(.fileDescriptor(fileDescriptor))
            self.events.append(events)
        }
    }

    public func unregister(_ socket: ZMQSocket) {
        if let index = index(of: socket) { remove(at: index) }
    }

    public func unregister(fileDescriptor: Int32) {
        if let index = index(of: fileDescriptor) { remove(at: index) }
    }

    public var count: Int { targets.count }

    /// Waits until at least one registered item is ready or the deadline passes; a result with
    /// nothing ready means the deadline passed. Closed sockets are skipped.
    public func poll(until deadline: Deadline) throws(ZMQError) -> PollResult {
        var items: [zmq_pollitem_t] = []
        items.reserveCapacity(targets.count)
        for (target, wanted) in zip(targets, events) {
            switch target {
            case .socket(let socket):
                // A closed socket becomes fd -1, which poll(2) ignores.
                items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: socket.isClosed ? 0 : wanted.rawValue, revents: 0))
            case .fileDescriptor(let fd):
                items.append(zmq_pollitem_t(socket: nil, fd: fd, events: wanted.rawValue, revents: 0))
            }
        }
        while true {
            let rc = items.withUnsafeMutableBufferPointer { buffer in
                zmq_poll(buffer.baseAddress, Int32(buffer.count), Int(deadline.remainingMilliseconds))
            }
            if rc >= 0 { break }
            if zmq_errno() != EINTR { throw ZMQError.last("zmq_poll over \(targets.count) items") }
            if deadline.hasPassed {
                for index in items.indices { items[index].revents = 0 }
                break
            }
        }
        var sockets: [ObjectIdentifier: PollEvents] = [:]
        var descriptors: [Int32: PollEvents] = [:]
        for (target, item) in zip(targets, items) where item.revents != 0 {
            let ready = PollEvents(rawValue: item.revents)
            switch target {
            case .socket(let socket): sockets[ObjectIdentifier(socket)] = ready
            case .fileDescriptor(let fd): descriptors[fd] = ready
            }
        }
        return PollResult(sockets: sockets, descriptors: descriptors)
    }

    private func index(of socket: ZMQSocket) -> Int? {
        targets.firstIndex { if case .socket(let s) = $0 { return s === socket } else { return false } }
    }

    private func index(of fileDescriptor: Int32) -> Int? {
        targets.firstIndex { if case .fileDescriptor(let fd) = $0 { return fd == fileDescriptor } else { return false } }
    }

    private func remove(at index: Int) {
        targets.remove(at: index)
        events.remove(at: index)
    }
}

/// What `Poller.poll` found ready.
public struct PollResult {
    fileprivate let sockets: [ObjectIdentifier: PollEvents]
    fileprivate let descriptors: [Int32: PollEvents]

    /// Number of items with at least one event ready (0 = the deadline passed).
    public var readyCount: Int { sockets.count + descriptors.count }
    public var isEmpty: Bool { readyCount == 0 }

    public func events(for socket: ZMQSocket) -> PollEvents { sockets[ObjectIdentifier(socket)] ?? [] }
    public func events(forFileDescriptor fd: Int32) -> PollEvents { descriptors[fd] ?? [] }
    public func contains(_ socket: ZMQSocket, _ event: PollEvents = .readable) -> Bool { !events(for: socket).isDisjoint(with: event) }
    public func contains(fileDescriptor fd: Int32, _ event: PollEvents = .readable) -> Bool { !events(forFileDescriptor: fd).isDisjoint(with: event) }
}
