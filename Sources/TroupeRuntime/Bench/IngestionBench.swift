import Foundation
import TroupeProto
import TroupeTensor
import TroupeWire

/// Group ingestion at the learner (issue 4, benchmark): K simulated actors stream realistic groups
/// into one ROUTER, under credit like `ActorClient`, and the learner side does exactly what
/// `LearnerServer.receiveGroup` does per group: receive + `WireMessage.decode` → `GroupSubmission
/// (validating:)` → `RolloutGroup` → `LearnerCore.submit` → (optionally) the fsynced run-log append →
/// Ack. The same groups, byte for byte and frame for frame, also go through raw libzmq
/// DEALER→ROUTER in the same run: one-way with no processing (the target's baseline), and with a
/// tiny reply per message under the same credit (to separate the protocol's round trips from the
/// learner's processing).
///
/// Leases are granted before the timed phase (a real actor asks for the next lease while it samples,
/// off the group path). A batch is taken and marked trained as soon as `batch_groups` groups wait
/// (an instant trainer), so the learner's state stays bounded as in a run.
public enum IngestionBench {
    public enum Mode: String, CaseIterable, Sendable {
        /// DEALER→ROUTER, no replies, no decoding: the libzmq ceiling.
        case raw
        /// As `raw`, plus a 32-byte reply per message and at most `credit` messages in flight.
        case rawCredit = "raw_credit"
        /// The learner's path without the run-log append.
        case troupe
        /// The learner's path with the fsynced run-log append (what a real learner does).
        case troupeFsync = "troupe_fsync"
    }

    public struct Options: Sendable {
        public var actors = 4
        public var groupsPerActor = 5000
        /// Fewer groups for the fsync mode (one fsync per group is the slow part); the rate is per group.
        public var fsyncGroupsPerActor = 125
        public var samplesPerGroup = 16
        public var tokensPerSample: ClosedRange<Int> = 8...128
        public var credit = 4
        public var repeats = 5
        public var seed: UInt64 = 7
        public init() {}
    }

    public struct Trial: Sendable {
        public let mode: Mode
        public let groups: Int
        public let bytes: Int
        public let seconds: Double
        public var groupsPerSecond: Double { Double(groups) / seconds }
        public var megabytesPerSecond: Double { Double(bytes) / seconds / 1e6 }
    }

    /// Microseconds per group of one step of the learner's path, measured alone on one thread.
    public struct Stage: Sendable {
        public let name: String
        public let microsecondsPerGroup: Double
    }

    public struct Report: Sendable {
        public let options: Options
        public let trials: [Trial]
        /// Group message sizes (header + raw frames), for the record.
        public let meanGroupBytes: Double
        public let frameCount: Int
        /// Single-threaded CPU cost of each step of the learner's path, without sockets.
        public let stages: [Stage]

        public func medianGroupsPerSecond(_ mode: Mode) -> Double {
            BenchStats.median(trials.filter { $0.mode == mode }.map(\.groupsPerSecond))
        }
        public func medianMegabytesPerSecond(_ mode: Mode) -> Double {
            BenchStats.median(trials.filter { $0.mode == mode }.map(\.megabytesPerSecond))
        }
        /// Extra time per group over raw libzmq, in percent.
        public func overheadPercent(_ mode: Mode) -> Double {
            (medianGroupsPerSecond(.raw) / medianGroupsPerSecond(mode) - 1) * 100
        }
    }

    /// Runs every mode `repeats` times, interleaved (raw, raw_credit, troupe, troupe_fsync, raw, ...)
    /// so that the machine's load drifts over all modes alike. `progress` gets a line per trial.
    public static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> Report {
        guard options.actors >= 1, options.groupsPerActor >= 1, options.fsyncGroupsPerActor >= 1,
              options.samplesPerGroup >= 1, options.tokensPerSample.lowerBound >= 1, options.credit >= 1, options.repeats >= 1 else {
            throw RuntimeBenchError("ingestion", "invalid options: every count must be at least 1")
        }
        let contents = (0..<options.actors).map { a in
            synthesize(count: options.groupsPerActor, samples: options.samplesPerGroup, tokens: options.tokensPerSample,
                       seed: options.seed &+ UInt64(a) &* 7919)
        }
        let logDirectory = NSTemporaryDirectory() + "troupe-bench-ingestion-\(getpid())"
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: logDirectory) }

        var trials: [Trial] = []
        for r in 1...options.repeats {
            for mode in Mode.allCases {
                let perActor = mode == .troupeFsync ? min(options.fsyncGroupsPerActor, options.groupsPerActor) : options.groupsPerActor
                let groups = contents.map { Array($0.prefix(perActor)) }
                let trial: Trial
                switch mode {
                case .raw, .rawCredit:
                    trial = try rawTrial(mode: mode, groups: groups, credit: options.credit)
                case .troupe, .troupeFsync:
                    let logPath = mode == .troupeFsync ? logDirectory + "/run-\(r).log" : nil
                    trial = try troupeTrial(mode: mode, groups: groups, options: options, runLogPath: logPath)
                }
                trials.append(trial)
                progress(String(format: "ingestion %@ %d/%d: %.0f groups/s", mode.rawValue, r, options.repeats, trial.groupsPerSecond))
            }
        }
        progress("ingestion: cost of each step of the learner's path")
        let stages = try stageCosts(Array(contents[0].prefix(1000)), fsyncGroups: min(200, options.fsyncGroupsPerActor), logDirectory: logDirectory)
        let sample = try contents[0].prefix(50).map { try message(for: $0, lease: 1, prompt: 1, sequence: 1, runId: 1, epoch: 1).encode() }
        let sizes = sample.map { $0.reduce(0) { $0 + $1.count } }
        return Report(options: options, trials: trials, meanGroupBytes: Double(sizes.reduce(0, +)) / Double(max(1, sizes.count)),
                      frameCount: sample.first?.count ?? 0, stages: stages)
    }

    // MARK: groups

    /// One group's content: what a sampler would produce for G completions.
    struct GroupContent: Sendable {
        let tokenCounts: [Int]
        let tokens: [Int32]
        let logProbs: [Float]
        let rewards: [Double]
    }

    static func synthesize(count: Int, samples: Int, tokens: ClosedRange<Int>, seed: UInt64) -> [GroupContent] {
        var rng = Xoshiro256(seed: seed)
        return (0..<count).map { _ in
            let counts = (0..<samples).map { _ in tokens.lowerBound + Int(rng.next() % UInt64(tokens.count)) }
            let total = counts.reduce(0, +)
            // Token ids of a 49k vocabulary and log-probs of a sampler at temperature 1 (negative, finite).
            let ids = (0..<total).map { _ in Int32(rng.next() % 49_152) }
            let logProbs = (0..<total).map { _ in -Float(rng.nextUnit() * 8 + 1e-4) }
            let rewards = (0..<samples).map { _ in rng.next() % 2 == 0 ? 1.0 : 0.0 }
            return GroupContent(tokenCounts: counts, tokens: ids, logProbs: logProbs, rewards: rewards)
        }
    }

    /// The GroupSubmit an actor sends for this content (as `ActorClient.enqueue` builds it).
    static func message(for g: GroupContent, lease: UInt64, prompt: UInt64, sequence: UInt64, runId: UInt64, epoch: UInt64) -> WireMessage {
        var h = Troupe_V1_GroupSubmit()
        h.leaseID = lease
        h.promptID = prompt
        h.sequence = sequence
        h.version = PolicyVersion(epoch: epoch, step: 0).proto
        h.actorRunID = runId
        h.generationMs = 250
        h.samples = zip(g.tokenCounts, g.rewards).map { count, reward in
            var info = Troupe_V1_SampleInfo()
            info.tokenCount = UInt32(count)
            info.finishReason = count % 3 == 0 ? .length : .stop
            info.temperature = 1
            info.extractedAnswer = reward > 0 ? "42" : "41"
            info.reward = reward
            return info
        }
        return GroupSubmission(header: h, tokenIDs: g.tokens, logProbs: g.logProbs).wireMessage()
    }

    // MARK: where the time goes

    /// Each step of `IngestingLearner.receiveGroup` timed over all `groups` on this thread, without
    /// sockets: what the learner's path costs beyond receiving the bytes.
    static func stageCosts(_ groups: [GroupContent], fsyncGroups: Int, logDirectory: String) throws -> [Stage] {
        let phase = "ingestion (stages)"
        let n = groups.count
        let epoch: UInt64 = 0xBE7C4
        let core = LearnerCore(prompts: (1...UInt64(n + 64)).map { LearnerCore.PromptEntry(id: $0, text: "p", tokens: (0..<24).map { Int32($0) }) },
                               epoch: epoch, batchGroups: 16, maxStaleness: 1_000_000, leaseSize: 64, leaseTimeout: 3600,
                               heartbeatTimeout: 3600, credit: 4)
        _ = core.hello(identity: "stages", runId: 1, now: 0)
        var slots: [(UInt64, UInt64)] = []
        while slots.count < n {
            guard let lease = core.grantLease(to: "stages", maxPrompts: 64, now: 0) else { throw RuntimeBenchError(phase, "no lease") }
            slots += lease.prompts.map { (lease.id, $0) }
        }
        let encoded = try groups.enumerated().map { i, g in
            try message(for: g, lease: slots[i].0, prompt: slots[i].1, sequence: UInt64(i + 1), runId: 1, epoch: epoch).encode()
        }
        var stages: [Stage] = []
        func timed<T>(_ name: String, count: Int = n, _ body: () throws -> T) rethrows -> T {
            let t0 = monotonicSeconds()
            let result = try body()
            stages.append(Stage(name: name, microsecondsPerGroup: (monotonicSeconds() - t0) / Double(count) * 1e6))
            return result
        }
        let messages = try timed("decode (WireMessage.decode: protobuf, checksum)") {
            try encoded.map { frames -> WireMessage in
                do { return try WireMessage.decode(frames, limits: .control) } catch { throw RuntimeBenchError(phase, "\(error)") }
            }
        }
        let submissions = try timed("validate (GroupSubmission(validating:))") {
            try messages.map { m -> GroupSubmission in
                do { return try GroupSubmission(validating: m) } catch { throw RuntimeBenchError(phase, "\(error)") }
            }
        }
        let rollouts = timed("RolloutGroup (per-sample arrays)") {
            submissions.map { s -> RolloutGroup in
                let h = s.header
                let ranges = s.sampleRanges
                let samples = h.samples.enumerated().map { i, info in
                    RolloutSample(tokens: Array(s.tokenIDs[ranges[i]]), logprobs: Array(s.logProbs[ranges[i]]), entropies: nil,
                                  finishReason: info.finishReason == .length ? .length : .stop, temperature: info.temperature,
                                  answer: info.hasExtractedAnswer ? info.extractedAnswer : nil, reward: info.reward,
                                  components: info.rewardComponents)
                }
                return RolloutGroup(key: GroupKey(actor: "stages", actorRunId: 1, sequence: h.sequence), promptId: h.promptID,
                                    leaseId: h.leaseID, version: PolicyVersion(h.version), promptTokens: core.prompts[h.promptID]!.tokens,
                                    samples: samples, generationMs: h.generationMs)
            }
        }
        try timed("LearnerCore.submit (+ batch formation)") {
            for g in rollouts {
                guard case .accepted = core.submit(g, from: "stages", now: 0) else { throw RuntimeBenchError(phase, "group \(g.key) not accepted") }
                if core.pending.count >= core.batchGroups, let taken = core.takeBatch() { core.stepCompleted(trainedGroups: taken.batch.count) }
            }
        }
        let bodies = timed("run-log record: RolloutGroup.logBody (base64 arrays)") {
            rollouts.map { g -> [String: Any] in
                var body = g.logBody
                body["actor_run"] = "1"
                return body
            }
        }
        let lines = try timed("run-log record: JSONSerialization") {
            try bodies.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        }
        timed("run-log record: BLAKE2b of the line") {
            for line in lines { _ = RunLog.hash(line) }
        }
        let log = try RunLog(path: logDirectory + "/stages.log")
        let fsynced = Array(rollouts.prefix(fsyncGroups))
        try timed("run-log append (the record + write + fsync)", count: fsynced.count) {
            for g in fsynced { try log.append("group_accepted", g.logBody) }
        }
        timed("Ack (encode)") {
            for s in submissions {
                var ack = Troupe_V1_Ack()
                ack.sequence = s.header.sequence
                ack.status = .accepted
                ack.creditGranted = 1
                ack.currentVersion = PolicyVersion(epoch: epoch, step: 3).proto
                _ = try? WireMessage(.ack(ack)).encode()
            }
        }
        return stages
    }

    // MARK: raw libzmq

    static func rawTrial(mode: Mode, groups: [[GroupContent]], credit: Int) throws -> Trial {
        let phase = "ingestion (\(mode.rawValue))"
        let deadline = monotonicSeconds() + 120
        // The same frames the troupe modes send (lease and prompt ids differ by a varint byte at most).
        let encoded = try groups.enumerated().map { a, list in
            try list.enumerated().map { i, g in
                try message(for: g, lease: UInt64(i / 64 + 1), prompt: UInt64(a * 100_000 + i + 1), sequence: UInt64(i + 1),
                            runId: UInt64(a + 1), epoch: 0xBE7C4).encode()
            }
        }
        let expected = encoded.reduce(0) { $0 + $1.count }
        let bytes = encoded.reduce(0) { $0 + $1.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }
        let endpoint = Mailbox<Endpoint>()
        let end = Mailbox<Double>()
        let stop = StopFlag()
        let gate = StartGate()
        let reply = Frame([UInt8](repeating: 0xAC, count: 32))

        let learner = BenchThread(name: "raw-learner") {
            let context = try ZMQContext(ioThreads: 1)
            let router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            defer { router.close() }
            try router.set([.routerMandatory(true), .sendHighWaterMark(10_000), .receiveHighWaterMark(10_000)])
            endpoint.put(try router.bind(Endpoint(parsing: "tcp://127.0.0.1:0")))
            var received = 0
            while !stop.isRaised {
                if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "the learner side timed out after \(received) of \(expected) groups") }
                switch try router.receive(deadline: .afterMilliseconds(20)) {
                case .timedOut, .overLimit: continue
                case .message(let frames):
                    if frames.count == 2 && frames[1].count == 1 { continue } // a connection probe
                    guard frames.count == 4 else { throw RuntimeBenchError(phase, "a group arrived as \(frames.count) frames") }
                    received += 1
                    if mode == .rawCredit {
                        guard try router.send([frames[0], reply]) == .sent else { throw RuntimeBenchError(phase, "reply refused") }
                    }
                    if received == expected { end.put(monotonicSeconds()) }
                }
            }
        }
        var roles = [learner]
        do {
            let bound = try endpoint.take(deadline: deadline, phase: phase, what: "bound endpoint", watching: roles)
            for (a, frames) in encoded.enumerated() {
                roles.append(BenchThread(name: "raw-actor-\(a)") {
                    do {
                        let context = try ZMQContext(ioThreads: 1)
                        let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
                        defer { dealer.close() }
                        try dealer.set([.immediate(true), .sendHighWaterMark(1000)])
                        try dealer.connect(bound)
                        // With .immediate, the probe is accepted only once the connection is up.
                        guard try dealer.send([Frame([0x50])], deadline: .afterMilliseconds(10_000)) == .sent else {
                            throw RuntimeBenchError(phase, "actor \(a) could not connect")
                        }
                        try gate.arriveAndWait(deadline: deadline, phase: phase)
                        var inFlight = 0
                        var next = 0
                        var replies = 0
                        while next < frames.count || (mode == .rawCredit && replies < frames.count) {
                            if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "actor \(a) timed out") }
                            while next < frames.count && (mode == .raw || inFlight < credit) {
                                guard try dealer.send(frames[next], deadline: .afterMilliseconds(10_000)) == .sent else {
                                    throw RuntimeBenchError(phase, "actor \(a): send blocked for 10 s")
                                }
                                next += 1
                                inFlight += 1
                            }
                            if mode == .rawCredit {
                                guard case .message = try dealer.receive(deadline: .afterMilliseconds(10_000)) else {
                                    throw RuntimeBenchError(phase, "actor \(a): no reply within 10 s")
                                }
                                replies += 1
                                inFlight -= 1
                            }
                        }
                        // Closing discards what is still queued: stay until the learner has every group.
                        while !stop.isRaised {
                            if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "actor \(a): the learner never got every group") }
                            usleep(1000)
                        }
                    } catch {
                        gate.cancel()
                        throw error
                    }
                })
            }
            let start = try gate.open(whenReady: encoded.count, deadline: deadline, phase: phase)
            let finish = try end.take(deadline: deadline, phase: phase, what: "last group", watching: roles)
            stop.raise()
            try joinAll(roles, timeoutSeconds: max(1, deadline - monotonicSeconds()) + 5, phase: phase)
            return Trial(mode: mode, groups: expected, bytes: bytes, seconds: finish - start)
        } catch {
            stop.raise()
            gate.cancel()
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }

    // MARK: the learner's path

    static func troupeTrial(mode: Mode, groups: [[GroupContent]], options: Options, runLogPath: String?) throws -> Trial {
        let phase = "ingestion (\(mode.rawValue))"
        let deadline = monotonicSeconds() + 300
        let expected = groups.reduce(0) { $0 + $1.count }
        let endpoint = Mailbox<Endpoint>()
        let end = Mailbox<Double>()
        let bytesSent = Tally()
        let stop = StopFlag()
        let gate = StartGate()
        let epoch: UInt64 = 0xBE7C4
        // Enough prompts that every group has its own lease slot; a few tokens each, as in a run.
        let prompts = (1...UInt64(expected + options.actors * 64)).map {
            LearnerCore.PromptEntry(id: $0, text: "prompt \($0)", tokens: (0..<24).map { Int32($0 % 200) })
        }

        let learner = BenchThread(name: "learner") {
            let core = LearnerCore(prompts: prompts, epoch: epoch, batchGroups: 16, maxStaleness: 1_000_000, leaseSize: 64,
                                   leaseTimeout: 3600, heartbeatTimeout: 3600, credit: options.credit)
            let runLog = try runLogPath.map { try RunLog(path: $0) }
            let context = try ZMQContext(ioThreads: 1)
            let control = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            defer { control.close() }
            // LearnerServer's control socket options.
            try control.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                             .sendHighWaterMark(10_000), .receiveHighWaterMark(10_000),
                             .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
            endpoint.put(try control.bind(Endpoint(parsing: "tcp://127.0.0.1:0")))
            let ingest = IngestingLearner(core: core, runLog: runLog, epoch: epoch, control: control, phase: phase)
            let poller = Poller()
            poller.register(control)
            while !stop.isRaised {
                if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "the learner timed out after \(ingest.groups) of \(expected) groups") }
                guard try poller.poll(until: .afterMilliseconds(20)).contains(control) else { continue }
                for _ in 0..<256 {
                    guard try ingest.handleNext() else { break }
                    if ingest.groups == expected && end.current == nil { end.put(monotonicSeconds()) }
                }
            }
        }
        var roles = [learner]
        do {
            let bound = try endpoint.take(deadline: deadline, phase: phase, what: "bound endpoint", watching: roles)
            for (a, list) in groups.enumerated() {
                roles.append(BenchThread(name: "actor-\(a)") {
                    do {
                        let actor = try SimulatedActor(index: a, learner: bound, phase: phase, deadline: deadline)
                        bytesSent.add(try actor.prepare(list, epoch: epoch))
                        try gate.arriveAndWait(deadline: deadline, phase: phase)
                        try actor.stream()
                    } catch {
                        gate.cancel()
                        throw error
                    }
                })
            }
            let start = try gate.open(whenReady: groups.count, deadline: deadline, phase: phase)
            let finish = try end.take(deadline: deadline, phase: phase, what: "last group", watching: roles)
            // The actors end once their last acks arrive; then the learner may stop.
            try joinAll(Array(roles.dropFirst()), timeoutSeconds: max(1, deadline - monotonicSeconds()) + 5, phase: phase)
            stop.raise()
            try learner.join(timeoutSeconds: 15, phase: phase)
            return Trial(mode: mode, groups: expected, bytes: bytesSent.total, seconds: finish - start)
        } catch {
            stop.raise()
            gate.cancel()
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }
}

/// The learner side of the ingestion bench: the per-message work of `LearnerServer`'s control loop
/// for Hello, LeaseRequest and GroupSubmit, without the training, logging stream and housekeeping.
final class IngestingLearner {
    let core: LearnerCore
    let runLog: RunLog?
    let epoch: UInt64
    let control: ZMQSocket
    let phase: String
    private(set) var groups = 0
    private var peers: [PeerID: String] = [:]

    init(core: LearnerCore, runLog: RunLog?, epoch: UInt64, control: ZMQSocket, phase: String) {
        self.core = core
        self.runLog = runLog
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
                let (credit, _) = core.hello(identity: hello.actorIdentity, runId: hello.actorRunID, now: now)
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

    /// `LearnerServer.receiveGroup`, step for step; a group the real learner would reject is a bench bug.
    private func receiveGroup(_ message: WireMessage, identity: String, peer: PeerID, now: Double) throws {
        var ack = Troupe_V1_Ack()
        ack.currentVersion = PolicyVersion(epoch: epoch, step: UInt64(core.step)).proto
        let submission: GroupSubmission
        do {
            submission = try GroupSubmission(validating: message)
        } catch {
            throw RuntimeBenchError(phase, "a synthetic group failed validation: \(error)")
        }
        let h = submission.header
        ack.sequence = h.sequence
        guard let promptTokens = core.prompts[h.promptID]?.tokens else { throw RuntimeBenchError(phase, "unknown prompt \(h.promptID)") }
        let ranges = submission.sampleRanges
        let samples = h.samples.enumerated().map { i, s -> RolloutSample in
            let r = ranges[i]
            return RolloutSample(tokens: Array(submission.tokenIDs[r]), logprobs: Array(submission.logProbs[r]),
                                 entropies: submission.entropies.map { Array($0[r]) },
                                 finishReason: s.finishReason == .length ? .length : .stop, temperature: s.temperature,
                                 answer: s.hasExtractedAnswer ? s.extractedAnswer : nil, reward: s.reward,
                                 components: s.rewardComponents)
        }
        let group = RolloutGroup(key: GroupKey(actor: identity, actorRunId: h.actorRunID, sequence: h.sequence),
                                 promptId: h.promptID, leaseId: h.leaseID, version: PolicyVersion(h.version),
                                 promptTokens: promptTokens, samples: samples, generationMs: h.generationMs)
        switch core.submit(group, from: identity, now: now) {
        case .accepted(let credit):
            if let runLog {
                var body = group.logBody
                body["actor_run"] = String(h.actorRunID, radix: 16)
                try runLog.append("group_accepted", body)
            }
            ack.status = .accepted
            ack.creditGranted = UInt32(credit)
        case .duplicate:
            throw RuntimeBenchError(phase, "group \(group.key) counted as a duplicate")
        case .rejected(let reason, let text):
            throw RuntimeBenchError(phase, "group \(group.key) rejected (\(reason.rawValue)): \(text)")
        }
        try send(WireMessage(.ack(ack)), to: peer)
        // An instant trainer: batches leave as soon as they form, so the pending buffer stays small.
        if core.pending.count >= core.batchGroups, let taken = core.takeBatch() {
            core.stepCompleted(trainedGroups: taken.batch.count)
        }
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
        // ActorClient's control socket options.
        try dealer.set([.routingID(Array("bench-\(index)#\(String(runId, radix: 16))".utf8)), .immediate(true),
                        .maxMessageSize(WireLimits.control.socketMaxFrameBytes), .sendHighWaterMark(1000),
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

    /// The timed phase: send while credit lasts, take acks, until every group is acknowledged.
    func stream() throws {
        var next = 0
        var acked = 0
        while acked < frames.count {
            while credit > 0 && next < frames.count {
                guard try dealer.send(frames[next], deadline: .afterMilliseconds(10_000)) == .sent else {
                    throw RuntimeBenchError(phase, "actor \(index): send blocked for 10 s")
                }
                next += 1
                credit -= 1
            }
            guard case .ack(let ack) = try reply().body else { throw RuntimeBenchError(phase, "actor \(index): expected an Ack") }
            guard ack.status == .accepted else { throw RuntimeBenchError(phase, "actor \(index): group \(ack.sequence) \(ack.status): \(ack.text)") }
            credit += Int(ack.creditGranted)
            acked += 1
        }
    }

    private func reply() throws -> WireMessage {
        let wait = Int(max(1, min(10, deadline - monotonicSeconds())) * 1000)
        switch try dealer.receiveMessage(deadline: .afterMilliseconds(wait), limits: .control) {
        case .message(let m): return m
        case .timedOut: throw RuntimeBenchError(phase, "actor \(index): no reply within \(wait) ms")
        case .rejected(let e): throw RuntimeBenchError(phase, "actor \(index): bad reply: \(e)")
        }
    }
}
