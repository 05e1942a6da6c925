import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeWire

/// The actor's side of one weight transfer after another (docs/ARCHITECTURE.md §4, step 5), over the
/// weights connections `connect` makes (ZeroMQ DEALERs, or in-memory ones in tests):
/// manifest from the learner; the learner's shared-memory file when this host has it; otherwise the
/// learner names an upstream (`RelayPlan`: another actor's relay, or itself) and the chunks come from
/// there with a window of requests. An upstream that refuses or stalls for `stallSeconds` is left:
/// the learner is asked for every chunk still missing. Each chunk that lands is offered to this
/// actor's own relay at once, so the actors below it are served while it is still fetching.
/// Every tensor is verified against the learner's manifest whatever the chunks' source.
package final class WeightReceiver {
    package enum Event {
        /// Verified weights; `via` is "shared_memory", "chunks" (from the learner) or "relay"
        /// (from another actor, every chunk).
        case applied(WeightFetch, via: String)
        /// The upstream relay stopped serving this transfer; the learner serves the rest.
        case fellBack(upstream: String, reason: String)
        /// The transfer failed; `inProgress` is false again and a new `start` begins over.
        case failed(String)
        /// The learner offered its shared memory and this actor could not use it (said once).
        case sharedMemoryUnused(String)
    }

    package struct Options: Sendable {
        /// Silence from a relay upstream, with requests outstanding, before the learner takes over.
        package var stallSeconds = 3.0
        /// How long to wait for the learner to name an upstream (an older learner never does).
        package var sourceWaitSeconds = 2.0
        /// Silence from the learner, with a request outstanding, before the transfer starts over.
        package var learnerSilenceSeconds = 20.0
        package var window = 8
        package init() {}
    }

    private enum Phase { case idle, manifest, source, chunks }

    /// A weights connection to an endpoint (the learner's, or another actor's relay) with these CURVE options.
    package typealias Connect = (_ endpoint: Endpoint, _ security: [SocketOption]) throws -> any DealerTransport

    package let learner: any DealerTransport
    let connect: Connect
    let layout: ParameterLayout
    let relay: WeightRelay?
    let identity: String
    let runId: UInt64
    let options: Options
    /// This actor's keys in an authenticated run: the learner's key is pinned, and each relay's is
    /// the one the learner names with it.
    let security: ClientSecurity?
    private var phase = Phase.idle
    /// When this transfer last moved on (a request sent, a chunk received): every deadline counts from it.
    private var lastProgress = 0.0
    package private(set) var fetch: WeightFetch?
    /// The relay chunks come from now (nil: the learner).
    private var upstream: (endpoint: String, socket: any DealerTransport)?
    /// Every chunk so far came from a relay (none from the learner).
    private var allFromRelay = false
    private var warnedAboutSharedMemory = false
    /// Hops from the learner of the current transfer (1: served by the learner).
    package private(set) var depth = 1

    package init(learnerWeights: Endpoint, connect: @escaping Connect, layout: ParameterLayout, relay: WeightRelay?,
                 identity: String, runId: UInt64, options: Options = Options(), security: ClientSecurity? = nil) throws {
        self.connect = connect
        self.layout = layout
        self.relay = relay
        self.identity = identity
        self.runId = runId
        self.options = options
        self.security = security
        learner = try connect(learnerWeights, security?.toLearner ?? [])
    }

    /// Over ZeroMQ: each connection a DEALER of `context` (`dealer`).
    package convenience init(context: ZMQContext, learnerWeights: Endpoint, layout: ParameterLayout, relay: WeightRelay?,
                             identity: String, runId: UInt64, options: Options = Options(), security: ClientSecurity? = nil) throws {
        try self.init(learnerWeights: learnerWeights, connect: { try WeightReceiver.dealer(context, to: $0, security: $1) }, layout: layout,
                      relay: relay, identity: identity, runId: runId, options: options, security: security)
    }

    /// The weights DEALER: frames up to the weights limit, queued while not yet connected, unanswered
    /// connects and stalled handshakes abandoned, heartbeats.
    package static func dealer(_ context: ZMQContext, to endpoint: Endpoint, security: [SocketOption]) throws -> ZMQSocket {
        let s = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
        try s.set([.maxMessageSize(WireLimits.weights.socketMaxFrameBytes), .immediate(false), SocketProfile.connectTimeout, SocketProfile.connectingHandshake,
                   .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)] + security)
        try s.connect(endpoint)
        return s
    }

    /// The connections `receive` reads: the learner's and the upstream relay's, if any.
    package var transports: [any DealerTransport] { [learner] + (upstream.map { [$0.socket] } ?? []) }
    /// The ZeroMQ ones among them, for a caller's poller (the relay's own socket is the caller's to poll).
    package var sockets: [ZMQSocket] { transports.compactMap { $0 as? ZMQSocket } }
    package var inProgress: Bool { phase != .idle }

    /// Asks the learner for its newest weights.
    package func start(now: Double) throws {
        guard phase == .idle else { return }
        fetch = nil
        allFromRelay = false
        depth = 1
        dropUpstream()
        _ = try learner.send(WireMessage(.weightManifestRequest(Troupe_V1_WeightManifestRequest())), deadline: .now)
        phase = .manifest
        lastProgress = now
    }

    /// Handles what waits on this receiver's connections (never waits itself).
    package func receive(now: Double) throws -> [Event] {
        var events: [Event] = []
        for socket in transports {
            drain: for _ in 0..<256 {
                // The upstream may have been dropped by a message just handled.
                guard socket === learner || socket === upstream?.socket else { break drain }
                switch try socket.receiveMessage(deadline: .now, limits: .weights) {
                case .timedOut:
                    break drain
                case .rejected(let e) where socket === learner:
                    events.append(.failed("bad weights message from the learner: \(e)"))
                    reset()
                case .rejected(let e):
                    fallBack(reason: "it sent a bad message: \(e)", now: now, into: &events)
                case .message(let m):
                    try handle(m, fromLearner: socket === learner, now: now, into: &events)
                }
            }
        }
        return events
    }

    /// Deadlines: the learner's silence, the source it did not name, a relay that stalls.
    package func tick(now: Double) throws -> [Event] {
        var events: [Event] = []
        switch phase {
        case .idle: break
        case .manifest:
            if now - lastProgress > options.learnerSilenceSeconds { events.append(.failed("no weight manifest from the learner in \(Int(options.learnerSilenceSeconds)) s")); reset() }
        case .source:
            if now - lastProgress > options.sourceWaitSeconds { try fetchChunks(upstream: "", publicKey: "", now: now, into: &events) }
        case .chunks:
            if let up = upstream, now - lastProgress > stallSeconds {
                fallBack(reason: "no chunk for \(stallSeconds) s from \(up.endpoint)", now: now, into: &events)
            } else if upstream == nil && now - lastProgress > options.learnerSilenceSeconds {
                events.append(.failed("no chunk from the learner in \(Int(options.learnerSilenceSeconds)) s"))
                reset()
            }
        }
        return events
    }

    /// How long this actor waits on a silent upstream: longer the deeper it is, so that when a node
    /// dies only the actor right below it goes to the learner, and the ones further down are served
    /// again by that one before their own patience ends (capped at 10 × `stallSeconds`).
    var stallSeconds: Double { options.stallSeconds * Double(min(10, max(1, depth - 1))) }

    /// Ends any transfer (its relay stops offering it) and closes the sockets.
    package func close() {
        reset()
        learner.close()
    }

    // MARK: messages

    private func handle(_ m: WireMessage, fromLearner: Bool, now: Double, into events: inout [Event]) throws {
        switch m.body {
        case .weightManifest(let manifest) where fromLearner && phase == .manifest:
            let f: WeightFetch
            do { f = try WeightFetch(manifest: manifest, layout: layout, window: options.window) } catch {
                events.append(.failed("\(error)"))
                reset()
                return
            }
            fetch = f
            if let problem = f.sharedMemoryProblem, !warnedAboutSharedMemory {
                warnedAboutSharedMemory = true
                events.append(.sharedMemoryUnused(problem))
            }
            if f.isComplete {
                events.append(.applied(f, via: "shared_memory"))
                phase = .idle
                return
            }
            var r = Troupe_V1_WeightSourceRequest()
            r.version = manifest.version
            r.relayEndpoint = relay?.endpoint.description ?? ""
            r.actorIdentity = identity
            r.actorRunID = runId
            relay?.expect(f.version)
            _ = try learner.send(WireMessage(.weightSourceRequest(r)), deadline: .now)
            phase = .source
            lastProgress = now
        case .weightSource(let s) where fromLearner && phase == .source:
            guard let f = fetch, PolicyVersion(s.version) == f.version else { return }
            depth = Int(max(1, s.depth))
            try fetchChunks(upstream: s.upstreamEndpoint, publicKey: s.upstreamPublicKey, now: now, into: &events)
        case .chunk(let chunk) where phase == .chunks:
            // Late replies to an abandoned transfer are not this one's business.
            guard let f = fetch, PolicyVersion(chunk.version) == f.version else { return }
            if chunk.status == .versionGone {
                if fromLearner { events.append(.failed("\(WeightFetch.Problem.versionGone)")); reset() } else {
                    fallBack(reason: "it does not hold version \(PolicyVersion(chunk.version))", now: now, into: &events)
                }
                return
            }
            do {
                try f.accept(chunk, payload: m.frames.first)
            } catch {
                // Bad bytes (a tensor's hash) start over, and the learner then serves this actor
                // itself; a relay's malformed chunk only sends the rest to the learner.
                if fromLearner || isHashFailure(error) {
                    events.append(.failed("weight transfer: \(error)"))
                    reset()
                } else {
                    fallBack(reason: "\(error)", now: now, into: &events)
                }
                return
            }
            lastProgress = now
            try relay?.serveWaiting()
            if f.isComplete {
                events.append(.applied(f, via: allFromRelay ? "relay" : "chunks"))
                relay?.completed(f)
                phase = .idle
                dropUpstream()
            } else {
                try send(f.nextRequests())
            }
        default:
            break // a late reply to an abandoned transfer
        }
    }

    private func isHashFailure(_ error: Error) -> Bool {
        if case WeightFetch.Problem.tensorHash = error { return true }
        return false
    }

    private func fetchChunks(upstream endpoint: String, publicKey: String, now: Double, into events: inout [Event]) throws {
        guard let f = fetch else { reset(); return }
        dropUpstream()
        if !endpoint.isEmpty, endpoint != relay?.endpoint.description {
            // The address came from another actor through the learner: one that cannot be used
            // sends this transfer to the learner, never the actor down.
            do {
                // Authenticated: the relay must prove the key the learner named, or nothing is fetched from it.
                let relaySecurity = try security.map { try $0.toRelay(CurveKey(z85: publicKey)) } ?? []
                upstream = (endpoint, try connect(Endpoint(parsing: endpoint), relaySecurity))
                allFromRelay = true
            } catch {
                events.append(.fellBack(upstream: endpoint, reason: "cannot connect: \(error)"))
            }
        }
        relay?.offer(f)
        phase = .chunks
        lastProgress = now
        try send(f.nextRequests())
    }

    private func fallBack(reason: String, now: Double, into events: inout [Event]) {
        guard let f = fetch, let up = upstream else { return }
        events.append(.fellBack(upstream: up.endpoint, reason: reason))
        dropUpstream()
        allFromRelay = false
        lastProgress = now
        try? send(f.reissueOutstanding())
    }

    private func send(_ requests: [Troupe_V1_ChunkRequest]) throws {
        let socket = upstream?.socket ?? learner
        for r in requests { _ = try socket.send(WireMessage(.chunkRequest(r)), deadline: .now) }
    }

    private func dropUpstream() {
        upstream?.socket.close()
        upstream = nil
    }

    private func reset() {
        phase = .idle
        if let f = fetch { relay?.withdraw(f.version) }
        fetch = nil
        dropUpstream()
    }
}
