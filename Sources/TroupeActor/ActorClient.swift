import Foundation
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTensor
import TroupeTokenizer
import TroupeWeights
import TroupeWire

/// An actor process (docs/ARCHITECTURE.md §1): joins a learner given only its control address, fetches the
/// current weights, asks for leases, samples on a worker thread, and submits each group with its
/// PolicyVersion under credit. Unacknowledged groups are resent with the same sequence number after a
/// reconnect; new weights are swapped in between jobs. It outlives learner restarts: silence from the
/// learner makes it say Hello again until a learner answers.
package final class ActorClient {
    package struct Options {
        package var learner: Endpoint
        package var identity: String
        /// How long to wait for the first Welcome before giving up (a typo in the address must not hang).
        package var connectTimeout: Double = 60
        /// Silence after which the learner is presumed gone and Hello is repeated.
        package var learnerSilence: Double = 6
        /// Fault injection for tests: keep the first weights forever and sample leases with them anyway,
        /// so the learner must reject this actor's groups as stale.
        package var ignoreNewWeights = false
        /// Where this actor serves the weight chunks it holds to actors the learner places below it
        /// (`WeightRelay`); nil: it does not relay. `WeightRelay.defaultAddress` picks one.
        package var relay: ListenAddress?
        package var weights = WeightReceiver.Options()
        package init(learner: Endpoint, identity: String) {
            self.learner = learner
            self.identity = identity
        }
    }

    let options: Options
    let console: Console
    let runId: UInt64
    let context: ZMQContext
    private var control: ZMQSocket
    private var receiver: WeightReceiver?
    private var relay: WeightRelay?
    private var announce: ZMQSocket?
    private var logs: LogPublisher?
    private var session: Session?
    private var sequence: UInt64 = 0
    /// Groups sent or waiting to be sent, by sequence number, until acknowledged.
    private var unacked: [UInt64: WireMessage] = [:]
    private var unsent: [UInt64] = []
    private var credit = 0
    private var lastHeard = monotonicSeconds()
    private var lastHello = 0.0
    /// How the last weights came (shared memory or chunks): said on the console when it changes.
    private var lastWeightsPath = ""
    private var lastHeartbeat = 0.0
    private var everWelcomed = false
    private let started = monotonicSeconds()
    private var leaseRequested = false
    private var nextLeaseAt = 0.0
    private var queuedJobs: [(lease: Troupe_V1_Lease, prompts: [Troupe_V1_Prompt])] = []
    private var produced: UInt64 = 0
    private var tokensProduced = 0
    private var samplingSeconds = 0.0
    private var stopReason: String?

    /// What a Welcome establishes: the run's model shape, tokenizer, reward, endpoints and weights.
    final class Session {
        let epoch: UInt64
        let welcome: Troupe_V1_Welcome
        let config: ModelConfig
        let tokenizer: any Tokenizer
        let algorithm: AlgorithmOptions
        let worker: BackgroundWorker<SamplingJob, SamplingOutcome>
        var model: LlamaModel?
        var version: PolicyVersion?
        var newest: PolicyVersion

        init(welcome: Troupe_V1_Welcome, config: ModelConfig, tokenizer: any Tokenizer, algorithm: AlgorithmOptions, stopTokens: [Int32]) {
            self.welcome = welcome
            epoch = welcome.learnerEpoch
            self.config = config
            self.tokenizer = tokenizer
            self.algorithm = algorithm
            newest = PolicyVersion(welcome.currentVersion)
            worker = .sampler(GroupSampler(tokenizer: tokenizer, options: algorithm, stopTokens: stopTokens))
        }
    }

    package init(options: Options) throws {
        self.options = options
        console = Console(role: "actor \(options.identity)")
        var r: UInt64 = 0
        while r == 0 { r = UInt64.random(in: 1...UInt64.max) }
        runId = r
        context = try ZMQContext(ioThreads: 1)
        control = try ActorClient.makeControl(context: context, options: options, runId: r)
        if let listen = options.relay {
            do {
                relay = try WeightRelay(context: context, listen: listen)
            } catch {
                console.warn("not relaying weights (\(listen): \(error)); actors below this one would wait for nothing, so none will be")
            }
        }
    }

    static func makeControl(context: ZMQContext, options: Options, runId: UInt64) throws -> ZMQSocket {
        let s = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
        try s.set([.routingID(Array("\(options.identity)#\(String(runId, radix: 16))".utf8)), .immediate(true),
                   .maxMessageSize(WireLimits.control.socketMaxFrameBytes), .sendHighWaterMark(1000),
                   .reconnectInterval(milliseconds: 100, maximumMilliseconds: 2000),
                   .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
        try s.connect(options.learner)
        return s
    }

    // MARK: loop

    /// Runs until the learner says the run is finished (0), a shutdown signal (0), or a fatal error (1).
    package func run() throws -> Int32 {
        console.info("connecting", ["learner": options.learner.description, "actor_run": String(runId, radix: 16)])
        while stopReason == nil {
            let now = monotonicSeconds()
            if Shutdown.requested { stopReason = "shutdown requested"; break }
            let poller = Poller()
            poller.register(control)
            for socket in receiver?.sockets ?? [] { poller.register(socket) }
            if let r = relay { poller.register(r.socket) }
            if let a = announce { poller.register(a) }
            if let s = session { poller.register(fileDescriptor: s.worker.wakeFileDescriptor) }
            let ready = try poller.poll(until: .afterMilliseconds(10))
            if ready.contains(control) { try drainControl() }
            if let a = announce, ready.contains(a) { try drainAnnounce() }
            if let r = relay, ready.contains(r.socket) { try r.drain() }
            if let rc = receiver { handle(try rc.receive(ready, now: now)) }
            if session == nil || now - lastHeard > options.learnerSilence {
                if !everWelcomed && now - started > options.connectTimeout {
                    console.error("no learner answered at \(options.learner) within \(Int(options.connectTimeout)) s")
                    return 1
                }
                if session != nil {
                    console.warn("learner silent for \(Int(now - lastHeard)) s; saying Hello again")
                    session = nil
                    // A fresh socket: the old one may hold queued messages for a dead learner.
                    control.close()
                    control = try ActorClient.makeControl(context: context, options: options, runId: runId)
                    lastHeard = now
                    continue
                }
                // A Hello that left waits a second for its answer; one that found no connection yet
                // (.immediate drops it) is tried again at once, so an actor started before its
                // learner joins as soon as the learner binds.
                if now - lastHello > 1, sendHello() { lastHello = now }
                continue
            }
            try collectSamples()
            try stepWeights(now: now)
            try scheduleWork(now: now)
            flushGroups()
            if now - lastHeartbeat >= Double(max(200, Int(session!.welcome.heartbeatIntervalMs))) / 1000 {
                sendHeartbeat()
                lastHeartbeat = now
            }
        }
        var bye = Troupe_V1_Bye()
        bye.reason = stopReason ?? "stopping"
        _ = try? control.send(WireMessage(.bye(bye)))
        session?.worker.stop()
        usleep(100_000)
        logs?.close()
        control.close()
        receiver?.close()
        relay?.close()
        announce?.close()
        context.shutdown()
        console.info("stopped: \(stopReason ?? "")", ["groups_produced": produced, "unacked": unacked.count])
        return 0
    }

    /// True when the Hello was handed to a live connection.
    private func sendHello() -> Bool {
        var h = Troupe_V1_Hello()
        h.actorIdentity = options.identity
        h.actorRunID = runId
        h.protocolMajor = WireProtocol.major
        h.protocolMinor = WireProtocol.minor
        h.buildID = TroupeBuild.id
        h.threadCount = UInt32(BLASInfo.threads)
        return (try? control.send(WireMessage(.hello(h)))) == .sent
    }

    private func drainControl() throws {
        for _ in 0..<256 {
            switch try control.receiveMessage(deadline: .now, limits: .control) {
            case .timedOut: return
            case .rejected(let e): console.warn("bad message from the learner: \(e)")
            case .message(let m):
                lastHeard = monotonicSeconds()
                try handleControl(m)
            }
        }
    }

    private func handleControl(_ m: WireMessage) throws {
        switch m.body {
        case .welcome(let w):
            try startSession(w)
        case .reject(let r):
            if r.reason == .protocolMajor { console.error("rejected by the learner: \(r.text)"); stopReason = "protocol mismatch"; return }
            if r.reason == .unknownActor { session = nil; lastHello = 0; return }
            if r.reason == .configMismatch { console.warn("rejected: \(r.text)"); lastHello = monotonicSeconds() + 2; return }
            console.warn("rejected: \(r.text)")
        case .lease(let lease):
            leaseRequested = false
            if lease.prompts.isEmpty { nextLeaseAt = monotonicSeconds() + 0.05 } else { queuedJobs.append((lease, lease.prompts)) }
        case .ack(let ack):
            if unacked.removeValue(forKey: ack.sequence) != nil { credit += Int(ack.creditGranted) }
            if ack.status == .rejected { logs?.publish(kind: "group_rejected", fields: ["reason": "\(ack.rejectReason)", "detail": ack.text]) }
            noteVersion(PolicyVersion(ack.currentVersion))
        case .heartbeat(let hb):
            noteVersion(PolicyVersion(hb.currentVersion))
        case .bye(let bye):
            if bye.reason == ByeReason.runFinished {
                stopReason = "learner: \(bye.reason)"
            } else {
                // The learner is stopping, not the run: wait for it (or its successor) to come back.
                console.info("learner left (\(bye.reason)); waiting for it to return")
                session = nil
                lastHello = monotonicSeconds()
            }
        default:
            break
        }
    }

    private func startSession(_ w: Troupe_V1_Welcome) throws {
        guard let data = w.configJson.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let files = object["model_files"] as? [String: String], let configText = files["config.json"],
              let runConfig = object["config"] as? [String: Any] else {
            console.error("the learner's Welcome lacks the run configuration")
            stopReason = "bad welcome"
            return
        }
        let modelConfig = try ModelConfig.parse(json: Data(configText.utf8))
        // The tokenizer is rebuilt from the learner's model files, so both sides encode alike.
        let dir = NSTemporaryDirectory() + "troupe-actor-\(String(runId, radix: 16))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        let tokenizer = try loadTokenizer(modelDirectory: dir)
        try? FileManager.default.removeItem(atPath: dir)
        if let actors = runConfig["actors"] as? [String: Any], let threads = actors["threads"] as? Int, threads > 0 {
            BLASInfo.setThreads(threads)
        }
        let algorithm = try AlgorithmOptions.resolve(JSONValue(any: runConfig["algorithm"] ?? ["preset": "grpo"], field: "algorithm"))
        var stops = modelConfig.eosTokenIds.map(Int32.init)
        if let eos = tokenizer.eosTokenId, !stops.contains(eos) { stops.append(eos) }
        let keepModel = session == nil ? nil : (session!.epoch == w.learnerEpoch ? session!.model : nil)
        let s = Session(welcome: w, config: modelConfig, tokenizer: tokenizer, algorithm: algorithm, stopTokens: stops)
        if let m = keepModel, m.config == modelConfig { s.model = m }
        session = s
        everWelcomed = true
        credit = Int(w.credit)
        leaseRequested = false
        queuedJobs.removeAll()
        // Every unacknowledged group goes out again, same sequence numbers: the learner de-duplicates.
        unsent = unacked.keys.sorted()
        try connectSideChannels(w)
        console.info("welcomed", ["epoch": String(w.learnerEpoch, radix: 16), "version": PolicyVersion(w.currentVersion).description,
                                  "credit": w.credit, "resending": unsent.count])
        logs?.publish(kind: "actor_welcomed", fields: ["actor": options.identity])
    }

    private func connectSideChannels(_ w: Troupe_V1_Welcome) throws {
        receiver?.close()
        announce?.close()
        logs?.close()
        receiver = try WeightReceiver(context: context, learnerWeights: Endpoint(parsing: w.weightsEndpoint),
                                      layout: ParameterLayout(config: session!.config), relay: relay,
                                      identity: options.identity, runId: runId, options: options.weights)
        let sub = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
        try sub.set([.subscribe([]), .maxMessageSize(WireLimits.headerOnly.socketMaxFrameBytes)])
        try sub.connect(Endpoint(parsing: w.announceEndpoint))
        announce = sub
        logs = try LogPublisher(context: context, endpoint: Endpoint(parsing: w.logsEndpoint), source: "actor/\(options.identity)", runId: runId)
    }

    private func noteVersion(_ v: PolicyVersion) {
        guard let s = session else { return }
        guard v.epoch == s.epoch else {
            // A learner of another epoch is announcing: the learner restarted. Join it now rather than
            // after the silence timeout (its run may be short).
            if v.epoch != 0 {
                console.info("the learner restarted (epoch \(String(v.epoch, radix: 16))); saying Hello")
                session = nil
                lastHello = 0
            }
            return
        }
        if v.step > s.newest.step { s.newest = v }
    }

    private func drainAnnounce() throws {
        guard let a = announce else { return }
        for _ in 0..<64 {
            switch try a.receiveMessage(deadline: .now, limits: .headerOnly) {
            case .timedOut: return
            case .rejected: continue
            case .message(let m):
                if case .weightAnnounce(let ann) = m.body { noteVersion(PolicyVersion(ann.version)) }
            }
        }
    }

    // MARK: weights

    private func stepWeights(now: Double) throws {
        guard let s = session, let rc = receiver else { return }
        handle(try rc.tick(now: now))
        let current = s.version
        if options.ignoreNewWeights && current != nil { return }
        if !rc.inProgress && (current == nil || current!.epoch != s.epoch || current!.step < s.newest.step) {
            try rc.start(now: now)
        }
    }

    private func handle(_ events: [WeightReceiver.Event]) {
        for event in events {
            switch event {
            case .applied(let f, let via):
                do { try apply(f, via: via) } catch { console.warn("verified weights could not be used: \(error)") }
            case .fellBack(let upstream, let reason):
                console.warn("weight relay \(upstream) stopped serving (\(reason)); fetching the rest from the learner")
                logs?.publish(kind: "weights_relay_fallback", fields: ["actor": options.identity, "upstream": upstream, "reason": reason])
            case .failed(let reason):
                console.warn("weight transfer failed: \(reason); starting again")
            case .sharedMemoryUnused(let problem):
                console.warn("not using the learner's shared memory (\(problem)); fetching chunks")
            }
        }
    }

    /// Swaps in verified weights (between sampling jobs: a running job keeps the model it started with).
    private func apply(_ f: WeightFetch, via: String) throws {
        guard let s = session, let parameters = f.parameters else { return }
        s.model = try LlamaModel(config: s.config, parameters: parameters)
        s.version = f.version
        noteVersion(f.version)
        let ms = Date().timeIntervalSince(f.startedAt) * 1000
        var fields = ["actor": options.identity, "via": via]
        if via != "shared_memory" { fields["depth"] = String(receiver?.depth ?? 1) }
        logs?.publish(kind: "weights_applied", step: Int(f.version.step), metrics: ["weight_sync_ms": ms], fields: fields)
        if via != lastWeightsPath {
            console.info("weights applied", ["version": f.version.description, "via": via, "ms": String(format: "%.1f", ms)])
            lastWeightsPath = via
        }
    }

    // MARK: work

    private func scheduleWork(now: Double) throws {
        guard let s = session else { return }
        if queuedJobs.isEmpty && !leaseRequested && now >= nextLeaseAt && unacked.count < Int(s.welcome.credit) + 2 {
            var r = Troupe_V1_LeaseRequest()
            r.maxPrompts = s.welcome.leaseSize
            if case .sent = try control.send(WireMessage(.leaseRequest(r))) { leaseRequested = true }
        }
        guard !s.worker.busy, let next = queuedJobs.first, let model = s.model, let version = s.version,
              version.epoch == s.epoch, version.step >= next.lease.minVersion.step || options.ignoreNewWeights else { return }
        queuedJobs.removeFirst()
        s.worker.submit(SamplingJob(leaseId: next.lease.leaseID, prompts: next.prompts, model: model, version: version))
    }

    private func collectSamples() throws {
        guard let s = session else { return }
        for outcome in s.worker.poll() {
            switch outcome.groups {
            case .failure(let e):
                console.error("sampling failed: \(e)")
                stopReason = "sampling failed"
            case .success(let groups):
                samplingSeconds += outcome.seconds
                tokensProduced += outcome.tokens
                for g in groups { enqueue(g) }
            }
        }
    }

    private func enqueue(_ g: SampledGroup) {
        sequence += 1
        produced += 1
        var h = Troupe_V1_GroupSubmit()
        h.leaseID = g.leaseId
        h.promptID = g.prompt.promptID
        h.sequence = sequence
        h.version = g.version.proto
        h.actorRunID = runId
        h.generationMs = g.generationMs
        let withEntropies = g.samples.allSatisfy { $0.entropies != nil }
        h.withEntropies = withEntropies
        h.samples = g.samples.map { s in
            var info = Troupe_V1_SampleInfo()
            info.tokenCount = UInt32(s.tokens.count)
            info.finishReason = s.finishReason == .stop ? .stop : .length
            info.temperature = s.temperature
            if let a = s.answer { info.extractedAnswer = a }
            info.reward = s.reward
            info.rewardComponents = s.components
            return info
        }
        let submission = GroupSubmission(header: h, tokenIDs: g.samples.flatMap(\.tokens), logProbs: g.samples.flatMap(\.logprobs),
                                         entropies: withEntropies ? g.samples.flatMap { $0.entropies! } : nil)
        unacked[sequence] = submission.wireMessage()
        unsent.append(sequence)
    }

    private func flushGroups() {
        while credit > 0, let seq = unsent.first {
            guard let m = unacked[seq] else { unsent.removeFirst(); continue }
            guard case .sent = (try? control.send(m)) ?? .wouldBlock else { return }
            unsent.removeFirst()
            credit -= 1
        }
    }

    private func sendHeartbeat() {
        var hb = Troupe_V1_Heartbeat()
        var stats = Troupe_V1_ActorStats()
        stats.groupsProduced = produced
        stats.tokensPerSecond = Double(tokensProduced) / max(samplingSeconds, 1e-9)
        stats.idleRatio = max(0, 1 - samplingSeconds / max(1e-9, monotonicSeconds() - started))
        stats.unackedGroups = UInt32(unacked.count)
        if let v = session?.version { stats.weightsVersion = v.proto }
        hb.stats = stats
        _ = try? control.send(WireMessage(.heartbeat(hb)))
        logs?.publish(kind: "actor_stats", metrics: ["groups_produced": Double(produced), "tokens_per_s": stats.tokensPerSecond,
                                                    "actor/idle_ratio": stats.idleRatio, "unacked": Double(unacked.count),
                                                    "weights_step": Double(session?.version?.step ?? 0),
                                                    "relay/chunks_served": Double(relay?.chunksServed ?? 0)],
                      fields: ["actor": options.identity])
    }
}
