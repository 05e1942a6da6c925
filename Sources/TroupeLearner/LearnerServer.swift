import Foundation
import TroupeJSON
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTasks
import TroupeTensor
import TroupeTokenizer
import TroupeWeights
import TroupeWire

/// The learner process (docs/ARCHITECTURE.md §1–4): binds control (ROUTER), weights (ROUTER), announce (PUB)
/// and the log proxy (XSUB→XPUB); leases prompts, accepts groups exactly once, trains on a worker
/// thread, publishes versions, writes the run log and checkpoints. The I/O loop never waits on any
/// one actor: every receive has a deadline and every send is non-blocking.
package final class LearnerServer {
    package let config: RunConfig
    package let runDirectory: String
    let console = Console(role: "learner")
    let model: LlamaModel
    let trainer: Trainer
    package let core: LearnerCore
    let runLog: RunLog
    /// Where the run's events go: the run log, the log stream, metrics.jsonl, metrics.prom, the TensorBoard
    /// event file (and a test's sink).
    package let events: RunEvents
    let prompts: RunPrompts
    /// The run's check of every group before it is acknowledged (limits, finish reasons, rewards).
    package let admission: GroupAdmission
    package let epoch: UInt64
    let endpoints: LearnerEndpoints
    var control: any RouterTransport { endpoints.control }
    var weights: any RouterTransport { endpoints.weights }
    /// Seconds on a monotonic clock; tests drive it by hand.
    let clock: () -> Double
    /// Batches, steps on the trainer thread, their records and checkpoints.
    package let training: LearnerTraining
    var worker: BackgroundWorker<TrainerTask, TrainerTaskOutcome> { training.worker }
    /// The Welcome's configuration; rewritten when the allowlist changes (it lists the actors' keys).
    private(set) var welcomeJSON: String
    /// `--allow` as the run goes on (nil: plaintext, or endpoints in memory).
    private let liveAllowlist: LiveAllowlist?
    /// The allowlist generation whose keys each actor's relay admits (`LiveAllowlist.relayAdmits`): that of
    /// its latest Welcome, or of the latest RelayPeers it was sent.
    private var relayGeneration: [String: Int] = [:]
    /// Actors whose Hello said protocol minor 5 or later: they take RelayPeers when the allowlist changes.
    private var takesRelayPeers: Set<String> = []
    /// BLAKE2b-256 of the resolved configuration (`RunConfig.configDigest`), sent in every Welcome.
    let configDigest: Data
    /// Held for the learner's lifetime; the kernel releases it if the process dies.
    let lock: RunDirectoryLock
    let startedAt: Double
    let startedWall = Date().timeIntervalSince1970
    /// The published versions and the relay tree of the newest (answers the weights socket).
    private var weightService: WeightService
    private var snapshot: WeightSnapshot { weightService.snapshot }
    private var peers: [PeerID: String] = [:]
    private var peerOf: [String: PeerID] = [:]
    /// Actors evicted for silence and not back since, with their old route and when: a finished run
    /// also tells them, since they may be alive behind a slow link and will say Hello again.
    private var evicted: [String: (peer: PeerID?, at: Double)] = [:]
    private var lastAnnounce = 0.0
    private var lastStats = 0.0
    private var lastHousekeeping = 0.0
    private var wireRejects: [String: Int] = [:]
    /// Bounds the Rejects each peer gets, so a flood of bad messages is counted rather than answered.
    private var rejectBudget = RejectBudget()
    /// Acks decided in this turn; they wait in `acksAwaitingDisk` for the run log to hold their records.
    private var pendingAcks: [(PeerID, Troupe_V1_Ack)] = []
    private var acksAwaitingDisk = DurableAcks()
    private var warnedAboutSharedMemory = false
    /// What `RUN_DIR/endpoints.json` says (written at bind unless the endpoints are in memory).
    private var discovery: LearnerEndpointsFile?
    /// HTTP `/metrics`, when `endpoints.metrics_port` asks for it (real endpoints only).
    private var metricsEndpoint: MetricsEndpoint?
    /// The reward workers (`reward_workers.endpoints`; nil: the run's own reward) and the groups
    /// waiting for their scores, by the client's batch id. A waiting group is not acknowledged yet: it
    /// is recorded and acked once scored (or refused), so an ack still follows a durable record.
    private let rewards: RewardWorkerClient?
    private var awaitingRewards: [UInt64: AwaitingRewards] = [:]
    private var awaitingKeys: [GroupKey: UInt64] = [:]
    private var reportedRewardCounters = RewardWorkerClient.Counters()
    private var exportedRewardCounters = RewardWorkerClient.Counters()
    /// The counters when samples began going unscored with no worker's score since; nil while workers score.
    private var rewardOutageStart: (at: Double, counters: RewardWorkerClient.Counters)?
    private var rewardCountersWatched = RewardWorkerClient.Counters()
    private var lastRewardFailureAt = -Double.infinity
    /// Why the learner stops itself when no training step failed (`learner failed: …` in its Byes).
    private var stopFailure: String?
    struct AwaitingRewards {
        var group: RolloutGroup
        var identity: String
        /// Where the ack goes: the connection of the latest delivery (an actor resends after a reconnect).
        var peer: PeerID
    }
    package private(set) var finished = false
    /// The checkpoint's step this learner resumed the run from; nil when it started the run.
    private var resumedFromStep: Int?
    /// Testing only: once this step is done, the ZAP handler fails as if it had died (its endpoint
    /// gone, the case in which libzmq admits any key), so a test can watch the learner close the gate.
    package var failAuthenticationAfterStep: Int?
    /// `troupe learner --status-file`: rewritten from housekeeping, for `troupe probe`.
    package var statusFile: StatusFileWriter?

    /// Opens or resumes the run in `config.runDirectory`, with ZeroMQ endpoints bound as configured
    /// (`endpoints`; authenticated with `security`), or with the ones `makeEndpoints` builds for the
    /// run's epoch (tests: in memory).
    /// `rewardTransport` replaces the ZeroMQ connections to `reward_workers.endpoints` (tests: in memory).
    /// `runLogWriting`: the run log's own writer thread (the default), or writing and syncing on the I/O
    /// thread as it goes (tests that step the learner turn by turn and expect each ack in that turn).
    package init(config: RunConfig, resume: Bool, security: LearnerSecurity? = nil, clock: @escaping () -> Double = monotonicSeconds,
                 makeEndpoints: ((_ epoch: UInt64) throws -> LearnerEndpoints)? = nil,
                 rewardTransport: (any RewardWorkerTransport)? = nil, runLogWriting: RunLog.Writing = .thread) throws {
        self.config = config
        self.clock = clock
        startedAt = clock()
        runDirectory = config.runDirectory
        let fm = FileManager.default
        let logPath = runDirectory + "/run.log"
        if resume {
            guard fm.fileExists(atPath: logPath) else { throw RuntimeError.invalid("--resume: \(runDirectory) has no run.log") }
            // Without the frozen configuration a resume would run on other settings from its next step.
            guard fm.fileExists(atPath: runDirectory + "/config.json") else {
                throw RuntimeError.invalid("--resume: \(runDirectory)/config.json is missing; it holds the run's configuration, without which the run cannot continue as it began")
            }
            // Downgrading a run that authenticated would open its ports, weights and log stream to anyone.
            if security == nil,
               case .found(let previous) = LearnerEndpointsFile.read(runDirectory + "/" + LearnerEndpointsFile.fileName),
               previous.learnerPublicKey != nil {
                throw RuntimeError.invalid("--resume: \(runDirectory)'s learner authenticated its actors with CURVE keys (its endpoints.json names the learner's public key); resume it with --key and --allow, not in plaintext")
            }
        } else if fm.fileExists(atPath: logPath) {
            // An empty run log without a frozen configuration is a start that failed before it recorded
            // anything (a full disk): nothing to resume, so a fresh start may have the directory.
            let size = (try? fm.attributesOfItem(atPath: logPath)[.size] as? Int) ?? nil
            guard size == 0 && !fm.fileExists(atPath: runDirectory + "/config.json") else {
                throw RuntimeError.invalid("\(runDirectory) already holds a run; use --resume to continue it or choose another run.name / run.directory")
            }
        }
        // An unusable model, tokenizer, chat template or prompt is refused before the run directory is touched.
        // The tokenizer, prompts and exit phrase made by these checks are the run's own.
        let backwardProducts = try config.backwardProducts(portableAllowed: false)
        let checkedModel = try ModelDirectory.check(config.model.path)
        let tokenizer = try RunSetup.tokenizer(forModelDirectory: config.model.path, model: checkedModel)
        let checkedPrompts = try RunSetup.prompts(config, tokenizer: tokenizer, contextLength: checkedModel.maxPositions)
        let serialPhrase = config.groupShape == .serial
            ? try RunSetup.serialExitPhrase(config, tokenizer: tokenizer, model: checkedModel, prompts: checkedPrompts) : nil
        try Directories.create(runDirectory, for: "the run directory (run.directory)")
        // One learner per run directory: a second one (say, --resume on a live run) must not write.
        lock = try RunDirectoryLock(runDirectory)
        let staleTemporaries = Checkpoint.removeStaleTemporaries(runDirectory: runDirectory)
        BLASInfo.setThreads(config.learner.threads)
        model = try ModelDirectory.load(config.model.path)
        prompts = checkedPrompts
        var limits = GroupAdmission.Limits(config: config, model: model.config)
        if let serialPhrase { limits.serial = .init(phrase: serialPhrase, answerTokens: config.sampling.serialAnswerTokens) }
        admission = GroupAdmission(limits: limits,
                                   scorer: GroupScorer(tokenizer: tokenizer, options: config.algorithm,
                                                       stopTokens: model.config.defaultStopTokens(tokenizer: tokenizer)),
                                   stopSequences: config.stopSequences, groundTruth: { [answers = prompts.visibleAnswers] in answers[$0] })
        trainer = try Trainer(model: model, options: config.algorithm, optimizer: config.optimizer,
                              microBatchTokens: config.learner.microBatchTokens,
                              backwardProducts: backwardProducts)
        trainer.learningRateForStep = { [schedule = config.schedule, peak = config.optimizer.learningRate, total = config.run.maxSteps] step in
            schedule.learningRate(peak: peak, step: step, total: total)
        }
        var e: UInt64 = 0
        while e == 0 { e = UInt64.random(in: 1...UInt64.max) }
        epoch = e
        core = LearnerCore(prompts: prompts.entries, epoch: epoch, batchGroups: config.learner.batchGroups,
                           maxStaleness: config.learner.maxStaleness, leaseSize: config.learner.leaseSize,
                           leaseTimeout: config.learner.leaseTimeoutSeconds, heartbeatTimeout: config.learner.heartbeatTimeoutSeconds,
                           credit: config.learner.credit, publishEvery: config.learner.publishEvery)
        if config.rewardWorkers.enabled {
            let transport = try rewardTransport ?? ZeroMQRewardWorkers(
                endpoints: config.rewardWorkers.endpoints,
                keys: RewardWorkerKeys.resolve(config.rewardWorkers, learner: security.map { .pair($0.keyPair) } ?? .insecurePlaintext))
            rewards = RewardWorkerClient(settings: .init(config.rewardWorkers), transport: transport)
        } else {
            rewards = nil
        }
        endpoints = try (makeEndpoints ?? { try LearnerEndpoints.zeroMQ(config.endpoints, epoch: $0, security: security) })(epoch)
        let exposition = PrometheusExposition()
        if makeEndpoints == nil && config.endpoints.metricsPort != 0 {
            metricsEndpoint = try MetricsEndpoint(host: config.endpoints.bindHost, port: config.endpoints.metricsPort, exposition: exposition)
        }
        // Stop sequences travel with each prompt's sampling parameters (`promptMessage`), not here.
        // An authenticated run's actors admit one another to their relays: every actor's public key, by
        // name. Made before the run log: a Welcome too large for actors must stop a start that wrote nothing.
        let relayPeers = endpoints.allowlist.map(LiveAllowlist.relayPeers(of:))
        welcomeJSON = try config.welcomeJSON(relayPeers: relayPeers)
        liveAllowlist = makeEndpoints == nil ? security.map { LiveAllowlist($0) } : nil
        runLog = try RunLog(path: logPath, writing: runLogWriting)
        let exportFailed: (String) -> Void = { [console] in console.warn("metrics export failed; training goes on", ["error": .string($0)]) }
        events = RunEvents([RunLogSink(runLog), LogStreamSink<RunLogEntry>(endpoints.logs),
                            MetricsFileSink<RunLogEntry>(MetricsWriter(path: runDirectory + "/metrics.jsonl", onFailure: exportFailed)),
                            PrometheusTextfileSink<RunLogEntry>(path: runDirectory + "/metrics.prom",
                                                                run: URL(fileURLWithPath: runDirectory).lastPathComponent,
                                                                exposition: exposition, streamKinds: ["learner_stats": "learner", "run_finished": "learner", "learner_stopped": "learner"],
                                                                onFailure: exportFailed),
                            TensorBoardSink<RunLogEntry>(directory: runDirectory + "/tensorboard", onFailure: exportFailed)])
        if case .bf16 = backwardProducts, config.learner.threads > 2 {
            console.warn("the bf16 backward's products run on two threads, not learner.threads",
                         ["learner.threads": .integer(config.learner.threads)])
        }
        if runLog.truncatedBytes > 0 {
            console.warn("cut a torn final record from the run log", ["bytes": .integer(runLog.truncatedBytes),
                                                                      "kept_in": .string(runLog.tornTailPath ?? "")])
        }
        if !staleTemporaries.isEmpty {
            console.info("removed checkpoint files a stopped learner left half-written", ["files": .string(staleTemporaries.joined(separator: ", "))])
        }
        prompts.report(to: console, taskFile: config.task.file)

        let baseHash = model.weightsHash()
        if resume {
            resumedFromStep = try LearnerServer.restore(core: core, trainer: trainer, model: model, log: runLog, events: events,
                                                        admission: admission, runDirectory: runDirectory,
                                                        maxSteps: config.run.maxSteps, console: console)
        } else {
            do {
                try AtomicFile.write(config.resolvedJSONData(), to: runDirectory + "/config.json")
                try events.emit(.runStarted(epoch: epoch, baseModel: config.model.path, baseWeightsHash: baseHash,
                                            prompts: prompts.entries.count,
                                            configDigest: config.resolvedJSONData().withUnsafeBytes { WeightsHash.hex(bytes: $0) }))
            } catch {
                // Nothing of the run is recorded: leave the directory as a fresh start will find it.
                unlink(runDirectory + "/config.json")
                truncate(logPath, 0)
                throw error
            }
        }
        try events.emit(.epochStarted(epoch: epoch, step: core.step, weightsHash: model.weightsHash()))
        let shm = config.learner.sharedMemoryDirectory.isEmpty ? nil : config.learner.sharedMemoryDirectory
        if let shm, SharedMemoryWeights.sweep(directory: shm) > 0 {
            console.info("removed weight files that stopped learners left in \(shm)")
        }
        let first = WeightSnapshot.make(model: model, version: PolicyVersion(epoch: epoch, step: UInt64(core.step)), sharedMemoryDirectory: shm)
        weightService = WeightService(snapshot: first.snapshot, relayFanout: config.learner.relayFanout)
        weightService.relayPublicKeys = relayPeers ?? [:]

        training = LearnerTraining(config: config, runDirectory: runDirectory, epoch: epoch, core: core,
                                   trainer: trainer, worker: .trainer(trainer, sharedMemoryDirectory: shm), runLog: runLog,
                                   events: events, console: console, clock: clock, startedAt: startedAt)

        configDigest = config.configDigest
        LogStreamAttachment.process.attach(endpoints.logs)
        warnOnce(sharedMemoryProblem: first.sharedMemoryProblem)
        training.onStepTrained = { [unowned self] outcome in
            warnOnce(sharedMemoryProblem: outcome.sharedMemoryProblem)
            if let snap = outcome.snapshot {
                weightService.publish(snap)
                try events.emit(.published(step: outcome.job.step, epoch: epoch))
                announceNow()
            }
        }
        let discovery = LearnerEndpointsFile(endpoints: config.endpoints, epoch: epoch, learnerPublicKey: security?.keyPair.publicKey.z85)
        if makeEndpoints == nil {
            // Bound now: processes that know only the run directory (a batch job's actors) find us here.
            try discovery.write(to: runDirectory + "/" + LearnerEndpointsFile.fileName)
            self.discovery = discovery
        }
        var listening: [String: JSONValue] = ["control": .string(discovery.control), "logs": .string(discovery.logs), "run": .string(runDirectory),
                                              "step": .integer(core.step), "epoch": .string(String(epoch, radix: 16))]
        if let metricsEndpoint {
            listening["metrics"] = .string("http://\(config.endpoints.advertiseHost.contains(":") ? "[\(config.endpoints.advertiseHost)]" : config.endpoints.advertiseHost):\(metricsEndpoint.port)/metrics")
        }
        if BLASInfo.threads == 1 {
            listening["matrix_products"] = .string(GEMMRowSplit.enabled ? "rows split over 2 threads" : "1 thread (TROUPE_GEMM_ROW_SPLIT=off, or this kernel's split products differ)")
        }
        console.info("listening", listening)
    }

    /// The lock goes with the learner (a process that dies releases it too), so a test can play a
    /// learner's death and resume in one process.
    deinit {
        worker.stop()
        metricsEndpoint?.stop()
        LogStreamAttachment.process.detach(endpoints.logs)
    }

    // MARK: main loop

    /// Runs until `run.max_steps` steps are done or a shutdown is requested. Returns the exit status.
    package func run() throws -> Int32 {
        // Whatever ends the loop, the status file's last word is that this learner stopped (a probe of a
        // finished or failed learner must not read a fresh "listening").
        defer {
            try? statusFile?.write(status.asStopped)
        }
        try events.emit(.stream("learner_started", step: core.step, fields: ["epoch": String(epoch, radix: 16), "run": runDirectory]))
        var failed = false
        do {
            while true {
                if Shutdown.requested && !finished {
                    console.info("shutdown requested: finishing the step in progress and writing a checkpoint")
                    break
                }
                // Scores arrive on the reward workers' sockets, which this wait does not watch: look more often.
                try endpoints.waitForInput(.afterMilliseconds(training.isBusy || !awaitingRewards.isEmpty ? 5 : 20),
                                           [worker.wakeFileDescriptor, runLog.wakeFileDescriptor].compactMap { $0 })
                switch try turn() {
                case .running: continue
                case .finished: break
                case .failed: failed = true
                }
                break
            }
        } catch {
            // A fatal error ends the process (a closed authentication gate has closed the sockets already).
            // The step in training finishes first: exiting under it frees OpenBLAS's buffers while the
            // trainer thread still uses them (a crash). Its result is not recorded; a resume redoes it.
            // Meanwhile (a checkpoint can take minutes) the status file says so, fresh.
            writeStoppingStatus()
            while worker.busy {
                _ = worker.waitForIdle(upTo: 1)
                writeStoppingStatus()
            }
            // Actors hear why at once instead of after 6 s of silence, and wait for a resumed learner.
            var bye = Troupe_V1_Bye()
            bye.reason = Self.failedByeReason("\(error)")
            for (peer, _) in peers { _ = try? control.send(WireMessage(.bye(bye)), to: peer, deadline: .now) }
            usleep(100_000)
            throw error
        }
        return try stop(failed: failed)
    }

    package enum TurnOutcome { case running, finished, failed }

    /// The Bye reason of a learner that a fatal error ends: the error cut to 200 characters.
    static func failedByeReason(_ error: String) -> String { "learner failed: " + String(error.prefix(200)) }

    /// One turn of the I/O loop: handles what waits on the control and weights endpoints, the trainer's
    /// finished steps and, when due, housekeeping; starts the next step when a batch is ready.
    package func turn() throws -> TurnOutcome {
        try endpoints.checkAuthentication()
        let now = clock()
        try drainControl(now: now)
        try drainWeights(now: now)
        if try !training.recordFinishedSteps() { return .failed }
        if stopFailure != nil { return .failed }
        if let step = failAuthenticationAfterStep, core.step >= step, let handler = endpoints.zapHandler {
            handler.failForTesting(closeSocket: true)
            failAuthenticationAfterStep = nil
        }
        if now - lastHousekeeping >= 0.2 { try housekeeping(now: now); lastHousekeeping = now }
        if !training.isBusy { try training.startStepIfReady() }
        // The last step is recorded: `stop` waits for its checkpoint, if one is being written.
        if core.step >= config.run.maxSteps { finished = true; return .finished }
        return .running
    }

    /// Waits for the step in training, if any, and records it (tests; `stop` does the same).
    package func settleTraining() throws -> Bool {
        try training.recordFinishedSteps(waiting: true)
    }

    /// Ends the run: waits for the step in training, checkpoints, writes the closing record and summary,
    /// tells every actor, and closes the endpoints. Returns the exit status.
    package func stop(failed: Bool) throws -> Int32 {
        writeStoppingStatus()
        _ = try training.recordFinishedSteps(waiting: true, whileWaiting: writeStoppingStatus)
        // Groups still waiting for scores were never acknowledged: their actors resend them to the next learner.
        rewards?.close()
        // Exports end with the run's final figures; nothing here may keep the checkpoint from being written.
        try? publishStats(now: clock(), stopping: true)
        try training.checkpointNow(whileWaiting: writeStoppingStatus)
        try sendAcks(of: []) // checkpointNow left every record before it durable
        try events.emit(.runEnded(finished: finished, step: core.step, accounting: core.accounting.summary.mapValues(Double.init)))
        try writeSummary()
        if finished, var file = discovery {
            // An actor of this epoch that misses every Bye (reconnecting, or evicted and frozen) reads it here.
            let now = Date()
            file.finishedAt = now
            file.writtenAt = now
            do { try file.write(to: runDirectory + "/" + LearnerEndpointsFile.fileName) } catch {
                console.warn("could not mark the endpoints file finished (\(error)); an actor that missed the end waits --learner-gone-timeout")
            }
        }
        var bye = Troupe_V1_Bye()
        bye.reason = finished ? ByeReason.runFinished : failed ? Self.failedByeReason(training.failure ?? stopFailure ?? "a training step failed") : "learner stopping"
        for (peer, _) in peers { _ = try? control.send(WireMessage(.bye(bye)), to: peer, deadline: .now) }
        // Let the last events leave; after a finished run, tell late speakers it is over.
        if finished {
            let now = clock()
            let recentlyEvicted = evicted.filter { now - $0.value.at < 2 * endpoints.goodbyeWaitSeconds }
            for case let (_, (peer?, _)) in recentlyEvicted { _ = try? control.send(WireMessage(.bye(bye)), to: peer, deadline: .now) }
            try lingerAfterFinish(awaiting: Set(peers.values).union(recentlyEvicted.keys))
        } else {
            usleep(200_000)
        }
        worker.stop()
        LogStreamAttachment.process.detach(endpoints.logs)
        endpoints.close()
        metricsEndpoint?.stop()
        metricsEndpoint = nil
        // Actors that mapped a version keep its pages; its name goes now rather than at some later
        // deinit (the next learner would sweep it, but only when it starts).
        for path in [snapshot.manifest.sharedMemoryPath, weightService.previous?.manifest.sharedMemoryPath ?? ""] where !path.isEmpty {
            unlink(path)
        }
        console.info(finished ? "run finished" : "stopped", ["step": .integer(core.step), "accounting_identity": .bool(core.accounting.identityHolds)])
        return failed ? 1 : 0
    }

    /// For `endpoints.lingerSeconds` after the run, and on (up to `endpoints.goodbyeWaitSeconds`)
    /// until every actor in `awaiting` has said Bye, any actor that speaks is told the run finished:
    /// one that missed the end (evicted, or reconnecting behind a lossy link) exits instead of
    /// waiting for a learner that is gone.
    private func lingerAfterFinish(awaiting: Set<String>) throws {
        let seconds = endpoints.lingerSeconds, longest = max(seconds, endpoints.goodbyeWaitSeconds)
        guard longest > 0 else { return }
        var awaiting = awaiting
        let started = monotonicSeconds()
        var speakers = peers
        for case let (identity, (peer?, _)) in evicted { speakers[peer] = identity }
        var bye = Troupe_V1_Bye()
        bye.reason = ByeReason.runFinished
        func lingering() -> Bool {
            let elapsed = monotonicSeconds() - started
            return elapsed < seconds || (!awaiting.isEmpty && elapsed < longest)
        }
        while lingering() {
            switch try control.receiveFromPeer(deadline: .afterMilliseconds(50), limits: .control) {
            case .message(let peer, let message):
                if case .hello(let hello) = message.body { speakers[peer] = Self.claimedIdentity(hello, peer: peer) }
                if case .bye = message.body {
                    if let identity = speakers[peer] { awaiting.remove(identity) }
                } else {
                    _ = try? control.send(WireMessage(.bye(bye)), to: peer, deadline: .now)
                }
            case .rejected(let peer?, let error) where error.reason != .unauthenticated:
                _ = try? control.send(WireMessage(.bye(bye)), to: peer, deadline: .now)
            default:
                break
            }
        }
    }

    private func warnOnce(sharedMemoryProblem problem: String?) {
        guard let problem, !warnedAboutSharedMemory else { return }
        console.warn("weights stay out of shared memory (\(problem)); actors on this host fetch chunks like remote ones")
        warnedAboutSharedMemory = true
    }

    /// Handles what is queued on the control socket (up to 256 messages), asks the run log to make
    /// their records durable, and sends every ack whose records are (group commit; with the log's
    /// writer thread, this turn's acks usually leave in a later turn, woken by the writer).
    private func drainControl(now: Double) throws {
        try drainControlMessages(now: now)
        try admitScoredGroups(now: now)
        try sendAcks(of: pendingAcks)
        pendingAcks.removeAll(keepingCapacity: true)
    }

    /// Holds `decided` until the run log has their records, and sends every held ack whose records it has.
    private func sendAcks(of decided: [(PeerID, Troupe_V1_Ack)]) throws {
        for (peer, ack) in try acksAwaitingDisk.take(decided, committing: runLog) {
            _ = try control.send(WireMessage(.ack(ack)), to: peer, deadline: .now)
        }
    }

    private func drainControlMessages(now: Double) throws {
        for _ in 0..<256 {
            switch try control.receiveFromPeer(deadline: .now, limits: .control) {
            case .timedOut: return
            case .rejected(_, let error) where error.reason == .unauthenticated:
                // Nothing goes back to a connection that is not authenticated, not even a Reject.
                wireRejects[error.reason.rawValue, default: 0] += 1
            case .rejected(let peer, let error):
                wireRejects[error.reason.rawValue, default: 0] += 1
                try events.emit(.stream("rejection", metrics: ["count": 1], fields: ["reason": error.reason.rawValue, "detail": error.detail]))
                if let peer { send(rejectFor: error, to: peer, on: control, now: now) }
            case .message(let peer, let message):
                try dispatch(message, from: peer, now: now)
            }
        }
    }

    /// Answers `peer` with a Reject on `socket` (the control socket unless said), within its `RejectBudget`.
    private func send(reject reason: Troupe_V1_RejectReason, _ text: String, to peer: PeerID, on socket: (any RouterTransport)? = nil,
                      now: Double) {
        guard rejectBudget.allows(peer, now: now) else {
            wireRejects["reject_suppressed", default: 0] += 1
            return
        }
        var r = Troupe_V1_Reject()
        r.reason = reason
        r.text = text
        _ = try? (socket ?? control).send(WireMessage(.reject(r)), to: peer, deadline: .now)
    }

    /// The Reject for a message that failed to decode (docs/PROTOCOL.md, "Rejects").
    private func send(rejectFor error: WireError, to peer: PeerID, on socket: any RouterTransport, now: Double) {
        if error.reason == .unsupportedProtocol {
            send(reject: .protocolMajor, "protocol mismatch: \(error.detail); the learner speaks major \(WireProtocol.major)", to: peer, on: socket, now: now)
        } else {
            send(reject: .malformed, error.description, to: peer, on: socket, now: now)
        }
    }

    private func dispatch(_ message: WireMessage, from peer: PeerID, now: Double) throws {
        if endpoints.allowlist != nil && peer.authenticatedUser == nil {
            // The sockets refuse these already; an endpoint that let one through must not be trusted.
            wireRejects["unauthenticated", default: 0] += 1
            return
        }
        if case .hello(let hello) = message.body { return try welcome(hello, peer: peer, now: now) }
        guard let identity = peers[peer], core.actors[identity] != nil else {
            send(reject: .unknownActor, "unknown actor: say Hello first (the learner may have restarted)", to: peer, now: now)
            return
        }
        switch message.body {
        case .leaseRequest(let request):
            core.touch(identity: identity, now: now)
            var lease = Troupe_V1_Lease()
            if let granted = core.grantLease(to: identity, maxPrompts: Int(request.maxPrompts), now: now) {
                lease.leaseID = granted.id
                lease.deadlineMs = UInt32(config.learner.leaseTimeoutSeconds * 1000)
                lease.minVersion = PolicyVersion(epoch: epoch, step: UInt64(granted.minStep)).proto
                lease.prompts = granted.prompts.map { promptMessage($0) }
                try events.emit(.stream("lease", step: core.step, metrics: ["prompts": Double(granted.prompts.count)],
                                        fields: ["actor": identity, "lease": String(granted.id)]))
            }
            _ = try control.send(WireMessage(.lease(lease)), to: peer, deadline: .now)
        case .groupSubmit:
            try receiveGroup(message, identity: identity, peer: peer, now: now)
        case .heartbeat(let hb):
            var stats: [String: Double] = ["groups_produced": Double(hb.stats.groupsProduced), "tokens_per_s": hb.stats.tokensPerSecond,
                                           "idle_ratio": hb.stats.idleRatio, "unacked": Double(hb.stats.unackedGroups),
                                           "weights_step": Double(hb.stats.weightsVersion.step)]
            stats["weights_current"] = hb.stats.weightsVersion.epoch == epoch ? 1 : 0
            core.touch(identity: identity, now: now, stats: stats)
            var reply = Troupe_V1_Heartbeat()
            reply.currentVersion = snapshot.version.proto
            _ = try control.send(WireMessage(.heartbeat(reply)), to: peer, deadline: .now)
        case .bye(let bye):
            let returned = core.depart(identity: identity, now: now)
            forget(peer: peer)
            weightService.remove(actor: identity)
            let reason = bye.reason.utf8.count > Self.maxBuildBytes ? String(decoding: bye.reason.utf8.prefix(Self.maxBuildBytes), as: UTF8.self) + "…" : bye.reason
            try events.emit(.actorLeft(actor: identity, reason: "bye: \(reason)", streamReason: reason, leases: returned))
        default:
            wireRejects["unexpected_kind", default: 0] += 1
            send(reject: .malformed, "a \(message.kind.rawValue) does not belong on the control socket", to: peer, now: now)
        }
    }

    private func forget(peer: PeerID) {
        if let id = peers.removeValue(forKey: peer), peerOf[id] == peer { peerOf.removeValue(forKey: id) }
    }

    /// The interval the Welcome asks actors to heartbeat at (a fifth of the timeout, at least 0.2 s).
    private var heartbeatIntervalSeconds: Double { max(0.2, config.learner.heartbeatTimeoutSeconds / 5) }
    /// How long an identity stays with the live run that holds it against a Hello of another run: 3 s, or
    /// one and a half heartbeat intervals where those are longer, so that a live actor between two
    /// heartbeats is never taken for a silent one.
    private var identityHoldSeconds: Double { max(3, 1.5 * heartbeatIntervalSeconds) }

    /// The longest `actor_identity`, and the longest `build_id` (and Bye reason, cut to it), a Hello may carry.
    static let maxIdentityBytes = 128, maxBuildBytes = 256

    /// The actor a Hello speaks for: its `actor_identity`, else its key's name, else one made from the route.
    private static func claimedIdentity(_ hello: Troupe_V1_Hello, peer: PeerID) -> String {
        hello.actorIdentity.isEmpty ? peer.authenticatedUser ?? "actor-\(peer)" : hello.actorIdentity
    }

    private func welcome(_ hello: Troupe_V1_Hello, peer: PeerID, now: Double) throws {
        // The Envelope's major already matched; a Hello that says otherwise was built for another protocol.
        if hello.protocolMajor != WireProtocol.major {
            wireRejects["hello_protocol_major", default: 0] += 1
            send(reject: .protocolMajor, "Hello.protocol_major is \(hello.protocolMajor); the learner speaks major \(WireProtocol.major) (set it to the Envelope's protocol_major)", to: peer, now: now)
            return
        }
        // Both go into the run log's actor_joined record and every stream line of the actor: bounded, so
        // that Hellos cannot fill the learner's disk with megabyte names.
        for (field, text, most) in [("actor_identity", hello.actorIdentity, Self.maxIdentityBytes), ("build_id", hello.buildID, Self.maxBuildBytes)]
        where text.utf8.count > most {
            wireRejects["hello_field_too_long", default: 0] += 1
            send(reject: .malformed, "Hello.\(field) holds \(text.utf8.count) bytes; at most \(most)", to: peer, now: now)
            return
        }
        let claimed = Self.claimedIdentity(hello, peer: peer)
        // On an authenticated endpoint the actor is the name its key is allowlisted under: a key speaks
        // for one actor only, and no connection can take another key's actor identity.
        if let user = peer.authenticatedUser, user != claimed {
            send(reject: .configMismatch, "this connection's key is allowlisted as \(user); it cannot join as \(claimed) (use --identity \(user) or that actor's key)", to: peer, now: now)
            try events.emit(.stream("rejection", fields: ["actor": user, "reason": "identity_not_key", "detail": "claimed \(claimed)"]))
            return
        }
        let identity = claimed
        if let live = core.actors[identity], live.runId != hello.actorRunID, now - live.lastSeen < identityHoldSeconds {
            // Two live processes with one name would steal each other's leases: refuse the newcomer
            // until the other leaves or goes silent (a restarted actor gets in once its old run is evicted).
            send(reject: .configMismatch, "actor identity \(identity) is in use by a live actor; choose another --identity", to: peer, now: now)
            return
        }
        if let old = peerOf[identity], old != peer { peers.removeValue(forKey: old) }
        evicted.removeValue(forKey: identity)
        peers[peer] = identity
        peerOf[identity] = peer
        let known = core.actors[identity]
        let (credit, rejoined, reconnected) = core.hello(identity: identity, runId: hello.actorRunID, now: now)
        if !reconnected.isEmpty {
            weightService.remove(actor: identity)
            try events.emit(.actorLeft(actor: identity, reason: "reconnected: said Hello again, so its queued leases are dropped",
                                       streamReason: "reconnected", leases: reconnected))
        }
        if known == nil || known!.runId != hello.actorRunID || !reconnected.isEmpty {
            try events.emit(.actorJoined(actor: identity, actorRun: hello.actorRunID, build: hello.buildID, threads: hello.threadCount,
                                         rejoined: rejoined))
            console.info("actor joined", ["actor": .string(identity)])
        }
        var w = Troupe_V1_Welcome()
        w.learnerEpoch = epoch
        w.currentVersion = snapshot.version.proto
        w.runID = config.run.name
        w.credit = UInt32(credit)
        w.heartbeatIntervalMs = UInt32(heartbeatIntervalSeconds * 1000)
        w.leaseSize = UInt32(config.learner.leaseSize)
        // An IPv6 address comes in brackets, as libzmq and every parser of these strings take it.
        func advertised(_ port: Int) -> String { Endpoint.tcp(host: config.endpoints.advertiseHost, port: UInt16(port)).description }
        w.weightsEndpoint = advertised(config.endpoints.weightsPort)
        w.announceEndpoint = advertised(config.endpoints.announcePort)
        w.logsEndpoint = advertised(config.endpoints.logsInPort)
        w.maxStaleness = UInt32(config.learner.maxStaleness)
        w.configJson = welcomeJSON
        w.configDigest = configDigest
        if let liveAllowlist {
            // Only an authenticated run's relays admit by key; its identities are its allowlist's names.
            relayGeneration[identity] = liveAllowlist.generation
            if hello.protocolMinor >= Self.relayPeersMinor { takesRelayPeers.insert(identity) } else { takesRelayPeers.remove(identity) }
        }
        _ = try control.send(WireMessage(.welcome(w)), to: peer, deadline: .now)
    }

    private func promptMessage(_ id: UInt64) -> Troupe_V1_Prompt {
        let entry = core.prompts[id]!
        var p = Troupe_V1_Prompt()
        p.promptID = id
        p.text = entry.text
        p.tokenIds = entry.tokens
        p.groupSize = UInt32(config.sampling.groupSize)
        var s = Troupe_V1_SamplingParams()
        s.temperature = Float(config.sampling.temperature)
        s.topK = UInt32(config.sampling.topK)
        s.topP = Float(config.sampling.topP)
        s.maxTokens = UInt32(config.sampling.maxNewTokens)
        s.stopSequences = config.stopSequences
        s.seed = config.run.seed
        if let temperatures = config.sampling.temperatures { s.temperatures = temperatures.map(Float.init) }
        if config.groupShape == .tree {
            var shape = Troupe_V1_TreeShape()
            shape.forks = UInt32(config.sampling.treeForks)
            shape.branching = UInt32(config.sampling.treeBranching)
            s.tree = shape
        }
        if let serial = admission.limits.serial {
            var shape = Troupe_V1_SerialShape()
            shape.exits = UInt32(config.sampling.groupSize - 1)
            shape.exitPhraseIds = serial.phrase
            shape.answerTokens = UInt32(serial.answerTokens)
            s.serial = shape
        }
        p.sampling = s
        if let answer = prompts.visibleAnswers[id] { p.referenceAnswer = answer }
        p.task = config.task.spec ?? "file"
        return p
    }

    private func receiveGroup(_ message: WireMessage, identity: String, peer: PeerID, now: Double) throws {
        if let rewards { return try receiveGroupForWorkers(message, identity: identity, peer: peer, rewards: rewards, now: now) }
        let (ack, outcome) = try GroupIntake.receive(message, from: identity, core: core, admission: admission, events: events,
                                                     currentVersion: snapshot.version, now: now)
        try report(outcome, identity: identity)
        pendingAcks.append((peer, ack))
    }

    /// With reward workers: a group that passes every other check waits, unacknowledged, for its samples'
    /// scores (`admitScoredGroups` decides on it then); anything else is decided now as without workers.
    private func receiveGroupForWorkers(_ message: WireMessage, identity: String, peer: PeerID, rewards: RewardWorkerClient,
                                        now: Double) throws {
        let submitted: RolloutGroup
        switch GroupIntake.decode(message, core: core, currentVersion: snapshot.version, identity: identity) {
        case .failure(let refused):
            try report(refused.outcome, identity: identity)
            pendingAcks.append((peer, refused.ack))
            return
        case .success(let group):
            submitted = group
        }
        if let batch = awaitingRewards.index(forKey: awaitingKeys[submitted.key] ?? 0) {
            // A resend of a group being scored: one decision, acked to the connection that spoke last.
            awaitingRewards.values[batch].peer = peer
            return
        }
        let known = core.actors[identity]?.runId == submitted.key.actorRunId
        // Decided now, without scores, when they could not change the outcome: an unknown actor, a
        // duplicate, a version or lease that cannot land, a group that fails its other checks.
        if !known || core.hasSeen(submitted.key) || core.versionOrLeaseProblem(submitted, from: identity) != nil
            || admission.precheck(submitted) != nil {
            let (ack, outcome) = try GroupIntake.admit(submitted, from: identity, core: core, review: { [admission] in admission.review($0) },
                                                       events: events, currentVersion: snapshot.version, now: now)
            try report(outcome, identity: identity)
            pendingAcks.append((peer, ack))
            return
        }
        let prompt = core.prompts[submitted.promptId]!
        let reference = prompts.visibleAnswers[submitted.promptId]
        let queries = submitted.samples.map { sample in
            RewardQuery(promptID: submitted.promptId, prompt: prompt.text,
                        completion: admission.scorer!.text(of: sample.tokens, stopSequences: config.stopSequences), reference: reference)
        }
        let batch = rewards.request(queries, now: now)
        awaitingRewards[batch] = AwaitingRewards(group: submitted, identity: identity, peer: peer)
        awaitingKeys[submitted.key] = batch
    }

    /// Decides on the groups whose scores are in: the usual checks, with the workers' scores as the reward.
    private func admitScoredGroups(now: Double) throws {
        guard let rewards else { return }
        for (batch, outcomes) in rewards.poll(now: now) {
            guard let waiting = awaitingRewards.removeValue(forKey: batch) else { continue }
            awaitingKeys.removeValue(forKey: waiting.group.key)
            // An actor run that left (Bye, eviction) while its group was scored: like any group a departed
            // actor never delivered, it is not received (the accounting counts it as lost_uncommitted).
            guard core.actors[waiting.identity]?.runId == waiting.group.key.actorRunId else { continue }
            let fallback = config.rewardWorkers.fallbackReward
            let (ack, outcome) = try GroupIntake.admit(waiting.group, from: waiting.identity, core: core,
                                                       review: { [admission] in admission.review($0, workerScores: outcomes, fallback: fallback) },
                                                       events: events, currentVersion: snapshot.version, now: now)
            try report(outcome, identity: waiting.identity)
            pendingAcks.append((waiting.peer, ack))
        }
    }

    /// The log-stream event and wire counts of a decision on a group.
    private func report(_ outcome: GroupIntake.Outcome, identity: String) throws {
        switch outcome {
        case .accepted, .duplicate:
            break
        case .rejected(_, let reason, let detail):
            try events.emit(.stream("rejection", step: core.step, fields: ["actor": identity, "reason": reason.rawValue, "detail": detail]))
        case .refused(let reason, let detail):
            wireRejects[reason, default: 0] += 1
            try events.emit(.stream("rejection", fields: ["actor": identity, "reason": reason, "detail": detail]))
        }
    }

    private func drainWeights(now: Double) throws {
        for _ in 0..<256 {
            switch try weights.receiveFromPeer(deadline: .now, limits: .control) {
            case .timedOut: return
            case .rejected(let peer, let error):
                wireRejects["weights_" + error.reason.rawValue, default: 0] += 1
                // As on the control socket: nothing goes back to a connection that is not authenticated.
                if let peer, error.reason != .unauthenticated { send(rejectFor: error, to: peer, on: weights, now: now) }
            case .message(let peer, var message):
                if endpoints.allowlist != nil {
                    guard let user = peer.authenticatedUser else { wireRejects["weights_unauthenticated", default: 0] += 1; continue }
                    // The relay tree places the authenticated actor, whatever name the request carries.
                    if case .weightSourceRequest(var r) = message.body { r.actorIdentity = user; message.body = .weightSourceRequest(r) }
                }
                // Only a live actor of the run id it names takes a place in the relay tree (others could
                // fill it, or sit above honest actors): the rest fetch from the learner.
                var placeable = true
                if case .weightSourceRequest(let r) = message.body { placeable = core.actors[r.actorIdentity]?.runId == r.actorRunID }
                // Below a relay whose actor was welcomed before this one's key was allowlisted, it would be refused.
                if let reply = weightService.reply(to: message.body, placeable: placeable, relayAdmits: { [liveAllowlist, relayGeneration] parent in
                    guard let liveAllowlist, case .weightSourceRequest(let r) = message.body else { return true }
                    return liveAllowlist.relayAdmits(r.actorIdentity, admittedIn: relayGeneration[parent] ?? 0)
                }) {
                    _ = try weights.send(reply, to: peer, deadline: .now)
                    if case .weightSourceRequest(let r) = message.body, case .weightSource(let s) = reply.body {
                        try events.emit(.stream("weights_source", step: Int(clamping: r.version.step), metrics: ["depth": Double(s.depth)],
                                                fields: ["actor": r.actorIdentity, "upstream": s.upstreamEndpoint.isEmpty ? "learner" : s.upstreamEndpoint]))
                    }
                } else {
                    wireRejects["weights_unexpected_kind", default: 0] += 1
                    send(reject: .malformed, "a \(message.kind.rawValue) does not belong on the weights socket", to: peer, on: weights, now: now)
                }
            }
        }
    }

    private func announceNow() {
        var a = Troupe_V1_WeightAnnounce()
        a.version = snapshot.version.proto
        a.manifestHash = snapshot.manifest.manifestHash
        a.totalBytes = snapshot.manifest.totalBytes
        _ = try? endpoints.announce.send(WireMessage(.weightAnnounce(a)), deadline: .now)
        lastAnnounce = clock()
    }

    /// A change of `--allow`'s directory (`LiveAllowlist`): the endpoints admit the new keys, Welcomes list
    /// them for the actors' relays, and an actor whose key was removed or replaced leaves the run now (the
    /// messages of the connections that key holds are refused from here on).
    private func applyAllowlistChanges(now: Double) throws {
        guard let live = liveAllowlist else { return }
        var nextWelcome = welcomeJSON
        let outcome = live.check(now: now) { next in
            nextWelcome = try config.welcomeJSON(relayPeers: LiveAllowlist.relayPeers(of: next.allowlist))
        }
        switch outcome {
        case .unchanged:
            return
        case .refused(let problem):
            console.warn("the allowlist directory changed but cannot be used; the allowlist stays as it was", ["problem": .string(problem)])
            try events.emit(.stream("allowlist_refused", step: core.step, fields: ["problem": problem]))
        case .changed(let change):
            endpoints.updateAllowlist(live.security.allowlist)
            welcomeJSON = nextWelcome
            let relayPeers = LiveAllowlist.relayPeers(of: live.security.allowlist)
            if relayPeers == weightService.relayPublicKeys {
                // No actor's key changed (a monitor's did): relays told the last generation's keys admit
                // this one's too, and nobody is sent the same RelayPeers again.
                for (identity, generation) in relayGeneration where generation == live.generation - 1 { relayGeneration[identity] = live.generation }
            }
            weightService.relayPublicKeys = relayPeers
            // A replaced key's connections are refused from their next message (the per-message check
            // compares keys), so the actor they carry leaves as a removed one does; the new key joins afresh.
            let withdrawn = change.removed.map { ($0, "removed from") } + change.replaced.map { ($0, "replaced in") }
            if !withdrawn.isEmpty {
                do { try endpoints.dropSubscribers() } catch {
                    console.warn("a subscriber endpoint could not be bound again after a key was withdrawn; it serves nobody from now on",
                                 ["problem": .string("\(error)")])
                }
            }
            for (identity, how) in withdrawn where core.actors[identity] != nil {
                let leases = core.depart(identity: identity, now: now)
                if let peer = peerOf[identity] { forget(peer: peer) }
                weightService.remove(actor: identity)
                try events.emit(.actorLeft(actor: identity, reason: "key withdrawn: \(how) the allowlist",
                                           streamReason: "key_withdrawn", leases: leases))
            }
            let fields = ["added": change.added, "removed": change.removed, "replaced": change.replaced].mapValues { $0.joined(separator: ",") }
            console.info("allowlist changed", fields.mapValues(JSONValue.string))
            if !live.security.allowlist.members.values.contains(where: { $0.role != .learner }) {
                console.warn("the allowlist directory holds no key now: no actor or monitor is admitted until one is added")
            }
            try events.emit(.stream("allowlist_changed", step: core.step, fields: fields))
        }
    }

    /// The first protocol minor whose actors take RelayPeers.
    static let relayPeersMinor: UInt32 = 5

    /// Tells every live actor that takes RelayPeers, and whose relay still admits the keys of an older
    /// allowlist, whom to admit now; one whose queue is full is told at a later turn. So a withdrawn key is
    /// refused by the other actors' relays too, and a new one can be placed below them at once.
    private func sendRelayPeers() {
        guard let live = liveAllowlist else { return }
        let stale = takesRelayPeers.filter { core.actors[$0] != nil && peerOf[$0] != nil && (relayGeneration[$0] ?? 0) < live.generation }
        guard !stale.isEmpty else { return }
        var update = Troupe_V1_RelayPeers()
        update.publicKeys = weightService.relayPublicKeys
        let message = WireMessage(.relayPeers(update))
        for identity in stale.sorted() {
            if (try? control.send(message, to: peerOf[identity]!, deadline: .now)) == .sent { relayGeneration[identity] = live.generation }
        }
    }

    /// What the status file says of this learner now (`--status-file`).
    private var status: ProcessStatus {
        .learner(step: core.step, maxSteps: config.run.maxSteps, actors: core.actors.count, queue: core.queue.count)
    }

    /// While the learner stops (its last step and checkpoint can take minutes on a large model): the
    /// status file stays fresh, so liveness holds, and says it no longer listens, so readiness fails.
    private func writeStoppingStatus() {
        do {
            try statusFile?.writeIfDue(now: clock()) { status.asStopping }
        } catch { console.warn("\(error)") }
    }

    private func housekeeping(now: Double) throws {
        do {
            try statusFile?.writeIfDue(now: now) { status }
        } catch { console.warn("\(error)") }
        for lease in core.expireLeases(now: now) {
            try events.emit(.leaseExpired(lease, step: core.step))
        }
        try applyAllowlistChanges(now: now)
        sendRelayPeers()
        for (identity, leases) in core.evictSilent(now: now) {
            let peer = peerOf[identity]
            if let peer { forget(peer: peer) }
            evicted[identity] = (peer, now)
            weightService.remove(actor: identity)
            try events.emit(.actorLeft(actor: identity, reason: "evicted: no heartbeat for \(config.learner.heartbeatTimeoutSeconds) s",
                                       streamReason: "evicted", leases: leases))
            console.warn("evicted silent actor", ["actor": .string(identity)])
        }
        // Right after a start, announce at every housekeeping tick: actors of a previous learner learn
        // the new epoch (and say Hello) within a fraction of a second, instead of after the subscription
        // has reconnected and the next once-a-second announcement has come round.
        if now - lastAnnounce >= (now - startedAt < 3 ? 0.15 : 1) { announceNow() }
        if now - lastStats >= 1 {
            lastStats = now
            try publishStats(now: now)
        }
    }

    /// The once-a-second `learner_stats` event (and the reward workers' problems and counts); `stop`
    /// publishes a last one, so exports end with the run's final figures.
    private func publishStats(now: Double, stopping: Bool = false) throws {
        var m = core.accounting.summary.mapValues(Double.init)
        m["actors"] = Double(core.actors.count)
        m["leases"] = Double(core.leases.count)
        m["queue"] = Double(core.queue.count)
        m["step"] = Double(core.step)
        m["max_steps"] = Double(config.run.maxSteps)
        m["trainer/idle_ratio"] = training.idleRatio(now: now)
        m["rss_mb"] = residentMegabytes()
        for (k, v) in wireRejects { m["wire_rejected/\(k)"] = Double(v) }
        for (k, v) in training.stalenessHistogram { m["off_policy/staleness_hist/\(k)"] = Double(v) }
        if let rewards {
            for (k, v) in rewards.counters.metrics { m["reward_workers/\(k)"] = v }
            m["reward_workers/groups_waiting"] = Double(awaitingRewards.count)
            m["reward_workers/in_flight"] = Double(rewards.requestsInFlight)
            try reportRewardWorkerProblems(rewards.counters, stopping: stopping)
            if !stopping { watchForRewardOutage(rewards.counters, now: now) }
            // metrics.jsonl (and Prometheus, TensorBoard): a `reward_workers` line whenever the counts moved.
            if rewards.counters != exportedRewardCounters {
                exportedRewardCounters = rewards.counters
                try events.emit(.metrics("reward_workers", step: core.step, rewardWorkerMetrics(rewards.counters)))
            }
        }
        var fields: [String: String] = ["run": runDirectory, "epoch": String(epoch, radix: 16),
                                        "started_unix": String(format: "%.3f", startedWall)]
        for (id, a) in core.actors {
            fields["actor/\(id)"] = a.stats.keys.sorted().map { "\($0)=\(a.stats[$0]!)" }.joined(separator: ",") + ",accepted=\(a.groupsAccepted)"
        }
        try events.emit(.stream("learner_stats", step: core.step, metrics: m, fields: fields))
    }

    /// Stops the run (`stopFailure`) when samples went unscored and the workers scored none for
    /// `reward_workers.outage_stop_s`: a checkpoint to resume from once they answer, instead of resampling for ever.
    private func watchForRewardOutage(_ counters: RewardWorkerClient.Counters, now: Double) {
        defer { rewardCountersWatched = counters }
        // A worker's score ends an outage (an error or garbage does not); one from the cache does not either.
        let fromWorkers = counters.scored - counters.cacheHits, fromWorkersBefore = rewardCountersWatched.scored - rewardCountersWatched.cacheHits
        if fromWorkers > fromWorkersBefore { rewardOutageStart = nil; return }
        if counters.failed > rewardCountersWatched.failed {
            lastRewardFailureAt = now
            if rewardOutageStart == nil { rewardOutageStart = (now, rewardCountersWatched) }
        }
        // Nothing asked of the workers (no actors, say) is no outage: the count starts again at the next failure.
        let longestAttempts = config.rewardWorkers.deadlineSeconds * Double(config.rewardWorkers.attempts)
        if now - lastRewardFailureAt > longestAttempts + 2 { rewardOutageStart = nil }
        let limit = config.rewardWorkers.outageStopSeconds
        guard let start = rewardOutageStart, limit > 0, now - start.at >= limit, stopFailure == nil else { return }
        let before = start.counters
        let counts = counters.problems(since: before).filter { $0.key != "failed" }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        stopFailure = "the reward workers scored no sample for \(Int(now - start.at)) s (reward_workers.outage_stop_s \(limit)) "
            + "while \(counters.failed - before.failed) went unscored (\(counts.isEmpty ? "no other problem counted" : counts)); "
            + "the learner stops with a checkpoint: resume once the workers answer"
        console.error(stopFailure!)
    }

    /// The counters as metrics named like `learner_stats`' (`reward_workers/calls`, …).
    private func rewardWorkerMetrics(_ counters: RewardWorkerClient.Counters) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: counters.metrics.map { ("reward_workers/\($0.key)", $0.value) })
    }

    /// Says once a second, in the console and the log stream, what went wrong with the workers since
    /// the last time: every timeout, garbage answer, worker error and refused send is counted, never fatal.
    private func reportRewardWorkerProblems(_ counters: RewardWorkerClient.Counters, stopping: Bool) throws {
        let last = reportedRewardCounters
        reportedRewardCounters = counters
        let new = counters.problems(since: last)
        guard !new.isEmpty else { return }
        let text = new.keys.sorted().map { "\($0)=\(new[$0]!)" }.joined(separator: " ")
        console.warn("reward workers: \(text) in the last second; " + (stopping ? "the learner is stopping" : "the run goes on (docs/rewards.md)"))
        try events.emit(.stream("reward_worker_problems", step: core.step, metrics: new.mapValues(Double.init),
                                fields: ["endpoints": config.rewardWorkers.endpoints.joined(separator: ",")]))
    }

    private func writeSummary() throws {
        var rewardWorkers: [String: Double]?
        if let rewards {
            rewardWorkers = rewards.counters.metrics
            rewardWorkers?["groups_waiting"] = Double(awaitingRewards.count)
        }
        let summary = LearnerSummary(
            steps: core.step, finished: finished, wallTimeSeconds: clock() - startedAt, tokensTrained: training.tokensTrained,
            weightsHash: model.weightsHash(), accounting: core.accounting.summary, accountingIdentityHolds: core.accounting.identityHolds,
            trainerIdleRatio: training.idleRatio(now: clock(), countingCurrentWait: false), rewardWorkers: rewardWorkers,
            resumedFromStep: resumedFromStep)
        try summary.write(runDirectory: runDirectory)
    }
}

/// `RUN/learner.lock`, held (flock) while this object lives: released with it, also when a learner's
/// start fails after taking it (a refused resume), not only when the process ends.
final class RunDirectoryLock {
    private let descriptor: Int32

    init(_ runDirectory: String) throws {
        descriptor = open(runDirectory + "/learner.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RuntimeError.invalid("cannot open \(runDirectory)/learner.lock: \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw RuntimeError.invalid("\(runDirectory) is in use by another learner (learner.lock is held)")
        }
    }

    deinit { close(descriptor) }
}
