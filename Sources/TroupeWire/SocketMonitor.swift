import CZeroMQ

/// Connection events of one socket (`zmq_socket_monitor`): connects, accepts, disconnects,
/// handshake failures. For tests and diagnostics; ROUTER events carry no routing id, so the
/// application's own heartbeats remain the source of truth for which actor is alive.
///
/// Owned by one thread, like the socket it watches. Events are read with a deadline.
public final class SocketMonitor {
    public enum Kind: UInt16, Sendable, CaseIterable {
        case connected = 0x0001
        case connectDelayed = 0x0002
        case connectRetried = 0x0004
        case listening = 0x0008
        case bindFailed = 0x0010
        case accepted = 0x0020
        case acceptFailed = 0x0040
        case closed = 0x0080
        case closeFailed = 0x0100
        case disconnected = 0x0200
        case monitorStopped = 0x0400
        case handshakeFailedNoDetail = 0x0800
        case handshakeSucceeded = 0x1000
        case handshakeFailedProtocol = 0x2000
        case handshakeFailedAuth = 0x4000
    }

    public struct Event: Sendable, Hashable {
        public let kind: Kind
        /// File descriptor, errno or reconnect interval, depending on `kind`.
        public let value: UInt32
        public let endpoint: String
    }

    private let pair: ZMQSocket

    /// Starts monitoring `socket` for `kinds` (all by default).
    public init(watching socket: ZMQSocket, kinds: Set<Kind> = Set(Kind.allCases)) throws(ZMQError) {
        let handle = try socket.liveHandle("zmq_socket_monitor")
        let endpoint = Endpoint.inproc(name: "troupe-monitor-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))")
        let mask = kinds.reduce(Int32(0)) { $0 | Int32($1.rawValue) }
        if zmq_socket_monitor(handle, endpoint.description, mask) != 0 {
            throw ZMQError.last("zmq_socket_monitor(\(endpoint))")
        }
        pair = try ZMQSocket(socket.context, type: .pair, linger: .discardUnsent)
        try pair.connect(endpoint)
    }

    /// The next event, or nil if none arrives before the deadline.
    public func next(deadline: Deadline) throws(ZMQError) -> Event? {
        while true {
            guard case .message(let frames) = try pair.receive(deadline: deadline, maxFrames: 2, maxBytes: 4096) else {
                return nil
            }
            // Frame 1: uint16 event id and uint32 value, host byte order; frame 2: the endpoint.
            guard frames.count == 2, frames[0].count == 6 else { continue }
            let (id, value) = frames[0].withUnsafeBytes {
                ($0.loadUnaligned(as: UInt16.self), $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            }
            guard let kind = Kind(rawValue: id) else { continue }
            return Event(kind: kind, value: value, endpoint: String(decoding: frames[1].bytes, as: UTF8.self))
        }
    }

    /// Waits for an event of `kind`, skipping others; nil if none before the deadline.
    public func waitFor(_ kind: Kind, deadline: Deadline) throws(ZMQError) -> Event? {
        while let event = try next(deadline: deadline) {
            if event.kind == kind { return event }
        }
        return nil
    }

    public func close() {
        pair.close()
    }
}
