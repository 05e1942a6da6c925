import TroupeProto
import TroupeWire

/// An actor's relay (protocol 2.1, `RelayPlan`): a ROUTER that serves the chunks of the transfers
/// this actor holds, finished or under way, to the actors the learner placed below it, with the
/// learner's own ChunkRequest/Chunk messages. A request for a chunk that has not arrived yet waits
/// for it, so a chain forwards each chunk as soon as it lands; a request for a version this actor
/// neither holds nor has asked for, or one that is not a chunk of it, gets VERSION_GONE and the
/// asker goes to the learner. Chunks are zero-copy views of the transfer's buffer, never copied here.
public final class WeightRelay {
    public let socket: ZMQSocket
    /// What actors below this one connect to.
    public let endpoint: Endpoint
    /// The newest transfers offered, newest last (an actor below may still be on the previous one).
    private var transfers: [WeightFetch] = []
    private var waiting: [(peer: PeerID, request: Troupe_V1_ChunkRequest)] = []
    private var expected: PolicyVersion?
    public private(set) var chunksServed = 0
    public private(set) var bytesServed = 0
    /// Requests refused (version not held, not a chunk, malformed message).
    public private(set) var refused = 0
    /// Requests that wait for a chunk still on its way; bounded so a misbehaving peer cannot grow it.
    static let maxWaiting = 4096

    public init(context: ZMQContext, listen: ListenAddress) throws {
        socket = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        try socket.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                        .sendHighWaterMark(1000), .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
        let bound = try socket.bind(listen.bind)
        endpoint = try listen.advertised(boundTo: bound)
    }

    /// Says that this actor has asked the learner where to fetch `version` from: the learner may place
    /// actors below this one before its own answer is here, so their requests for that version wait
    /// instead of being refused.
    public func expect(_ version: PolicyVersion) { expected = version }

    /// This actor gave up on `version` (its transfer failed): requests for it are refused from now on.
    public func withdraw(_ version: PolicyVersion) {
        if expected == version { expected = nil }
        transfers.removeAll { $0.version == version && !$0.isComplete }
        try? serveWaiting()
    }

    /// Serves `fetch` from now on (its chunks as they arrive). The transfer before it stays served
    /// while this one is under way (actors below may still be finishing it, and this actor's model
    /// uses its buffer anyway) and goes once this one completes: see `completed`.
    public func offer(_ fetch: WeightFetch) {
        transfers.removeAll { $0 === fetch || $0.version == fetch.version }
        transfers.append(fetch)
        if transfers.count > 2 { transfers.removeFirst(transfers.count - 2) }
        // Waiting requests for a version no longer held are answered now rather than left to time out.
        try? serveWaiting()
    }

    /// `fetch` holds verified weights, which become this actor's model: older transfers are dropped,
    /// so the relay never keeps a second copy of the model alive.
    public func completed(_ fetch: WeightFetch) {
        transfers.removeAll { $0 !== fetch }
        try? serveWaiting()
    }

    /// Answers what is queued on the socket (call when the poller says it is readable).
    public func drain() throws {
        for _ in 0..<256 {
            switch try socket.receiveFromPeer(deadline: .now, limits: .control) {
            case .timedOut: return
            case .rejected: refused += 1
            case .message(let peer, let message):
                guard case .chunkRequest(let r) = message.body else { refused += 1; continue }
                try answer(r, to: peer)
            }
        }
    }

    /// Sends what waiting requests can now have (call after a chunk arrived).
    public func serveWaiting() throws {
        guard !waiting.isEmpty else { return }
        let pending = waiting
        waiting.removeAll(keepingCapacity: true)
        for (peer, r) in pending { try answer(r, to: peer) }
    }

    public func close() { socket.close() }

    private func answer(_ r: Troupe_V1_ChunkRequest, to peer: PeerID) throws {
        let version = PolicyVersion(r.version)
        var c = Troupe_V1_Chunk()
        c.version = r.version
        c.offset = r.offset
        let transfer = transfers.last { $0.version == version && !$0.mappedSharedMemory }
        if let frame = transfer?.heldChunk(offset: r.offset, length: r.length) {
            c.status = .ok
            if try socket.send(WireMessage(.chunk(c), frames: [frame]), to: peer) == .sent {
                chunksServed += 1
                bytesServed += frame.count
            }
            return
        }
        // Not here yet: a chunk of a transfer under way, or of the version this actor has asked about.
        let onItsWay = transfer.map { !$0.isComplete && $0.isChunk(offset: r.offset, length: r.length) } ?? (version == expected)
        if onItsWay && waiting.count < WeightRelay.maxWaiting {
            waiting.append((peer, r))
            return
        }
        refused += 1
        c.status = .versionGone
        _ = try socket.send(WireMessage(.chunk(c)), to: peer)
    }
}
