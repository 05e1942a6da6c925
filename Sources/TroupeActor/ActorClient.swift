import Foundation
import TroupeJSON
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTensor
import TroupeTokenizer
import TroupeWeights
import TroupeWire

/// An actor process (docs/ARCHITECTURE.md §1): joins a learner given only its control address, fetches
/// the current weights, asks for leases, samples on a worker thread, and submits each group with its
/// PolicyVersion under credit. Every conversation decision (Hello, credit, resend after a reconnect, leases, heartbeats,
/// learner silence) is `ActorCore`'s; this class carries them out over the connections its
/// `ActorEndpoints` make (ZeroMQ sockets, or in-memory ones in tests), owns the sampler thread and
/// the weights (`WeightReceiver`, `WeightRelay`), and swaps new weights in between jobs. `run` is a
/// loop of `turn()`s on a clock it is given, so a test can drive it one turn at a time.
package final class ActorClient {
    package struct Options {
        package var learner: Endpoint
        /// The conversation's settings (identity, this process's run id, timeouts, fault injection).
        package var conversation: ActorCore.Options
        package var identity: String { conversation.identity }
        /// Where this actor serves the weight chunks it holds to actors the learner places below it
        /// (`WeightRelay`); nil: it does not relay. `WeightRelay.defaultAddress` picks one.
        package var relay: ListenAddress?
        package var weights = WeightReceiver.Options()
        /// This actor's keys and the learner's, when the learner is authenticated (CURVE); nil: plaintext.
        package var security: ClientSecurity?
        /// The learner's endpoints file (`RUN_DIR/endpoints.json`) `learner` came from, if it did: read
        /// again when the learner goes silent or has not answered yet (a resumed learner may be elsewhere).
        package var learnerFile: String?
        /// The learner's public key in `security` came from `learnerFile` (no pinned --learner-key): a
        /// learner that rewrites the file with another key is followed.
        package var learnerKeyFromFile = false
        /// `troupe actor --status-file`: rewritten from the loop, for `troupe probe`.
        package var statusFile: StatusFileWriter?
        /// This actor is its process's only work (`troupe actor`), so `actors.sampling_priority` may move
        /// the process's compute threads (OpenBLAS's workers, `PairedWorker`'s helper) to idle priority;
        /// an actor inside a test process leaves them alone.
        package var ownsProcess = false
        /// Draws the actor run id: a new one for every process, so the learner tells a restart apart.
        package init(learner: Endpoint, identity: String) {
            self.learner = learner
            conversation = ActorCore.Options(identity: identity, runId: UInt64.random(in: 1...UInt64.max))
        }
    }

    let options: Options
    let console: Console
    let runId: UInt64
    /// This process's `source_run_id` on the log stream: not `runId`, which is half of the control
    /// routing id (`IDENTITY#RUNID`) and must stay unknown to everyone but the learner.
    private let logStreamRunId = UInt64.random(in: 1...UInt64.max)
    /// Where every connection comes from.
    let endpoints: any ActorEndpoints
    /// Seconds on a monotonic clock; tests drive it by hand.
    let clock: () -> Double
    /// Where the control socket connects: `options.learner`, or what `learnerFile` names now.
    private var learner: Endpoint
    private var security: ClientSecurity?
    private var lastFileCheck = -Double.infinity
    /// Every conversation decision: Hello, credit, resend, leases, heartbeats, silence.
    private var core: ActorCore
    private var control: any DealerTransport
    private var receiver: WeightReceiver?
    private var relay: WeightRelay?
    private var announce: (any SubscribeTransport)?
    private var logs: (any LogStreamPublisher)?
    /// Log events this process has published under its run id, on every stream so far: a new stream
    /// (after a Welcome) numbers on from here.
    private var logEventsPublished: UInt64 = 0
    private var logSink: LogStreamSink<Never>?
    /// What this actor reports to monitors; the log stream joins once the Welcome names it.
    package let reports = ActorEvents()
    private var session: Session?
    /// How the last weights came (shared memory or chunks): said on the console when it changes.
    private var lastWeightsPath = ""
    private let started: Double
    private var tokensProduced = 0
    private var samplingSeconds = 0.0
    private var stopReason: String?
    /// Whether a refused handshake was reported since the last Welcome (once is enough: it repeats every 6 s).
    private var warnedOfRefusal = false

    /// What a Welcome establishes here: the run's model shape, tokenizer, reward, sampler and the model
    /// in use (the conversation's side of it is in `core`).
    final class Session {
        let config: ModelConfig
        let tokenizer: any Tokenizer
        let algorithm: AlgorithmOptions
        let worker: BackgroundWorker<SamplingJob, SamplingOutcome>
        var model: LlamaModel?

        init(config: ModelConfig, tokenizer: any Tokenizer, algorithm: AlgorithmOptions, stopTokens: [Int32]) {
            self.config = config
            self.tokenizer = tokenizer
            self.algorithm = algorithm
            worker = .sampler(GroupSampler(tokenizer: tokenizer, options: algorithm, stopTokens: stopTokens))
        }
    }

    /// Connects to `options.learner` through `endpoints` (ZeroMQ sockets when nil) and, when it
    /// relays, binds its relay.
    package init(options: Options, endpoints: (any ActorEndpoints)? = nil, clock: @escaping () -> Double = monotonicSeconds) throws {
        self.options = options
        self.clock = clock
        started = clock()
        console = Console(role: "actor \(options.identity)")
        runId = options.conversation.runId
        learner = options.learner
        security = options.security
        core = ActorCore(options: options.conversation, now: started)
        core.threadCount = BLASInfo.threads
        self.endpoints = try endpoints ?? ZeroMQActorEndpoints()
        control = try self.endpoints.connectControl(to: learner, routingID: ActorClient.routingID(options.identity, runId: runId), security: security)
        if let listen = options.relay {
            do {
                let (router, endpoint) = try self.endpoints.bindRelay(listen, security: options.security)
                relay = WeightRelay(router: router, endpoint: endpoint)
            } catch {
                console.warn("not relaying weights (\(listen): \(error)); actors below this one would wait for nothing, so none will be")
            }
        }
    }

    /// The control connection's routing id: the identity and this process's run id.
    private static func routingID(_ identity: String, runId: UInt64) -> String { "\(identity)#\(String(runId, radix: 16))" }

    /// A fresh control connection to `learner` (the old one is closed).
    private func reconnectControl() throws {
        control.close()
        control = try endpoints.connectControl(to: learner, routingID: ActorClient.routingID(options.identity, runId: runId), security: security)
    }

    /// Reads `learnerFile` again; when it names another control endpoint (or, unpinned, another
    /// learner key) the control socket is rebuilt for it. When it says that the learner this actor
    /// was welcomed by finished the run, the actor stops. Returns whether either happened.
    private func followLearnerFile(now: Double) throws -> Bool {
        guard let path = options.learnerFile else { return false }
        lastFileCheck = now
        switch LearnerEndpointsFile.read(path) {
        case .missing:
            return false
        case .damaged(let error):
            console.warn("\(error); keeping \(learner)")
            return false
        case .found(let file) where file.finishedAt != nil && file.epoch == core.lastWelcomedEpoch:
            // Only that epoch's end: a file left by a finished run may still be there when a resumed learner starts.
            console.info("the learner endpoints file says the run finished (epoch \(String(file.epoch, radix: 16)), \(LearnerEndpointsFile.timestamp(file.finishedAt!)))")
            stopReason = "learner: \(ByeReason.runFinished) (the learner endpoints file)"
            return true
        case .found(let file):
            guard let endpoint = try? Endpoint(parsing: file.control) else { return false }
            var newSecurity = security
            if let current = security, options.learnerKeyFromFile, let z85 = file.learnerPublicKey,
               let key = try? CurveKey(z85: z85), key != current.learnerKey {
                newSecurity = ClientSecurity(name: current.name, keyPair: current.keyPair, learnerKey: key)
            }
            guard endpoint != learner || newSecurity?.learnerKey != security?.learnerKey else { return false }
            console.info("the learner endpoints file names \(endpoint) (epoch \(String(file.epoch, radix: 16)) on \(file.host)); connecting there")
            learner = endpoint
            security = newSecurity
            try reconnectControl()
            return true
        }
    }

    // MARK: loop

    /// Runs until the learner says the run is finished (0), a shutdown signal (0), or a fatal error (1:
    /// no learner within the connect timeout, a learner of another protocol major, a Welcome this actor
    /// cannot use, sampling failed).
    package func run() throws -> Int32 {
        defer {
            let now = clock()
            try? options.statusFile?.write(ProcessStatus.actor(joined: false, learnerSilentSeconds: now - core.lastHeardFromLearner).asStopped)
        }
        console.info("connecting", ["learner": .string(learner.description), "actor_run": .string(String(runId, radix: 16))])
        if case .tcp(let host, _, _) = learner, DoctorProbes.resolve(host).isEmpty {
            console.warn("the learner's host \(host) does not resolve here (yet); trying for --connect-timeout \(Int(options.conversation.connectTimeout.rounded())) s")
        }
        do {
            while true {
                if Shutdown.requested { stopReason = stopReason ?? "shutdown requested"; break }
                try endpoints.waitForInput(until: .afterMilliseconds(10), wake: session?.worker.wakeFileDescriptor)
                switch try turn() {
                case .running: continue
                case .stopping: break
                case .gaveUp: finishSampling(); return 1
                }
                break
            }
        } catch {
            finishSampling()
            throw error
        }
        return stop()
    }

    /// Lets the sampling job in progress (at most one lease) finish and ends the sampler thread: the
    /// process may exit only then, as exiting under the sampler frees OpenBLAS's buffers while it
    /// still uses them (a crash).
    private func finishSampling() {
        session?.worker.stop()
        _ = session?.worker.waitForIdle()
    }

    package enum TurnOutcome: Equatable {
        /// Keep turning.
        case running
        /// The actor is done (`stopReason` says why); `stop()` says goodbye and closes.
        case stopping
        /// No learner answered within the connect timeout: exit status 1 at once.
        case gaveUp
    }

    /// Says Hello again on a fresh connection: the old one may hold queued messages for a dead learner,
    /// or have lost some.
    private func reconnect(because why: String, now: Double) throws -> TurnOutcome {
        console.warn("\(why); saying Hello again")
        session = nil
        if try !followLearnerFile(now: now) { try reconnectControl() }
        return .running
    }

    /// One turn of the loop, never waiting: reads what waits on every connection, then does what the
    /// conversation has due (Hello, reconnecting, weights, sends, the next sampling job).
    package func turn() throws -> TurnOutcome {
        guard stopReason == nil else { return .stopping }
        let now = clock()
        do { try endpoints.checkAuthentication() } catch {
            // Fail closed: the relay would admit anyone without its handler.
            relay?.close()
            console.error("\(error); stopping")
            stopReason = "authentication failed"
            return .stopping
        }
        try drainControl()
        if !core.joined, let status = endpoints.controlHandshakeRefusal(), !warnedOfRefusal {
            warnedOfRefusal = true
            console.warn("the learner at \(learner) refused this actor's key at the handshake (ZAP status \(status)): is it on the learner's allowlist (--allow)? Trying again on a fresh connection every \(Int(options.conversation.learnerSilence)) s")
        }
        try drainAnnounce()
        try relay?.drain()
        if let rc = receiver { handle(try rc.receive(now: now)) }
        if !core.joined { session = nil }
        do {
            try options.statusFile?.writeIfDue(now: now) { .actor(joined: core.joined, learnerSilentSeconds: now - core.lastHeardFromLearner) }
        } catch { console.warn("\(error)") }
        switch core.joinStep(now: now) {
        case .joined:
            break
        case .giveUp:
            var why = ""
            if case .tcp(let host, _, _) = learner, DoctorProbes.resolve(host).isEmpty { why = "; \(host) does not resolve here" }
            if let path = options.learnerFile, case .found(let file) = LearnerEndpointsFile.read(path), let finished = file.finishedAt {
                why += "; \(LearnerEndpointsFile.resolve(path)) says its run finished at \(LearnerEndpointsFile.timestamp(finished))"
            }
            // A learner refuses a key off its allowlist without a word: the handshake just fails.
            if security != nil && why.isEmpty { why = "; is this actor's key on the learner's allowlist (--allow), and --learner-key the learner's?" }
            console.error("no learner answered at \(learner) within \(Int(options.conversation.connectTimeout.rounded())) s (--connect-timeout)\(why)")
            return .gaveUp
        case .learnerGone(let silent):
            console.error("the learner at \(learner) has been gone for \(Int(silent)) s (no message through reconnects and Hellos; --learner-gone-timeout \(Int(options.conversation.learnerGoneTimeout)) s); giving up")
            stopReason = "learner gone"
            return .stopping
        case .reconnect(let silent):
            return try reconnect(because: "learner silent for \(Int(silent)) s", now: now)
        case .reconnectUnanswered(let what, let seconds):
            return try reconnect(because: "\(what) unanswered for \(Int(seconds)) s while the learner speaks (lost with a dropped connection?)", now: now)
        case .renewConnection:
            // Quietly: a learner that is not up yet is the common case.
            if try !followLearnerFile(now: now) { try reconnectControl() }
            return .running
        case .sayHello:
            // Not answered yet: a learner that has not bound, or one that has moved (the file says where).
            if now - lastFileCheck >= 2, try followLearnerFile(now: now) { return .running }
            try send([.hello], now: now)
            return .running
        case .waiting:
            if now - lastFileCheck >= 2 { _ = try followLearnerFile(now: now) }
            return .running
        }
        if stopReason != nil { return .stopping }
        try collectSamples()
        try stepWeights(now: now)
        try send(core.outgoing(now: now), now: now)
        submitJob()
        return stopReason == nil ? .running : .stopping
    }

    /// Says goodbye and closes every connection; returns the exit status (1 after a failure).
    package func stop() -> Int32 {
        let failed = failedReasons.contains(stopReason ?? "")
        var bye = Troupe_V1_Bye()
        bye.reason = stopReason ?? "stopping"
        _ = try? control.send(WireMessage(.bye(bye)), deadline: .now)
        finishSampling()
        if endpoints.lingerSeconds > 0 { usleep(UInt32(endpoints.lingerSeconds * 1_000_000)) }
        closeLogStream()
        control.close()
        receiver?.close()
        relay?.close()
        announce?.close()
        endpoints.close()
        console.info("stopped: \(stopReason ?? "")", ["groups_produced": .integer(Int(core.produced)), "unacked": .integer(core.unackedCount)])
        return failed ? 1 : 0
    }

    /// Waits for the sampling job in progress, if any, and queues its groups (tests).
    package func settleSampling() throws {
        try collectSamples(waiting: true)
    }

    /// What the conversation stands at (tests, `troupe probe`-like checks).
    package var conversation: ActorCore { core }
    /// Why the actor stops, once it does.
    package var stopping: String? { stopReason }
    /// Where the control connection goes now.
    package var learnerEndpoint: Endpoint { learner }
    /// The relay's address, when this actor relays.
    package var relayEndpoint: Endpoint? { relay?.endpoint }
    /// Chunks this actor's relay has served.
    package var relayChunksServed: Int { relay?.chunksServed ?? 0 }
    /// Hops from the learner of the last weight transfer by chunks (1: the learner served it).
    package var weightsDepth: Int? { receiver?.depth }
    /// The model sampling uses now, once weights are applied.
    package var model: LlamaModel? { session?.model }

    /// Stop reasons that are failures (exit status 1): the run cannot go on with this actor.
    private let failedReasons: Set<String> = ["bad welcome", "sampling failed", "authentication failed", "learner gone", "protocol mismatch"]

    private func drainControl() throws {
        for _ in 0..<256 {
            switch try control.receiveMessage(deadline: .now, limits: .controlReplies) {
            case .timedOut: return
            case .rejected(let e): console.warn("bad message from the learner: \(e)")
            case .message(let m): try handle(core.receive(m, now: clock()))
            }
        }
    }

    /// Carries out what the conversation decided.
    private func handle(_ events: [ActorCore.Event]) throws {
        for event in events {
            switch event {
            case .welcomed(let w, let config, let resending):
                warnedOfRefusal = false
                try startSession(w, config)
                console.info("welcomed", ["epoch": .string(String(w.learnerEpoch, radix: 16)), "version": .string(PolicyVersion(w.currentVersion).description),
                                          "credit": .integer(Int(w.credit)), "resending": .integer(resending)])
                try reports.emit(.actorWelcomed(actor: options.identity))
            case .badWelcome(let error):
                console.error("\(error)")
                stopReason = "bad welcome"
            case .rejected(let r):
                if r.reason == .protocolMajor {
                    console.error("rejected by the learner: \(r.text)")
                } else if r.reason != .unknownActor {
                    console.warn("rejected: \(r.text)")
                }
            case .groupRejected(let ack):
                try reports.emit(.groupRejected(reason: ack.rejectReason.eventName, detail: ack.text))
            case .learnerRestarted(let epoch):
                console.info("the learner restarted (epoch \(String(epoch, radix: 16))); saying Hello")
            case .learnerLeft(let reason):
                console.info("learner left (\(reason)); waiting for it to return")
            case .stop(let reason):
                stopReason = reason
            case .relayPeers(let peers):
                guard relay != nil, options.security != nil else { continue }
                do {
                    try admitToRelay(peers)
                    console.info("the allowlist changed: the relay admits the actors the learner listed", ["actors": .integer(peers.count)])
                } catch {
                    closeRelayToEveryone(because: "\(error)")
                }
            case .badRelayPeers(let problem):
                guard relay != nil, options.security != nil else { continue }
                closeRelayToEveryone(because: problem)
            }
        }
    }

    /// `actors.sampling_priority` idle: the threads that sample (the sampler thread, `PairedWorker`'s
    /// helper, OpenBLAS's workers) move to `SCHED_IDLE`, so a learner on the same cores trains at full
    /// speed while sampling takes what it leaves. This thread (heartbeats, leases, weights) and
    /// ZeroMQ's stay normal, so a starved sampler is slow, never silent.
    private func lowerSamplingPriority(_ worker: BackgroundWorker<SamplingJob, SamplingOutcome>) {
        var lowered: [String] = [], failed: [String] = []
        for (name, id) in [("sampler", worker.threadID)] + ProcessThreads.unnamed().map({ ("unnamed", Optional($0.id)) }) {
            guard let id else { failed.append("\(name) (no thread id)"); continue }
            let error = ThreadScheduling.makeIdle(thread: id)
            if error == 0 { lowered.append("\(name) \(id)") } else { failed.append("\(name) \(id): \(String(cString: strerror(error)))") }
        }
        PairedWorker.shared.lowerHelperToIdle()
        if failed.isEmpty {
            console.info("sampling at idle priority (actors.sampling_priority): the learner's steps come first on shared cores",
                         ["threads": .string((lowered + ["paired-worker helper"]).joined(separator: ", "))])
        } else {
            console.warn("could not move every sampling thread to idle priority: \(failed.joined(separator: "; "))")
        }
    }

    /// Builds what sampling needs from the Welcome's configuration and connects the side channels.
    private func startSession(_ w: Troupe_V1_Welcome, _ config: WelcomeConfig) throws {
        // The tokenizer is rebuilt from the learner's model files, so both sides encode alike.
        let dir = NSTemporaryDirectory() + "troupe-actor-\(String(runId, radix: 16))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in config.modelFiles { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        let tokenizer = try loadTokenizer(modelDirectory: dir)
        try? FileManager.default.removeItem(atPath: dir)
        BLASInfo.setThreads(config.run.actors.threads)
        core.threadCount = BLASInfo.threads
        session = Session(config: config.model, tokenizer: tokenizer, algorithm: config.run.algorithm,
                          stopTokens: config.model.defaultStopTokens(tokenizer: tokenizer))
        if config.run.sampleAtIdlePriority && options.ownsProcess { lowerSamplingPriority(session!.worker) }
        if relay != nil, options.security != nil { try admitToRelay(config.relayPeers) }
        try connectSideChannels(w)
    }

    /// The actors' keys this actor's relay admits from now on; their connections with any other key are
    /// refused from their next handshake or message.
    private func admitToRelay(_ peers: [String: CurveKey]) throws {
        endpoints.admitRelayPeers(try CurveAllowlist(peers.map { .init(name: $0.key, role: .actor, publicKey: $0.value) }))
    }

    /// A RelayPeers this actor cannot use: its relay admits nobody until the next Welcome (fail closed).
    private func closeRelayToEveryone(because problem: String) {
        endpoints.admitRelayPeers(CurveAllowlist())
        console.warn("the learner's RelayPeers cannot be used (\(problem)); the relay admits nobody until the next Welcome")
    }

    private func connectSideChannels(_ w: Troupe_V1_Welcome) throws {
        receiver?.close()
        announce?.close()
        closeLogStream()
        receiver = try WeightReceiver(learnerWeights: Endpoint(parsing: w.weightsEndpoint),
                                      connect: { [endpoints] in try endpoints.connectWeights(to: $0, security: $1) },
                                      layout: ParameterLayout(config: session!.config), relay: relay,
                                      identity: options.identity, runId: runId, options: options.weights, security: security)
        announce = try endpoints.subscribeAnnouncements(at: Endpoint(parsing: w.announceEndpoint), security: security)
        let publisher = try endpoints.connectLogStream(at: Endpoint(parsing: w.logsEndpoint), source: "actor/\(options.identity)",
                                                       runId: logStreamRunId, security: security, after: logEventsPublished)
        logs = publisher
        let sink = LogStreamSink<Never>(publisher)
        reports.add(sink)
        logSink = sink
        LogStreamAttachment.process.attach(publisher)
    }

    /// Warnings stop going to the stream before its socket closes.
    private func closeLogStream() {
        guard let logs else { return }
        if let logSink { reports.remove(logSink) }
        logSink = nil
        LogStreamAttachment.process.detach(logs)
        logEventsPublished = logs.lastSequence
        logs.close()
        self.logs = nil
    }

    private func drainAnnounce() throws {
        guard let a = announce else { return }
        for _ in 0..<64 {
            switch try a.receiveMessage(deadline: .now, limits: .headerOnly) {
            case .timedOut: return
            case .rejected: continue
            case .message(let m):
                if case .weightAnnounce(let ann) = m.body { try handle(core.note(PolicyVersion(ann.version))) }
            }
        }
    }

    // MARK: weights

    private func stepWeights(now: Double) throws {
        guard session != nil, let rc = receiver else { return }
        handle(try rc.tick(now: now))
        if !rc.inProgress && core.wantsWeights { try rc.start(now: now) }
    }

    private func handle(_ events: [WeightReceiver.Event]) {
        for event in events {
            switch event {
            case .applied(let f, let via):
                do { try apply(f, via: via) } catch { console.warn("verified weights could not be used: \(error)") }
            case .fellBack(let upstream, let reason):
                console.warn("weight relay \(upstream) stopped serving (\(reason)); fetching the rest from the learner")
                try? reports.emit(.weightsRelayFallback(actor: options.identity, upstream: upstream, reason: reason))
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
        let events = core.weightsApplied(f.version)
        let ms = Date().timeIntervalSince(f.startedAt) * 1000
        try reports.emit(.weightsApplied(actor: options.identity, step: Int(clamping: f.version.step), milliseconds: ms, via: via,
                                        depth: via == "shared_memory" ? nil : receiver?.depth ?? 1))
        if via != lastWeightsPath {
            console.info("weights applied", ["version": .string(f.version.description), "via": .string(via), "ms": .string(String(format: "%.1f", ms))])
            lastWeightsPath = via
        }
        try handle(events)
    }

    // MARK: work

    /// Sends what the conversation has due, in its order; groups stop at the first that cannot leave,
    /// so they stay in sequence.
    private func send(_ outgoing: [ActorCore.Outgoing], now: Double) throws {
        var groupsBlocked = false
        for item in outgoing {
            switch item {
            case .hello:
                if (try? control.send(WireMessage(.hello(core.hello)), deadline: .now)) == .sent { core.sent(item, now: now) }
            case .leaseRequest(let maxPrompts):
                var r = Troupe_V1_LeaseRequest()
                r.maxPrompts = maxPrompts
                if case .sent = try control.send(WireMessage(.leaseRequest(r)), deadline: .now) { core.sent(item, now: now) }
            case .group(_, let message):
                guard !groupsBlocked else { continue }
                if case .sent = (try? control.send(message, deadline: .now)) ?? .wouldBlock { core.sent(item, now: now) } else { groupsBlocked = true }
            case .heartbeat:
                // Due again after the interval whether or not it left: heartbeats are not retried.
                sendHeartbeat()
                core.sent(item, now: now)
            }
        }
    }

    /// Starts sampling the next lease when the sampler is free and the weights in use are recent enough.
    private func submitJob() {
        guard let s = session, !s.worker.busy, let model = s.model, let version = core.weights, let lease = core.takeLease() else { return }
        s.worker.submit(SamplingJob(leaseId: lease.leaseID, prompts: lease.prompts, model: model, version: version))
    }

    private func collectSamples(waiting: Bool = false) throws {
        guard let s = session else { return }
        for outcome in waiting ? s.worker.waitForIdle() : s.worker.poll() {
            switch outcome.groups {
            case .failure(let e):
                console.error("sampling failed: \(e)")
                stopReason = "sampling failed"
            case .success(let groups):
                samplingSeconds += outcome.seconds
                tokensProduced += outcome.tokens
                for g in groups { core.enqueue(Self.submission(g)) }
            }
        }
    }

    /// The group as sent; `ActorCore.enqueue` numbers it.
    static func submission(_ g: SampledGroup) -> GroupSubmission {
        var h = Troupe_V1_GroupSubmit()
        h.leaseID = g.leaseId
        h.promptID = g.prompt.promptID
        h.version = g.version.proto
        h.generationMs = g.generationMs
        h.tokensGenerated = UInt32(clamping: g.tokensGenerated)
        return GroupSubmission(header: h, samples: g.samples)
    }

    private func sendHeartbeat() {
        var hb = Troupe_V1_Heartbeat()
        var stats = Troupe_V1_ActorStats()
        stats.groupsProduced = core.produced
        stats.tokensPerSecond = Double(tokensProduced) / max(samplingSeconds, 1e-9)
        stats.idleRatio = max(0, 1 - samplingSeconds / max(1e-9, clock() - started))
        stats.unackedGroups = UInt32(core.unackedCount)
        if let v = core.weights { stats.weightsVersion = v.proto }
        hb.stats = stats
        _ = try? control.send(WireMessage(.heartbeat(hb)), deadline: .now)
        try? reports.emit(.actorStats(actor: options.identity,
                                     metrics: ["groups_produced": Double(core.produced), "tokens_per_s": stats.tokensPerSecond,
                                               "actor/idle_ratio": stats.idleRatio, "sampling_s": samplingSeconds, "unacked": Double(core.unackedCount),
                                               "weights_step": Double(core.weights?.step ?? 0),
                                               "relay/chunks_served": Double(relay?.chunksServed ?? 0)]))
    }
}
