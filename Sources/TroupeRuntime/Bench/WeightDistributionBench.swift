import Foundation
import TroupeModel
import TroupeProto
import TroupeWire

/// Weight distribution (issue 4, benchmark): one learner-side ROUTER serves a `WeightSnapshot` as
/// `LearnerServer.drainWeights` does to 1, 2 and 4 fetching clients, each doing what `ActorClient`
/// does (its own ZeroMQ context as its own process would have, `WeightFetch`, every tensor's XXH64
/// verified), along two paths:
/// - `shared_memory`: the snapshot is a file in the learner's shared-memory directory (the default
///   when actors run on the learner's host, as here): the client maps it and verifies it, no chunks;
/// - `chunks`: the snapshot is in ordinary memory (remote actors): manifest, then zero-copy 1 MiB
///   chunks on request with a window of 8.
/// The baseline, measured in the same run: one raw ZeroMQ transfer of the same bytes, a single
/// zero-copy message from a ROUTER to one DEALER, and the same bytes pushed as a stream of 1 MiB
/// zero-copy chunks without requests; both received into memory, no hashing. The faster of the two
/// is the yardstick.
///
/// A trial's time runs from the start gate to the last client holding verified weights; the time to
/// the last byte received (before verification) is kept too, to show what the hashing costs.
public enum WeightDistributionBench {
    public enum Path: String, CaseIterable, Sendable {
        case sharedMemory = "shared_memory"
        case chunks
    }

    public struct Options: Sendable {
        public var clientCounts = [1, 2, 4]
        public var sharedMemoryDirectory = "/dev/shm"
        public var repeats = 3
        public var seed: UInt64 = 11
        public init() {}
    }

    public struct Report: Sendable {
        public let shape: String
        public let parameters: Int
        public let bytes: Int
        public let chunkBytes: Int
        public let window: Int
        /// `WeightSnapshot.make` (copy into shared memory + hash every tensor): the learner's side of publishing.
        public let snapshotSeconds: [Double]
        /// Why the shared-memory path was not measured (nil when it was).
        public let sharedMemoryProblem: String?
        /// One zero-copy message of the whole blob.
        public let rawSeconds: [Double]
        /// The blob as unrequested 1 MiB zero-copy chunks.
        public let rawStreamSeconds: [Double]
        /// Per path and client count: start to the last client's verified weights.
        public let verifiedSeconds: [Path: [Int: [Double]]]
        /// Per path and client count: start to the last client's last chunk (or mapping), before hashing.
        public let receivedSeconds: [Path: [Int: [Double]]]

        /// The yardstick: the faster raw transfer.
        public var rawMedian: Double { min(BenchStats.median(rawSeconds), BenchStats.median(rawStreamSeconds)) }
        public func medianSeconds(_ path: Path, clients: Int) -> Double { BenchStats.median(verifiedSeconds[path]?[clients] ?? []) }
        public func medianReceivedSeconds(_ path: Path, clients: Int) -> Double { BenchStats.median(receivedSeconds[path]?[clients] ?? []) }
        /// Distribution to `clients` actors in units of one raw transfer.
        public func ratio(_ path: Path, clients: Int) -> Double { medianSeconds(path, clients: clients) / rawMedian }
    }

    public static func run(shape: ModelBenchmark.Shape, options: Options, progress: (String) -> Void = { _ in }) throws -> Report {
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
        let paths: [(Path, WeightSnapshot)] = sharedMemoryProblem == nil ? [(.sharedMemory, shared), (.chunks, plain)] : [(.chunks, plain)]
        var raw: [Double] = []
        var rawStream: [Double] = []
        var verified: [Path: [Int: [Double]]] = [:]
        var received: [Path: [Int: [Double]]] = [:]
        for r in 1...options.repeats {
            let t = try rawTrial(plain, stream: false)
            raw.append(t)
            let ts = try rawTrial(plain, stream: true)
            rawStream.append(ts)
            progress(String(format: "weights %@ raw %d/%d: one message %.3f s, chunk stream %.3f s", shape.name, r, options.repeats, t, ts))
            for (path, snapshot) in paths {
                for n in options.clientCounts {
                    let (v, got) = try fetchTrial(snapshot, layout: layout, clients: n, expectMapped: path == .sharedMemory)
                    verified[path, default: [:]][n, default: []].append(v)
                    received[path, default: [:]][n, default: []].append(got)
                    progress(String(format: "weights %@ %@ %d actor(s) %d/%d: %.3f s", shape.name, path.rawValue, n, r, options.repeats, v))
                }
            }
        }
        return Report(shape: shape.name, parameters: layout.totalCount, bytes: plain.blob.count,
                      chunkBytes: Int(plain.manifest.chunkSize), window: 8, snapshotSeconds: snapshotSeconds,
                      sharedMemoryProblem: sharedMemoryProblem, rawSeconds: raw, rawStreamSeconds: rawStream,
                      verifiedSeconds: verified, receivedSeconds: received)
    }

    // MARK: baseline

    static func rawTrial(_ snapshot: WeightSnapshot, stream: Bool) throws -> Double {
        let phase = stream ? "weights (raw chunk stream)" : "weights (raw message)"
        let chunk = Int(snapshot.manifest.chunkSize)
        let deadline = monotonicSeconds() + 120
        let endpoint = Mailbox<Endpoint>()
        let gate = StartGate()
        let end = Mailbox<Double>()
        let blob = snapshot.blob
        let server = BenchThread(name: "raw-weights-server") {
            let context = try ZMQContext(ioThreads: 1)
            let router = try ZMQSocket(context, type: .router, linger: .upTo(milliseconds: 5000))
            defer { router.close() }
            try router.set(.routerMandatory(true))
            endpoint.put(try router.bind(Endpoint(parsing: "tcp://127.0.0.1:0")))
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
    static func fetchTrial(_ snapshot: WeightSnapshot, layout: ParameterLayout, clients: Int, expectMapped: Bool) throws -> (Double, Double) {
        let phase = "weights (\(expectMapped ? "shared memory" : "chunks"), \(clients) actor\(clients == 1 ? "" : "s"))"
        let deadline = monotonicSeconds() + 300
        let endpoint = Mailbox<Endpoint>()
        let gate = StartGate()
        let stop = StopFlag()
        let times = TimeList()
        let server = BenchThread(name: "weights-server") {
            let context = try ZMQContext(ioThreads: 1)
            let weights = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            defer { weights.close() }
            // LearnerServer's weights socket options.
            try weights.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                             .sendHighWaterMark(1000), .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
            endpoint.put(try weights.bind(Endpoint(parsing: "tcp://127.0.0.1:0")))
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
                        let reply: WireMessage
                        switch message.body {
                        case .weightManifestRequest: reply = WireMessage(.weightManifest(snapshot.manifest))
                        case .chunkRequest(let r): reply = snapshot.chunk(offset: r.offset, length: r.length)
                        default: throw RuntimeBenchError(phase, "unexpected \(message.kind.rawValue)")
                        }
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
                        let context = try ZMQContext(ioThreads: 1)
                        let socket = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
                        defer { socket.close() }
                        // ActorClient's weights socket options.
                        try socket.set([.maxMessageSize(WireLimits.weights.socketMaxFrameBytes), .immediate(false),
                                        .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
                        try socket.connect(bound)
                        try gate.arriveAndWait(deadline: deadline, phase: phase)
                        try fetch(socket: socket, layout: layout, expectMapped: expectMapped, phase: phase, deadline: deadline, times: times)
                    } catch {
                        gate.cancel()
                        throw error
                    }
                })
            }
            let start = try gate.open(whenReady: clients, deadline: deadline, phase: phase)
            try joinAll(Array(roles.dropFirst()), timeoutSeconds: max(1, deadline - monotonicSeconds()) + 5, phase: phase)
            stop.raise()
            try server.join(timeoutSeconds: 15, phase: phase)
            let all = times.values
            guard all.count == clients else { throw RuntimeBenchError(phase, "\(all.count) of \(clients) clients finished") }
            return (all.map(\.verified).max()! - start, all.map(\.received).max()! - start)
        } catch {
            stop.raise()
            gate.cancel()
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }

    /// One actor's transfer, as `ActorClient.drainWeights` does it: manifest, then the mapped file or
    /// windowed chunk requests; every tensor's hash verified either way.
    static func fetch(socket: ZMQSocket, layout: ParameterLayout, expectMapped: Bool, phase: String, deadline: Double, times: TimeList) throws {
        func next() throws -> WireMessage {
            let wait = Int(max(1, min(30, deadline - monotonicSeconds())) * 1000)
            switch try socket.receiveMessage(deadline: .afterMilliseconds(wait), limits: .weights) {
            case .message(let m): return m
            case .timedOut: throw RuntimeBenchError(phase, "a client waited \(wait) ms for the server")
            case .rejected(let e): throw RuntimeBenchError(phase, "a client refused a message: \(e)")
            }
        }
        guard try socket.send(WireMessage(.weightManifestRequest(Troupe_V1_WeightManifestRequest())), deadline: .afterMilliseconds(10_000)) == .sent else {
            throw RuntimeBenchError(phase, "manifest request not sent")
        }
        guard case .weightManifest(let manifest) = try next().body else { throw RuntimeBenchError(phase, "expected the manifest") }
        let fetch = try WeightFetch(manifest: manifest, layout: layout)
        guard fetch.mappedSharedMemory == expectMapped else {
            throw RuntimeBenchError(phase, "the client \(fetch.mappedSharedMemory ? "mapped" : "did not map") the shared-memory file \"\(manifest.sharedMemoryPath)\"\(fetch.sharedMemoryProblem.map { ": \($0)" } ?? "")")
        }
        for r in fetch.nextRequests() { _ = try socket.send(WireMessage(.chunkRequest(r))) }
        while !fetch.isComplete {
            let m = try next()
            guard case .chunk(let chunk) = m.body else { throw RuntimeBenchError(phase, "expected a chunk, got \(m.kind.rawValue)") }
            guard chunk.status == .ok else { throw RuntimeBenchError(phase, "chunk at \(chunk.offset): status \(chunk.status)") }
            try fetch.accept(chunk, payload: m.frames.first)
            for r in fetch.nextRequests() {
                guard try socket.send(WireMessage(.chunkRequest(r)), deadline: .afterMilliseconds(10_000)) == .sent else {
                    throw RuntimeBenchError(phase, "chunk request not sent")
                }
            }
        }
        let verified = monotonicSeconds()
        times.append((fetch.lastChunkAt ?? verified, verified))
    }
}

/// Finish times of clients, appended from their threads.
final class TimeList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [(received: Double, verified: Double)] = []
    func append(_ t: (Double, Double)) { lock.lock(); list.append((t.0, t.1)); lock.unlock() }
    var values: [(received: Double, verified: Double)] { lock.lock(); defer { lock.unlock() }; return list }
}
