import Foundation
import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWeights
import TroupeWire

/// Weight distribution (docs/benchmarks.md): one learner-side ROUTER serves a `WeightSnapshot`
/// through the learner's `WeightService` to 1, 2 and 4 fetching clients, each running the actor's
/// code (its own ZeroMQ context as its own process would have, `WeightReceiver`, every tensor's XXH64
/// verified), along three paths:
/// - `shared_memory`: the snapshot is a file in the learner's shared-memory directory (the default
///   when actors run on the learner's host, as here): the client maps it and verifies it, no chunks;
/// - `chunks`: the snapshot is in ordinary memory (remote actors): manifest, then zero-copy 1 MiB
///   chunks on request with a window of 8;
/// - `relay`: the same, but the learner arranges the actors in a chain (`RelayPlan`, fanout 1) and
///   each forwards chunks as they land (`WeightRelay`).
/// With `linkRate` every role sits on its own emulated host (`EmulatedLinks`): each host's link runs
/// at that rate both ways, as on a cluster, where on loopback every copy costs the same two cores.
/// The baseline, measured in the same run: one raw ZeroMQ transfer of the same bytes, a single
/// zero-copy message from a ROUTER to one DEALER, and the same bytes pushed as a stream of 1 MiB
/// zero-copy chunks without requests; both received into memory, no hashing. The faster of the two
/// is the yardstick.
///
/// With `curve`, the learner's socket and every relay are CURVE servers behind a ZAP handler and the
/// clients authenticate, as in an authenticated run; the raw baselines stay plaintext, so the ratios
/// show what encryption costs.
///
/// A trial's time runs from the start gate to the last client holding verified weights; the time to
/// the last byte received (before verification) is kept too, to show what the hashing costs.
package enum WeightDistributionBench {
    package enum Path: String, CaseIterable, Sendable {
        case sharedMemory = "shared_memory"
        case chunks
        /// Chunks through a chain of actors (`RelayPlan` with fanout 1, `WeightRelay`).
        case relay
    }

    package struct Options: Sendable {
        package var clientCounts = [1, 2, 4]
        package var sharedMemoryDirectory = "/dev/shm"
        package var repeats = 3
        package var seed: UInt64 = 11
        /// Emulated links of this rate (a tc rate, "1gbit") between the learner and each actor
        /// (`EmulatedLinks`, root only) instead of loopback; the shared-memory path is skipped there.
        package var linkRate: String?
        /// Encrypt and authenticate the learner's path (CURVE) as `troupe learner --key` does.
        package var curve = false
        package init() {}
    }

    package struct Report: Sendable {
        package let shape: String
        package let parameters: Int
        package let bytes: Int
        package let chunkBytes: Int
        package let window: Int
        /// `WeightSnapshot.make` (copy into shared memory + hash every tensor): the learner's side of publishing.
        package let snapshotSeconds: [Double]
        /// Why the shared-memory path was not measured (nil when it was).
        package let sharedMemoryProblem: String?
        /// One zero-copy message of the whole blob.
        package let rawSeconds: [Double]
        /// The blob as unrequested 1 MiB zero-copy chunks.
        package let rawStreamSeconds: [Double]
        /// Per path and client count: start to the last client's verified weights.
        package let verifiedSeconds: [Path: [Int: [Double]]]
        /// Per path and client count: start to the last client's last chunk (or mapping), before hashing.
        package let receivedSeconds: [Path: [Int: [Double]]]
        /// The emulated links' rate; nil: loopback.
        package let linkRate: String?
        /// The learner's path was CURVE-encrypted.
        package let curve: Bool

        /// The yardstick: the faster raw transfer, named for messages, and its trials.
        package var rawYardstick: (name: String, seconds: [Double]) {
            BenchStats.median(rawSeconds) <= BenchStats.median(rawStreamSeconds) ? ("one raw message", rawSeconds) : ("the raw chunk stream", rawStreamSeconds)
        }
        package var rawMedian: Double { BenchStats.median(rawYardstick.seconds) }
        /// Why `path`'s ratio to 4 clients gets no verdict (its trials or the yardstick's too far apart), or nil.
        package func noiseProblem(_ path: Path) -> String? {
            RuntimeTargets.noiseProblem([("the trials of \(rawYardstick.name)", rawYardstick.seconds),
                                         ("the trials of \(path.rawValue) to 4 actors", verifiedSeconds[path]?[4] ?? [])])
        }
        package func medianSeconds(_ path: Path, clients: Int) -> Double { BenchStats.median(verifiedSeconds[path]?[clients] ?? []) }
        package func medianReceivedSeconds(_ path: Path, clients: Int) -> Double { BenchStats.median(receivedSeconds[path]?[clients] ?? []) }
        /// Distribution to `clients` actors in units of one raw transfer.
        package func ratio(_ path: Path, clients: Int) -> Double { medianSeconds(path, clients: clients) / rawMedian }
    }

    package static func run(shape: ModelShape, options: Options, progress: (String) -> Void = { _ in }) throws -> Report {
        guard options.repeats >= 1, !options.clientCounts.isEmpty, options.clientCounts.allSatisfy({ $0 >= 1 }) else {
            throw RuntimeBenchError("weights", "invalid options: at least one repeat and client counts ≥ 1")
        }
        let layout = ParameterLayout(config: shape.config)
        var snapshotSeconds: [Double] = []
        var shared: WeightSnapshot?
        var plain: WeightSnapshot?
        var sharedMemoryProblem: String?
        do {
            let model = try LlamaModel.random(config: shape.config, seed: options.seed)
            let version = PolicyVersion(epoch: 0xBE7C4, step: 1)
            for _ in 0..<max(1, min(3, options.repeats)) {
                shared = nil // unmaps the previous file first
                let t0 = monotonicSeconds()
                let made = WeightSnapshot.make(model: model, version: version, sharedMemoryDirectory: options.sharedMemoryDirectory)
                snapshotSeconds.append(monotonicSeconds() - t0)
                shared = made.snapshot
                sharedMemoryProblem = made.sharedMemoryProblem
            }
            plain = WeightSnapshot.make(model: model, version: version).snapshot
        }
        guard let shared, let plain else { throw RuntimeBenchError("weights", "no snapshot") }
        var paths: [(Path, WeightSnapshot)] = [(.chunks, plain), (.relay, plain)]
        // Over emulated links every actor is on another host: there is no shared memory to map.
        if sharedMemoryProblem == nil && options.linkRate == nil { paths.insert((.sharedMemory, shared), at: 0) }
        let links = try options.linkRate.map { try EmulatedLinks(hosts: options.clientCounts.max()! + 1, rate: $0) }
        defer { links?.remove() }
        var raw: [Double] = []
        var rawStream: [Double] = []
        var verified: [Path: [Int: [Double]]] = [:]
        var received: [Path: [Int: [Double]]] = [:]
        let keys = options.curve ? try BenchKeys(clients: options.clientCounts.max()!) : nil
        for r in 1...options.repeats {
            let t = try rawTrial(plain, stream: false, links: links)
            raw.append(t)
            let ts = try rawTrial(plain, stream: true, links: links)
            rawStream.append(ts)
            progress(String(format: "weights %@ raw %d/%d: one message %.3f s, chunk stream %.3f s", shape.name, r, options.repeats, t, ts))
            for (path, snapshot) in paths {
                for n in options.clientCounts {
                    let (v, got) = try fetchTrial(snapshot, layout: layout, clients: n, path: path, links: links, keys: keys)
                    verified[path, default: [:]][n, default: []].append(v)
                    received[path, default: [:]][n, default: []].append(got)
                    progress(String(format: "weights %@ %@ %d actor(s) %d/%d: %.3f s", shape.name, path.rawValue, n, r, options.repeats, v))
                }
            }
        }
        return Report(shape: shape.name, parameters: layout.totalCount, bytes: plain.blob.count,
                      chunkBytes: Int(plain.manifest.chunkSize), window: 8, snapshotSeconds: snapshotSeconds,
                      sharedMemoryProblem: sharedMemoryProblem, rawSeconds: raw, rawStreamSeconds: rawStream,
                      verifiedSeconds: verified, receivedSeconds: received, linkRate: options.linkRate, curve: options.curve)
    }

    // MARK: baseline

    static func rawTrial(_ snapshot: WeightSnapshot, stream: Bool, links: EmulatedLinks?) throws -> Double {
        let phase = stream ? "weights (raw chunk stream)" : "weights (raw message)"
        let chunk = Int(snapshot.manifest.chunkSize)
        let deadline = monotonicSeconds() + 120
        let endpoint = Mailbox<Endpoint>()
        let gate = StartGate()
        let end = Mailbox<Double>()
        let blob = snapshot.blob
        let server = BenchThread(name: "raw-weights-server") {
            try links?.enter(host: 0)
            let context = try ZMQContext(ioThreads: 1)
            let router = try ZMQSocket(context, type: .router, linger: .upTo(milliseconds: 5000))
            defer { router.close() }
            try router.set(.routerMandatory(true))
            endpoint.put(try router.bind(EmulatedLinks.bindEndpoint(links, host: 0)))
            let wait = Int(max(1, deadline - monotonicSeconds()) * 1000)
            guard case .message(let request) = try router.receive(deadline: .afterMilliseconds(wait)), request.count == 2 else {
                throw RuntimeBenchError(phase, "no request")
            }
            if stream {
                for offset in stride(from: 0, to: blob.count, by: chunk) {
                    let part = Frame(sharing: blob, range: offset..<min(blob.count, offset + chunk))
                    guard try router.send([request[0], part], deadline: .afterMilliseconds(10_000)) == .sent else {
                        throw RuntimeBenchError(phase, "a chunk could not be queued")
                    }
                }
            } else {
                guard try router.send([request[0], Frame(sharing: blob)], deadline: .afterMilliseconds(10_000)) == .sent else {
                    throw RuntimeBenchError(phase, "the blob could not be queued")
                }
            }
            // Stay open until the client has it (closing early would cut the transfer).
            _ = try end.take(deadline: deadline, phase: phase, what: "client's receipt")
        }
        var roles = [server]
        do {
            let bound = try endpoint.take(deadline: deadline, phase: phase, what: "bound endpoint", watching: roles)
            roles.append(BenchThread(name: "raw-weights-client") {
                do {
                    try links?.enter(host: 1)
                    let context = try ZMQContext(ioThreads: 1)
                    let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
                    defer { dealer.close() }
                    try dealer.connect(bound)
                    try gate.arriveAndWait(deadline: deadline, phase: phase)
                    guard try dealer.send([Frame([1])], deadline: .afterMilliseconds(10_000)) == .sent else {
                        throw RuntimeBenchError(phase, "request not sent")
                    }
                    var received = 0
                    while received < blob.count {
                        let wait = Int(max(1, deadline - monotonicSeconds()) * 1000)
                        guard case .message(let frames) = try dealer.receive(deadline: .afterMilliseconds(wait)), frames.count == 1 else {
                            throw RuntimeBenchError(phase, "the blob did not arrive whole (\(received) of \(blob.count) bytes)")
                        }
                        received += frames[0].count
                    }
                    guard received == blob.count else { throw RuntimeBenchError(phase, "\(received) bytes for \(blob.count)") }
                    end.put(monotonicSeconds())
                } catch {
                    gate.cancel()
                    throw error
                }
            })
            let start = try gate.open(whenReady: 1, deadline: deadline, phase: phase)
            let finish = try end.take(deadline: deadline, phase: phase, what: "blob", watching: roles)
            try joinAll(roles, timeoutSeconds: 30, phase: phase)
            return finish - start
        } catch {
            gate.cancel()
            end.put(.nan)
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }

    // MARK: the learner's path

    /// Returns (start → last client verified, start → last client's last chunk).
    static func fetchTrial(_ snapshot: WeightSnapshot, layout: ParameterLayout, clients: Int, path: Path, links: EmulatedLinks?,
                           keys: BenchKeys?) throws -> (Double, Double) {
        let label = path == .sharedMemory ? "shared memory" : path.rawValue
        let phase = "weights (\(label), \(clients) actor\(clients == 1 ? "" : "s"))"
        let deadline = monotonicSeconds() + 300
        let endpoint = Mailbox<Endpoint>()
        let gate = StartGate()
        let stop = StopFlag()
        let times = Collected<(received: Double, verified: Double)>()  // clients' finish times, from their threads
        let server = BenchThread(name: "weights-server") {
            try links?.enter(host: 0)
            let context = try ZMQContext(ioThreads: 1)
            let weights = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            defer { weights.close() }
            // LearnerServer's weights socket options, and its reply logic.
            try weights.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                             .sendHighWaterMark(1000), .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
            var service = WeightService(snapshot: snapshot, relayFanout: path == .relay ? 1 : 0)
            let zap = try keys.map { try ZAPHandler(context: context, policy: $0.policy) }
            defer { zap?.stop() }
            if let keys {
                try weights.set(keys.learner.server(ZAPDomain.weights))
                service.relayPublicKeys = keys.relayPublicKeys
            }
            endpoint.put(try weights.bind(EmulatedLinks.bindEndpoint(links, host: 0)))
            let poller = Poller()
            poller.register(weights)
            while !stop.isRaised {
                if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "the server timed out") }
                guard try poller.poll(until: .afterMilliseconds(20)).contains(weights) else { continue }
                drain: for _ in 0..<256 {
                    switch try weights.receiveFromPeer(deadline: .now, limits: .control) {
                    case .timedOut: break drain
                    case .rejected(_, let e): throw RuntimeBenchError(phase, "the server refused a request: \(e)")
                    case .message(let peer, let message):
                        guard let reply = service.reply(to: message.body) else { throw RuntimeBenchError(phase, "unexpected \(message.kind.rawValue)") }
                        guard try weights.send(reply, to: peer) == .sent else { throw RuntimeBenchError(phase, "reply to \(peer) not queued") }
                    }
                }
            }
        }
        var roles = [server]
        do {
            let bound = try endpoint.take(deadline: deadline, phase: phase, what: "bound endpoint", watching: roles)
            for c in 0..<clients {
                roles.append(BenchThread(name: "weights-client-\(c)") {
                    do {
                        try links?.enter(host: c + 1)
                        try client(c, learner: bound, layout: layout, path: path, relayBind: EmulatedLinks.bindEndpoint(links, host: c + 1),
                                   phase: phase, deadline: deadline, gate: gate, stop: stop, times: times, keys: keys)
                    } catch {
                        gate.cancel()
                        throw error
                    }
                })
            }
            let start = try gate.open(whenReady: clients, deadline: deadline, phase: phase)
            // Clients that are done keep serving their relays until the last one holds the weights.
            while times.all.count < clients {
                if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "\(times.all.count) of \(clients) clients finished in time") }
                if let error = roles.lazy.compactMap(\.error).first { throw error }
                usleep(2000)
            }
            stop.raise()
            try joinAll(roles, timeoutSeconds: 30, phase: phase)
            let all = times.all
            return (all.map(\.verified).max()! - start, all.map(\.received).max()! - start)
        } catch {
            stop.raise()
            gate.cancel()
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }

    /// One actor, through the actor's own code: `WeightReceiver` (manifest, then the mapped file or
    /// chunks from the upstream the learner names) and, on the relay path, a `WeightRelay` serving
    /// the actors below it until the trial ends.
    static func client(_ index: Int, learner: Endpoint, layout: ParameterLayout, path: Path, relayBind: Endpoint, phase: String,
                       deadline: Double, gate: StartGate, stop: StopFlag, times: Collected<(received: Double, verified: Double)>, keys: BenchKeys?) throws {
        let context = try ZMQContext(ioThreads: 1)
        // Bound before the relay, as an actor's is.
        let zap = try keys.map { try ZAPHandler(context: context, policy: $0.policy) }
        let security = keys.map { $0.client(index) }
        let relay = path == .relay
            ? try WeightRelay(context: context, listen: ListenAddress(bind: relayBind), security: security.map { ($0.keyPair, zap!) }) : nil
        let receiver = try WeightReceiver(context: context, learnerWeights: learner, layout: layout, relay: relay,
                                          identity: BenchKeys.name(index), runId: UInt64(index + 1), security: security)
        defer { receiver.close(); relay?.close(); zap?.stop() }
        try gate.arriveAndWait(deadline: deadline, phase: phase)
        try receiver.start(now: monotonicSeconds())
        var done = false
        while !stop.isRaised {
            let now = monotonicSeconds()
            if now > deadline { throw RuntimeBenchError(phase, "client \(index) timed out") }
            let poller = Poller()
            for socket in receiver.sockets { poller.register(socket) }
            if let s = relay?.socket { poller.register(s) }
            let ready = try poller.poll(until: .afterMilliseconds(done ? 20 : 5))
            if let r = relay, let s = r.socket, ready.contains(s) { try r.drain() }
            for event in try receiver.receive(now: now) + receiver.tick(now: monotonicSeconds()) {
                switch event {
                case .applied(let fetch, let via):
                    let expected = path == .sharedMemory ? "shared_memory" : (path == .relay && receiver.depth > 1 ? "relay" : "chunks")
                    guard via == expected else { throw RuntimeBenchError(phase, "client \(index) got its weights via \(via), expected \(expected)") }
                    let verified = monotonicSeconds()
                    times.add([(fetch.lastChunkAt ?? verified, verified)])
                    done = true
                case .fellBack(let upstream, let reason): throw RuntimeBenchError(phase, "client \(index) left relay \(upstream): \(reason)")
                case .failed(let reason): throw RuntimeBenchError(phase, "client \(index): \(reason)")
                case .sharedMemoryUnused(let problem):
                    if path == .sharedMemory { throw RuntimeBenchError(phase, "client \(index) did not map the shared-memory file: \(problem)") }
                }
            }
            if done && relay == nil { return }
        }
    }
}

/// The keys of a CURVE trial: the learner's, and one pair per client, all admitted as actors.
struct BenchKeys: Sendable {
    let learner: LearnerSecurity
    let clients: [CurveKeyPair]

    static func name(_ index: Int) -> String { "bench-\(index)" }

    init(clients count: Int) throws {
        clients = try (0..<count).map { _ in try CurveKeyPair.generate() }
        let members = clients.enumerated().map { CurveAllowlist.Member(name: Self.name($0.offset), role: .actor, publicKey: $0.element.publicKey) }
        learner = try LearnerSecurity(keyPair: .generate(), allowlist: CurveAllowlist(members))
    }

    var policy: ZAPHandler.Policy { learner.policy }
    var relayPublicKeys: [String: String] {
        Dictionary(uniqueKeysWithValues: clients.indices.map { (Self.name($0), clients[$0].publicKey.z85) })
    }
    func client(_ index: Int) -> ClientSecurity {
        ClientSecurity(name: Self.name(index), keyPair: clients[index], learnerKey: learner.keyPair.publicKey)
    }
}
