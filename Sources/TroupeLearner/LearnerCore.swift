import Foundation
import TroupeRuntime

/// The learner's bookkeeping without any I/O: prompt queue and leases, actors and their credit,
/// de-duplication, staleness, batch formation and the accounting identity. The server feeds it events
/// with the current time; tests drive it directly.
package final class LearnerCore {
    package struct Lease: Sendable, Equatable {
        package var id: UInt64
        package var actor: String
        package var prompts: [UInt64]
        package var deadline: Double
        /// The actor must sample with weights of at least this step.
        package var minStep: Int
    }

    package struct ActorState: Sendable {
        package var identity: String
        package var runId: UInt64
        package var lastSeen: Double
        package var credit: Int
        package var joinedAt: Double
        package var stats: [String: Double] = [:]
        package var groupsAccepted = 0
    }

    package enum RejectReason: String, Sendable, CaseIterable {
        case stale, oldEpoch = "old_epoch", nonFinite = "non_finite", malformed, unknownLease = "unknown_lease"
        case leaseExpired = "lease_expired", unknownActor = "unknown_actor"
        case outOfRange = "out_of_range", futureVersion = "future_version", rewardMismatch = "reward_mismatch"
        /// Accepted by an earlier learner, refused on resume: it would fail a step (`quarantined` records).
        case quarantined
        /// The reward workers gave no score for a sample within their attempts (docs/rewards.md).
        case rewardUnavailable = "reward_unavailable"
    }

    package enum SubmitOutcome: Equatable, Sendable {
        /// The group as accepted: with the learner's own rewards when `review` re-scored it.
        case accepted(RolloutGroup, credit: Int)
        case duplicate
        case rejected(RejectReason, String)
    }

    /// Counters behind `produced = trained + rejected(by reason) + duplicates + lost_uncommitted + in_flight`.
    package struct Accounting: Sendable, Equatable {
        package var trained = 0
        package var rejected: [String: Int] = [:]
        package var duplicates = 0
        /// Groups (unique keys) accepted into the pending buffer and not trained yet.
        package var pending = 0
        /// Groups in the batch the trainer is working on now.
        package var training = 0
        /// Per actor run: highest sequence number the actor reported producing or we received.
        package var producedByRun: [String: UInt64] = [:]
        /// Per actor run: unique groups received (accepted or rejected).
        package var receivedByRun: [String: UInt64] = [:]
        /// Actor runs that left (Bye or evicted): their unreceived groups count as lost.
        package var departedRuns: Set<String> = []

        package var rejectedTotal: Int { rejected.values.reduce(0, +) }
        package var producedUnique: Int { Int(producedByRun.values.reduce(0, +)) }
        package var lostUncommitted: Int {
            departedRuns.reduce(0) { $0 + Int((producedByRun[$1] ?? 0) - min(producedByRun[$1] ?? 0, receivedByRun[$1] ?? 0)) }
        }
        /// Accepted-and-pending plus groups live actors produced that have not arrived yet.
        package var inFlight: Int {
            pending + training + producedByRun.keys.filter { !departedRuns.contains($0) }
                .reduce(0) { $0 + Int((producedByRun[$1] ?? 0) - min(producedByRun[$1] ?? 0, receivedByRun[$1] ?? 0)) }
        }
        /// Submissions: every unique group plus every duplicate delivery of one.
        package var produced: Int { producedUnique + duplicates }
        package var identityHolds: Bool { produced == trained + rejectedTotal + duplicates + lostUncommitted + inFlight }

        package var summary: [String: Int] {
            var m = ["produced": produced, "trained": trained, "duplicates": duplicates, "lost_uncommitted": lostUncommitted,
                     "in_flight": inFlight, "rejected": rejectedTotal, "pending": pending]
            for (k, v) in rejected { m["rejected/\(k)"] = v }
            return m
        }
    }

    package let epoch: UInt64
    package let batchGroups: Int
    package let maxStaleness: Int
    package let leaseSize: Int
    package let leaseTimeout: Double
    package let heartbeatTimeout: Double
    package let credit: Int
    /// `learner.publish_every`: the versions actors can hold are the multiples of it.
    package let publishEvery: Int
    /// The most prompts one actor may hold on leases (`honestLeaseCap` unless a caller says otherwise).
    package let leaseCap: Int

    /// Completed optimizer steps; the policy of record is version (epoch, step).
    package private(set) var step = 0
    /// True while a batch is out for training (its step is `step + 1`).
    package private(set) var training = false
    package private(set) var actors: [String: ActorState] = [:]
    package private(set) var leases: [UInt64: Lease] = [:]
    package private(set) var pending: [RolloutGroup] = []
    package private(set) var accounting = Accounting()
    package private(set) var prompts: [UInt64: PromptEntry] = [:]
    /// Prompts waiting for a lease, in order.
    package private(set) var queue: [UInt64] = []
    private var seen: Set<GroupKey> = []
    private var nextLeaseId: UInt64 = 1

    package init(prompts list: [PromptEntry], epoch: UInt64, batchGroups: Int, maxStaleness: Int, leaseSize: Int,
                leaseTimeout: Double, heartbeatTimeout: Double, credit: Int, leaseCap: Int? = nil, publishEvery: Int = 1) {
        self.epoch = epoch
        self.publishEvery = max(1, publishEvery)
        self.batchGroups = batchGroups
        self.maxStaleness = maxStaleness
        self.leaseSize = leaseSize
        self.leaseTimeout = leaseTimeout
        self.heartbeatTimeout = heartbeatTimeout
        self.credit = credit
        self.leaseCap = leaseCap ?? Self.honestLeaseCap(credit: credit, leaseSize: leaseSize)
        for p in list { prompts[p.id] = p }
        queue = list.map(\.id)
    }

    static func runKey(_ identity: String, _ runId: UInt64) -> String { "\(identity)#\(String(runId, radix: 16))" }

    // MARK: actors

    /// An actor said Hello. A new run of a known identity replaces the old run (its leases return). So
    /// does a Hello of the same run that holds leases: the actor reconnected, dropping the leases it had
    /// queued (and a grant sent to its old connection is lost), so they return now, not after the lease
    /// timeout, during which they would hold the window; `reconnected` lists them.
    package func hello(identity: String, runId: UInt64, now: Double) -> (credit: Int, rejoined: Bool, reconnected: [Lease]) {
        var returned = false
        var reconnected: [Lease] = []
        if let old = actors[identity] {
            if old.runId != runId {
                depart(identity: identity, now: now)
                returned = true
            } else if leases.values.contains(where: { $0.actor == identity }) {
                reconnected = depart(identity: identity, now: now)
                returned = true
            }
        }
        let rejoined = actors[identity] != nil || returned
        if actors[identity] == nil {
            actors[identity] = ActorState(identity: identity, runId: runId, lastSeen: now, credit: credit, joinedAt: now)
        } else {
            actors[identity]!.lastSeen = now
            actors[identity]!.credit = credit
        }
        return (credit, rejoined, reconnected)
    }

    package func touch(identity: String, now: Double, stats: [String: Double]? = nil) {
        guard actors[identity] != nil else { return }
        actors[identity]!.lastSeen = now
        if let stats {
            actors[identity]!.stats = stats
            if let produced = stats["groups_produced"], produced >= 0 {
                // Capped like a group's sequence number: a heartbeat cannot inflate the accounting either.
                let key = Self.runKey(identity, actors[identity]!.runId)
                let highest = accounting.producedByRun[key] ?? 0
                accounting.producedByRun[key] = max(highest, min(UInt64(min(produced, 1e18)), highest + sequenceWindow))
            }
        }
    }

    /// Removes an actor (Bye, eviction, or replaced by a new run); its leases go back to the queue front.
    @discardableResult
    package func depart(identity: String, now: Double) -> [Lease] {
        guard let actor = actors.removeValue(forKey: identity) else { return [] }
        accounting.departedRuns.insert(Self.runKey(identity, actor.runId))
        let mine = leases.values.filter { $0.actor == identity }.sorted { $0.id < $1.id }
        for lease in mine { returnLease(lease.id) }
        return mine
    }

    /// Evicts actors silent for longer than the heartbeat timeout; returns each with the leases it lost.
    package func evictSilent(now: Double) -> [(identity: String, leases: [Lease])] {
        let dead = actors.values.filter { now - $0.lastSeen > heartbeatTimeout }.map(\.identity).sorted()
        return dead.map { ($0, depart(identity: $0, now: now)) }
    }

    // MARK: leases

    /// The step whose weights new samples must use: in synchronous mode the weights being trained now.
    package var requiredStep: Int { max(0, step + (training ? 1 : 0) - maxStaleness) }

    /// Actors that asked for a lease and got none, with when: the fair share in `grantLease` serves them.
    private var turnedAway: [String: Double] = [:]

    /// The most prompts out on leases, waiting or training at once. Asynchronous: the batch in training
    /// and as many more as the newest published weights can train within `max_staleness` (`minStep`):
    /// `max_staleness` more when they are the current step's, fewer by the steps they lag it when
    /// `publish_every` > 1. One batch more would be sampled on weights too old and discarded as stale.
    /// Synchronous: the batch in training and the next, whose leases wait for the weights it publishes.
    package var leaseWindow: Int {
        guard maxStaleness > 0 else { return batchGroups * (training ? 2 : 1) }
        return batchGroups * (maxStaleness - step % publishEvery + 1)
    }

    /// The oldest weights a lease may be sampled on, its last prompt being the `position`-th committed
    /// one (counting the batch in training). Asynchronous, a prompt that falls in a later batch than the
    /// next must be sampled on newer weights to be trained within `max_staleness`: one step newer per
    /// batch, up to the newest published version (no lease waits for weights while the window lets it
    /// run ahead). Synchronous, every lease is for the next batch.
    func minStep(lastPromptAt position: Int) -> Int {
        guard maxStaleness > 0 else { return requiredStep }
        let batchesAhead = max(0, position - 1 - (training ? batchGroups : 0)) / batchGroups
        let newestPublished = step - step % publishEvery
        return max(requiredStep, min(requiredStep + batchesAhead, newestPublished))
    }

    /// Prompts out on leases plus groups waiting or training: bounded by `leaseWindow`.
    package var committedPrompts: Int {
        leases.values.reduce(0) { $0 + $1.prompts.count } + pending.count + (training ? batchGroups : 0)
    }

    /// Prompts out on leases to `identity`.
    package func leasedPrompts(of identity: String) -> Int {
        leases.values.reduce(0) { $0 + ($1.actor == identity ? $1.prompts.count : 0) }
    }

    /// The most prompts an honest actor holds: it asks for a lease only while none waits in its queue and
    /// fewer than credit + 2 of its groups are unacknowledged, so it holds the lease it samples, the one
    /// it asked for, and the prompts of at most credit + 1 groups the learner has not received yet.
    package static func honestLeaseCap(credit: Int, leaseSize: Int) -> Int { credit + 1 + 2 * leaseSize }

    /// Actors with strikes since they last landed a group: leases that expired unused, and groups
    /// refused for what the actor made of them (`isActorFault`). How many, and until when they are
    /// passed over. Kept across departures while it lasts, so that leaving and saying Hello again
    /// (under the same key, hence the same identity) does not clear it.
    private var leaseBackoff: [String: (strikes: Int, until: Double)] = [:]

    /// Whether `identity` is passed over for leases now: it has strikes, it is within its back-off
    /// (lease_timeout_s, doubled with each further strike up to 64 × lease_timeout_s), and another
    /// live actor is in good standing. An actor that takes leases and never returns groups holds its
    /// prompts for one lease timeout, then is passed over for 1, 2, 4 … 64 lease timeouts, so it cannot
    /// starve the others; one whose groups fail the checks gets each prompt back straight away and
    /// would sample it again, refused each time, so it is passed over as soon as it is refused. Alone,
    /// it still gets work.
    package func isPassedOver(_ identity: String, now: Double) -> Bool {
        guard let backoff = leaseBackoff[identity], now < backoff.until else { return false }
        return actors.keys.contains { other in
            other != identity && (leaseBackoff[other].map { now >= $0.until } ?? true)
        }
    }

    /// Refusals that say the actor's sampling or scoring departs from the protocol (docs/PROTOCOL.md,
    /// checks 10–13): a deterministic actor makes the same group again.
    package static func isActorFault(_ reason: RejectReason) -> Bool {
        [.malformed, .nonFinite, .outOfRange, .rewardMismatch].contains(reason)
    }

    /// A strike within a running back-off does not count again: a burst of refused groups (all those
    /// an actor had in flight) or of expiring leases is one strike, not a jump to the longest back-off.
    private func strike(_ identity: String, now: Double) {
        if let backoff = leaseBackoff[identity], now < backoff.until { return }
        let strikes = (leaseBackoff[identity]?.strikes ?? 0) + 1
        leaseBackoff[identity] = (strikes, now + leaseTimeout * Double(1 << min(strikes - 1, 6)))
    }

    /// Up to `maxPrompts` (and `lease_size`) prompts, within the staleness window and the actor's
    /// `leaseCap`, or nil when there is no room or the actor `isPassedOver`. Fair share: while another
    /// live actor asked within the last second, got nothing and holds less than its share of the window (⌈window / actors⌉), an actor holds at most its share — an actor
    /// that asks first (it asks again the moment its job starts) cannot starve the others when the
    /// window is small (synchronous training), and takes everything when no one else is asking.
    package func grantLease(to identity: String, maxPrompts: Int, now: Double) -> Lease? {
        guard actors[identity] != nil, !isPassedOver(identity, now: now) else { return nil }
        // At its cap an actor is not waiting for room (it is not `turnedAway`): it holds its most.
        let underCap = leaseCap - leasedPrompts(of: identity)
        guard underCap > 0 else { return nil }
        let window = leaseWindow
        let room = window - committedPrompts
        var n = min(room, maxPrompts, leaseSize, queue.count, underCap)
        let share = (window + actors.count - 1) / max(1, actors.count)
        let othersWaiting = turnedAway.contains { other, at in
            other != identity && actors[other] != nil && now - at < 1 && leasedPrompts(of: other) < share
        }
        if othersWaiting { n = min(n, share - leasedPrompts(of: identity)) }
        guard n > 0 else {
            turnedAway[identity] = now
            return nil
        }
        turnedAway[identity] = nil
        let ids = Array(queue.prefix(n))
        queue.removeFirst(n)
        let lease = Lease(id: nextLeaseId, actor: identity, prompts: ids, deadline: now + leaseTimeout, minStep: minStep(lastPromptAt: committedPrompts + n))
        nextLeaseId += 1
        leases[lease.id] = lease
        return lease
    }

    private func returnLease(_ id: UInt64) {
        guard let lease = leases.removeValue(forKey: id) else { return }
        queue.insert(contentsOf: lease.prompts, at: 0)
    }

    package func expireLeases(now: Double) -> [Lease] {
        let expired = leases.values.filter { $0.deadline < now }.sorted { $0.id < $1.id }
        for lease in expired { returnLease(lease.id) }
        // Forget back-offs that are over, of actors that are gone (churn brings new names all the time).
        leaseBackoff = leaseBackoff.filter { actors[$0.key] != nil || now < $0.value.until }
        for actor in Set(expired.map(\.actor)) { strike(actor, now: now) }
        return expired
    }

    // MARK: groups

    /// How far ahead of the highest sequence number received from an actor run a new one may be: an
    /// honest actor's unacknowledged groups never outnumber the prompts it could lease (a few staleness
    /// windows even across evictions), so a bigger jump is a forged number that would inflate the
    /// accounting.
    package var sequenceWindow: UInt64 { UInt64(4 * (batchGroups * (maxStaleness + 2)) + credit + leaseSize) }

    /// Why `key` cannot be a group's idempotency key, or nil: actors number their groups from 1.
    package func sequenceProblem(_ key: GroupKey) -> String? {
        if key.sequence == 0 { return "sequence 0: actors number their groups from 1" }
        let highest = accounting.producedByRun[Self.runKey(key.actor, key.actorRunId)] ?? 0
        if key.sequence > highest + sequenceWindow {
            return "sequence \(key.sequence) is more than \(sequenceWindow) beyond the \(highest) this actor run has reached"
        }
        return nil
    }

    /// Why `group` cannot land now, by its version (epoch, a step not yet published, staleness) or its
    /// lease (not `identity`'s, or without the prompt); nil when both are fine. Pure: `submit` refuses
    /// with it, and the learner asks it before calling reward workers for a group.
    package func versionOrLeaseProblem(_ group: RolloutGroup, from identity: String) -> (RejectReason, String)? {
        if group.version.epoch != epoch { return (.oldEpoch, "sampled by epoch \(String(group.version.epoch, radix: 16)), the learner is at \(String(epoch, radix: 16))") }
        if group.version.step > UInt64(step) {
            return (.futureVersion, "sampled at step \(group.version.step); the learner has trained up to step \(step)")
        }
        let trainStep = step + (training ? 2 : 1)
        let lag = trainStep - 1 - Int(group.version.step)
        if lag > maxStaleness { return (.stale, "sampled at step \(group.version.step), \(lag) steps behind (max_staleness \(maxStaleness))") }
        guard let lease = leases[group.leaseId], lease.actor == identity else {
            return (.unknownLease, "lease \(group.leaseId) is not held by \(identity) (expired or reassigned)")
        }
        guard lease.prompts.contains(group.promptId) else {
            return (.unknownLease, "prompt \(group.promptId) is not part of lease \(group.leaseId)")
        }
        return nil
    }

    /// Accepts, de-duplicates or rejects `group`. `review` is the run's admission check (shape, limits,
    /// rewards; `GroupAdmission`): it may refuse the group or return it with the learner's own rewards.
    package func submit(_ submitted: RolloutGroup, from identity: String, now: Double,
                        review: (RolloutGroup) -> Result<RolloutGroup, GroupAdmission.Refusal> = { g in
                            GroupAdmission.shapeProblem(g).map { .failure($0) } ?? .success(g)
                        }) -> SubmitOutcome {
        guard var actor = actors[identity] else { return .rejected(.unknownActor, "no Hello from \(identity) is in force: say Hello first") }
        guard actor.runId == submitted.key.actorRunId else {
            return .rejected(.unknownActor, "actor_run_id \(String(submitted.key.actorRunId, radix: 16)) is not the one of \(identity)'s Hello "
                             + "(\(String(actor.runId, radix: 16))): say Hello again with it")
        }
        actor.lastSeen = now
        actors[identity] = actor
        if seen.contains(submitted.key) {
            accounting.duplicates += 1
            return .duplicate
        }
        seen.insert(submitted.key)
        let run = Self.runKey(identity, submitted.key.actorRunId)
        accounting.receivedByRun[run, default: 0] += 1
        accounting.producedByRun[run] = max(accounting.producedByRun[run] ?? 0, submitted.key.sequence)
        func reject(_ reason: RejectReason, _ text: String) -> SubmitOutcome {
            accounting.rejected[reason.rawValue, default: 0] += 1
            // A rejected group's prompt goes back to the queue, unless another lease holds it.
            if let lease = leases[submitted.leaseId], lease.actor == identity, let idx = lease.prompts.firstIndex(of: submitted.promptId) {
                leases[submitted.leaseId]!.prompts.remove(at: idx)
                if leases[submitted.leaseId]!.prompts.isEmpty { leases.removeValue(forKey: submitted.leaseId) }
                queue.insert(submitted.promptId, at: 0)
            }
            actors[identity]!.credit = max(actors[identity]!.credit, 1)
            return .rejected(reason, text)
        }
        if let (reason, text) = versionOrLeaseProblem(submitted, from: identity) { return reject(reason, text) }
        let idx = leases[submitted.leaseId]!.prompts.firstIndex(of: submitted.promptId)!
        // The costliest check last: a group refused for its version or lease is never re-scored.
        let group: RolloutGroup
        switch review(submitted) {
        case .failure(let refusal):
            if refusal.actorAtFault { strike(identity, now: now) }
            return reject(refusal.reason, refusal.detail)
        case .success(let checked): group = checked
        }
        leases[group.leaseId]!.prompts.remove(at: idx)
        if leases[group.leaseId]!.prompts.isEmpty { leases.removeValue(forKey: group.leaseId) }
        pending.append(group)
        accounting.pending = pending.count
        actors[identity]!.groupsAccepted += 1
        leaseBackoff[identity] = nil
        // The prompt goes to the back of the queue: the next pass over the prompts.
        queue.append(group.promptId)
        return .accepted(group, credit: 1)
    }

    /// How a stopped learner's queue moved, as its run log tells it: every accepted group sent its prompt
    /// to the back, and every resume sent the prompts of the groups it refused (sampled with voided
    /// weights, or quarantined) to the front, in their order, to be sampled again first.
    package enum QueueMove: Equatable {
        case toBack(UInt64)
        case toFront([UInt64])
    }

    /// Resume: the queue as the run left it, from the list's order and `moves` in order. A resumed
    /// learner thus leases what the stopped one would have next, instead of starting its pass over the
    /// prompts again (which trained the first prompts more often at every restart).
    package func restoreQueue(_ moves: [QueueMove]) {
        var place: [UInt64: Int] = [:]
        for (i, prompt) in queue.enumerated() { place[prompt] = i }
        var back = queue.count, front = 0
        for move in moves {
            switch move {
            case .toBack(let prompt) where place[prompt] != nil:
                place[prompt] = back
                back += 1
            case .toFront(let prompts):
                var block: [UInt64] = []
                for p in prompts where place[p] != nil && !block.contains(p) { block.append(p) }
                front -= block.count
                for (i, p) in block.enumerated() { place[p] = front + i }
            default:
                break
            }
        }
        queue.sort { place[$0]! < place[$1]! }
    }

    /// Puts a group straight into the pending buffer (resume from the run log).
    package func restorePending(_ group: RolloutGroup) {
        seen.insert(group.key)
        pending.append(group)
        accounting.pending = pending.count
    }

    package func markSeen(_ key: GroupKey) { seen.insert(key) }
    /// Whether a group with this key was already received (a resend is a duplicate).
    package func hasSeen(_ key: GroupKey) -> Bool { seen.contains(key) }

    /// The next batch when enough groups wait and the trainer is free: groups too stale by now are
    /// rejected; the batch is ordered by prompt id, so it does not depend on arrival order.
    package func takeBatch() -> (batch: [RolloutGroup], stale: [RolloutGroup])? {
        guard !training else { return nil }
        var stale: [RolloutGroup] = []
        pending.removeAll { g in
            let lag = step - Int(g.version.step)
            if lag > maxStaleness { stale.append(g); return true }
            return false
        }
        for _ in stale { accounting.rejected[RejectReason.stale.rawValue, default: 0] += 1 }
        accounting.pending = pending.count
        guard pending.count >= batchGroups else { return stale.isEmpty ? nil : ([], stale) }
        // Oldest versions first, then prompt id: deterministic whatever the arrival order.
        let ordered = pending.enumerated().sorted { a, b in
            a.element.version.step != b.element.version.step ? a.element.version.step < b.element.version.step
                : (a.element.promptId != b.element.promptId ? a.element.promptId < b.element.promptId : a.offset < b.offset)
        }
        let chosen = Array(ordered.prefix(batchGroups))
        let chosenOffsets = Set(chosen.map(\.offset))
        pending = pending.enumerated().filter { !chosenOffsets.contains($0.offset) }.map(\.element)
        accounting.pending = pending.count
        training = true
        accounting.training = chosen.count
        return (chosen.map(\.element).sorted { $0.promptId < $1.promptId }, stale)
    }

    /// The trainer finished the batch taken last.
    package func stepCompleted(trainedGroups: Int) {
        training = false
        accounting.training = 0
        step += 1
        accounting.trained += trainedGroups
    }

    /// Resume: the learner restarts at `step` with nothing training.
    package func restore(step: Int, trained: Int) {
        self.step = step
        accounting.trained = trained
    }

    /// Resume: a restored group that can no longer be trained.
    package func rejectRestored(reason: String) { accounting.rejected[reason, default: 0] += 1 }

    /// Resume: counts what the run log says was received before the restart, so the accounting
    /// identity spans the whole run (duplicates are counted per learner process).
    package func restoreReceived(key: GroupKey, rejectedReason: String?) {
        let run = Self.runKey(key.actor, key.actorRunId)
        accounting.receivedByRun[run, default: 0] += 1
        accounting.producedByRun[run] = max(accounting.producedByRun[run] ?? 0, key.sequence)
        if let reason = rejectedReason { accounting.rejected[reason, default: 0] += 1 }
    }
}
