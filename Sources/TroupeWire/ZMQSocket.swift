import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Outcome of a send that did not fail.
public enum SendResult: Sendable, Hashable {
    /// Queued in full (all frames; ZeroMQ delivers a multipart message whole or not at all).
    case sent
    /// The queue stayed full (high-water mark) until the deadline; nothing was queued.
    case wouldBlock
    /// ROUTER with `.routerMandatory(true)`: no connected peer has that routing id (it disconnected
    /// or never existed); nothing was queued.
    case peerUnreachable
}

/// Outcome of a receive that did not fail.
public enum ReceiveResult: Sendable {
    /// All frames of one message.
    case message([Frame])
    /// Nothing arrived before the deadline.
    case timedOut
    /// The message had more frames or bytes than the caps given to `receive`. Its frames were read
    /// and dropped as they came, never accumulated. `firstFrame` is kept when it is at most 255
    /// bytes, so a ROUTER still knows which peer sent it.
    case overLimit(frameCount: Int, byteCount: Int, firstFrame: Frame?)
}

/// A ZeroMQ socket with a single owner.
///
/// libzmq sockets are not thread-safe: create, use and close each socket on one thread (or hand it
/// over whole, with a memory barrier such as a thread start, as `ZMQProxy` does). The class is
/// deliberately not `Sendable`. It closes itself in `deinit`; `close()` does it earlier.
///
/// Every wait takes a `Deadline`. Timeouts, full queues and vanished ROUTER peers are values; only
/// real failures (bad endpoint, terminated context, closed socket) throw `ZMQError`.
public final class ZMQSocket {
    public let type: SocketType
    public let context: ZMQContext
    private(set) var handle: UnsafeMutableRawPointer?
    // Reused message structs, heap-allocated because libzmq keeps small payloads inside
    // zmq_msg_t and needs its address to stay put across calls.
    private let message: UnsafeMutablePointer<zmq_msg_t>
    private let outgoing: UnsafeMutablePointer<zmq_msg_t>
    /// The ZAP user id of the connection the last received message came from (nil when it had none:
    /// a plaintext socket, or a CURVE server whose ZAP handler was absent, the libzmq fail-open case).
    public private(set) var lastUserID: String?
    /// The public key (Z85) the same connection proved at its handshake, as `ZAPHandler` reports it
    /// (its `keyProperty`); nil without one.
    public private(set) var lastUserKey: String?
    /// On a CURVE server: which user ids, with the key each proved, may be heard. When set,
    /// `receiveMessage` and `receiveFromPeer` refuse (`.unauthenticated`) every message whose user id
    /// is missing or not admitted, so a ZAP handler that is not answering never lets a message through.
    public var admitsUser: (@Sendable (_ user: String, _ key: String?) -> Bool)?

    /// - Parameter linger: what `close` does with unsent messages. Required, see `Linger`.
    public init(_ context: ZMQContext, type: SocketType, linger: Linger) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket(\(type))")
        }
        self.type = type
        self.context = context
        self.handle = handle
        self.message = .allocate(capacity: 1)
        self.outgoing = .allocate(capacity: 1)
        zmq_msg_init(message)
        zmq_msg_init(outgoing)
        do {
            try set(.linger(linger))
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
        zmq_msg_close(message)
        zmq_msg_close(outgoing)
        message.deallocate()
        outgoing.deallocate()
    }

    /// Closes the socket (idempotent). Unsent messages follow the socket's linger.
    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    public var isClosed: Bool { handle == nil }

    func liveHandle(_ operation: @autoclosure () -> String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(code: ENOTSOCK, operation: "\(operation()) on a closed \(type) socket") }
        return handle
    }

    // MARK: - Options

    public func set(_ option: SocketOption) throws(ZMQError) {
        switch option {
        case .linger(let linger):
            if case .upTo(let milliseconds) = linger, milliseconds <= 0 {
                throw ZMQError(code: EINVAL, operation: "linger .upTo(milliseconds: \(milliseconds)): must be positive; use .discardUnsent to drop unsent messages")
            }
            try setInt32(ZMQ_LINGER, linger.rawValue, option)
        case .sendHighWaterMark(let n): try setInt32(ZMQ_SNDHWM, n, option)
        case .receiveHighWaterMark(let n): try setInt32(ZMQ_RCVHWM, n, option)
        case .maxMessageSize(let n): try setValue(ZMQ_MAXMSGSIZE, n, option)
        case .heartbeat(let interval, let timeout, let ttl):
            try setInt32(ZMQ_HEARTBEAT_IVL, interval, option)
            try setInt32(ZMQ_HEARTBEAT_TIMEOUT, timeout, option)
            try setInt32(ZMQ_HEARTBEAT_TTL, ttl, option)
        case .routerMandatory(let on): try setInt32(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, option)
        case .immediate(let on): try setInt32(ZMQ_IMMEDIATE, on ? 1 : 0, option)
        case .routerHandover(let on): try setInt32(ZMQ_ROUTER_HANDOVER, on ? 1 : 0, option)
        case .reconnectInterval(let milliseconds, let maximum):
            try setInt32(ZMQ_RECONNECT_IVL, milliseconds, option)
            try setInt32(ZMQ_RECONNECT_IVL_MAX, maximum, option)
        case .routingID(let id): try setBytes(ZMQ_ROUTING_ID, id, option)
        case .subscribe(let prefix): try setBytes(ZMQ_SUBSCRIBE, prefix, option)
        case .unsubscribe(let prefix): try setBytes(ZMQ_UNSUBSCRIBE, prefix, option)
        case .tcpKeepalive(let idle, let interval, let probes):
            try setInt32(ZMQ_TCP_KEEPALIVE, 1, option)
            try setInt32(ZMQ_TCP_KEEPALIVE_IDLE, idle, option)
            try setInt32(ZMQ_TCP_KEEPALIVE_INTVL, interval, option)
            try setInt32(ZMQ_TCP_KEEPALIVE_CNT, probes, option)
        case .tcpMaxRetransmit(let milliseconds): try setInt32(ZMQ_TCP_MAXRT, milliseconds, option)
        case .handshakeInterval(let milliseconds): try setInt32(ZMQ_HANDSHAKE_IVL, milliseconds, option)
        case .connectTimeout(let milliseconds): try setInt32(ZMQ_CONNECT_TIMEOUT, milliseconds, option)
        case .ipv6(let on): try setInt32(ZMQ_IPV6, on ? 1 : 0, option)
        case .xpubVerbose(let on): try setInt32(ZMQ_XPUB_VERBOSE, on ? 1 : 0, option)
        case .zapDomain(let domain): try setBytes(ZMQ_ZAP_DOMAIN, Array(domain.utf8), option)
        case .curveServer(let secretKey):
            try setInt32(ZMQ_CURVE_SERVER, 1, option)
            try setBytes(ZMQ_CURVE_SECRETKEY, Array(secretKey.z85.utf8) + [0], option)
        case .curveClient(let serverKey, let publicKey, let secretKey):
            try setBytes(ZMQ_CURVE_SERVERKEY, Array(serverKey.z85.utf8) + [0], option)
            try setBytes(ZMQ_CURVE_PUBLICKEY, Array(publicKey.z85.utf8) + [0], option)
            try setBytes(ZMQ_CURVE_SECRETKEY, Array(secretKey.z85.utf8) + [0], option)
        }
    }

    public func set(_ options: [SocketOption]) throws(ZMQError) {
        for option in options { try set(option) }
    }

    private func setInt32(_ name: Int32, _ value: Int32, _ option: SocketOption) throws(ZMQError) {
        try setValue(name, value, option)
    }

    private func setValue<T: BitwiseCopyable>(_ name: Int32, _ value: T, _ option: SocketOption) throws(ZMQError) {
        let handle = try liveHandle("zmq_setsockopt(\(option))")
        var value = value
        if zmq_setsockopt(handle, name, &value, MemoryLayout<T>.size) != 0 {
            throw ZMQError.last("zmq_setsockopt(\(option)) on \(type)")
        }
    }

    private func setBytes(_ name: Int32, _ bytes: [UInt8], _ option: SocketOption) throws(ZMQError) {
        let handle = try liveHandle("zmq_setsockopt(\(option))")
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, name, $0.baseAddress, $0.count) }
        if rc != 0 { throw ZMQError.last("zmq_setsockopt(\(option)) on \(type)") }
    }

    func getInt32(_ name: Int32, _ label: String) throws(ZMQError) -> Int32 {
        let handle = try liveHandle("zmq_getsockopt(\(label))")
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(handle, name, &value, &size) != 0 { throw ZMQError.last("zmq_getsockopt(\(label))") }
        return value
    }

    /// The linger currently set, in milliseconds (0 = discard, -1 = forever, which this API never sets).
    public func lingerMilliseconds() throws(ZMQError) -> Int32 {
        try getInt32(ZMQ_LINGER, "ZMQ_LINGER")
    }

    /// The endpoint of the last `bind` or `connect`, with a wildcard port resolved
    /// (`tcp://127.0.0.1:0` binds to, e.g., `tcp://127.0.0.1:41234`). Nil before any bind/connect.
    public func lastEndpoint() throws(ZMQError) -> String? {
        let handle = try liveHandle("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        if zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) != 0 {
            throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        }
        let text = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? nil : text
    }

    // MARK: - Bind and connect

    /// Binds and returns the endpoint actually bound (port 0 resolved). Use
    /// `ListenAddress.advertised(boundTo:)` to derive the address to give peers.
    @discardableResult
    public func bind(_ endpoint: Endpoint) throws(ZMQError) -> Endpoint {
        let handle = try liveHandle("zmq_bind(\(endpoint))")
        if zmq_bind(handle, endpoint.description) != 0 { throw ZMQError.last("zmq_bind(\(endpoint)) on \(type)") }
        guard let last = try lastEndpoint(), let bound = try? Endpoint(parsing: last) else { return endpoint }
        return bound
    }

    public func unbind(_ endpoint: Endpoint) throws(ZMQError) {
        let handle = try liveHandle("zmq_unbind(\(endpoint))")
        if zmq_unbind(handle, endpoint.description) != 0 { throw ZMQError.last("zmq_unbind(\(endpoint)) on \(type)") }
    }

    /// Starts connecting in the background; returns at once. Messages queue until the connection
    /// is up (or, with `.immediate(true)`, are refused with `.wouldBlock` until then).
    public func connect(_ endpoint: Endpoint) throws(ZMQError) {
        let handle = try liveHandle("zmq_connect(\(endpoint))")
        if zmq_connect(handle, endpoint.description) != 0 { throw ZMQError.last("zmq_connect(\(endpoint)) on \(type)") }
    }

    public func disconnect(_ endpoint: Endpoint) throws(ZMQError) {
        let handle = try liveHandle("zmq_disconnect(\(endpoint))")
        if zmq_disconnect(handle, endpoint.description) != 0 { throw ZMQError.last("zmq_disconnect(\(endpoint)) on \(type)") }
    }

    // MARK: - Waiting

    /// Waits until the socket is readable or writable (`events`), or the deadline passes.
    /// Returns the events that are ready (empty on timeout).
    public func wait(for events: PollEvents, until deadline: Deadline) throws(ZMQError) -> PollEvents {
        let handle = try liveHandle("zmq_poll")
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(events.rawValue), revents: 0)
        while true {
            let rc = zmq_poll(&item, 1, Int(deadline.remainingMilliseconds))
            if rc >= 0 { return PollEvents(rawValue: Int16(item.revents)).intersection(events) }
            if zmq_errno() != EINTR { throw ZMQError.last("zmq_poll on \(type)") }
            if deadline.hasPassed { return [] }
        }
    }

    // MARK: - Send

    /// Sends one multipart message. Zero-copy frames (`Frame(sharing:)`) are handed to libzmq
    /// without copying; the others are copied once into libzmq.
    ///
    /// Waits for queue space until `deadline` (the default `.now` never waits). Returns
    /// `.wouldBlock` if the queue stayed full, `.peerUnreachable` for a ROUTER whose first frame
    /// names no connected peer (with `.routerMandatory(true)`).
    public func send(_ frames: [Frame], deadline: Deadline = .now) throws(ZMQError) -> SendResult {
        let handle = try liveHandle("send")
        guard !frames.isEmpty else { throw ZMQError(code: EINVAL, operation: "send of a message with no frames on \(type)") }
        // The first frame decides: once libzmq accepts it, the remaining frames of the message
        // are accepted too (multipart messages are atomic), so only the first one waits.
        var backoff = false
        while true {
            let outcome = try sendFrame(frames[0], more: frames.count > 1, handle: handle)
            if outcome == 0 { break }
            if outcome == EHOSTUNREACH { return .peerUnreachable }
            // EAGAIN: queue full (or, for DEALER/PUSH with .immediate, no completed connection).
            if deadline.hasPassed { return .wouldBlock }
            if backoff {
                // zmq_poll reported writable but the send still failed (ROUTER reports POLLOUT
                // for the socket, not for one peer): sleep a little instead of spinning.
                var pause = timespec(tv_sec: 0, tv_nsec: 1_000_000)
                nanosleep(&pause, nil)
            }
            backoff = try !wait(for: .writable, until: deadline).isEmpty
        }
        for index in frames.indices.dropFirst() {
            let outcome = try sendFrame(frames[index], more: index < frames.count - 1, handle: handle)
            if outcome != 0 {
                throw ZMQError(code: outcome, operation: "zmq_msg_send of frame \(index) of \(frames.count) on \(type) (after the first frame was accepted)")
            }
        }
        return .sent
    }

    /// Sends one frame without waiting. Returns 0, EAGAIN or EHOSTUNREACH; throws otherwise.
    private func sendFrame(_ frame: Frame, more: Bool, handle: UnsafeMutableRawPointer) throws(ZMQError) -> Int32 {
        let message = outgoing
        switch frame.storage {
        case .array(let bytes):
            if zmq_msg_init_size(message, bytes.count) != 0 { throw ZMQError.last("zmq_msg_init_size(\(bytes.count))") }
            if !bytes.isEmpty {
                bytes.withUnsafeBytes { zmq_msg_data(message).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        case .shared(let buffer, let range):
            // libzmq calls releaseSharedBuffer from its I/O thread when it is done with the bytes
            // (or from zmq_msg_close below if the send fails); the retained reference keeps the
            // buffer alive until then.
            let hint = Unmanaged.passRetained(buffer).toOpaque()
            if zmq_msg_init_data(message, buffer.base + range.lowerBound, range.count, releaseSharedBuffer, hint) != 0 {
                Unmanaged<SharedBuffer>.fromOpaque(hint).release()
                throw ZMQError.last("zmq_msg_init_data(\(range.count))")
            }
        }
        let flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)
        while true {
            if zmq_msg_send(message, handle, flags) >= 0 { return 0 }  // libzmq now owns the payload
            let code = zmq_errno()
            if code == EINTR { continue }
            zmq_msg_close(message)  // releases a zero-copy buffer's reference
            zmq_msg_init(message)   // keep the struct valid for the next send and for deinit
            if code == EAGAIN || code == EHOSTUNREACH { return code }
            throw ZMQError(code: code, operation: "zmq_msg_send(\(frame.count) bytes) on \(type)")
        }
    }

    // MARK: - Receive

    /// Receives one multipart message, waiting until `deadline` (`.now` = only if one is queued).
    ///
    /// `maxFrames`/`maxBytes` bound what is kept in memory: a message over either cap is read to its
    /// end and dropped, and reported as `.overLimit`. (`.maxMessageSize` on the socket bounds each
    /// frame before it is even buffered; these caps bound the message.)
    public func receive(deadline: Deadline, maxFrames: Int = .max, maxBytes: Int = .max) throws(ZMQError) -> ReceiveResult {
        let handle = try liveHandle("receive")
        guard try receivePart(handle: handle, deadline: deadline) else { return .timedOut }
        var frames: [Frame] = []
        var firstFrame: Frame?
        var frameCount = 0
        var byteCount = 0
        var overLimit = false
        while true {
            let size = zmq_msg_size(message)
            frameCount += 1
            byteCount += size
            // A ROUTER's routing-id frame is its own and carries no metadata: the peer's frames do.
            if frameCount == 1 { lastUserID = nil; lastUserKey = nil }
            if lastUserID == nil {
                lastUserID = zmq_msg_gets(message, "User-Id").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
                lastUserKey = zmq_msg_gets(message, ZAPHandler.keyProperty).map { String(cString: $0) }
            }
            if frameCount == 1 && size <= 255 {
                firstFrame = Frame([UInt8](UnsafeRawBufferPointer(start: zmq_msg_data(message), count: size)))
            }
            if frameCount > maxFrames || byteCount > maxBytes {
                overLimit = true
                frames.removeAll()
            }
            if !overLimit {
                if frameCount == 1, let firstFrame {
                    frames.append(firstFrame)
                } else {
                    frames.append(Frame([UInt8](UnsafeRawBufferPointer(start: zmq_msg_data(message), count: size))))
                }
            }
            guard zmq_msg_more(message) != 0 else { break }
            // The rest of a multipart message is already here: messages arrive whole.
            guard try receivePart(handle: handle, deadline: .now) else {
                throw ZMQError(code: EPROTO, operation: "zmq_msg_recv: multipart message ended early on \(type)")
            }
        }
        // Release the last frame's payload now rather than at the next receive.
        zmq_msg_close(message)
        zmq_msg_init(message)
        return overLimit ? .overLimit(frameCount: frameCount, byteCount: byteCount, firstFrame: firstFrame) : .message(frames)
    }

    /// Receives one frame into `message`; false if none arrived by the deadline.
    private func receivePart(handle: UnsafeMutableRawPointer, deadline: Deadline) throws(ZMQError) -> Bool {
        while true {
            if zmq_msg_recv(message, handle, ZMQ_DONTWAIT) >= 0 { return true }
            let code = zmq_errno()
            if code == EINTR { continue }
            guard code == EAGAIN else { throw ZMQError(code: code, operation: "zmq_msg_recv on \(type)") }
            if deadline.hasPassed { return false }
            _ = try wait(for: .readable, until: deadline)
        }
    }
}

@available(*, unavailable, message: "ZMQSocket belongs to one thread; create sockets where they are used")
extension ZMQSocket: Sendable {}

/// libzmq's free function for zero-copy frames: drops the reference taken at send time.
private func releaseSharedBuffer(_ data: UnsafeMutableRawPointer?, _ hint: UnsafeMutableRawPointer?) {
    guard let hint else { return }
    Unmanaged<SharedBuffer>.fromOpaque(hint).release()
}
