import Foundation
import Testing
import TroupeActor
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeWire

/// `ActorCore` in conversation with a real `LearnerServer` on the in-memory network: the core's
/// messages go to the learner's router, the learner runs one `turn()`, its replies come back to the
/// core. One clock, moved by the test, serves both; groups are synthetic (the built-in model's tokens).
final class Conversation {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-actor-\(UUID().uuidString)").path
    var now = 1000.0
    private(set) var network = InMemoryLearnerNetwork()
    private(set) var learner: LearnerServer!
    /// The run's group check, kept while no learner runs: its scoring gives honest rewards.
    private(set) var admission: GroupAdmission!
    var core: ActorCore
    private(set) var control: InMemoryDealer
    private var connections = 0
    /// Every event the core reported, in order.
    private(set) var events: [ActorCore.Event] = []
    /// Every ack the actor received, in order.
    private(set) var acks: [Troupe_V1_Ack] = []

    init() throws {
        var options = ActorCore.Options(identity: "a", runId: 0xA1)
        options.learnerSilence = 6
        core = ActorCore(options: options, now: now)
        control = InMemoryDealer.placeholder
        try startLearner(resume: false)
        control = connect()
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A learner on a fresh network (a new process: what the old one had queued is gone).
    func startLearner(resume: Bool) throws {
        network = InMemoryLearnerNetwork()
        let config = try RunConfig.load(path: nil, overrides: [
            "model.path=\(ActorCoreTests.repositoryRoot)/models/arith-base", "run.directory=\(directory)", "task.count=8",
            "sampling.group_size=4", "learner.batch_groups=8", "run.max_steps=4", "learner.checkpoint_every=1",
            "learner.shared_memory_dir=", "learner.lease_timeout_s=30", "learner.heartbeat_timeout_s=10", "learner.credit=2",
        ])
        let network = self.network
        learner = try LearnerServer(config: config, resume: resume, clock: { [unowned self] in self.now },
                                    makeEndpoints: { _ in network.endpoints }, runLogWriting: .inline)
        admission = learner.admission
    }

    func killLearner() { learner = nil }

    /// A new connection, as ActorClient's fresh socket after a reconnect (ZeroMQ routing ids are unique).
    func connect() -> InMemoryDealer {
        connections += 1
        return network.control.connect(identity: "a#\(connections)")
    }

    /// One round: the actor speaks, the learner takes a turn, the actor listens.
    func round() throws {
        try actorSpeaks()
        try learnerTurn()
        try actorListens()
    }

    /// The actor sends what is due: Hello, or its outgoing messages (or it opens a new connection).
    func actorSpeaks() throws {
        switch core.joinStep(now: now) {
        case .joined:
            for item in core.outgoing(now: now) where try send(item) == .sent { core.sent(item, now: now) }
        case .sayHello:
            if try send(.hello) == .sent { core.sent(.hello, now: now) }
        case .reconnect, .reconnectUnanswered, .renewConnection:
            control = connect()
        case .waiting, .giveUp, .learnerGone:
            break
        }
    }

    func learnerTurn() throws { _ = try learner.turn() }

    /// The actor reads every reply waiting for it.
    func actorListens() throws {
        for m in try control.receiveAll(limits: .control) {
            if case .ack(let a) = m.body { acks.append(a) }
            events += core.receive(m, now: now)
        }
    }

    /// The connection reaches a new learner at the same address (ZeroMQ reconnects underneath).
    func transportReconnects() { control = connect() }

    private func send(_ item: ActorCore.Outgoing) throws -> SendResult {
        switch item {
        case .hello: try control.send(WireMessage(.hello(core.hello)), deadline: .now)
        case .leaseRequest(let n):
            try control.send(WireMessage(.leaseRequest({ var r = Troupe_V1_LeaseRequest(); r.maxPrompts = n; return r }())), deadline: .now)
        case .group(_, let m): try control.send(m, deadline: .now)
        case .heartbeat: try control.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())), deadline: .now)
        }
    }

    /// Samples every queued lease with made-up completions (as the sampler thread would); returns them.
    @discardableResult
    func sampleQueuedLeases() throws -> [Troupe_V1_Lease] {
        var sampled: [Troupe_V1_Lease] = []
        while let lease = core.takeLease() {
            for prompt in lease.prompts { core.enqueue(try group(lease: lease.leaseID, prompt: prompt.promptID, version: core.weights!)) }
            sampled.append(lease)
        }
        return sampled
    }

    /// Four completions of three tokens of the built-in model's vocabulary, with the answers and
    /// rewards the learner's own scoring gives them (it refuses any other).
    func group(lease: UInt64, prompt: UInt64, version: PolicyVersion) throws -> GroupSubmission {
        var h = Troupe_V1_GroupSubmit()
        h.leaseID = lease
        h.promptID = prompt
        h.version = version.proto
        let samples = try admission.scorer!.honestSamples(Array(repeating: [52, 53, 257], count: 4), finishReason: .stop, temperature: 1,
                                                          logprob: -0.7, stopSequences: admission.stopSequences, groundTruth: nil)
        return GroupSubmission(header: h, samples: samples)
    }

    func records(_ type: String) throws -> [RunLog.Record] {
        try RunLog.read(path: directory + "/run.log").filter { $0.type == type }
    }
}

extension InMemoryDealer {
    /// Stands in until the first connection (a router nobody reads).
    static let placeholder = InMemoryRouter().connect(identity: "none")
}

@Suite(.serialized) struct ActorConversationTests {
    @Test func helloLeaseSubmitAckThenALearnerRestartAndTheResend() throws {
        let c = try Conversation()
        try c.round()
        guard case .welcomed(let w, let config, _)? = c.events.first else { Issue.record("not welcomed: \(c.events)"); return }
        let firstEpoch = c.learner.epoch
        #expect(w.learnerEpoch == firstEpoch)
        #expect(config.run.sampling.groupSize == 4)
        #expect(c.core.credit == 2)
        _ = c.core.weightsApplied(c.core.newest!)  // fetching weights is not part of this conversation

        // A lease, a group, its ack: the credit comes back (and the next lease comes with the ack).
        try c.round()
        #expect(try c.sampleQueuedLeases().count == 1)
        try c.round()
        #expect(c.acks.map(\.status) == [.accepted])
        #expect(c.core.unackedCount == 0)
        #expect(c.core.credit == 2)
        #expect(try c.records("group_accepted").count == 1)

        // Group 2 reaches the learner, which accepts it (on disk) and dies before its ack leaves;
        // group 3 is sampled after that and reaches no learner.
        let leaseB = try #require(try c.sampleQueuedLeases().first)
        try c.actorSpeaks()
        try c.learnerTurn()
        #expect(try c.records("group_accepted").count == 2)
        c.killLearner()
        c.core.enqueue(try c.group(lease: leaseB.leaseID, prompt: leaseB.prompts[0].promptID, version: c.core.weights!))
        #expect(c.core.unackedSequences == [2, 3])
        try c.startLearner(resume: true)
        #expect(c.learner.epoch != firstEpoch)

        // The actor hears nothing for learnerSilence, opens a new connection and says Hello to the new learner.
        c.now += 7
        try c.round()
        #expect(!c.core.joined)
        try c.round()
        #expect(c.core.terms?.epoch == c.learner.epoch)
        guard case .welcomed(_, _, let resending)? = c.events.last(where: { if case .welcomed = $0 { true } else { false } }) else {
            Issue.record("not welcomed again"); return
        }
        #expect(resending == 2)
        #expect(c.core.unsent == [2, 3])

        // Both go out again with their sequence numbers: the learner knows group 2 and keeps it once;
        // group 3 was sampled with the old learner's weights and is refused as from another epoch.
        _ = c.core.weightsApplied(c.core.newest!)
        try c.round()
        let resent = Array(c.acks.suffix(2))
        #expect(resent.map(\.sequence) == [2, 3])
        #expect(resent.map(\.status) == [.duplicate, .rejected])
        #expect(resent.last?.rejectReason == .oldEpoch)
        #expect(c.core.unackedCount == 0)
        #expect(c.core.credit == 2, "the duplicate and the rejection each give back the slot their resend took")
        #expect(try c.records("group_accepted").count == 2, "group 2 is on disk once")
        #expect(c.learner.core.accounting.duplicates == 1)
    }

    @Test func aLearnerThatRestartsUnderTheActorIsJoinedAtOnceWithoutWaitingForSilence() throws {
        let c = try Conversation()
        try c.round()
        #expect(c.core.joined)
        _ = c.core.weightsApplied(c.core.newest!)
        c.killLearner()
        try c.startLearner(resume: true)
        // The new learner does not know this actor and says so; the actor says Hello at once.
        c.transportReconnects()
        c.now += 0.5
        try c.round()
        #expect(c.events.contains { if case .rejected(let r) = $0 { r.reason == .unknownActor } else { false } })
        #expect(!c.core.joined)
        try c.round()
        #expect(c.core.terms?.epoch == c.learner.epoch)
        #expect(c.core.joined)
    }
}
