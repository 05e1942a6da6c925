import Foundation
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// Group ingestion at the learner (docs/benchmarks.md): K simulated actors stream realistic groups
/// into one ROUTER, under credit like `ActorClient`, and the learner side does exactly what
/// `LearnerServer.receiveGroup` does per group: receive + `WireMessage.decode` → `GroupSubmission
/// (validating:)` → `RolloutGroup` → `LearnerCore.submit` → (optionally) the run-log append → Ack,
/// with the learner's group commit (one fsync per drained batch of messages, then their acks). The same groups, byte for byte and frame for frame, also go through raw libzmq
/// DEALER→ROUTER in the same run: one-way with no processing (the target's baseline), and with a
/// tiny reply per message under the same credit (to separate the protocol's round trips from the
/// learner's processing).
///
/// Leases are granted before the timed phase (a real actor asks for the next lease while it samples,
/// off the group path). A batch is taken and marked trained as soon as `batch_groups` groups wait
/// (an instant trainer), so the learner's state stays bounded as in a run.
package enum IngestionBench {
    package enum Mode: String, CaseIterable, Sendable {
        /// DEALER→ROUTER, no replies, no decoding: the libzmq ceiling.
        case raw
        /// As `raw`, plus a 32-byte reply per message and at most `credit` messages in flight.
        case rawCredit = "raw_credit"
        /// The learner's path without the run-log append.
        case troupe
        /// The learner's path with the run log and its group commit (what a real learner does).
        case troupeFsync = "troupe_fsync"
    }

    package struct Options: Sendable {
        package var actors = 4
        package var groupsPerActor = 5000
        /// Groups per actor for the mode with the run log (it writes ≈ 12 KB per group to disk).
        package var fsyncGroupsPerActor = 2500
        package var samplesPerGroup = 16
        package var tokensPerSample: ClosedRange<Int> = 8...128
        /// The learner's default (`learner.credit`), so the figures are those of an unconfigured run.
        package var credit = RunConfig().learner.credit
        package var repeats = 5
        package var seed: UInt64 = 7
        /// Emulated links of this rate (a tc rate, "1gbit") between the learner and each actor
        /// (`EmulatedLinks`, root only) instead of loopback.
        package var linkRate: String?
        package init() {}
    }

    package struct Trial: Sendable {
        package let mode: Mode
        package let groups: Int
        package let bytes: Int
        package let seconds: Double
        /// Each group's round trip at its actor, send to reply or Ack (empty for `raw`, which has no replies).
        package var roundTrips: [Double] = []
        /// CPU seconds the bench process (actors, learner, run-log threads, libzmq) used over `seconds`.
        package var cpuSeconds: Double = .nan
        package var groupsPerSecond: Double { Double(groups) / seconds }
        package var cpuMicrosecondsPerGroup: Double { cpuSeconds / Double(groups) * 1e6 }
        /// `cpuSeconds` as a share of every CPU's time over the trial: near 100, the trial was CPU-bound.
        package var cpuBusyPercent: Double { cpuSeconds / (seconds * Double(ProcessInfo.processInfo.activeProcessorCount)) * 100 }
        package var megabytesPerSecond: Double { Double(bytes) / seconds / 1e6 }
    }

    /// Microseconds per group of one step of the learner's path, measured alone on one thread.
    package struct Stage: Sendable {
        package let name: String
        package let microsecondsPerGroup: Double
    }

    package struct Report: Sendable {
        package let options: Options
        package let trials: [Trial]
        /// Group message sizes (header + raw frames), for the record.
        package let meanGroupBytes: Double
        package let frameCount: Int
        /// Single-threaded CPU cost of each step of the learner's path, without sockets.
        package let stages: [Stage]

        /// `value` of each of `mode`'s trials.
        private func each(_ mode: Mode, _ value: (Trial) -> Double) -> [Double] { trials.filter { $0.mode == mode }.map(value) }
        package func medianGroupsPerSecond(_ mode: Mode) -> Double { BenchStats.median(each(mode, \.groupsPerSecond)) }
        package func medianMegabytesPerSecond(_ mode: Mode) -> Double { BenchStats.median(each(mode, \.megabytesPerSecond)) }
        /// Why `mode`'s overhead over raw gets no verdict (its trials or raw's too far apart), or nil.
        package func noiseProblem(_ mode: Mode) -> String? {
            RuntimeTargets.noiseProblem([("the trials of raw libzmq", each(.raw, \.groupsPerSecond)),
                                         ("the trials of \(mode.rawValue)", each(mode, \.groupsPerSecond))])
        }
        package func medianCPUMicrosecondsPerGroup(_ mode: Mode) -> Double { BenchStats.median(each(mode, \.cpuMicrosecondsPerGroup)) }
        package func medianCPUBusyPercent(_ mode: Mode) -> Double { BenchStats.median(each(mode, \.cpuBusyPercent)) }
        /// The q-quantile of a group's round trip (send to reply or Ack) over every trial of `mode`, in seconds.
        package func roundTrip(_ mode: Mode, quantile q: Double) -> Double {
            BenchStats.quantile(trials.filter { $0.mode == mode }.flatMap(\.roundTrips), q)
        }
        /// Extra time per group over raw libzmq, in percent.
        package func overheadPercent(_ mode: Mode) -> Double {
            (medianGroupsPerSecond(.raw) / medianGroupsPerSecond(mode) - 1) * 100
        }
    }

    /// Runs every mode `repeats` times, interleaved (raw, raw_credit, troupe, troupe_fsync, raw, ...)
    /// so that the machine's load drifts over all modes alike. `progress` gets a line per trial.
    package static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> Report {
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

        let links = try options.linkRate.map { try EmulatedLinks(hosts: options.actors + 1, rate: $0) }
        defer { links?.remove() }
        var trials: [Trial] = []
        for r in 1...options.repeats {
            for mode in Mode.allCases {
                let perActor = mode == .troupeFsync ? min(options.fsyncGroupsPerActor, options.groupsPerActor) : options.groupsPerActor
                let groups = contents.map { Array($0.prefix(perActor)) }
                let trial: Trial
                switch mode {
                case .raw, .rawCredit:
                    trial = try rawTrial(mode: mode, groups: groups, credit: options.credit, links: links)
                case .troupe, .troupeFsync:
                    let logPath = mode == .troupeFsync ? logDirectory + "/run-\(r).log" : nil
                    trial = try troupeTrial(mode: mode, groups: groups, options: options, runLogPath: logPath, links: links)
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

    /// The learner's admission for synthetic groups of `samples` samples of at most `maxTokens` tokens:
    /// every limit checked, no re-scoring (random token ids are no model's text).
    static func admission(samples: Int, maxTokens: Int) -> GroupAdmission {
        GroupAdmission(limits: .init(vocabularySize: 49_152, contextLength: 24 + maxTokens, maxNewTokens: maxTokens, groupSize: samples,
                                     temperatures: [1], entropiesRequired: false),
                       scorer: nil, stopSequences: [])
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

    // MARK: raw libzmq

    /// What the raw trial's learner and actor threads share.
    private struct RawTrial {
        let mode: Mode
        let credit: Int
        let phase: String
        let deadline: Double
        let expected: Int
        let endpoint = Mailbox<Endpoint>()
        let end = Mailbox<Double>()
        let stop = StopFlag()
        let gate = StartGate()
        let roundTrips = Collected<Double>()
    }

    static func rawTrial(mode: Mode, groups: [[GroupContent]], credit: Int, links: EmulatedLinks?) throws -> Trial {
        // The same frames the troupe modes send (lease and prompt ids differ by a varint byte at most).
        let encoded = try groups.enumerated().map { a, list in
            try list.enumerated().map { i, g in
                try message(for: g, lease: UInt64(i / 64 + 1), prompt: UInt64(a * 100_000 + i + 1), sequence: UInt64(i + 1),
                            runId: UInt64(a + 1), epoch: 0xBE7C4).encode()
            }
        }
        let bytes = encoded.reduce(0) { $0 + $1.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }
        let trial = RawTrial(mode: mode, credit: credit, phase: "ingestion (\(mode.rawValue))", deadline: monotonicSeconds() + 120,
                             expected: encoded.reduce(0) { $0 + $1.count })
        let phase = trial.phase, deadline = trial.deadline
        var roles = [BenchThread(name: "raw-learner") { try rawLearner(trial, links: links) }]
        do {
            let bound = try trial.endpoint.take(deadline: deadline, phase: phase, what: "bound endpoint", watching: roles)
            for (a, frames) in encoded.enumerated() {
                roles.append(BenchThread(name: "raw-actor-\(a)") {
                    do {
                        try rawActor(trial, index: a, frames: frames, learner: bound, links: links)
                    } catch {
                        trial.gate.cancel()
                        throw error
                    }
                })
            }
            let start = try trial.gate.open(whenReady: encoded.count, deadline: deadline, phase: phase)
            let cpuAtStart = processCPUSeconds()
            let finish = try trial.end.take(deadline: deadline, phase: phase, what: "last group", watching: roles)
            let cpu = processCPUSeconds() - cpuAtStart
            // With replies, the actors end once their last replies arrive: a learner that stopped at
            // its last group would discard the replies still queued.
            if mode == .rawCredit {
                try joinAll(Array(roles.dropFirst()), timeoutSeconds: max(1, deadline - monotonicSeconds()) + 5, phase: phase)
            }
            trial.stop.raise()
            try joinAll(roles, timeoutSeconds: max(1, deadline - monotonicSeconds()) + 5, phase: phase)
            return Trial(mode: mode, groups: trial.expected, bytes: bytes, seconds: finish - start, roundTrips: trial.roundTrips.all, cpuSeconds: cpu)
        } catch {
            trial.stop.raise()
            trial.gate.cancel()
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }

    /// A bare ROUTER that counts groups (and replies to each in `rawCredit` mode).
    private static func rawLearner(_ trial: RawTrial, links: EmulatedLinks?) throws {
        try links?.enter(host: 0)
        let context = try ZMQContext(ioThreads: 1)
        let router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        defer { router.close() }
        try router.set([.routerMandatory(true), .sendHighWaterMark(10_000), .receiveHighWaterMark(10_000)])
        trial.endpoint.put(try router.bind(EmulatedLinks.bindEndpoint(links, host: 0)))
        let reply = Frame([UInt8](repeating: 0xAC, count: 32))
        var received = 0
        while !trial.stop.isRaised {
            if monotonicSeconds() > trial.deadline {
                throw RuntimeBenchError(trial.phase, "the learner side timed out after \(received) of \(trial.expected) groups")
            }
            switch try router.receive(deadline: .afterMilliseconds(20)) {
            case .timedOut, .overLimit: continue
            case .message(let frames):
                if frames.count == 2 && frames[1].count == 1 { continue } // a connection probe
                guard frames.count == 4 else { throw RuntimeBenchError(trial.phase, "a group arrived as \(frames.count) frames") }
                received += 1
                if trial.mode == .rawCredit {
                    guard try router.send([frames[0], reply]) == .sent else { throw RuntimeBenchError(trial.phase, "reply refused") }
                }
                if received == trial.expected { trial.end.put(monotonicSeconds()) }
            }
        }
    }

    /// A bare DEALER that sends its groups (within `credit` unanswered ones in `rawCredit` mode).
    private static func rawActor(_ trial: RawTrial, index a: Int, frames: [[Frame]], learner: Endpoint, links: EmulatedLinks?) throws {
        let phase = trial.phase
        try links?.enter(host: a + 1)
        let context = try ZMQContext(ioThreads: 1)
        let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
        defer { dealer.close() }
        try dealer.set([.immediate(true), .sendHighWaterMark(1000)])
        try dealer.connect(learner)
        // With .immediate, the probe is accepted only once the connection is up.
        guard try dealer.send([Frame([0x50])], deadline: .afterMilliseconds(10_000)) == .sent else {
            throw RuntimeBenchError(phase, "actor \(a) could not connect")
        }
        try trial.gate.arriveAndWait(deadline: trial.deadline, phase: phase)
        var inFlight = 0
        var next = 0
        var replies = 0
        // Replies come back in the order the groups went out (one connection).
        var sentAt = [Double](repeating: 0, count: frames.count)
        var roundTrips: [Double] = []
        roundTrips.reserveCapacity(trial.mode == .rawCredit ? frames.count : 0)
        while next < frames.count || (trial.mode == .rawCredit && replies < frames.count) {
            if monotonicSeconds() > trial.deadline { throw RuntimeBenchError(phase, "actor \(a) timed out") }
            while next < frames.count && (trial.mode == .raw || inFlight < trial.credit) {
                guard try dealer.send(frames[next], deadline: .afterMilliseconds(10_000)) == .sent else {
                    throw RuntimeBenchError(phase, "actor \(a): send blocked for 10 s")
                }
                sentAt[next] = monotonicSeconds()
                next += 1
                inFlight += 1
            }
            if trial.mode == .rawCredit {
                guard case .message = try dealer.receive(deadline: .afterMilliseconds(10_000)) else {
                    throw RuntimeBenchError(phase, "actor \(a): no reply within 10 s")
                }
                roundTrips.append(monotonicSeconds() - sentAt[replies])
                replies += 1
                inFlight -= 1
            }
        }
        trial.roundTrips.add(roundTrips)
        // Closing discards what is still queued: stay until the learner has every group (with replies,
        // every reply says it has).
        while trial.mode == .raw && !trial.stop.isRaised {
            if monotonicSeconds() > trial.deadline { throw RuntimeBenchError(phase, "actor \(a): the learner never got every group") }
            usleep(1000)
        }
    }

    // MARK: the learner's path

    static func troupeTrial(mode: Mode, groups: [[GroupContent]], options: Options, runLogPath: String?, links: EmulatedLinks?) throws -> Trial {
        let phase = "ingestion (\(mode.rawValue))"
        let deadline = monotonicSeconds() + 300
        let expected = groups.reduce(0) { $0 + $1.count }
        let endpoint = Mailbox<Endpoint>()
        let end = Mailbox<Double>()
        let bytesSent = Tally()
        let roundTrips = Collected<Double>()
        let stop = StopFlag()
        let gate = StartGate()
        let epoch: UInt64 = 0xBE7C4
        // Enough prompts that every group has its own lease slot; a few tokens each, as in a run.
        let prompts = (1...UInt64(expected + options.actors * 64)).map {
            PromptEntry(id: $0, text: "prompt \($0)", tokens: (0..<24).map { Int32($0 % 200) })
        }

        let learner = BenchThread(name: "learner") {
            try links?.enter(host: 0)
            // The simulated actors lease every group they will send before the timed phase: no lease cap.
            let core = LearnerCore(prompts: prompts, epoch: epoch, batchGroups: 16, maxStaleness: 1_000_000, leaseSize: 64,
                                   leaseTimeout: 3600, heartbeatTimeout: 3600, credit: options.credit, leaseCap: .max)
            let runLog = try runLogPath.map { try RunLog(path: $0, writing: .thread) }
            let context = try ZMQContext(ioThreads: 1)
            let control = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            defer { control.close() }
            // LearnerServer's control socket options.
            try control.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                             .sendHighWaterMark(10_000), .receiveHighWaterMark(10_000),
                             .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
            endpoint.put(try control.bind(EmulatedLinks.bindEndpoint(links, host: 0)))
            let ingest = IngestingLearner(core: core, admission: admission(samples: options.samplesPerGroup, maxTokens: options.tokensPerSample.upperBound),
                                          runLog: runLog, epoch: epoch, control: control, phase: phase)
            let poller = Poller()
            poller.register(control)
            if let wake = runLog?.wakeFileDescriptor { poller.register(fileDescriptor: wake) }
            while !stop.isRaised {
                if monotonicSeconds() > deadline { throw RuntimeBenchError(phase, "the learner timed out after \(ingest.groups) of \(expected) groups") }
                guard try !poller.poll(until: .afterMilliseconds(20)).isEmpty else { continue }
                for _ in 0..<256 {
                    guard try ingest.handleNext() else { break }
                }
                try ingest.flush()
                if ingest.groups == expected && end.current == nil { end.put(monotonicSeconds()) }
            }
        }
        var roles = [learner]
        do {
            let bound = try endpoint.take(deadline: deadline, phase: phase, what: "bound endpoint", watching: roles)
            for (a, list) in groups.enumerated() {
                roles.append(BenchThread(name: "actor-\(a)") {
                    do {
                        try links?.enter(host: a + 1)
                        let actor = try SimulatedActor(index: a, learner: bound, phase: phase, deadline: deadline)
                        bytesSent.add(try actor.prepare(list, epoch: epoch))
                        try gate.arriveAndWait(deadline: deadline, phase: phase)
                        roundTrips.add(try actor.stream())
                    } catch {
                        gate.cancel()
                        throw error
                    }
                })
            }
            let start = try gate.open(whenReady: groups.count, deadline: deadline, phase: phase)
            let cpuAtStart = processCPUSeconds()
            let finish = try end.take(deadline: deadline, phase: phase, what: "last group", watching: roles)
            let cpu = processCPUSeconds() - cpuAtStart
            // The actors end once their last acks arrive; then the learner may stop.
            try joinAll(Array(roles.dropFirst()), timeoutSeconds: max(1, deadline - monotonicSeconds()) + 5, phase: phase)
            stop.raise()
            try learner.join(timeoutSeconds: 15, phase: phase)
            return Trial(mode: mode, groups: expected, bytes: bytesSent.total, seconds: finish - start, roundTrips: roundTrips.all, cpuSeconds: cpu)
        } catch {
            stop.raise()
            gate.cancel()
            try? joinAll(roles, timeoutSeconds: 15, phase: phase)
            throw error
        }
    }
}
