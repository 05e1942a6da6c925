import Foundation
import Testing
import TroupeLearner
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeWire

/// A learner on an in-memory network with a clock the test moves: each `turn()` runs the learner's
/// I/O loop once, and `TestActor`s speak the protocol by hand, so every rule is checked without
/// sockets, sleeps or actor processes. The model is the repository's built-in one (0.8 M parameters).
final class LearnerHarness {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    let directory: String
    var now = 1000.0
    private(set) var network = InMemoryLearnerNetwork()
    private(set) var learner: LearnerServer!
    let overrides: [String]
    /// Authenticated endpoints admitting these keys (nil: plaintext).
    let allowlist: CurveAllowlist?

    /// In-memory reward workers (runs with `reward_workers.endpoints`).
    let rewardTransport: (any RewardWorkerTransport)?
    /// How long a finished learner lingers, and waits at most for its actors' Byes (real seconds).
    let endOfRun: (linger: Double, goodbyeWait: Double)
    /// Inline by default, so that each turn's acks leave in that turn.
    let runLogWriting: RunLog.Writing

    /// A new run in a fresh temporary directory: 8 prompts, groups of 4, batches of 2 groups; with
    /// `directory`, a resume of the run there (or, with `resume` false, a new run in it).
    init(_ overrides: [String] = [], directory: String? = nil, resume: Bool? = nil, allowlist: CurveAllowlist? = nil,
         rewardTransport: (any RewardWorkerTransport)? = nil, endOfRun: (linger: Double, goodbyeWait: Double) = (0, 0),
         runLogWriting: RunLog.Writing = .inline) throws {
        self.rewardTransport = rewardTransport
        self.runLogWriting = runLogWriting
        self.endOfRun = endOfRun
        self.directory = directory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("troupe-learner-\(UUID().uuidString)").path
        self.overrides = overrides
        self.allowlist = allowlist
        try start(resume: resume ?? (directory != nil))
    }

    func start(resume: Bool) throws {
        network = InMemoryLearnerNetwork(allowlist: allowlist)
        (network.lingerSeconds, network.goodbyeWaitSeconds) = endOfRun
        let config = try RunConfig.load(path: nil, overrides: [
            "model.path=\(Self.repositoryRoot)/models/arith-base", "run.directory=\(directory)", "task.count=8",
            "sampling.group_size=4", "learner.batch_groups=2", "run.max_steps=4", "learner.checkpoint_every=1",
            "learner.shared_memory_dir=", "learner.lease_timeout_s=30", "learner.heartbeat_timeout_s=10",
        ] + overrides)
        let network = self.network
        learner = try LearnerServer(config: config, resume: resume, clock: { [unowned self] in self.now },
                                    makeEndpoints: { _ in network.endpoints }, rewardTransport: rewardTransport,
                                    runLogWriting: runLogWriting)
    }

    /// The learner vanishes without a word, as a killed process does: nothing more is written.
    func kill() { learner = nil }

    deinit { if learner != nil { try? FileManager.default.removeItem(atPath: directory) } }

    @discardableResult
    func turn() throws -> LearnerServer.TurnOutcome { try learner.turn() }

    /// Turns until a step in training is done and recorded.
    func trainPendingStep() throws {
        try turn()
        #expect(try learner.settleTraining())
        try turn()
    }

    /// `authenticatedAs`: the name of the allowlisted key the connection proved (authenticated endpoints).
    func connect(_ identity: String, runId: UInt64 = 1, authenticatedAs user: String? = nil) -> TestActor {
        TestActor(identity: identity, runId: runId, control: network.control.connect(identity: "\(identity)#\(runId)", authenticatedAs: user),
                  admission: learner.admission)
    }

    /// `actor` says Hello, is welcomed, asks for a lease of up to `prompts` prompts; returns the lease.
    func join(_ actor: TestActor, prompts: Int = 1) throws -> Troupe_V1_Lease {
        try actor.hello()
        try turn()
        _ = try actor.welcome()
        try actor.askForLease(prompts: prompts)
        try turn()
        return try actor.lease()
    }

    func records(_ type: String? = nil) throws -> [RunLog.Record] {
        try RunLog.read(path: directory + "/run.log").filter { type == nil || $0.type == type }
    }

    var epoch: UInt64 { learner.epoch }
}

/// An actor played by the test: it sends exactly the messages it is told to.
final class TestActor {
    let identity: String
    let runId: UInt64
    let control: InMemoryDealer
    /// The learner's check of groups: its scoring gives the honest answers and rewards.
    let admission: GroupAdmission
    private(set) var sequence: UInt64 = 0

    init(identity: String, runId: UInt64, control: InMemoryDealer, admission: GroupAdmission) {
        self.identity = identity
        self.runId = runId
        self.control = control
        self.admission = admission
    }

    func send(_ body: WireBody) throws {
        #expect(try control.send(WireMessage(body), deadline: .now) == .sent)
    }

    func hello() throws {
        var h = Troupe_V1_Hello()
        h.actorIdentity = identity
        h.actorRunID = runId
        h.protocolMajor = WireProtocol.major
        h.protocolMinor = WireProtocol.minor
        h.buildID = TroupeBuild.id
        try send(.hello(h))
    }

    func bye() throws {
        var b = Troupe_V1_Bye()
        b.reason = "stopping"
        try send(.bye(b))
    }

    func askForLease(prompts: Int = 1) throws {
        var r = Troupe_V1_LeaseRequest()
        r.maxPrompts = UInt32(prompts)
        try send(.leaseRequest(r))
    }

    /// A group of `samples` completions of `tokens` each, for `prompt` under `lease`, sampled with
    /// `version`, with the answers and rewards the learner's scoring gives them unless `reward` says
    /// otherwise; `edit` changes the header before it is sent. `sequence` defaults to the next one.
    @discardableResult
    func submit(prompt: UInt64, lease: UInt64, version: PolicyVersion, samples: Int = 4, tokens: [Int32] = [52, 53, 257],
                logprob: Float = -0.7, reward: Double? = nil, sequence: UInt64? = nil,
                edit: (inout Troupe_V1_GroupSubmit) -> Void = { _ in }) throws -> UInt64 {
        let seq = sequence ?? { self.sequence += 1; return self.sequence }()
        var header = Troupe_V1_GroupSubmit()
        header.leaseID = lease
        header.promptID = prompt
        header.sequence = seq
        header.actorRunID = runId
        header.version = version.proto
        let finish: FinishReason = admission.scorer!.stopTokens.contains(tokens.last ?? -1) ? .stop : .length
        var samples = try admission.scorer!.honestSamples(Array(repeating: tokens, count: samples), finishReason: finish, temperature: 1,
                                                          logprob: logprob, stopSequences: admission.stopSequences, groundTruth: nil)
        if let reward { for i in samples.indices { samples[i].reward = reward } }
        var submission = GroupSubmission(header: header, samples: samples)
        edit(&submission.header)
        #expect(try control.send(submission.wireMessage(), deadline: .now) == .sent)
        return seq
    }

    /// Every reply waiting for this actor.
    func replies() throws -> [WireBody] { try control.receiveAll(limits: .control).map(\.body) }

    /// The first waiting reply that `extract` takes (`name` for the failure message).
    func first<T>(_ name: String, _ extract: (WireBody) -> T?) throws -> T {
        let all = try replies()
        guard let found = all.lazy.compactMap(extract).first else {
            Issue.record("no \(name) among \(all)")
            throw HarnessError.missing(name)
        }
        return found
    }

    func welcome() throws -> Troupe_V1_Welcome {
        try first("Welcome") { if case .welcome(let w) = $0 { w } else { nil } }
    }

    func lease() throws -> Troupe_V1_Lease {
        try first("Lease") { if case .lease(let l) = $0 { l } else { nil } }
    }

    func acks() throws -> [Troupe_V1_Ack] {
        try replies().compactMap { if case .ack(let a) = $0 { return a } else { return nil } }
    }
}

enum HarnessError: Error { case missing(String) }
