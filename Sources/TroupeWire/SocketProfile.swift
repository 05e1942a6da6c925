/// Socket options for each role of docs/ARCHITECTURE.md §2, each with its measured reason. Apply
/// with `socket.set(profile)` before binding or connecting; every list can be extended or
/// overridden (later options win).
public enum SocketProfile {
    /// ZMTP heartbeats: PING every second, drop the connection after 3 s without traffic, and ask
    /// the peer to do the same (liveness 3 × 1 s). A killed peer is noticed at once (TCP reset);
    /// this catches frozen peers and silent partitions.
    public static let defaultHeartbeat = SocketOption.heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 3000,
                                                                ttlMilliseconds: 3000)

    /// Reconnect after 100 ms, backing off to 5 s, so a restarted learner is not hit by every actor at once.
    public static let defaultReconnect = SocketOption.reconnectInterval(milliseconds: 100, maximumMilliseconds: 5000)

    /// A TCP connect still unanswered after 3 s is abandoned and tried again on the reconnect back-off.
    /// Left to the kernel, a lost SYN or SYN-ACK is resent after 1, 3, 7, 15 and 31 s: under 30% loss
    /// each way an actor then failed to reach its learner within a 30 s `--connect-timeout` in 2 of 7
    /// fault-suite runs. 3 s leaves room for the kernel's first resend on slow links.
    public static let connectTimeout = SocketOption.connectTimeout(milliseconds: 3000)

    /// A connection whose ZMTP/CURVE handshake has not finished after 5 s is dropped and tried again
    /// (libzmq's default waits 30 s). After a resent SYN, Linux starts the connection with a 3 s
    /// retransmission timeout, so under 30% loss each way a handshake stalled for 25 s on one connection.
    public static let connectingHandshake = SocketOption.handshakeInterval(milliseconds: 5000)

    /// How a socket that accepts connections (the learner's ROUTERs, an actor's relay) finds dead
    /// peers: TCP keepalive on an idle connection (10 s, then 3 probes 2 s apart) and, where sent data
    /// stays unacknowledged (a vanished host), 30 s of retransmissions; never ZMTP heartbeats. libzmq
    /// 4.3.4 aborts the process when a heartbeat falls due on a connection whose input stopped and
    /// then failed (libzmq issue 4364): a client that takes over its routing id from a second
    /// connection, keeps writing on the first and closes it, triggered it at will. Liveness there is
    /// the application's heartbeats.
    public static let acceptedConnectionLiveness: [SocketOption] = [.tcpKeepalive(idleSeconds: 10, intervalSeconds: 2, probes: 3),
                                                                    .tcpMaxRetransmit(milliseconds: 30_000)]

    /// A high-water mark from a byte budget: libzmq counts messages, not bytes, so the default of
    /// 1000 can buffer 1000 × the largest message per peer (500 MiB measured for 256 KiB groups).
    public static func highWaterMark(budgetBytes: Int, largestMessageBytes: Int) -> Int32 {
        Int32(clamping: max(1, budgetBytes / max(1, largestMessageBytes)))
    }

    /// The learner's control or weights ROUTER: unknown peers and full queues are reported, not
    /// dropped; a reconnecting actor may take over its routing id; frames over the limits close
    /// the connection; half-open handshakes are cut after 5 s; dead peers are found by TCP keepalive
    /// and a retransmission limit (no ZMTP heartbeats: `acceptedConnectionLiveness`); queues are
    /// bounded by a byte budget per peer. Application credit keeps real traffic far below that budget.
    public static func learnerRouter(limits: WireLimits, queueBudgetBytes: Int = 64 << 20) -> [SocketOption] {
        let hwm = highWaterMark(budgetBytes: queueBudgetBytes, largestMessageBytes: limits.maxMessageBytes)
        return [.routerMandatory(true), .routerHandover(true), .maxMessageSize(limits.socketMaxFrameBytes),
                .handshakeInterval(milliseconds: 5000), .sendHighWaterMark(max(hwm, 16)), .receiveHighWaterMark(max(hwm, 16))]
            + acceptedConnectionLiveness
    }

    /// An actor's DEALER to the learner's control or weights ROUTER: queue only on live
    /// connections (nothing waits in a pipe to a peer that is still connecting), back off when
    /// reconnecting, abandon unanswered connects and stalled handshakes, heartbeats, frame cap.
    /// `routingID`: a stable id (e.g. identity + run id) lets the learner recognise the actor across
    /// reconnects; nil lets libzmq pick one per connection.
    public static func actorDealer(limits: WireLimits, routingID: [UInt8]? = nil,
                                   heartbeat: SocketOption = defaultHeartbeat) -> [SocketOption] {
        var options: [SocketOption] = [.immediate(true), defaultReconnect, connectTimeout, connectingHandshake, heartbeat,
                                       .maxMessageSize(limits.socketMaxFrameBytes)]
        if let routingID { options.append(.routingID(routingID)) }
        return options
    }

    /// The announce PUB: only the newest announcement matters and it repeats every second, so a
    /// small queue per subscriber is enough; `send` never blocks.
    public static func announcePublisher() -> [SocketOption] {
        [.sendHighWaterMark(16)]
    }

    /// A SUB for announcements or log events: everything subscribed, header-only frame cap,
    /// reconnect back-off, unanswered connects and stalled handshakes abandoned. Messages beyond
    /// `queue` are dropped (log events are numbered, so the gaps are counted).
    public static func subscriber(limits: WireLimits = .headerOnly, queue: Int32 = 10_000) -> [SocketOption] {
        [.subscribe([]), .maxMessageSize(limits.socketMaxFrameBytes), .receiveHighWaterMark(queue), defaultReconnect,
         connectTimeout, connectingHandshake]
    }

    /// A process's PUB into the learner's log proxy (XSUB side): bounded queue, drops rather
    /// than blocking the process that logs; unanswered connects and stalled handshakes abandoned.
    public static func logPublisher(queue: Int32 = 10_000) -> [SocketOption] {
        [.sendHighWaterMark(queue), defaultReconnect, connectTimeout, connectingHandshake]
    }
}
