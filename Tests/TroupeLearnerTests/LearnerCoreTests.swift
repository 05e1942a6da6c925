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
        // The window frees up and the fast actor asks first, twice: it gets its share (one of two)…
        #expect(c.expireLeases(now: 100).count == 2)
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
        #expect(c.expireLeases(now: 100).count == 2)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 100) != nil)
        #expect(c.grantLease(to: "fast", maxPrompts: 1, now: 100) != nil)
    }
}
