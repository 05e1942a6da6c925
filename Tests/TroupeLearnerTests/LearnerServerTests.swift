import Foundation
import Testing
import TroupeLearner
import TroupeJSON
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// The learner's conversation rules, driven through the in-memory transport (`LearnerHarness`).
@Suite(.serialized) struct LearnerServerTests {
    /// Says Hello and takes one lease; returns the lease.
    func join(_ actor: TestActor, _ h: LearnerHarness) throws -> Troupe_V1_Lease { try h.join(actor) }

    @Test func helloIsWelcomedWithTheRunsTermsAndStrangersAreRefused() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        try a.hello()
        try h.turn()
        let w = try a.welcome()
        #expect(w.learnerEpoch == h.epoch)
        #expect(w.credit == 64)
        #expect(w.configJson.contains("\"group_size\":4"))
        #expect(try h.records("actor_joined").count == 1)

        let stranger = h.connect("b")
        try stranger.askForLease()
        try h.turn()
        guard case .reject(let r)? = try stranger.replies().first else { Issue.record("no Reject"); return }
        #expect(r.reason == .unknownActor)
    }

    @Test func anAcceptedGroupIsLoggedBeforeItsAckAndADuplicateIsAcknowledgedWithoutBeingLoggedAgain() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        let lease = try join(a, h)
        #expect(lease.prompts.count == 1)
        let version = PolicyVersion(lease.minVersion)
        let seq = try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: version)
        try h.turn()
        let acks = try a.acks()
        #expect(acks.map(\.status) == [.accepted])
        #expect(acks.first?.creditGranted == 1)
        #expect(try h.records("group_accepted").count == 1, "on disk before the ack")

        // The same group again (a resend after a reconnect): acknowledged as a duplicate, never twice in the log.
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: version, sequence: seq)
        try h.turn()
        let again = try a.acks()
        #expect(again.map(\.status) == [.duplicate])
        #expect(again.first?.creditGranted == 1, "the resend took a credit slot; the actor counts only the first ack")
        #expect(try h.records("group_accepted").count == 1)
        #expect(h.learner.core.accounting.duplicates == 1)
    }

    /// A sampler stops at the token that completes a stop sequence: a sample that goes on past one
    /// (here "4\n5" then EOS, with the task's stop sequence "\n") would train on tokens no sampler draws.
    @Test func aSampleThatGoesOnPastAStopSequenceIsMalformed() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        let lease = try join(a, h)
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion), tokens: [52, 10, 53, 257])
        try h.turn()
        let refused = try #require(try a.acks().first)
        #expect(refused.status == .rejected && refused.rejectReason == .malformed)
        #expect(refused.text == "sample 0: its text holds a stop sequence before its last token, where sampling stops", "\(refused.text)")
    }

    /// With the run log's writer thread (the learner's default), the turn that takes a group does not
    /// wait for the disk: the ack leaves in a later turn, once the group's record is durable.
    @Test func withTheLogsWriterThreadAnAckLeavesOnceItsRecordIsDurable() throws {
        let h = try LearnerHarness(runLogWriting: .thread)
        let a = h.connect("a")
        let lease = try join(a, h)
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
        var acks: [Troupe_V1_Ack] = []
        let deadline = monotonicSeconds() + 10
        while acks.isEmpty && monotonicSeconds() < deadline {
            try h.turn()
            acks = try a.acks()
            if acks.isEmpty { usleep(500) } else { #expect(try h.records("group_accepted").count == 1, "on disk before the ack") }
        }
        #expect(acks.map(\.status) == [.accepted])
        #expect(h.learner.core.accounting.pending == 1)
    }

    /// The trainer thread writes a step's checkpoint while the I/O loop goes on: leases and acks leave,
    /// and the next batch waits for the checkpoint, whose record comes once it is on disk.
    @Test func theLearnerServesItsActorsWhileACheckpointIsWritten() throws {
        let h = try LearnerHarness(["run.max_steps=2"])
        let hold = DispatchSemaphore(value: 0)
        h.learner.training.checkpointHold = hold
        defer { hold.signal() }
        let a = h.connect("a")
        func land(_ count: Int) throws {
            for _ in 0..<count {
                try a.askForLease()
                try h.turn()
                let lease = try a.lease()
                try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
                try h.turn()
                #expect(try a.acks().map(\.status) == [.accepted])
            }
        }
        func turn(until done: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(60)
            while try !done() && Date() < deadline { try h.turn(); usleep(1000) }
            #expect(try done())
        }
        try a.hello()
        try h.turn()
        _ = try a.welcome()
        try land(2)
        try turn { try h.records("step_done").count == 1 }
        #expect(h.learner.training.isBusy, "the checkpoint is being written")
        // A whole batch lands meanwhile, but no step starts before the checkpoint is written.
        try land(2)
        for _ in 0..<20 { try h.turn() }
        #expect(try h.records("batch_formed").count == 1 && h.learner.core.accounting.pending == 2)
        #expect(try h.records("checkpoint").isEmpty)
        hold.signal()
        try turn { try h.records("checkpoint").count == 1 }
        #expect(FileManager.default.fileExists(atPath: h.directory + "/checkpoints/step-00000001.safetensors"))
        hold.signal()
        try turn { try h.records("checkpoint").count == 2 }
        #expect(try h.records("step_done").count == 2)
        // The run's end writes no second checkpoint of the step just checkpointed (a third would not
        // be held: the hold has a spare signal).
        hold.signal()
        #expect(try h.learner.stop(failed: false) == 0)
        #expect(try h.records("checkpoint").compactMap { $0.body["step"]?.int } == [1, 2])
    }

    /// A learner that stops keeps its status file fresh while its last checkpoint is written (a
    /// liveness probe must not restart it then), and says at once that it no longer listens.
    @Test func aStoppingLearnerKeepsItsStatusFreshWhileItsLastCheckpointIsWritten() throws {
        final class Stopping: @unchecked Sendable {
            let learner: LearnerServer
            let done = DispatchSemaphore(value: 0)
            var status: Int32?
            init(_ learner: LearnerServer) { self.learner = learner }
        }
        let h = try LearnerHarness()
        let path = h.directory + "/status.json"
        h.learner.statusFile = StatusFileWriter(path: path, interval: 0)
        let hold = DispatchSemaphore(value: 0)
        h.learner.training.checkpointHold = hold
        try h.turn()
        let stopping = Stopping(h.learner)
        Thread {
            stopping.status = try? stopping.learner.stop(failed: false)
            stopping.done.signal()
        }.start()
        // Whatever fails below, the stop finishes before the harness goes.
        var released = false
        defer { if !released { hold.signal(); _ = stopping.done.wait(timeout: .now() + 60) } }
        var writes: Set<Double> = []
        let deadline = Date().addingTimeInterval(30)
        while writes.count < 3 && Date() < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), let status = try? ProcessStatus(parsing: text, source: path) {
                #expect(status.stopped == nil)
                if status.listening == false { writes.insert(status.writtenUnix) }
            }
            usleep(50_000)
        }
        #expect(writes.count >= 3, "rewritten, alive and no longer listening, while the checkpoint was held")
        #expect(try h.records("checkpoint").isEmpty)
        hold.signal()
        released = true
        #expect(stopping.done.wait(timeout: .now() + 60) == .success)
        #expect(stopping.status == 0)
        #expect(try h.records("checkpoint").count == 1)
    }

    @Test func aFullBatchTrainsAStepPublishesItAndKeepsTheAccounts() throws {
        let h = try LearnerHarness()
        let sink = InMemoryRunEvents()
        h.learner.events.add(sink)
        let a = h.connect("a")
        for _ in 0..<2 {
            let lease = try join(a, h)
            try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
            try h.turn()
            #expect(try a.acks().map(\.status) == [.accepted])
        }
        try h.trainPendingStep()
        let steps = try h.records("step_done")
        #expect(steps.map { $0.body["step"]?.int } == [1])
        let batch = try h.records("batch_formed").first
        #expect(batch?.body["groups"]?.array?.count == 2)
        #expect(try h.records("published").count == 1)
        #expect(h.network.announce.takeAll().contains { if case .weightAnnounce(let w) = $0.body { w.version.step == 1 } else { false } })
        #expect(h.network.logs.events(kind: "step").count == 1)
        // Every event reaches every sink: the run log's records after the test's sink joined, in order.
        let logged = try h.records().map(\.type)
        #expect(Array(logged.suffix(sink.recordTypes.count)) == sink.recordTypes)
        #expect(sink.recordTypes.suffix(3) == ["step_done", "published", "checkpoint"])
        #expect(sink.events.contains { $0.metricsLine?.kind == "train" && $0.metricsLine?.step == 1 })
        let accounting = h.learner.core.accounting
        #expect(accounting.trained == 2)
        #expect(accounting.identityHolds)
    }

    @Test func synchronousTrainingRejectsAGroupSampledWithOlderWeights() throws {
        let h = try LearnerHarness(["learner.max_staleness=0"])
        let a = h.connect("a")
        for _ in 0..<2 {
            let lease = try join(a, h)
            try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
        }
        try h.turn()
        try h.trainPendingStep()
        // Sampled with step 0's weights, arriving when step 1 is the newest: one step too old.
        let late = try join(a, h)
        #expect(late.minVersion.step == 1)
        try #require(late.prompts.count == 1)
        try a.submit(prompt: late.prompts[0].promptID, lease: late.leaseID, version: PolicyVersion(epoch: h.epoch, step: 0))
        try h.turn()
        let acks = try a.acks()
        #expect(acks.last?.status == .rejected)
        #expect(acks.last?.rejectReason == .stale)
        #expect(try h.records("group_rejected").last?.body["reason"]?.string == "stale")
        #expect(h.learner.core.accounting.rejected["stale"] == 1)
        #expect(h.learner.core.accounting.identityHolds)
    }

    @Test func aGroupFromAnotherEpochIsRejected() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        let lease = try join(a, h)
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch &+ 1, step: 0))
        try h.turn()
        #expect(try a.acks().first?.rejectReason == .oldEpoch)
        // Its rejection record holds any version a peer can send (found by troupe-fuzz: it trapped).
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(epoch: h.epoch &+ 1, step: .max))
        try h.turn()
        #expect(try a.acks().first?.rejectReason == .oldEpoch)
    }

    @Test func anExpiredLeaseReturnsItsPromptToAnotherActor() throws {
        let h = try LearnerHarness(["task.count=2"])
        let a = h.connect("a"), b = h.connect("b")
        let first = try join(a, h)
        let second = try join(b, h)
        try b.askForLease()
        try h.turn()
        #expect(try b.lease().prompts.isEmpty, "window of batch_groups × (max_staleness + 1) = 2 prompts, both leased")
        h.now += 31
        for actor in [a, b] { try actor.send(.heartbeat(Troupe_V1_Heartbeat())) }
        try h.turn()
        let expired = try h.records("lease_expired")
        #expect(Set(expired.compactMap { $0.body["lease"]?.int }) == [Int(first.leaseID), Int(second.leaseID)])
        _ = try a.replies()
        try a.askForLease()
        try h.turn()
        let again = try a.lease().prompts.map(\.promptID)
        #expect(again.count == 1)
        #expect(Set(again).isSubset(of: [first.prompts[0].promptID, second.prompts[0].promptID]))
    }

    /// An actor that says Hello again from its run (it heard nothing for a while and reconnected) drops
    /// the leases it had queued, and a grant sent to its old connection is lost: its leases come back at
    /// that Hello, not after lease_timeout_s, and another actor gets them at once.
    @Test func anActorThatReconnectsHasItsLeasesReturnedAtOnce() throws {
        let h = try LearnerHarness(["task.count=2"])
        let a = h.connect("a"), b = h.connect("b")
        let first = try join(a, h)
        _ = try join(b, h)
        let reconnected = TestActor(identity: "a", runId: 1, control: h.network.control.connect(identity: "a#1-again"),
                                    admission: h.learner.admission)
        try reconnected.hello()
        try h.turn()
        _ = try reconnected.welcome()
        let left = try h.records("actor_left")
        #expect(left.map { $0.body["leases_returned"] } == [[.integer(Int(first.leaseID))]])
        #expect(left.first?.body["reason"]?.string?.hasPrefix("reconnected") == true)
        #expect(try h.records("actor_joined").last?.body["rejoined"] == .bool(true))
        #expect(!h.learner.core.leases.values.contains { $0.actor == "a" })
        try b.askForLease()
        try h.turn()
        #expect(try b.lease().prompts.map(\.promptID) == [first.prompts[0].promptID], "the returned prompt waits for no timeout")
        // A Hello of the same run with no lease out changes nothing.
        try reconnected.hello()
        try h.turn()
        #expect(try h.records("actor_left").count == 1)
    }

    @Test func aSilentActorIsEvictedAndItsLeasesComeBack() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        let lease = try join(a, h)
        h.now += 11
        try h.turn()
        let left = try h.records("actor_left")
        #expect(left.count == 1)
        #expect(left.first?.body["leases_returned"] == [.integer(Int(lease.leaseID))])
        #expect(h.learner.core.actors["a"] == nil)
    }

    /// A run of one step that `b` trains, `a` evicted (silent) before the end: returns the harness
    /// at the finished run, and `a` and `b`.
    func runFinishedWithAnActorEvicted(goodbyeWait: Double) throws -> (LearnerHarness, a: TestActor, b: TestActor) {
        let h = try LearnerHarness(["run.max_steps=1"], endOfRun: (linger: 0.05, goodbyeWait: goodbyeWait))
        let a = h.connect("a"), b = h.connect("b")
        _ = try join(a, h)
        h.now += 6
        var lease = try join(b, h)
        h.now += 5
        try h.turn()
        #expect(try h.records("actor_left").compactMap { $0.body["actor"]?.string } == ["a"])
        for i in 0..<2 {
            if i > 0 { lease = try join(b, h) }
            try b.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
            try h.turn()
        }
        try h.turn()
        #expect(try h.learner.settleTraining())
        #expect(try h.turn() == .finished)
        return (h, a, b)
    }

    func saidRunFinished(_ actor: TestActor) throws -> Bool {
        try actor.replies().contains { if case .bye(let bye) = $0 { bye.reason == ByeReason.runFinished } else { false } }
    }

    // An actor evicted just before the end may be alive behind a slow link: the finished learner tells
    // it on its old route, and waits (bounded) for its Bye, answering its new Hello with the end.
    @Test func aFinishedRunWaitsForTheByeOfAnActorEvictedJustBefore() throws {
        let (h, a, b) = try runFinishedWithAnActorEvicted(goodbyeWait: 30)
        let aAgain = h.connect("a", runId: 2)
        try aAgain.hello()
        try aAgain.bye()
        try b.bye()
        let started = Date()
        #expect(try h.learner.stop(failed: false) == 0)
        #expect(Date().timeIntervalSince(started) < 15, "every actor said Bye: the learner should not wait out goodbyeWait")
        #expect(try saidRunFinished(a))
        #expect(try saidRunFinished(aAgain))
        #expect(try saidRunFinished(b))
    }

    @Test func aFinishedRunWaitsForAnActorsByeOnlySoLong() throws {
        let (h, _, b) = try runFinishedWithAnActorEvicted(goodbyeWait: 0.5)
        try b.bye()
        let started = Date()
        #expect(try h.learner.stop(failed: false) == 0)
        #expect(Date().timeIntervalSince(started) >= 0.45, "the evicted actor never said Bye: the learner waits goodbyeWait")
    }

    @Test func malformedFramesAreRefusedAndCounted() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        try a.hello()
        try h.turn()
        _ = try a.replies()
        #expect(a.control.send(frames: [Frame([0xFF, 0x00, 0x13])]) == .sent)
        try h.turn()
        guard case .reject(let r)? = try a.replies().first else { Issue.record("no Reject"); return }
        #expect(r.reason == .malformed)
        #expect(h.network.logs.events(kind: "rejection").count == 1)
    }

    /// A learner checkpointing every 2 steps that has trained `steps` steps of two groups from one actor.
    private func trainedSteps(_ steps: Int) throws -> LearnerHarness {
        let h = try LearnerHarness(["learner.checkpoint_every=2"])
        let a = h.connect("a")
        for _ in 0..<steps {
            for _ in 0..<2 {
                let lease = try join(a, h)
                try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
                try h.turn()
            }
            try h.trainPendingStep()
        }
        return h
    }

    @Test func resumeVoidsStepsAfterTheCheckpointAndTrainsNoGroupTwice() throws {
        let h = try trainedSteps(3)
        #expect(try h.records("step_done").count == 3)
        #expect(try h.records("checkpoint").compactMap { $0.body["step"]?.int } == [2])

        // The learner dies after step 3 (no clean stop): step 3's weights are lost with it.
        let directory = h.directory
        h.kill()
        let resumed = try LearnerHarness(["learner.checkpoint_every=2"], directory: directory)
        let record = try resumed.records("resumed").first
        #expect(record?.body["from_step"]?.int == 2)
        #expect(record?.body["voided_steps"] == [3])
        #expect(resumed.learner.core.step == 2)
        #expect(resumed.learner.core.accounting.pending == 2, "step 3's groups wait to be trained again")
        // Step 3 is trained anew from the pending groups (a new actor, the old one's leases are gone).
        let b = resumed.connect("b", runId: 2)
        try b.hello()
        try resumed.turn()
        try resumed.trainPendingStep()
        let batches = try resumed.records("batch_formed").compactMap { $0.body["step"]?.int }
        #expect(batches == [1, 2, 3, 3])
        #expect(try resumed.records("step_done").compactMap { $0.body["step"]?.int } == [1, 2, 3, 3])
        #expect(resumed.learner.core.accounting.identityHolds)
    }

    /// A resumed learner leases the prompts the stopped one would have leased next: its queue is the
    /// one the run left (each accepted prompt at the back), after a clean stop and after a kill, not
    /// the prompt list from the start again. A group the resume refuses (sampled with voided weights)
    /// returns its prompt to the front, as a refused group does.
    @Test(arguments: [true, false])
    func resumeKeepsThePromptQueuesOrder(cleanStop: Bool) throws {
        let h = try trainedSteps(3)
        #expect(h.learner.core.queue == [6, 7, 0, 1, 2, 3, 4, 5], "\(h.learner.core.queue)")
        // A group of prompt 6 sampled with step 3's weights: a kill voids step 3 (checkpoint at 2).
        let c = h.connect("c", runId: 3)
        let lease = try h.join(c)
        try c.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
        try h.turn()
        #expect(try c.acks().map(\.status) == [.accepted])
        let queue = h.learner.core.queue
        #expect(queue == [7, 0, 1, 2, 3, 4, 5, 6], "\(queue)")
        let directory = h.directory
        if cleanStop { #expect(try h.learner.stop(failed: false) == 0) }
        h.kill()
        let resumed = try LearnerHarness(["learner.checkpoint_every=2"], directory: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let resumedQueue = resumed.learner.core.queue
        #expect(resumedQueue == (cleanStop ? queue : [6, 7, 0, 1, 2, 3, 4, 5]), "\(resumedQueue)")
        // Killed again before anything more was accepted, the next resume finds the same queue: the first
        // resume's refusals are in the log.
        resumed.kill()
        let again = try LearnerHarness(["learner.checkpoint_every=2"], directory: directory)
        #expect(again.learner.core.queue == resumedQueue, "\(again.learner.core.queue)")
        let b = again.connect("b", runId: 2)
        #expect(try again.join(b).prompts.map(\.promptID) == [cleanStop ? 7 : 6])
    }

    /// A resume whose run.max_steps is below its checkpoint's step would stop at once, saying it finished.
    @Test func resumeRefusesAMaxStepsBelowItsCheckpoint() throws {
        let h = try trainedSteps(3)
        let directory = h.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        h.kill()
        do {
            _ = try LearnerHarness(["learner.checkpoint_every=2", "run.max_steps=1"], directory: directory)
            Issue.record("a resume below its checkpoint's step was accepted")
        } catch {
            #expect("\(error)".contains("run.max_steps is 1, below step 2 of the checkpoint the run goes on from"), "\(error)")
        }
        #expect(try LearnerHarness(["learner.checkpoint_every=2", "run.max_steps=2"], directory: directory).learner.core.step == 2)
    }

    /// Checkpoint files gone while the log records checkpoints: a resume from the base weights would void
    /// the run and overwrite its model, so it is refused, naming the step to put back.
    @Test func resumeRefusesARunWhoseCheckpointsAreGone() throws {
        let h = try trainedSteps(2)
        let directory = h.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        h.kill()
        let checkpoints = directory + "/checkpoints"
        for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints) {
            try FileManager.default.removeItem(atPath: checkpoints + "/" + name)
        }
        let log = try Data(contentsOf: URL(fileURLWithPath: directory + "/run.log"))
        do {
            _ = try LearnerHarness(["learner.checkpoint_every=2"], directory: directory)
            Issue.record("a run without its checkpoints was resumed from the base weights")
        } catch {
            #expect("\(error)".contains("holds no checkpoint, but \(directory)/run.log records checkpoints up to step 2: put the checkpoint files back (the newest, step-00000002.safetensors"), "\(error)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/run.log")) == log, "the refused resume wrote to the log")
    }

    /// A run log that ends before the checkpoint's step lost records (emptied, or cut in the middle of an
    /// earlier line): resuming would train on without them, so the learner refuses, naming the log, the
    /// steps and what to do, and leaves the log and the checkpoints as they were.
    @Test(arguments: ["cut", "emptied"])
    func resumeRefusesARunLogThatEndsBeforeItsCheckpoint(damage: String) throws {
        let h = try trainedSteps(2)
        let directory = h.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        h.kill()
        let logPath = directory + "/run.log", log = try Data(contentsOf: URL(fileURLWithPath: logPath))
        let lines = log.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // Cut in the middle of the record of step 2's batch (which says what the checkpoint was trained
        // on): what is left looks like a torn write after step 1.
        let step2 = try #require(lines.firstIndex {
            let line = String(decoding: $0, as: UTF8.self)
            return line.contains("\"type\":\"batch_formed\"") && line.contains("\"step\":2,")
        })
        let damaged = damage == "cut" ? log.prefix(lines[..<step2].reduce(0) { $0 + $1.count + 1 } + 20) : Data()
        try damaged.write(to: URL(fileURLWithPath: logPath))
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints").sorted()
        do {
            let resumed = try LearnerHarness(["learner.checkpoint_every=2"], directory: directory)
            resumed.kill()
            Issue.record("a learner resumed from a checkpoint its run log does not reach")
        } catch {
            let text = "\(error)"
            #expect(text.contains(logPath) && text.contains("records steps up to \(damage == "cut" ? 1 : 0), but the checkpoint")
                    && text.contains("is at step 2") && text.contains("Put the whole run.log back"), "\(text)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints").sorted() == checkpoints)
        #expect(try Data(contentsOf: URL(fileURLWithPath: logPath)).count <= damaged.count, "the refusing learner appended to the log")
    }

    /// An identity or build id over its bound is refused before anything reaches the run log (Hellos must
    /// not fill the disk); a Bye's reason is cut there.
    @Test func overlongHelloFieldsAreRefusedAndByeReasonsCut() throws {
        let h = try LearnerHarness()
        for (identity, build, field, bytes) in [(String(repeating: "a", count: 129), TroupeBuild.id, "actor_identity", 129),
                                                ("b", String(repeating: "x", count: 300), "build_id", 300)] {
            let a = h.connect(identity)
            var hello = Troupe_V1_Hello()
            hello.actorIdentity = identity
            hello.actorRunID = 1
            hello.protocolMajor = WireProtocol.major
            hello.buildID = build
            try a.send(.hello(hello))
            try h.turn()
            guard case .reject(let r)? = try a.replies().first else { Issue.record("no Reject for a long \(field)"); continue }
            #expect(r.reason == .malformed && r.text == "Hello.\(field) holds \(bytes) bytes; at most \(field == "build_id" ? 256 : 128)")
        }
        #expect(try h.records("actor_joined").isEmpty)
        let c = h.connect("c")
        try c.hello()
        try h.turn()
        var bye = Troupe_V1_Bye()
        bye.reason = String(repeating: "r", count: 10_000)
        try c.send(.bye(bye))
        try h.turn()
        let left = try #require(try h.records("actor_left").first?.body["reason"]?.string)
        #expect(left == "bye: " + String(repeating: "r", count: 256) + "…")
    }

    /// With heartbeats further apart than 3 s, a live actor between two of them keeps its identity against
    /// a Hello of another run for 1.5 intervals; after that the newcomer replaces it.
    @Test func anIdentityIsHeldForOneAndAHalfHeartbeatIntervals() throws {
        let h = try LearnerHarness(["learner.heartbeat_timeout_s=30"]) // heartbeats every 6 s: held 9 s
        let first = h.connect("a", runId: 1)
        try first.hello()
        try h.turn()
        _ = try first.replies()
        let second = h.connect("a", runId: 2)
        h.now += 5
        try second.hello()
        try h.turn()
        guard case .reject(let r)? = try second.replies().first else { Issue.record("a live actor 5 s after its last heartbeat was replaced"); return }
        #expect(r.reason == .configMismatch)
        h.now += 5
        try second.hello()
        try h.turn()
        guard case .welcome? = try second.replies().first else { Issue.record("no Welcome after 10 s of silence"); return }
    }

    /// The frozen configuration edited between a run's start and its resume (a learning rate changed by
    /// hand) is refused: run_started holds its digest.
    @Test func resumeRefusesAnEditedFrozenConfiguration() throws {
        let h = try LearnerHarness()
        let directory = h.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let started = try #require(try h.records("run_started").first)
        let frozen = try Data(contentsOf: URL(fileURLWithPath: directory + "/config.json"))
        // What `b2sum -l 256 config.json` prints.
        #expect(started.body["config_digest"]?.string == Blake2b.hash([UInt8](frozen)).map { String(format: "%02x", $0) }.joined())
        h.kill()
        let edited = String(decoding: frozen, as: UTF8.self).replacingOccurrences(of: "\"learning_rate\" : 3e-05", with: "\"learning_rate\" : 0.5")
        #expect(edited.utf8.count != 0 && Data(edited.utf8) != frozen, "the frozen file has no learning_rate to edit")
        try Data(edited.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        do {
            let resumed = try LearnerHarness(directory: directory)
            resumed.kill()
            Issue.record("resumed on an edited configuration")
        } catch {
            #expect("\(error)".contains("config.json is not the configuration this run started with"), "\(error)")
        }
        try frozen.write(to: URL(fileURLWithPath: directory + "/config.json"))
        let resumed = try LearnerHarness(directory: directory)
        #expect(try resumed.records("resumed").count == 1)
        resumed.kill()
    }

    /// A start that failed before recording anything leaves an empty run log: a new start may take the
    /// directory; a log with records in it is a run, which only --resume continues.
    @Test func aNewRunMayStartOverAnEmptyRunLogOnly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-learner-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: directory + "/run.log", contents: nil))
        let h = try LearnerHarness(directory: directory, resume: false)
        #expect(try h.records("run_started").count == 1)
        h.kill()
        do {
            let again = try LearnerHarness(directory: directory, resume: false)
            again.kill()
            Issue.record("a new run started over a run log with records")
        } catch {
            #expect("\(error)".contains("already holds a run; use --resume"), "\(error)")
        }
    }

    /// Replay re-trains the logged steps bit for bit; a torn final record is left out and reported, and
    /// so is an edited frozen configuration.
    @Test func replayReportsATornTailAndAnEditedConfiguration() throws {
        let h = try trainedSteps(2)
        let directory = h.directory
        defer { try? FileManager.default.removeItem(atPath: directory) }
        h.kill()
        let clean = try Replay.verify(runDirectory: directory)
        #expect(clean.ok && clean.steps.count == 2 && clean.tornTailBytes == 0)
        let handle = try #require(FileHandle(forWritingAtPath: directory + "/run.log"))
        handle.seekToEndOfFile()
        let tail = Data("{\"seq\":99,\"type\":\"ste".utf8)
        handle.write(tail)
        handle.closeFile()
        let torn = try Replay.verify(runDirectory: directory)
        #expect(torn.ok && torn.steps.count == 2 && torn.tornTailBytes == tail.count)
        let frozen = directory + "/config.json"
        try (try String(contentsOfFile: frozen, encoding: .utf8) + " ").write(toFile: frozen, atomically: true, encoding: .utf8)
        let edited = try Replay.verify(runDirectory: directory)
        #expect(edited.configurationProblem?.hasPrefix("\(frozen) is not the configuration this run started with") == true)
        #expect(clean.configurationProblem == nil)
    }
}
