import TroupeProto
import TroupeTensor
import TroupeWire

/// The reward conversation's version (`RewardRequest.protocol`); a response must carry the same.
package let rewardProtocolVersion: UInt32 = 1

/// How `RewardWorkerClient` reaches its workers: one frame out per request, whatever frames come back
/// per response, never a wait. Over ZeroMQ (`ZeroMQRewardWorkers`) a DEALER per worker; in memory
/// (`InMemoryRewardWorkers`) a test answers, delays or drops each request itself.
package protocol RewardWorkerTransport: AnyObject {
    var workerCount: Int { get }
    /// Queues `request` for worker `worker`; false when it cannot take one now (not connected, queue full).
    func send(_ request: Troupe_V1_RewardRequest, to worker: Int) -> Bool
    /// What arrived since the last call, without waiting: each response's frames, by worker.
    func receive() -> [(worker: Int, frames: [[UInt8]])]
    func close()
}

/// A DEALER connected to each worker's ROUTER. `immediate` queues only on live connections, so a
/// request is never parked in the pipe of a worker that is down (the client tries another one); the
/// DEALER reconnects by itself (100 ms, backing off to 5 s) and ZMTP heartbeats drop a frozen worker's
/// connection after 3 s. With `keys` each DEALER is a CURVE client that must find its worker's key at
/// the other end, so a request is queued only on a connection to that worker (docs/rewards.md).
package final class ZeroMQRewardWorkers: RewardWorkerTransport {
    /// The largest response read; a longer one is read and counted as garbage.
    package static let maxResponseBytes = 1 << 20
    /// libzmq's own limit, well above `maxResponseBytes`: a frame over it ends the connection, and libzmq
    /// does not reconnect after that protocol error, so the app-level limit must be the one that bites.
    static let socketMaxFrameBytes: Int64 = 16 << 20
    /// A worker whose DEALER has taken no request for this long gets a new one (a connection libzmq
    /// closed for good, as above, would otherwise never come back).
    static let reopenAfterSeconds = 10.0
    private let context: ZMQContext
    private let endpoints: [Endpoint]
    private let keys: RewardWorkerKeys?
    private var sockets: [ZMQSocket]
    private var refusingSince: [Double?]
    package var workerCount: Int { sockets.count }

    package init(endpoints: [String], keys: RewardWorkerKeys?) throws {
        precondition(keys.map { $0.serverKeys.count == endpoints.count } ?? true, "one server key per endpoint")
        context = try ZMQContext(ioThreads: 1)
        self.endpoints = try endpoints.map { try Endpoint(parsing: $0) }
        self.keys = keys
        sockets = []
        refusingSince = Array(repeating: nil, count: endpoints.count)
        for index in endpoints.indices { sockets.append(try socket(for: index)) }
    }

    private func socket(for index: Int) throws -> ZMQSocket {
        let socket = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
        try socket.set([.immediate(true), SocketProfile.defaultReconnect, SocketProfile.defaultHeartbeat,
                        .maxMessageSize(Self.socketMaxFrameBytes), .sendHighWaterMark(4096),
                        // Answers queued unread, each up to 16 MiB: a worker has at most max_in_flight due.
                        .receiveHighWaterMark(64)])
        if let keys {
            try socket.set(.curveClient(serverKey: keys.serverKeys[index], publicKey: keys.client.publicKey, secretKey: keys.client.secretKey))
        }
        try socket.connect(endpoints[index])
        return socket
    }

    package func send(_ request: Troupe_V1_RewardRequest, to worker: Int) -> Bool {
        guard let bytes = try? request.serializedBytes() as [UInt8] else { return false }
        if (try? sockets[worker].send([Frame(bytes)], deadline: .now)) == .sent {
            refusingSince[worker] = nil
            return true
        }
        let now = monotonicSeconds()
        guard let since = refusingSince[worker] else {
            refusingSince[worker] = now
            return false
        }
        if now - since > Self.reopenAfterSeconds, let fresh = try? socket(for: worker) {
            sockets[worker].close()
            sockets[worker] = fresh
            refusingSince[worker] = now
        }
        return false
    }

    package func receive() -> [(worker: Int, frames: [[UInt8]])] {
        var out: [(worker: Int, frames: [[UInt8]])] = []
        for (index, socket) in sockets.enumerated() {
            for _ in 0..<1024 {
                guard let result = try? socket.receive(deadline: .now, maxFrames: 4, maxBytes: Self.maxResponseBytes) else { break }
                switch result {
                case .timedOut: break
                case .message(let frames): out.append((index, frames.map(\.bytes))); continue
                // Over the caps: delivered as a frame nobody can decode, so it is counted as garbage.
                case .overLimit: out.append((index, [[0xFF]])); continue
                }
                break
            }
        }
        return out
    }

    package func close() {
        for socket in sockets { socket.close() }
        sockets.removeAll()
    }
}

/// Workers in memory: requests wait in `inbox` until the test answers them (`respond`), answers
/// garbage, or leaves them unanswered. A worker marked `down` takes no request.
package final class InMemoryRewardWorkers: RewardWorkerTransport {
    package private(set) var inbox: [(worker: Int, request: Troupe_V1_RewardRequest)] = []
    private var outbox: [(worker: Int, frames: [[UInt8]])] = []
    package var down: Set<Int> = []
    package let workerCount: Int

    package init(workers: Int) { workerCount = workers }

    package func send(_ request: Troupe_V1_RewardRequest, to worker: Int) -> Bool {
        guard !down.contains(worker) else { return false }
        inbox.append((worker, request))
        return true
    }

    package func receive() -> [(worker: Int, frames: [[UInt8]])] {
        defer { outbox.removeAll() }
        return outbox
    }

    package func close() {}

    /// Removes and returns the requests sent so far.
    package func takeRequests() -> [(worker: Int, request: Troupe_V1_RewardRequest)] {
        defer { inbox.removeAll() }
        return inbox
    }

    /// Delivers `response` as worker `worker`'s answer.
    package func respond(_ response: Troupe_V1_RewardResponse, from worker: Int) {
        outbox.append((worker, [(try? response.serializedBytes()) ?? []]))
    }

    /// Delivers raw frames as worker `worker`'s answer.
    package func respond(frames: [[UInt8]], from worker: Int) {
        outbox.append((worker, frames))
    }
}
