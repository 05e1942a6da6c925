import Foundation
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// The learner side of the ingestion bench: the per-message work of `LearnerServer`'s control loop
/// for Hello, LeaseRequest and GroupSubmit (the groups through `GroupIntake`, the learner's own code),
/// without the training, logging stream and housekeeping.
final class IngestingLearner {
    let core: LearnerCore
    let admission: GroupAdmission
    let runLog: RunLog?
    let events: RunEvents?
    let epoch: UInt64
    let control: ZMQSocket
    let phase: String
    private(set) var groups = 0
    private var peers: [PeerID: String] = [:]
    private var pendingAcks: [(PeerID, Troupe_V1_Ack)] = []
    private var acksAwaitingDisk = DurableAcks()

    init(core: LearnerCore, admission: GroupAdmission, runLog: RunLog?, epoch: UInt64, control: ZMQSocket, phase: String) {
        self.core = core
        self.admission = admission
        self.runLog = runLog
        events = runLog.map { RunEvents([RunLogSink($0)]) }
        self.epoch = epoch
        self.control = control
        self.phase = phase
    }

    /// Handles one queued message; false when none is queued.
    func handleNext() throws -> Bool {
        switch try control.receiveFromPeer(deadline: .now, limits: .control) {
        case .timedOut: return false
        case .rejected(_, let error): throw RuntimeBenchError(phase, "the learner refused a message: \(error)")
        case .message(let peer, let message):
            let now = monotonicSeconds()
            switch message.body {
            case .hello(let hello):
                peers[peer] = hello.actorIdentity
                let (credit, _, _) = core.hello(identity: hello.actorIdentity, runId: hello.actorRunID, now: now)
                var w = Troupe_V1_Welcome()
                w.learnerEpoch = epoch
                w.currentVersion = PolicyVersion(epoch: epoch, step: UInt64(core.step)).proto
                w.credit = UInt32(credit)
                w.leaseSize = UInt32(core.leaseSize)
                try send(WireMessage(.welcome(w)), to: peer)
            case .leaseRequest(let request):
                guard let identity = peers[peer] else { throw RuntimeBenchError(phase, "lease request before Hello") }
                var lease = Troupe_V1_Lease()
                if let granted = core.grantLease(to: identity, maxPrompts: Int(request.maxPrompts), now: now) {
                    lease.leaseID = granted.id
                    lease.minVersion = PolicyVersion(epoch: epoch, step: UInt64(granted.minStep)).proto
                    lease.prompts = granted.prompts.map { id in
                        var p = Troupe_V1_Prompt()
                        p.promptID = id
                        p.tokenIds = core.prompts[id]?.tokens ?? []
                        return p
                    }
                }
                try send(WireMessage(.lease(lease)), to: peer)
            case .groupSubmit:
                guard let identity = peers[peer] else { throw RuntimeBenchError(phase, "group before Hello") }
                try receiveGroup(message, identity: identity, peer: peer, now: now)
                groups += 1
            default:
                throw RuntimeBenchError(phase, "unexpected \(message.kind.rawValue)")
            }
            return true
        }
    }

    /// The learner's own intake (`GroupIntake`, as `LearnerServer` calls it); a group the learner would
    /// not accept is a bench bug.
    private func receiveGroup(_ message: WireMessage, identity: String, peer: PeerID, now: Double) throws {
        let (ack, outcome) = try GroupIntake.receive(message, from: identity, core: core, admission: admission, events: events,
                                                     currentVersion: PolicyVersion(epoch: epoch, step: UInt64(core.step)), now: now)
        switch outcome {
        case .accepted: break
        case .duplicate(let group): throw RuntimeBenchError(phase, "group \(group.key) counted as a duplicate")
        case .rejected(let group, let reason, let detail):
            throw RuntimeBenchError(phase, "group \(group.key) rejected (\(reason.rawValue)): \(detail)")
        case .refused(let reason, let detail): throw RuntimeBenchError(phase, "a synthetic group was refused (\(reason)): \(detail)")
        }
        pendingAcks.append((peer, ack))
        // An instant trainer: batches leave as soon as they form, so the pending buffer stays small.
        if core.pending.count >= core.batchGroups, let taken = core.takeBatch() {
            core.stepCompleted(trainedGroups: taken.batch.count)
        }
    }

    /// `LearnerServer.drainControl`'s group commit: the acks decided wait until the run log's writer
    /// threads have their records on disk; those whose records are leave (all of them without a log).
    func flush() throws {
        let ready = try runLog.map { try acksAwaitingDisk.take(pendingAcks, committing: $0) } ?? pendingAcks
        pendingAcks.removeAll(keepingCapacity: true)
        for (peer, ack) in ready { try send(WireMessage(.ack(ack)), to: peer) }
    }

    private func send(_ message: WireMessage, to peer: PeerID) throws {
        guard try control.send(message, to: peer) == .sent else { throw RuntimeBenchError(phase, "reply to \(peer) not queued") }
    }
}

/// A simulated actor: joins like `ActorClient` (Hello → Welcome with credit), takes leases for all
/// its groups, encodes them, then streams them under credit, counting acks.
final class SimulatedActor {
    let index: Int
    let phase: String
    let deadline: Double
    let runId: UInt64
    let context: ZMQContext
    let dealer: ZMQSocket
    private var credit = 0
    private var frames: [[Frame]] = []

    init(index: Int, learner: Endpoint, phase: String, deadline: Double) throws {
        self.index = index
        self.phase = phase
        self.deadline = deadline
        runId = UInt64(index + 1) &* 0x9E37_79B9
        context = try ZMQContext(ioThreads: 1)
        dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
        // The actor's control socket options (ZeroMQActorEndpoints.connectControl).
        try dealer.set([.routingID(Array("bench-\(index)#\(String(runId, radix: 16))".utf8)), .immediate(true),
                        .maxMessageSize(WireLimits.controlReplies.socketMaxFrameBytes), .sendHighWaterMark(1000),
                        .reconnectInterval(milliseconds: 100, maximumMilliseconds: 2000),
                        .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
        try dealer.connect(learner)
    }

    deinit { dealer.close() }

    /// Hello, leases, encoding. Returns the bytes of the encoded groups.
    func prepare(_ groups: [IngestionBench.GroupContent], epoch: UInt64) throws -> Int {
        var hello = Troupe_V1_Hello()
        hello.actorIdentity = "bench-\(index)"
        hello.actorRunID = runId
        hello.protocolMajor = WireProtocol.major
        hello.protocolMinor = WireProtocol.minor
        hello.buildID = TroupeBuild.id
        guard try dealer.send(WireMessage(.hello(hello)), deadline: .afterMilliseconds(10_000)) == .sent else {
            throw RuntimeBenchError(phase, "actor \(index) could not reach the learner")
        }
        guard case .welcome(let welcome) = try reply().body else { throw RuntimeBenchError(phase, "actor \(index): no Welcome") }
        credit = Int(welcome.credit)
        var slots: [(lease: UInt64, prompt: UInt64)] = []
        while slots.count < groups.count {
            var request = Troupe_V1_LeaseRequest()
            request.maxPrompts = 64
            guard try dealer.send(WireMessage(.leaseRequest(request)), deadline: .afterMilliseconds(5000)) == .sent,
                  case .lease(let lease) = try reply().body, !lease.prompts.isEmpty else {
                throw RuntimeBenchError(phase, "actor \(index): no lease after \(slots.count) prompts")
            }
            slots += lease.prompts.map { (lease.leaseID, $0.promptID) }
        }
        frames = try groups.enumerated().map { i, g in
            try IngestionBench.message(for: g, lease: slots[i].lease, prompt: slots[i].prompt, sequence: UInt64(i + 1),
                                       runId: runId, epoch: epoch).encode()
        }
        return frames.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
    }

    /// The timed phase: send while credit lasts, take acks, until every group is acknowledged. Returns
    /// each group's round trip (send to Ack) in seconds.
    func stream() throws -> [Double] {
        var next = 0
        var acked = 0
        // Group i goes out as sequence i + 1.
        var sentAt = [Double](repeating: 0, count: frames.count)
        var roundTrips: [Double] = []
        roundTrips.reserveCapacity(frames.count)
        while acked < frames.count {
            while credit > 0 && next < frames.count {
                guard try dealer.send(frames[next], deadline: .afterMilliseconds(10_000)) == .sent else {
                    throw RuntimeBenchError(phase, "actor \(index): send blocked for 10 s")
                }
                sentAt[next] = monotonicSeconds()
                next += 1
                credit -= 1
            }
            guard case .ack(let ack) = try reply().body else { throw RuntimeBenchError(phase, "actor \(index): expected an Ack") }
            guard ack.status == .accepted else { throw RuntimeBenchError(phase, "actor \(index): group \(ack.sequence) \(ack.status): \(ack.text)") }
            guard ack.sequence >= 1 && ack.sequence <= UInt64(next) else {
                throw RuntimeBenchError(phase, "actor \(index): an Ack for sequence \(ack.sequence), of \(next) sent")
            }
            roundTrips.append(monotonicSeconds() - sentAt[Int(ack.sequence) - 1])
            credit += Int(ack.creditGranted)
            acked += 1
        }
        return roundTrips
    }

    private func reply() throws -> WireMessage {
        let wait = Int(max(1, min(10, deadline - monotonicSeconds())) * 1000)
        switch try dealer.receiveMessage(deadline: .afterMilliseconds(wait), limits: .controlReplies) {
        case .message(let m): return m
        case .timedOut: throw RuntimeBenchError(phase, "actor \(index): no reply within \(wait) ms")
        case .rejected(let e): throw RuntimeBenchError(phase, "actor \(index): bad reply: \(e)")
        }
    }
}
