import CZeroMQ

/// The ZeroMQ socket patterns this project uses. What happens at the high-water mark (HWM) is the
/// property that matters most, so each case says it (zmq_socket(7), and measured with libzmq 4.3.4).
public enum SocketType: Sendable, CaseIterable, CustomStringConvertible {
    /// Round-robin to connected peers; fair-queued receive. At HWM `send` would block: with a
    /// deadline it returns `.wouldBlock`. Never discards. The actor side of control and weights.
    case dealer
    /// Addresses peers by routing id (first frame). At HWM, or for an unknown peer, silently drops
    /// unless `.routerMandatory(true)` is set, which turns those into `.wouldBlock` and
    /// `.peerUnreachable`. The learner side of control and weights.
    case router
    /// Publishes to all subscribers; at a subscriber's HWM the message is dropped for that
    /// subscriber only. `send` never blocks. Weight announcements.
    case publish
    /// Receives what matches its subscriptions (none by default: add `.subscribe([])` for all).
    /// Drops at HWM.
    case subscribe
    /// A PUB that also delivers subscription messages; the backend of a forwarding proxy.
    case xpublish
    /// A SUB that sends subscriptions as messages; the frontend of a forwarding proxy.
    case xsubscribe
    /// Exclusive one-to-one; blocks at HWM. Used for inproc control channels and monitors.
    case pair
    /// Load-balanced send; blocks at HWM. Not used for rollouts (loses silently on reconnect).
    case push
    /// Fair-queued receive from PUSH.
    case pull

    var rawValue: Int32 {
        switch self {
        case .dealer: return ZMQ_DEALER
        case .router: return ZMQ_ROUTER
        case .publish: return ZMQ_PUB
        case .subscribe: return ZMQ_SUB
        case .xpublish: return ZMQ_XPUB
        case .xsubscribe: return ZMQ_XSUB
        case .pair: return ZMQ_PAIR
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        }
    }

    public var description: String {
        switch self {
        case .dealer: return "DEALER"
        case .router: return "ROUTER"
        case .publish: return "PUB"
        case .subscribe: return "SUB"
        case .xpublish: return "XPUB"
        case .xsubscribe: return "XSUB"
        case .pair: return "PAIR"
        case .push: return "PUSH"
        case .pull: return "PULL"
        }
    }
}

/// What `close` does with messages still queued for sending. A required argument of every socket:
/// libzmq's default (wait forever) hangs process exit on an unreachable peer, and a casual 0 loses
/// the last messages of a sender that closes right after sending (both measured).
public enum Linger: Sendable, Hashable, CustomStringConvertible {
    /// Discard unsent messages at close. Right where the application resends anyway
    /// (unacknowledged groups) or the data is lossy by design.
    case discardUnsent
    /// Wait at most this many milliseconds (must be positive) for unsent messages at close.
    case upTo(milliseconds: Int32)

    var rawValue: Int32 {
        switch self {
        case .discardUnsent: return 0
        case .upTo(let milliseconds): return milliseconds
        }
    }

    public var description: String {
        switch self {
        case .discardUnsent: return "discard unsent"
        case .upTo(let milliseconds): return "up to \(milliseconds) ms"
        }
    }
}

/// A typed socket option. Apply with `ZMQSocket.set(_:)` before `bind`/`connect` (most options
/// only affect connections made afterwards).
public enum SocketOption: Sendable, Hashable, CustomStringConvertible {
    case linger(Linger)
    /// Messages (not bytes) queued per peer before the HWM action. Choose from a byte budget:
    /// budget / largest message.
    case sendHighWaterMark(Int32)
    case receiveHighWaterMark(Int32)
    /// Largest *frame* (not message) accepted, in bytes; a peer that sends a larger one is
    /// disconnected without an error at the sender. -1 = unlimited. See `WireLimits.socketMaxFrameBytes`.
    case maxMessageSize(Int64)
    /// ZMTP heartbeats: PING every `intervalMilliseconds`; drop the connection if nothing arrives
    /// within `timeoutMilliseconds` after a PING; ask the peer to time us out after
    /// `ttlMilliseconds` (rounded down to 100 ms by libzmq; 0 = not sent). The side that must
    /// notice a dead peer has to set interval and timeout itself.
    case heartbeat(intervalMilliseconds: Int32, timeoutMilliseconds: Int32, ttlMilliseconds: Int32)
    /// ROUTER: report unknown peers (`.peerUnreachable`) and full queues (`.wouldBlock`) instead
    /// of dropping silently.
    case routerMandatory(Bool)
    /// ROUTER: when a peer connects with a routing id that is already in use (an actor that
    /// reconnected before the old connection was declared dead), hand the id over to the new
    /// connection instead of refusing it.
    case routerHandover(Bool)
    /// Queue messages only on completed connections (DEALER/PUSH): nothing waits in a pipe to a
    /// peer that is still connecting.
    case immediate(Bool)
    /// Reconnect after `milliseconds`, backing off exponentially up to `maximumMilliseconds`
    /// (0 = no back-off). Back-off avoids reconnection storms when many actors see a learner restart.
    case reconnectInterval(milliseconds: Int32, maximumMilliseconds: Int32)
    /// Our identity as seen by a ROUTER peer (1–255 bytes, must not start with a zero byte).
    case routingID([UInt8])
    /// SUB/XSUB: receive messages starting with this prefix (empty = everything).
    case subscribe([UInt8])
    case unsubscribe([UInt8])
    /// TCP keepalive probes, for NATs and firewalls that drop idle connections.
    case tcpKeepalive(idleSeconds: Int32, intervalSeconds: Int32, probes: Int32)
    /// Drop a connection whose sent data stays unacknowledged this long (TCP_USER_TIMEOUT; 0 = the OS's
    /// retries, about 15 minutes): keepalive probes only an idle connection.
    case tcpMaxRetransmit(milliseconds: Int32)
    /// Close connections whose ZMTP handshake has not finished after this long (0 = never).
    case handshakeInterval(milliseconds: Int32)
    /// Give up a single TCP connect attempt after this long (0 = the OS default).
    case connectTimeout(milliseconds: Int32)
    /// Allow IPv6 addresses (and dual-stack wildcard binds).
    case ipv6(Bool)
    /// XPUB: pass every subscription upstream, also repeated ones.
    case xpubVerbose(Bool)
    /// The ZAP domain a CURVE server's clients are authenticated for (the handler's allowlist is per domain).
    case zapDomain(String)
    /// Be a CURVE server with this secret key (every connection encrypted; clients authenticated by ZAP).
    case curveServer(secretKey: CurveKey)
    /// Be a CURVE client of the server whose public key is `serverKey`, with this key pair.
    case curveClient(serverKey: CurveKey, publicKey: CurveKey, secretKey: CurveKey)

    public var description: String {
        switch self {
        case .linger(let linger): return "linger(\(linger))"
        case .sendHighWaterMark(let n): return "sendHighWaterMark(\(n))"
        case .receiveHighWaterMark(let n): return "receiveHighWaterMark(\(n))"
        case .maxMessageSize(let n): return "maxMessageSize(\(n))"
        case .heartbeat(let ivl, let timeout, let ttl): return "heartbeat(interval: \(ivl) ms, timeout: \(timeout) ms, ttl: \(ttl) ms)"
        case .routerMandatory(let on): return "routerMandatory(\(on))"
        case .immediate(let on): return "immediate(\(on))"
        case .routerHandover(let on): return "routerHandover(\(on))"
        case .reconnectInterval(let ms, let max): return "reconnectInterval(\(ms) ms, max \(max) ms)"
        case .routingID(let id): return "routingID(\(id.count) bytes)"
        case .subscribe(let prefix): return "subscribe(\(prefix.count)-byte prefix)"
        case .unsubscribe(let prefix): return "unsubscribe(\(prefix.count)-byte prefix)"
        case .tcpKeepalive(let idle, let interval, let probes): return "tcpKeepalive(idle \(idle) s, interval \(interval) s, \(probes) probes)"
        case .tcpMaxRetransmit(let ms): return "tcpMaxRetransmit(\(ms) ms)"
        case .handshakeInterval(let ms): return "handshakeInterval(\(ms) ms)"
        case .connectTimeout(let ms): return "connectTimeout(\(ms) ms)"
        case .ipv6(let on): return "ipv6(\(on))"
        case .xpubVerbose(let on): return "xpubVerbose(\(on))"
        case .zapDomain(let domain): return "zapDomain(\(domain))"
        case .curveServer: return "curveServer"
        case .curveClient(let serverKey, let publicKey, _): return "curveClient(server \(serverKey), own \(publicKey))"
        }
    }
}
