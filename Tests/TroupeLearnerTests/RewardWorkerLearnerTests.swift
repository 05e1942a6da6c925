import Foundation
import Testing
import TroupeLearner
import TroupeProto
import TroupeRuntime
import TroupeWire

/// A learner with reward workers, in memory: a group waits unacknowledged for its samples' scores,
/// trains on them, and a worker that never answers costs a counted refusal (or the fallback), never a hang.
@Suite struct RewardWorkerLearnerTests {
    static let overrides = ["reward_workers.endpoints=[\"tcp://127.0.0.1:9\"]", "reward_workers.version=v1",
                            "reward_workers.deadline_s=2", "reward_workers.attempts=1", "algorithm.reward.kind=external",
                            "task.label_free=false"]

    static func acceptedGroups(_ h: LearnerHarness) throws -> [RolloutGroup] {
        try h.records("group_accepted").compactMap { record in
            if case .groupAccepted(let g) = try RunRecord(record) { return g }
            return nil
        }
    }

    @Test func aGroupIsAcknowledgedOnceScoredAndTrainsOnTheWorkersScores() throws {
        let workers = InMemoryRewardWorkers(workers: 2)
        let h = try LearnerHarness(Self.overrides + ["learner.lease_size=2"], rewardTransport: workers)
        let actor = h.connect("a")
        let lease = try h.join(actor, prompts: 2)
        #expect(lease.prompts.count == 2)
        for prompt in lease.prompts { try actor.submit(prompt: prompt.promptID, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0)) }
        try h.turn()
        #expect(try actor.acks().isEmpty, "no ack before the scores")
        let requests = workers.takeRequests()
        #expect(requests.count == 8)
        #expect(Set(requests.map(\.worker)) == [0, 1])
        #expect(requests.allSatisfy { $0.request.hasReference_p && !$0.request.prompt.isEmpty && $0.request.rewardVersion == "v1" })
        for (i, (worker, request)) in requests.enumerated() {
            var r = Troupe_V1_RewardResponse()
            r.protocol = 1
            r.requestID = request.requestID
            r.rewardVersion = "v1"
            r.score = Double(i) / 8
            workers.respond(r, from: worker)
        }
        h.now += 0.01
        try h.turn()
        let acks = try actor.acks()
        #expect(acks.count == 2 && acks.allSatisfy { $0.status == .accepted })
        let groups = try Self.acceptedGroups(h)
        #expect(groups.count == 2)
        let scores = Set(groups.flatMap { $0.samples.map(\.reward) })
        #expect(scores == Set((0..<8).map { Double($0) / 8 }), "the run log holds the workers' scores")
        #expect(groups.allSatisfy { $0.samples.allSatisfy { $0.components["base"] == $0.reward } })
        try h.trainPendingStep()
        #expect(h.learner.core.step == 1)
    }

    @Test func aWorkerThatNeverAnswersCostsACountedRefusalAndThePromptReturns() throws {
        let workers = InMemoryRewardWorkers(workers: 1)
        let h = try LearnerHarness(Self.overrides, rewardTransport: workers)
        let actor = h.connect("a")
        let lease = try h.join(actor)
        let prompt = lease.prompts[0].promptID
        try actor.submit(prompt: prompt, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0))
        try h.turn()
        #expect(workers.takeRequests().count == 4)
        h.now += 1.9
        try h.turn()
        #expect(try actor.acks().isEmpty)
        // A resend while it waits (a reconnect) gets no second decision.
        try actor.submit(prompt: prompt, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0), sequence: 1)
        try h.turn()
        #expect(try actor.acks().isEmpty)
        h.now += 0.2
        try h.turn()
        let acks = try actor.acks()
        #expect(acks.count == 1)
        #expect(acks.first?.status == .rejected && acks.first?.rejectReason == .rewardUnavailable)
        let rejected = try h.records("group_rejected")
        #expect(rejected.count == 1 && rejected.first?.body["reason"]?.string == "reward_unavailable")
        #expect(h.learner.core.accounting.rejected["reward_unavailable"] == 1)
        #expect(h.learner.core.accounting.identityHolds)
        #expect(h.learner.core.queue.first == prompt, "the prompt goes back to the front of the queue")
    }

    /// Workers that score nothing for `reward_workers.outage_stop_s` while samples go unscored stop the
    /// learner (status 1, the reason in its Byes) instead of letting it resample for ever; a score resets the watch.
    @Test func workersThatScoreNothingForTooLongStopTheLearner() throws {
        let workers = InMemoryRewardWorkers(workers: 1)
        // No cache: the groups' completions are alike, and a cached score would count as the workers scoring.
        let h = try LearnerHarness(Self.overrides + ["reward_workers.outage_stop_s=5", "reward_workers.cache_entries=0"], rewardTransport: workers)
        let actor = h.connect("a")
        var lease = try h.join(actor)
        /// Submits a group for the lease; `score` answers its first sample, the rest run out of time.
        func submit(scoringOne score: Bool = false) throws -> Troupe_V1_Ack? {
            try actor.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0))
            try h.turn()
            let requests = workers.takeRequests()
            if score {
                var r = Troupe_V1_RewardResponse()
                (r.protocol, r.requestID, r.rewardVersion, r.score) = (1, requests[0].request.requestID, "v1", 1)
                workers.respond(r, from: 0)
            }
            h.now += 2.1
            #expect(try h.turn() == .running)
            let ack = try actor.acks().first
            try actor.askForLease()
            try h.turn()
            lease = try actor.lease()
            return ack
        }
        #expect(try submit()?.rejectReason == .rewardUnavailable)
        // A score (one sample of a later group) resets the watch: 4 s of failures after it do not stop the run.
        #expect(try submit(scoringOne: true)?.rejectReason == .rewardUnavailable)
        #expect(try submit()?.rejectReason == .rewardUnavailable)
        #expect(try submit()?.rejectReason == .rewardUnavailable)
        // Over 5 s of failures with nothing scored: the run ends at the next turn, with the reason in the Byes.
        #expect(try submit()?.rejectReason == .rewardUnavailable)
        h.now += 1.1
        _ = try h.turn()
        #expect(try h.turn() == .failed)
        #expect(try h.learner.stop(failed: true) == 1)
        let bye = try #require(try actor.replies().compactMap { if case .bye(let b) = $0 { b } else { nil } }.last)
        #expect(bye.reason.hasPrefix("learner failed: the reward workers scored no sample for "), "\(bye.reason)")
    }

    /// A failure followed by a quiet spell (no group asked of the workers: no actor sampling) is no
    /// outage: the learner does not stop however long nothing happens.
    @Test func aQuietSpellAfterAFailureDoesNotStopTheLearner() throws {
        let workers = InMemoryRewardWorkers(workers: 1)
        let h = try LearnerHarness(Self.overrides + ["reward_workers.outage_stop_s=5", "reward_workers.cache_entries=0",
                                                      "learner.heartbeat_timeout_s=100"], rewardTransport: workers)
        let actor = h.connect("a")
        let lease = try h.join(actor)
        try actor.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0))
        try h.turn()
        h.now += 2.1
        try h.turn()
        #expect(try actor.acks().first?.rejectReason == .rewardUnavailable)
        for _ in 0..<40 {
            h.now += 0.5
            #expect(try h.turn() == .running)
        }
    }

    @Test func withAFallbackAnUnscoredSampleTrainsOnItAndSaysSo() throws {
        let workers = InMemoryRewardWorkers(workers: 1)
        let h = try LearnerHarness(Self.overrides + ["reward_workers.fallback_reward=-0.5"], rewardTransport: workers)
        let actor = h.connect("a")
        let lease = try h.join(actor)
        try actor.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0))
        try h.turn()
        let requests = workers.takeRequests()
        // One sample scored, three never.
        var r = Troupe_V1_RewardResponse()
        r.protocol = 1
        r.requestID = requests[0].request.requestID
        r.rewardVersion = "v1"
        r.score = 1
        workers.respond(r, from: 0)
        h.now += 2.1
        try h.turn()
        #expect(try actor.acks().first?.status == .accepted)
        let group = try #require(try Self.acceptedGroups(h).first)
        #expect(group.samples.map(\.reward).sorted() == [-0.5, -0.5, -0.5, 1])
        #expect(group.samples.filter { $0.components["reward_fallback"] == 1 }.count == 3)
    }

    @Test func aGroupThatCannotLandIsRefusedWithoutCallingAWorker() throws {
        let workers = InMemoryRewardWorkers(workers: 1)
        let h = try LearnerHarness(Self.overrides, rewardTransport: workers)
        let actor = h.connect("a")
        let lease = try h.join(actor)
        let prompt = lease.prompts[0].promptID
        // (A refusal returns the prompt to the queue, so the lease check comes first.)
        try actor.submit(prompt: prompt, lease: lease.leaseID + 7, version: PolicyVersion(epoch: h.epoch, step: 0))
        try actor.submit(prompt: prompt, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0), logprob: 0.5)
        try actor.submit(prompt: prompt, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch &+ 1, step: 0))
        try h.turn()
        #expect(workers.takeRequests().isEmpty)
        #expect(try actor.acks().map(\.rejectReason) == [.unknownLease, .outOfRange, .oldEpoch])
    }

    @Test func configurationsThatCannotWorkAreRefusedNamingTheKey() throws {
        func problem(_ overrides: [String]) -> String {
            do { _ = try RunConfig.load(path: nil, overrides: overrides); return "" } catch { return "\(error)" }
        }
        #expect(problem(["algorithm.reward.kind=external"]).contains("reward_workers.endpoints is empty"))
        #expect(problem(["reward_workers.endpoints=[\"tcp://127.0.0.1:9\"]", "reward_workers.version=v"]).contains("algorithm.reward.kind"))
        #expect(problem(["reward_workers.endpoints=[\"tcp://127.0.0.1:9\"]", "algorithm.reward.kind=external"]).contains("reward_workers.version"))
        #expect(problem(Self.overrides + ["reward_workers.deadline_s=40", "reward_workers.attempts=2"]).contains("lease_timeout_s"))
        #expect(problem(["reward_workers.endpoints=[\"nowhere\"]"]).contains("reward_workers.endpoints"))
        #expect(problem(Self.overrides) == "")
    }
}
