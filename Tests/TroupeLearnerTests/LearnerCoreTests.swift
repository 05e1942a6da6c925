import Testing
import TroupeLearner
import TroupeRuntime

/// Lease granting in the learner's pure state.
@Suite struct LearnerCoreTests {
    func core(batchGroups: Int, maxStaleness: Int, prompts: Int = 32) -> LearnerCore {
        let list = (0..<prompts).map { PromptEntry(id: UInt64($0), text: "p\($0)", tokens: [1, 2]) }
        return LearnerCore(prompts: list, epoch: 1, batchGroups: batchGroups, maxStaleness: maxStaleness, leaseSize: 1,
                           leaseTimeout: 60, heartbeatTimeout: 10, credit: 4)
    }

    /// The queue rebuilt from the log's moves: each acceptance to the back, each resume's block to the
    /// front in its order; prompts never moved keep the list's order; unknown prompts are ignored.
    @Test func theQueueIsRebuiltFromItsMovesInOrder() {
        let c = core(batchGroups: 2, maxStaleness: 0, prompts: 6)
        c.restoreQueue([.toBack(2), .toBack(0), .toFront([5, 2, 5, 99]), .toBack(5), .toBack(99)])
        #expect(c.queue == [2, 1, 3, 4, 0, 5], "\(c.queue)")
    }

    /// With `publish_every` 2 the newest weights lag the step by one every other step: the window then
    /// holds one batch fewer, since a group that fell in it would be sampled on weights too old to train.
    @Test func theWindowShrinksWhileTheNewestWeightsLagTheStep() {
        let list = (0..<32).map { PromptEntry(id: UInt64($0), text: "p\($0)", tokens: [1, 2]) }
        let c = LearnerCore(prompts: list, epoch: 1, batchGroups: 2, maxStaleness: 2, leaseSize: 1, leaseTimeout: 60,
                            heartbeatTimeout: 10, credit: 4, publishEvery: 2)
        #expect(c.leaseWindow == 6)
        c.stepCompleted(trainedGroups: 0)
        #expect(c.leaseWindow == 4, "step 1: the newest weights are step 0's")
        c.stepCompleted(trainedGroups: 0)
        #expect(c.leaseWindow == 6)
    }

    @Test func leasesStayInsideTheStalenessWindow() {
        let c = core(batchGroups: 2, maxStaleness: 1)
        _ = c.hello(identity: "a", runId: 1, now: 0)
        let granted = (0..<10).compactMap { _ in c.grantLease(to: "a", maxPrompts: 1, now: 0) }
        #expect(granted.count == 4, "batch_groups × (max_staleness + 1)")
        #expect(c.grantLease(to: "stranger", maxPrompts: 1, now: 0) == nil)
    }

    /// A window of two prompts (synchronous training) and two actors, "fast" holding both prompts.
    func windowFilledByFast(other: String) -> LearnerCore {
        let c = core(batchGroups: 2, maxStaleness: 0)
        _ = c.hello(identity: "fast", runId: 1, now: 0)
        _ = c.hello(identity: other, runId: 2, now: 0)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 0) != nil)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 0) != nil)
        #expect(c.leasedPrompts(of: "fast") == 2)
        return c
    }

    @Test func anActorThatAsksFirstCannotStarveAWaitingOne() {
        // Alone at first, the fast actor fills the window; the slow one asks and is turned away.
        let c = windowFilledByFast(other: "slow")
        #expect(c.grantLease(to: "slow", maxPrompts: 1, now: 99.9) == nil)
        // The window frees up (the fast actor restarts, its leases back in the queue) and the fast
        // actor asks first, twice: it gets its share (one of two)…
        #expect(c.hello(identity: "fast", runId: 3, now: 100).rejoined)
        #expect(c.leasedPrompts(of: "fast") == 0)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 100.1) != nil)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 100.15) == nil)
        // …and the other prompt waits for the actor that was turned away.
        #expect(c.grantLease(to: "slow", maxPrompts: 1, now: 100.2) != nil)
        #expect(c.leasedPrompts(of: "fast") == 1 && c.leasedPrompts(of: "slow") == 1)
    }

    @Test func withNobodyElseAskingOneActorTakesTheWholeWindow() {
        let c = windowFilledByFast(other: "idle")
        // A refusal older than a second no longer holds anyone back.
        #expect(c.grantLease(to: "idle", maxPrompts: 1, now: 0.5) == nil)
        #expect(c.hello(identity: "fast", runId: 3, now: 100).rejoined)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 100) != nil)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 100) != nil)
    }

    // MARK: an authenticated actor that takes leases and never returns groups

    /// A group for `lease`'s first prompt, as `identity`'s run 1 would send it (sequence `sequence`).
    func group(for lease: LearnerCore.Lease, sequence: UInt64) -> RolloutGroup {
        let sample = RolloutSample(tokens: [1], logprobs: [-1], finishReason: .length, temperature: 1, answer: nil, reward: 0, components: [:])
        return RolloutGroup(key: GroupKey(actor: lease.actor, actorRunId: 1, sequence: sequence), promptId: lease.prompts[0],
                            leaseId: lease.id, version: PolicyVersion(epoch: 1, step: UInt64(lease.minStep)), promptTokens: [1, 2], samples: [sample])
    }

    @Test func anActorHoldsNoMorePromptsThanAnHonestActorCould() {
        // A window of 50 prompts, credit 4, leases of 1: an honest actor holds at most 4 + 1 + 2 × 1.
        let c = core(batchGroups: 50, maxStaleness: 0, prompts: 100)
        #expect(c.leaseCap == LearnerCore.honestLeaseCap(credit: 4, leaseSize: 1) && c.leaseCap == 7)
        _ = c.hello(identity: "hoarder", runId: 1, now: 0)
        let granted = (0..<20).compactMap { _ in c.grantLease(to: "hoarder", maxPrompts: 1, now: 0) }
        #expect(granted.count == 7)
        #expect(c.leasedPrompts(of: "hoarder") == 7)
        // At its cap it is not "waiting": another actor still gets all it asks for.
        _ = c.hello(identity: "worker", runId: 2, now: 0)
        let others = (0..<7).compactMap { _ in c.grantLease(to: "worker", maxPrompts: 1, now: 0.1) }
        #expect(others.count == 7)
    }

    @Test func anActorWhoseLeasesExpireUnusedIsPassedOverWhileAnotherWorks() {
        let c = core(batchGroups: 2, maxStaleness: 0)
        _ = c.hello(identity: "hoarder", runId: 1, now: 0)
        _ = c.hello(identity: "worker", runId: 1, now: 0)
        #expect(c.grantLease(to: "hoarder", maxPrompts: 1, now: 0) != nil)
        #expect(c.grantLease(to: "hoarder", maxPrompts: 1, now: 0) != nil)
        // Its leases expire unused: for one lease timeout it is passed over while the worker is in good standing…
        #expect(c.expireLeases(now: 61).count == 2)
        #expect(c.isPassedOver("hoarder", now: 61) && !c.isPassedOver("worker", now: 61))
        #expect(c.grantLease(to: "hoarder", maxPrompts: 1, now: 61) == nil)
        let first = c.grantLease(to: "worker", maxPrompts: 1, now: 61.1)
        let second = c.grantLease(to: "worker", maxPrompts: 1, now: 61.2)
        #expect(first != nil && second != nil, "the whole window goes to the worker")
        // …and the worker's groups land and form a batch.
        for (i, lease) in [first!, second!].enumerated() {
            guard case .accepted = c.submit(group(for: lease, sequence: UInt64(i + 1)), from: "worker", now: 62) else {
                Issue.record("the worker's group was not accepted"); return
            }
        }
        #expect(c.takeBatch()?.batch.count == 2)
        c.stepCompleted(trainedGroups: 2)
        // The back-off is over after one lease timeout; the next expiry doubles it.
        #expect(!c.isPassedOver("hoarder", now: 121.5))
        let again = c.grantLease(to: "hoarder", maxPrompts: 1, now: 121.5)
        #expect(again != nil)
        #expect(c.expireLeases(now: 182).count == 1)
        #expect(c.isPassedOver("hoarder", now: 182 + 119) && !c.isPassedOver("hoarder", now: 182 + 121))
        // Leaving and saying Hello again does not clear it; alone, it gets work.
        c.depart(identity: "hoarder", now: 183)
        _ = c.hello(identity: "hoarder", runId: 2, now: 184)
        #expect(c.isPassedOver("hoarder", now: 185))
        c.depart(identity: "worker", now: 186)
        #expect(!c.isPassedOver("hoarder", now: 187) && c.grantLease(to: "hoarder", maxPrompts: 1, now: 187) != nil)
    }

    /// A group refused for what the actor made of it (checks 10–13) sends its prompt straight back;
    /// the actor that made it is passed over while another works, as one whose leases expire, so a
    /// deterministic bug does not take the prompt again and again. A refusal that is not its fault
    /// (no reward worker answered) costs nothing; an accepted group clears the back-off; alone, it still gets work.
    @Test func anActorWhoseGroupsFailTheChecksIsPassedOverWhileAnotherWorks() {
        let c = core(batchGroups: 2, maxStaleness: 0)
        _ = c.hello(identity: "buggy", runId: 1, now: 0)
        _ = c.hello(identity: "worker", runId: 1, now: 0)
        let refuse: (RolloutGroup) -> Result<RolloutGroup, GroupAdmission.Refusal> = { _ in
            .failure(GroupAdmission.Refusal(.rewardMismatch, "sample 0: reward 1, the learner's 0"))
        }
        let lease = c.grantLease(to: "buggy", maxPrompts: 1, now: 0)!
        let other = c.grantLease(to: "buggy", maxPrompts: 1, now: 0)!
        guard case .rejected(.rewardMismatch, _) = c.submit(group(for: lease, sequence: 1), from: "buggy", now: 1, review: refuse) else {
            Issue.record("the group was not refused"); return
        }
        #expect(c.queue.first == lease.prompts[0], "the prompt is back at the front")
        #expect(c.isPassedOver("buggy", now: 1) && c.grantLease(to: "buggy", maxPrompts: 1, now: 1) == nil)
        let taken = c.grantLease(to: "worker", maxPrompts: 1, now: 1.1)
        #expect(taken?.prompts == lease.prompts, "the worker samples the refused prompt")
        // Its other group in flight, refused too, is the same strike: the back-off stays one lease timeout.
        _ = c.submit(group(for: other, sequence: 2), from: "buggy", now: 1.5, review: refuse)
        #expect(c.isPassedOver("buggy", now: 60.9) && !c.isPassedOver("buggy", now: 61.1))
        // One lease timeout later it is back; a second fault doubles the back-off.
        let again = c.grantLease(to: "buggy", maxPrompts: 1, now: 61.5)!
        _ = c.submit(group(for: again, sequence: 3), from: "buggy", now: 62, review: refuse)
        #expect(c.isPassedOver("buggy", now: 62 + 119) && !c.isPassedOver("buggy", now: 62 + 121))
        // Alone, it gets work; an accepted group clears its strikes.
        c.depart(identity: "worker", now: 63)
        let alone = c.grantLease(to: "buggy", maxPrompts: 1, now: 64)!
        guard case .accepted = c.submit(group(for: alone, sequence: 4), from: "buggy", now: 65) else {
            Issue.record("the good group was not accepted"); return
        }
        _ = c.hello(identity: "worker", runId: 2, now: 66)
        #expect(!c.isPassedOver("buggy", now: 66))

        let unavailable: (RolloutGroup) -> Result<RolloutGroup, GroupAdmission.Refusal> = { _ in
            .failure(GroupAdmission.Refusal(.rewardUnavailable, "sample 0: no worker answered"))
        }
        let unlucky = c.grantLease(to: "buggy", maxPrompts: 1, now: 67)!
        _ = c.submit(group(for: unlucky, sequence: 5), from: "buggy", now: 68, review: unavailable)
        #expect(!c.isPassedOver("buggy", now: 68), "reward workers failing are not the actor's fault")
        let learnerFailed: (RolloutGroup) -> Result<RolloutGroup, GroupAdmission.Refusal> = { _ in
            .failure(GroupAdmission.Refusal(.malformed, "cannot score the group: no ground truth", learnerSide: true))
        }
        let innocent = c.grantLease(to: "buggy", maxPrompts: 1, now: 69)!
        guard case .rejected(.malformed, _) = c.submit(group(for: innocent, sequence: 6), from: "buggy", now: 70, review: learnerFailed) else {
            Issue.record("the group was not refused"); return
        }
        #expect(!c.isPassedOver("buggy", now: 70), "the learner failing to score a group is not the actor's fault")
        #expect(LearnerCore.RejectReason.allCases.filter(LearnerCore.isActorFault).map(\.rawValue).sorted()
                == ["malformed", "non_finite", "out_of_range", "reward_mismatch"])
    }

    /// The whole conversation over simulated time: synchronous training (a window of two prompts), an
    /// actor that asks for a lease every 10 ms and never submits, and an honest one that lands each
    /// prompt 0.5 s after it leased it. Without the back-off the hoarder re-took its share of the window
    /// each time its lease expired and no batch ever formed again.
    @Test func aHoarderCannotStallSynchronousTraining() {
        let c = core(batchGroups: 2, maxStaleness: 0, prompts: 8)
        _ = c.hello(identity: "hoarder", runId: 1, now: 0)
        _ = c.hello(identity: "honest", runId: 1, now: 0)
        var held: [(lease: LearnerCore.Lease, at: Double)] = []
        var sequence: UInt64 = 0
        var stepsDone: [Double] = []
        var now = 0.0
        while now < 600 {
            _ = c.expireLeases(now: now)
            _ = c.grantLease(to: "hoarder", maxPrompts: 1, now: now)
            c.touch(identity: "hoarder", now: now)
            if held.isEmpty, let lease = c.grantLease(to: "honest", maxPrompts: 1, now: now) { held.append((lease, now)) }
            if let (lease, at) = held.first, now - at >= 0.5 {
                held.removeFirst()
                sequence += 1
                _ = c.submit(group(for: lease, sequence: sequence), from: "honest", now: now)
            }
            if let (batch, _) = c.takeBatch(), !batch.isEmpty {
                c.stepCompleted(trainedGroups: batch.count)
                stepsDone.append(now)
            }
            now += 0.01
        }
        // Lease timeout 60 s: the hoarder holds a prompt for 60 s at first, then is passed over for
        // 60, 120, 240 s…, so the honest actor trains most of the ten minutes.
        print("[lease] a hoarder against synchronous training: \(stepsDone.count) steps in 600 s of simulated time, first at \(stepsDone.first ?? -1) s")
        #expect(stepsDone.count >= 200, "\(stepsDone.count) steps in 600 s of simulated time")
        #expect(c.accounting.identityHolds)
    }

    /// Asynchronous training in steady state, over simulated time: 4 actors each sample one prompt in
    /// `sampleSeconds`, on the newest weights published when they start or (`oldest`) on the oldest
    /// their lease allows, as an actor slow to fetch weights would; a step trains `batch_groups` = 4
    /// groups in 1 s and publishes at once. Every group the lease window lets actors produce must still
    /// be trainable within max_staleness when its batch forms: stale discards waste the actors' work.
    /// With `publishEvery` > 1 the newest weights are those of the last step a multiple of it.
    @Test(arguments: [(1, 0.3, false, 1), (1, 0.9, false, 1), (2, 0.3, false, 1), (4, 0.5, false, 1), (1, 0.3, true, 1), (2, 0.2, true, 1),
                      (4, 0.5, true, 1), (2, 0.3, false, 2), (3, 0.3, true, 2), (3, 0.3, false, 4), (4, 0.5, true, 4)])
    func asynchronousLeasesProduceNoStaleGroups(maxStaleness: Int, sampleSeconds: Double, oldest: Bool, publishEvery: Int) {
        let list = (0..<64).map { PromptEntry(id: UInt64($0), text: "p\($0)", tokens: [1, 2]) }
        let c = LearnerCore(prompts: list, epoch: 1, batchGroups: 4, maxStaleness: maxStaleness, leaseSize: 1, leaseTimeout: 60,
                            heartbeatTimeout: 10, credit: 4, publishEvery: publishEvery)
        let actors = ["a", "b", "c", "d"]
        for a in actors { _ = c.hello(identity: a, runId: 1, now: 0) }
        var sampling: [String: (lease: LearnerCore.Lease, version: Int, done: Double)] = [:]
        var sequence: UInt64 = 0, produced = 0, stale = 0, trainingEnds: Double?, now = 0.0
        while now < 300 {
            if let end = trainingEnds, now >= end { c.stepCompleted(trainedGroups: 4); trainingEnds = nil }
            for a in actors {
                if let job = sampling[a], now >= job.done {
                    sampling[a] = nil
                    sequence += 1
                    produced += 1
                    var g = group(for: job.lease, sequence: sequence)
                    g.version = PolicyVersion(epoch: 1, step: UInt64(job.version))
                    if case .rejected(.stale, _) = c.submit(g, from: a, now: now) { stale += 1 }
                }
                // An actor samples on the newest weights, once they are at least the lease's min_version.
                let newest = c.step - c.step % publishEvery
                if sampling[a] == nil, let lease = c.grantLease(to: a, maxPrompts: 1, now: now) {
                    #expect(lease.minStep <= newest, "an asynchronous lease asks for weights not yet published")
                    sampling[a] = (lease, oldest ? lease.minStep : newest, now + sampleSeconds)
                }
                c.touch(identity: a, now: now)
            }
            if trainingEnds == nil, let (batch, discarded) = c.takeBatch() {
                stale += discarded.count
                if !batch.isEmpty { trainingEnds = now + 1 }
            }
            now += 0.01
        }
        print("[lease] max_staleness \(maxStaleness), publish_every \(publishEvery), \(sampleSeconds) s per group, \(oldest ? "oldest allowed" : "newest") weights: \(produced) groups, \(stale) stale, \(c.step) steps in 300 s")
        #expect(c.step >= 200, "\(c.step) steps in 300 s of simulated time")
        #expect(Double(stale) <= 0.02 * Double(produced), "\(stale) of \(produced) groups discarded as stale")
        #expect(c.accounting.identityHolds)
    }
}
