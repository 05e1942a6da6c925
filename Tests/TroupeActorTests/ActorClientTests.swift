import Foundation
import Testing
import TroupeActor
import TroupeLearner
import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeWire

/// Real `ActorClient`s and a real `LearnerServer` in one process, on an `InMemorySwitchboard`: no
/// sockets. Each round every actor takes a `turn()` and its sampling job (the built-in model) is
/// waited for, then the learner takes a turn and its training step is waited for; one clock, moved
/// by the test, serves them all.
final class InMemoryRun {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-actor-run-\(UUID().uuidString)").path
    var now = 1000.0
    let switchboard = InMemorySwitchboard()
    let overrides: [String]
    private(set) var network = InMemoryLearnerNetwork()
    private(set) var learner: LearnerServer?
    private(set) var learnerOutcome = LearnerServer.TurnOutcome.running
    private(set) var config: RunConfig!
    private(set) var actors: [Member] = []
    /// Reward workers the test answers itself (runs with `reward_workers.endpoints`).
    let rewardWorkers: InMemoryRewardWorkers?

    struct Member {
        let client: ActorClient
        let endpoints: InMemoryActorEndpoints
        /// What the actor reported (its log-stream events).
        let events: InMemoryProcessEvents<Never>
        var conversation: ActorCore { client.conversation }

        /// The `weights_applied` events' fields, in order.
        var applied: [[String: String]] { events.events.compactMap { $0.stream?.kind == "weights_applied" ? $0.stream?.fields : nil } }
    }

    /// 8 prompts, groups of 4, batches of 2 groups, a checkpoint at every step; no shared memory.
    init(_ overrides: [String] = [], rewardWorkers: InMemoryRewardWorkers? = nil) throws {
        self.overrides = overrides
        self.rewardWorkers = rewardWorkers
        try startLearner(resume: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A learner on a fresh network bound at the configured addresses (`control` moves the control
    /// endpoint elsewhere; the old address then reaches nobody).
    func startLearner(resume: Bool, control: Endpoint? = nil) throws {
        network = InMemoryLearnerNetwork()
        config = try RunConfig.load(path: nil, overrides: [
            "model.path=\(ActorCoreTests.repositoryRoot)/models/arith-base", "run.directory=\(directory)", "task.count=8",
            "sampling.group_size=4", "learner.batch_groups=2", "run.max_steps=2", "learner.checkpoint_every=1",
            "learner.shared_memory_dir=", "learner.lease_timeout_s=30", "learner.heartbeat_timeout_s=10",
        ] + overrides)
        let network = self.network
        learner = try LearnerServer(config: config, resume: resume, clock: { [unowned self] in self.now },
                                    makeEndpoints: { _ in network.endpoints }, rewardTransport: rewardWorkers, runLogWriting: .inline)
        learnerOutcome = .running
        try network.bind(on: switchboard, as: config.endpoints)
        if let control {
            switchboard.bind(InMemoryRouter(), at: try controlEndpoint)
            switchboard.bind(network.control, at: control)
        }
    }

    /// The learner ends the run as `troupe learner` does (its Byes go out); returns its exit status.
    func stopLearner() throws -> Int32 {
        let status = try learner?.stop(failed: false)
        learner = nil
        return status ?? -1
    }

    /// The learner's process dies: what it had queued either way is lost and nobody reads its endpoints.
    func killLearner() {
        network.control.close()
        network.weights.close()
        learner = nil
    }

    var controlEndpoint: Endpoint { get throws { try Endpoint(parsing: "tcp://\(config.endpoints.advertiseHost):\(config.endpoints.controlPort)") } }
    var weightsEndpoint: Endpoint { get throws { try Endpoint(parsing: "tcp://\(config.endpoints.advertiseHost):\(config.endpoints.weightsPort)") } }

    /// A real actor given the learner's control address, relaying weights when `relays`.
    @discardableResult
    func addActor(_ identity: String, relays: Bool = false, learnerFile: String? = nil) throws -> Member {
        var options = ActorClient.Options(learner: try controlEndpoint, identity: identity)
        options.conversation.learnerSilence = 6
        options.learnerFile = learnerFile
        if relays { options.relay = try ListenAddress(bind: "tcp://127.0.0.1:0") }
        let endpoints = InMemoryActorEndpoints(switchboard: switchboard)
        let client = try ActorClient(options: options, endpoints: endpoints, clock: { [unowned self] in self.now })
        let events = InMemoryProcessEvents<Never>()
        client.reports.add(events)
        let member = Member(client: client, endpoints: endpoints, events: events)
        actors.append(member)
        return member
    }

    /// One round: every actor's turn (its sampling job finished), then the learner's (its step
    /// finished); then the clock moves on by `tick` seconds.
    func round(tick: Double = 0.05) throws {
        for a in actors {
            _ = try a.client.turn()
            try a.client.settleSampling()
        }
        if let learner {
            learnerOutcome = try learner.turn()
            _ = try learner.settleTraining()
        }
        now += tick
    }

    /// Rounds until `done` holds; a test fails when it does not within `limit` rounds.
    func rounds(until what: String, limit: Int = 600, _ done: () throws -> Bool) throws {
        for _ in 0..<limit {
            if try done() { return }
            try round()
        }
        Issue.record("after \(limit) rounds, still not: \(what)")
        throw InMemoryRunError.neverHappened(what)
    }

    func records(_ type: String) throws -> [RunLog.Record] {
        try RunLog.read(path: directory + "/run.log").filter { $0.type == type }
    }

    /// The weights hash the run log gives the learner's weights of `step` in the current epoch.
    func loggedHash(step: Int) throws -> String? {
        if let done = try records("step_done").last(where: { $0.body["step"]?.int == step }) { return done.body["weights_hash"]?.string }
        return try records("epoch_started").last?.body["weights_hash"]?.string
    }
}

enum InMemoryRunError: Error { case neverHappened(String) }

@Suite(.serialized) struct ActorClientTests {
    @Test func anActorJoinsFetchesVerifiedWeightsTrainsTheRunAndPicksUpEveryNewVersion() throws {
        let run = try InMemoryRun()
        let a = try run.addActor("a")
        try run.rounds(until: "welcomed") { a.conversation.joined }
        #expect(a.conversation.terms?.epoch == run.learner?.epoch)
        #expect(try a.endpoints.controlConnections == [run.controlEndpoint])
        #expect(a.events.streamKinds.contains("actor_welcomed"))

        // The first weights, fetched in chunks from the learner's weights endpoint and verified
        // against its manifest: the model the actor samples with is the learner's, bit for bit.
        try run.rounds(until: "weights applied") { a.client.model != nil }
        #expect(try a.endpoints.weightsConnections == [run.weightsEndpoint])
        #expect(a.applied.first?["via"] == "chunks")
        #expect(a.conversation.weights?.step == 0)
        #expect(try a.client.model?.weightsHash() == run.loggedHash(step: 0))

        // Groups sampled with those weights are submitted and acknowledged; two make a batch, the
        // step is trained and announced, and the actor fetches and verifies the new version.
        try run.rounds(until: "step 1 trained") { try run.records("step_done").count == 1 }
        #expect(try run.records("group_accepted").count >= 2)
        #expect(try run.records("group_accepted").allSatisfy { $0.body["tokens_generated"]?.int ?? 0 > 0 })
        try run.rounds(until: "step 1's weights applied") { a.conversation.weights?.step == 1 }
        #expect(try a.client.model?.weightsHash() == run.loggedHash(step: 1))

        // The run ends at max_steps: the learner says so and the actor stops cleanly.
        try run.rounds(until: "the run finished") { run.learnerOutcome == .finished }
        let accounting = try #require(run.learner?.core.accounting)
        #expect(try run.stopLearner() == 0)
        try run.round()
        #expect(try a.client.turn() == .stopping)
        #expect(a.client.stopping == "learner: \(ByeReason.runFinished)")
        #expect(a.client.stop() == 0)
        #expect(accounting.identityHolds)
        #expect(accounting.trained == 4)
        #expect(a.conversation.produced >= 4)
        #expect(a.endpoints.logs?.events(kind: "weights_applied").count == a.applied.count, "the events reach the actor's log stream")
    }

    // A tree's branches share their root's path up to the fork: the actor reports the tokens it drew
    // (the shared prefixes once) and the learner logs them against independent sampling's count.
    @Test func treeGroupsReportTheTokensTheyDrewAndTheLearnerCountsThem() throws {
        let run = try InMemoryRun(["run.max_steps=1", "sampling.shape=tree", "sampling.group_size=5", "sampling.tree_forks=2",
                                   "sampling.tree_branching=2", "sampling.max_new_tokens=8"])
        let sink = InMemoryRunEvents()
        run.learner?.events.add(sink)
        try run.addActor("a")
        try run.rounds(until: "the run finished") { run.learnerOutcome == .finished }
        let accepted = try run.records("group_accepted")
        #expect(accepted.allSatisfy { $0.body["tokens_generated"]?.int ?? 0 > 0 }, "every tree group reports tokens_generated")
        let batch = Set(try #require(run.records("batch_formed").first?.body["groups"]?.array).compactMap(\.string))
        let generated = accepted.filter { batch.contains($0.body["group"]?.string ?? "") }.compactMap { $0.body["tokens_generated"]?.int }
        #expect(generated.count == 2)
        let train = try #require(sink.events.compactMap(\.metricsLine).first { $0.kind == "train" })
        let share = try #require(train.metrics["rollout/generated_share"])
        #expect(train.metrics["rollout/tokens_generated"] == Double(generated.reduce(0, +)))
        // Two forks per root at distinct positions: at least one branch pair starts after token 0.
        #expect(share > 0 && share < 1, "share \(share)")
    }

    // With `external` rewards the workers score every sample, whatever the group's shape: the actor
    // reports 0 for each leaf or exit, and the learner trains on the workers' scores.
    @Test(arguments: [["sampling.shape=tree", "sampling.group_size=5", "sampling.tree_forks=2", "sampling.tree_branching=2"],
                      ["sampling.shape=serial", "sampling.group_size=4", "sampling.serial_exit_phrase=Answer:"]])
    func externalRewardsScoreTreeAndSerialGroups(_ shape: [String]) throws {
        let workers = InMemoryRewardWorkers(workers: 1)
        let run = try InMemoryRun(["run.max_steps=1", "sampling.max_new_tokens=8", "algorithm.reward.kind=external", "task.label_free=false",
                                   "reward_workers.endpoints=[\"tcp://127.0.0.1:9\"]", "reward_workers.version=v1"] + shape,
                                  rewardWorkers: workers)
        try run.addActor("a")
        var answered = 0
        try run.rounds(until: "the run finished") {
            for (worker, request) in workers.takeRequests() {
                var response = Troupe_V1_RewardResponse()
                response.protocol = 1
                response.requestID = request.requestID
                response.rewardVersion = "v1"
                response.score = 0.25
                workers.respond(response, from: worker)
                answered += 1
            }
            return run.learnerOutcome == .finished
        }
        let groups = try run.records("group_accepted").compactMap { record -> RolloutGroup? in
            if case .groupAccepted(let g) = try RunRecord(record) { return g }
            return nil
        }
        #expect(groups.count >= 2 && answered == groups.reduce(0) { $0 + $1.samples.count })
        #expect(groups.allSatisfy { $0.samples.allSatisfy { $0.reward == 0.25 } }, "the run log holds the workers' scores")
    }

    // An actor that missed its learner's last Byes (frozen, or reconnecting behind a bad link) learns
    // from the endpoints file that the run it was welcomed to finished, and stops with status 0 rather
    // than waiting --learner-gone-timeout; the end of another epoch (a file a resumed learner has not
    // rewritten yet) does not stop it.
    @Test func anActorThatMissedTheEndStopsWhenItsLearnersFileSaysTheRunFinished() throws {
        let run = try InMemoryRun(["run.max_steps=3"])
        let file = run.directory + "/endpoints.json"
        let a = try run.addActor("a", learnerFile: file)
        try run.rounds(until: "groups acknowledged") { try run.records("group_accepted").count >= 1 }
        let epoch = try #require(run.learner?.epoch)
        var discovery = LearnerEndpointsFile(endpoints: run.config.endpoints, epoch: epoch &+ 1, learnerPublicKey: nil)
        discovery.finishedAt = Date()
        try discovery.write(to: file)
        run.killLearner()

        // Silence: the actor reconnects and says Hello into the void, reading the file every 2 s.
        run.now += 7
        for _ in 0..<200 { try run.round(tick: 0.1) }
        #expect(a.client.stopping == nil, "stopped on another epoch's end: \(a.client.stopping ?? "")")

        discovery.epoch = epoch
        try discovery.write(to: file)
        try run.rounds(until: "the actor stops") { a.client.stopping != nil }
        #expect(a.client.stopping == "learner: \(ByeReason.runFinished) (the learner endpoints file)")
        #expect(try a.client.turn() == .stopping)
        #expect(a.client.stop() == 0)
    }

    // A learner that speaks another protocol major cannot be joined: the actor stops with status 1, a
    // failure for Slurm or a supervisor, where the end of a run gives 0.
    @Test func anActorRefusedForItsProtocolMajorExitsWithAFailure() throws {
        let switchboard = InMemorySwitchboard()
        let learner = InMemoryRouter()
        let control = try Endpoint(parsing: "tcp://127.0.0.1:5555")
        switchboard.bind(learner, at: control)
        let client = try ActorClient(options: ActorClient.Options(learner: control, identity: "a"),
                                     endpoints: InMemoryActorEndpoints(switchboard: switchboard), clock: { 1000 })
        var outcome = ActorClient.TurnOutcome.running
        for _ in 0..<50 where outcome == .running {
            outcome = try client.turn()
            if case .message(let peer, let message) = try learner.receiveFromPeer(deadline: .now, limits: .control), case .hello = message.body {
                var reject = Troupe_V1_Reject()
                reject.reason = .protocolMajor
                reject.text = "the learner speaks major \(WireProtocol.major + 1)"
                _ = try learner.send(WireMessage(.reject(reject)), to: peer, deadline: .now)
            }
        }
        #expect(outcome == .stopping)
        #expect(client.stopping == "protocol mismatch")
        #expect(client.stop() == 1)
    }

    @Test func aLearnerRestartedElsewhereIsFollowedAndTheUnacknowledgedGroupsAreResent() throws {
        let run = try InMemoryRun(["run.max_steps=3"])
        let file = run.directory + "/moved-endpoints.json"
        let a = try run.addActor("a", learnerFile: file)
        try run.rounds(until: "groups acknowledged") { try run.records("group_accepted").count >= 1 && a.conversation.unackedCount == 0 }

        // Rounds until the actor's turn has sent groups the learner has not read yet.
        for _ in 0..<200 {
            _ = try a.client.turn()
            try a.client.settleSampling()
            if a.conversation.unackedCount > 0 && a.conversation.unsent.isEmpty { break }
            _ = try run.learner?.turn()
            _ = try run.learner?.settleTraining()
            run.now += 0.05
        }
        let unacked = a.conversation.unackedSequences
        try #require(!unacked.isEmpty)
        // The learner accepts them (on disk) and dies before its acks reach the actor.
        _ = try run.learner?.turn()
        let firstEpoch = try #require(run.learner?.epoch)
        run.killLearner()

        // It is resumed at another control address, which its endpoints file names.
        let moved = try Endpoint(parsing: "tcp://127.0.0.1:6555")
        try run.startLearner(resume: true, control: moved)
        let learner = try #require(run.learner)
        #expect(learner.epoch != firstEpoch)
        var discovery = LearnerEndpointsFile(endpoints: run.config.endpoints, epoch: learner.epoch, learnerPublicKey: nil)
        discovery.control = moved.description
        try discovery.write(to: file)

        // Silence for learnerSilence: the actor asks its endpoints for a new connection, where the
        // file says, says Hello, and the Welcome finds the groups still unacknowledged.
        run.now += 7
        try run.rounds(until: "welcomed by the resumed learner") { a.conversation.terms?.epoch == learner.epoch }
        #expect(try a.endpoints.controlConnections == [run.controlEndpoint, moved])
        #expect(a.client.learnerEndpoint == moved)
        try run.rounds(until: "the resent groups acknowledged") { a.conversation.unackedCount == 0 }
        #expect(learner.core.accounting.duplicates == unacked.count, "the groups the first learner accepted are known, and kept once")

        // New weights of the new epoch, fetched from the resumed learner, and the run goes on to its end.
        try run.rounds(until: "the resumed learner's weights applied") { a.conversation.weights?.epoch == learner.epoch }
        #expect(try a.client.model?.weightsHash() == run.loggedHash(step: Int(a.conversation.weights!.step)))
        try run.rounds(until: "the run finished") { run.learnerOutcome == .finished }
        #expect(learner.core.accounting.identityHolds)

        // The second Welcome's log stream numbers on from the first's: one run id, one sequence.
        let streams = a.endpoints.logStreams
        try #require(streams.count == 2 && !streams[0].events.isEmpty && !streams[1].events.isEmpty)
        #expect(streams[1].events.map(\.sequence) == Array((streams[0].lastSequence + 1)...(streams[0].lastSequence + UInt64(streams[1].events.count))))
    }

    @Test func anActorRelaysTheWeightsItFetchesToTheActorBelowIt() throws {
        let run = try InMemoryRun()
        let a = try run.addActor("a", relays: true)
        let b = try run.addActor("b", relays: true)
        try run.rounds(until: "both hold weights") { a.client.model != nil && b.client.model != nil }
        // The learner's relay tree (fanout 1, a chain): a fetches from the learner, b from a's relay.
        let aRelay = try #require(a.client.relayEndpoint)
        #expect(try a.endpoints.weightsConnections == [run.weightsEndpoint])
        #expect(try b.endpoints.weightsConnections == [run.weightsEndpoint, aRelay])
        #expect(a.applied.first?["via"] == "chunks")
        #expect(b.applied.first?["via"] == "relay")
        #expect(b.applied.first?["depth"] == "2")
        #expect(a.client.relayChunksServed > 0)
        #expect(try b.client.model?.weightsHash() == run.loggedHash(step: 0))

        // A new version goes down the same chain.
        try run.rounds(until: "step 1's weights at both") { a.conversation.weights?.step == 1 && b.conversation.weights?.step == 1 }
        #expect(try b.client.model?.weightsHash() == run.loggedHash(step: 1))
        #expect(b.applied.last?["via"] == "relay")
    }
}
