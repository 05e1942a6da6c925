import Foundation
import Testing
import TroupeActor
import TroupeProto
import TroupeRuntime
import TroupeWire

/// The actor's conversation rules, with the learner's messages written by hand and the time moved
/// by the test.
@Suite struct ActorCoreTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// What a learner of the built-in model puts in `config_json`.
    static func configJSON(_ overrides: [String] = []) throws -> String {
        let modelPath = "\(repositoryRoot)/models/arith-base"
        let config = try RunConfig.load(path: nil, overrides: ["model.path=\(modelPath)", "sampling.group_size=4"] + overrides)
        return try config.welcomeJSON()
    }

    static func welcome(epoch: UInt64 = 7, step: UInt64 = 0, credit: UInt32 = 2, leaseSize: UInt32 = 1,
                        heartbeatMs: UInt32 = 2000, configJSON: String? = nil) throws -> WireMessage {
        var w = Troupe_V1_Welcome()
        w.learnerEpoch = epoch
        w.currentVersion = PolicyVersion(epoch: epoch, step: step).proto
        w.credit = credit
        w.leaseSize = leaseSize
        w.heartbeatIntervalMs = heartbeatMs
        w.configJson = try configJSON ?? Self.configJSON()
        return WireMessage(.welcome(w))
    }

    static func ack(_ sequence: UInt64, _ status: Troupe_V1_AckStatus, credit: UInt32, epoch: UInt64 = 7, step: UInt64 = 0) -> WireMessage {
        var a = Troupe_V1_Ack()
        a.sequence = sequence
        a.status = status
        a.creditGranted = credit
        a.currentVersion = PolicyVersion(epoch: epoch, step: step).proto
        return WireMessage(.ack(a))
    }

    static func lease(id: UInt64, prompts: [UInt64], minStep: UInt64 = 0, epoch: UInt64 = 7) -> WireMessage {
        var l = Troupe_V1_Lease()
        l.leaseID = id
        l.minVersion = PolicyVersion(epoch: epoch, step: minStep).proto
        l.prompts = prompts.map { var p = Troupe_V1_Prompt(); p.promptID = $0; return p }
        return WireMessage(.lease(l))
    }

    static func reject(_ reason: Troupe_V1_RejectReason) -> WireMessage {
        var r = Troupe_V1_Reject()
        r.reason = reason
        r.text = "\(reason)"
        return WireMessage(.reject(r))
    }

    static func group(prompt: UInt64 = 1, lease: UInt64 = 1, version: PolicyVersion = PolicyVersion(epoch: 7, step: 0)) -> GroupSubmission {
        var h = Troupe_V1_GroupSubmit()
        h.leaseID = lease
        h.promptID = prompt
        h.version = version.proto
        var info = Troupe_V1_SampleInfo()
        info.tokenCount = 2
        info.finishReason = .stop
        h.samples = [info]
        return GroupSubmission(header: h, tokenIDs: [52, 257], logProbs: [-0.5, -0.25])
    }

    static func options() -> ActorCore.Options {
        var o = ActorCore.Options(identity: "a", runId: 0xA1)
        o.connectTimeout = 60
        o.learnerSilence = 6
        return o
    }

    /// A core welcomed at time 0 with `credit`.
    static func welcomed(credit: UInt32 = 2, leaseSize: UInt32 = 1) throws -> ActorCore {
        var core = ActorCore(options: options(), now: 0)
        guard case .sayHello = core.joinStep(now: 0) else { throw Failure("no Hello first") }
        core.sent(.hello, now: 0)
        _ = core.receive(try welcome(credit: credit, leaseSize: leaseSize), now: 0)
        try #require(core.joined)
        return core
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func groups(_ out: [ActorCore.Outgoing]) -> [UInt64] { out.compactMap(\.groupSequence) }
    static func leaseRequests(_ out: [ActorCore.Outgoing]) -> [UInt32] {
        out.compactMap { if case .leaseRequest(let n) = $0 { n } else { nil } }
    }
    static func sendAll(_ out: [ActorCore.Outgoing], into core: inout ActorCore, now: Double) {
        for o in out { core.sent(o, now: now) }
    }

    // MARK: joining

    @Test func helloFirstThenAgainEverySecondUntilAWelcomeSetsTheTerms() throws {
        var core = ActorCore(options: Self.options(), now: 0)
        guard case .sayHello(let h) = core.joinStep(now: 0) else { Issue.record("no Hello"); return }
        #expect(h.actorIdentity == "a")
        #expect(h.actorRunID == 0xA1)
        #expect(h.protocolMajor == WireProtocol.major)
        #expect(core.outgoing(now: 0).isEmpty, "nothing but Hello before a Welcome")
        // A Hello that did not leave (no connection yet) is tried again at once.
        guard case .sayHello = core.joinStep(now: 0.01) else { Issue.record("unsent Hello not retried"); return }
        core.sent(.hello, now: 0.01)
        #expect(core.joinStep(now: 0.5) == .waiting)
        guard case .sayHello = core.joinStep(now: 1.1) else { Issue.record("no second Hello"); return }
        core.sent(.hello, now: 1.1)

        let events = core.receive(try Self.welcome(credit: 3, leaseSize: 2, heartbeatMs: 2000), now: 1.2)
        guard case .welcomed(_, let config, let resending)? = events.first else { Issue.record("not welcomed: \(events)"); return }
        #expect(config.run.sampling.groupSize == 4)
        #expect(config.model.vocabularySize == 259)
        #expect(config.modelFiles["config.json"] != nil)
        #expect(resending == 0)
        #expect(core.joinStep(now: 1.2) == .joined)
        #expect(core.terms == ActorCore.Terms(epoch: 7, credit: 3, leaseSize: 2, heartbeatInterval: 2))
        #expect(core.credit == 3)
        let out = core.outgoing(now: 1.2)
        #expect(Self.leaseRequests(out) == [2])
        #expect(out.contains { if case .heartbeat = $0 { true } else { false } })
    }

    @Test func noLearnerWithinTheConnectTimeoutGivesUpButALaterSilenceDoesNot() throws {
        var lonely = ActorCore(options: Self.options(), now: 0)
        #expect(lonely.joinStep(now: 59) != .giveUp)
        #expect(lonely.joinStep(now: 61) == .giveUp)

        var core = try Self.welcomed()
        #expect(core.joinStep(now: 100) == .reconnect(silentFor: 100))
        // It waits for its learner: on a fresh connection after the silence, saying Hello.
        #expect(core.joinStep(now: 200) == .renewConnection)
        guard case .sayHello = core.joinStep(now: 200) else { Issue.record("an actor once welcomed waits for its learner"); return }
    }

    /// Before a Welcome, a connection nothing came through for `learnerSilence` is replaced (libzmq does
    /// not retry a handshake the learner refused: a key its allowlist may gain later), every 6 s, with
    /// Hellos in between; an answer on it (a Reject) keeps it.
    @Test func anUnansweredConnectionIsRenewedUntilTheLearnerAnswers() throws {
        var core = ActorCore(options: Self.options(), now: 0)
        var renewals: [Double] = []
        var t = 0.0
        while t <= 20 {
            switch core.joinStep(now: t) {
            case .sayHello: core.sent(.hello, now: t)
            case .renewConnection: renewals.append(t)
            default: break
            }
            t += 0.5
        }
        #expect(renewals == [6.5, 13, 19.5])
        var reject = Troupe_V1_Reject()
        reject.reason = .configMismatch
        _ = core.receive(WireMessage(.reject(reject)), now: 20)
        #expect(core.joinStep(now: 25) != .renewConnection, "an answer keeps the connection")
    }

    /// Hellos into silence, every second, from `from` to `to`: what the client does while it waits.
    static func helloIntoSilence(_ core: inout ActorCore, from: Double, to: Double) -> ActorCore.JoinStep? {
        var t = from
        while t <= to {
            let step = core.joinStep(now: t)
            switch step {
            case .sayHello: core.sent(.hello, now: t)
            case .waiting, .reconnect, .renewConnection, .joined: break
            default: return step
            }
            t += 0.5
        }
        return nil
    }

    @Test func aLearnerSilentPastTheGoneTimeoutIsGivenUpOnThroughReconnectsAndHellos() throws {
        var core = try Self.welcomed()  // last heard at 0
        #expect(Self.helloIntoSilence(&core, from: 1, to: 300) == nil, "gave up before --learner-gone-timeout (300 s)")
        guard case .learnerGone(let silent) = core.joinStep(now: 300.5) else { Issue.record("still waiting after 300.5 s of silence"); return }
        #expect(silent == 300.5)
        #expect(!core.joined)
    }

    @Test func anyMessageFromALearnerRestartsTheGoneClock() throws {
        var options = Self.options()
        options.learnerGoneTimeout = 30
        var core = ActorCore(options: options, now: 0)
        core.sent(.hello, now: 0)
        _ = core.receive(try Self.welcome(), now: 0)
        #expect(Self.helloIntoSilence(&core, from: 1, to: 25) == nil)
        // The learner is back but has forgotten us: its Reject is a learner speaking.
        _ = core.receive(Self.reject(.unknownActor), now: 25)
        #expect(Self.helloIntoSilence(&core, from: 25.5, to: 55) == nil, "the Reject at 25 s did not count as hearing the learner")
        var bye = Troupe_V1_Bye()
        bye.reason = "learner stopping"
        _ = core.receive(WireMessage(.bye(bye)), now: 55)
        #expect(Self.helloIntoSilence(&core, from: 55.5, to: 85) == nil, "the Bye at 55 s did not count as hearing the learner")
        #expect(core.joinStep(now: 85.5) == .learnerGone(silentFor: 30.5))
    }

    @Test func anActorNeverWelcomedGivesUpByTheConnectTimeoutNotTheGoneTimeout() throws {
        var options = Self.options()
        options.learnerGoneTimeout = 10
        var core = ActorCore(options: options, now: 0)
        #expect(Self.helloIntoSilence(&core, from: 0, to: 60) == nil, "gave up before --connect-timeout (60 s)")
        #expect(core.joinStep(now: 60.5) == .giveUp)
    }

    @Test func aLearnerThatRestartsWithinTheGoneTimeoutIsJoinedAgain() throws {
        var core = try Self.welcomed()
        #expect(Self.helloIntoSilence(&core, from: 1, to: 290) == nil)
        _ = core.receive(try Self.welcome(epoch: 8), now: 290)
        #expect(core.joinStep(now: 290) == .joined)
        #expect(core.joinStep(now: 400) == .reconnect(silentFor: 110), "the gone clock did not restart at the Welcome")
    }

    @Test func heartbeatsAreDueEveryIntervalAndNeverFasterThan200ms() throws {
        var core = ActorCore(options: Self.options(), now: 0)
        _ = core.receive(try Self.welcome(heartbeatMs: 50), now: 0)
        func heartbeatDue(_ now: Double) -> Bool { core.outgoing(now: now).contains { if case .heartbeat = $0 { true } else { false } } }
        #expect(heartbeatDue(0))
        core.sent(.heartbeat, now: 0)
        #expect(!heartbeatDue(0.1))
        #expect(heartbeatDue(0.2))
    }

    /// A long interval (a `learner.heartbeat_timeout_s` of 600 asks for 120 s) must not let the silence
    /// rule fire while a lease is sampled: the learner speaks only in answer, so the actor heartbeats at
    /// least every third of `learnerSilence`, and a conversation of heartbeats and answers stays joined.
    @Test func heartbeatsComeOftenEnoughForTheSilenceRuleWhateverTheInterval() throws {
        var core = ActorCore(options: Self.options(), now: 0)
        _ = core.receive(try Self.welcome(heartbeatMs: 120_000), now: 0)
        var hb = Troupe_V1_Heartbeat()
        hb.currentVersion = PolicyVersion(epoch: 7, step: 0).proto
        var heartbeats = 0
        for tick in 0...300 {
            let now = Double(tick) / 10
            if core.outgoing(now: now).contains(where: { if case .heartbeat = $0 { true } else { false } }) {
                core.sent(.heartbeat, now: now)
                heartbeats += 1
                _ = core.receive(WireMessage(.heartbeat(hb)), now: now + 0.05)
            }
            #expect(core.joinStep(now: now + 0.05) == .joined, "at \(now) s")
        }
        #expect(heartbeats == 16, "every 2 s over 30 s, the first at once")
    }

    // MARK: credit and acks

    @Test func neverMoreGroupsInFlightThanCreditAndOnlyFirstAcksFreeIt() throws {
        var core = try Self.welcomed(credit: 2)
        for _ in 0..<3 { core.enqueue(Self.group()) }
        var out = core.outgoing(now: 0)
        #expect(Self.groups(out) == [1, 2], "credit 2: the third waits")
        Self.sendAll(out, into: &core, now: 0)
        #expect(core.credit == 0)
        #expect(Self.groups(core.outgoing(now: 0)).isEmpty)

        _ = core.receive(Self.ack(1, .accepted, credit: 1), now: 0.1)
        out = core.outgoing(now: 0.1)
        #expect(Self.groups(out) == [3])
        Self.sendAll(out, into: &core, now: 0.1)
        // The same ack again frees no credit; group 2's first ack, a duplicate's, frees its slot.
        _ = core.receive(Self.ack(1, .accepted, credit: 1), now: 0.2)
        #expect(core.credit == 0)
        _ = core.receive(Self.ack(2, .duplicate, credit: 1), now: 0.2)
        _ = core.receive(Self.ack(2, .duplicate, credit: 1), now: 0.2)
        #expect(core.credit == 1)
        #expect(core.unackedSequences == [3])
        // A rejected group is done with: it frees its credit and is reported.
        let events = core.receive(Self.ack(3, .rejected, credit: 1), now: 0.3)
        guard case .groupRejected(let a)? = events.first else { Issue.record("rejection not reported: \(events)"); return }
        #expect(a.sequence == 3)
        #expect(core.credit == 2)
        #expect(core.unackedCount == 0)
        #expect(core.produced == 3)
    }

    @Test func aGroupIsNumberedAndStampedWithThisRun() throws {
        var core = try Self.welcomed()
        core.enqueue(Self.group())
        core.enqueue(Self.group(prompt: 2))
        guard case .group(let seq, let message)? = core.outgoing(now: 0).first(where: { $0.groupSequence != nil }) else {
            Issue.record("no group"); return
        }
        let decoded = try GroupSubmission(validating: try WireMessage.decode(try message.encode(), limits: .control))
        #expect(seq == 1)
        #expect(decoded.header.sequence == 1)
        #expect(decoded.header.actorRunID == 0xA1)
        #expect(decoded.tokenIDs == [52, 257])
    }

    // MARK: resend

    /// A LeaseRequest or a group whose answer was lost with a dropped connection, while the learner goes on
    /// heartbeating: the actor says Hello again after 10 s (a lease) or the run's lease timeout + 10 s (an
    /// ack) instead of waiting forever.
    @Test func anUnansweredLeaseRequestOrGroupLeadsToAFreshHello() throws {
        var hb = Troupe_V1_Heartbeat()
        hb.currentVersion = PolicyVersion(epoch: 7, step: 0).proto
        func heartbeats(_ core: inout ActorCore, until end: Double) -> ActorCore.JoinStep {
            var t = 1.0, step = ActorCore.JoinStep.joined
            while t <= end && step == .joined {
                _ = core.receive(WireMessage(.heartbeat(hb)), now: t)
                step = core.joinStep(now: t)
                t += 1
            }
            return step
        }
        var leasing = try Self.welcomed(credit: 2)
        let out = leasing.outgoing(now: 0)
        #expect(Self.leaseRequests(out) == [1])
        Self.sendAll(out, into: &leasing, now: 0)
        #expect(heartbeats(&leasing, until: 30) == .reconnectUnanswered(what: "a LeaseRequest", seconds: 11))
        #expect(!leasing.joined)

        var sending = try Self.welcomed(credit: 2)
        _ = sending.receive(WireMessage(.lease(Troupe_V1_Lease())), now: 0)
        sending.enqueue(Self.group())
        Self.sendAll(sending.outgoing(now: 0).filter { $0.groupSequence != nil }, into: &sending, now: 0)
        #expect(sending.unackedCount == 1)
        // The default run's leases last 60 s, and an Ack may wait that long for reward workers: 70 s then.
        #expect(heartbeats(&sending, until: 100) == .reconnectUnanswered(what: "a group sent", seconds: 71))
        // A run whose leases last 120 s may keep an Ack waiting for its reward workers that long: 130 s then.
        var patient = ActorCore(options: Self.options(), now: 0)
        _ = patient.joinStep(now: 0)
        patient.sent(.hello, now: 0)
        _ = patient.receive(try Self.welcome(configJSON: Self.configJSON(["learner.lease_timeout_s=120"])), now: 0)
        _ = patient.receive(WireMessage(.lease(Troupe_V1_Lease())), now: 0)
        patient.enqueue(Self.group())
        Self.sendAll(patient.outgoing(now: 0).filter { $0.groupSequence != nil }, into: &patient, now: 0)
        #expect(heartbeats(&patient, until: 200) == .reconnectUnanswered(what: "a group sent", seconds: 131))
        // An answered group never does.
        var answered = try Self.welcomed(credit: 2)
        answered.enqueue(Self.group())
        Self.sendAll(answered.outgoing(now: 0).filter { $0.groupSequence != nil }, into: &answered, now: 0)
        _ = answered.receive(Self.ack(1, .accepted, credit: 1), now: 0.5)
        #expect(heartbeats(&answered, until: 100) == .joined)
    }

    @Test func afterSilenceAReconnectResendsTheUnackedGroupsWithTheirSequenceNumbers() throws {
        var core = try Self.welcomed(credit: 4)
        for _ in 0..<3 { core.enqueue(Self.group()) }
        Self.sendAll(core.outgoing(now: 0), into: &core, now: 0)
        _ = core.receive(Self.ack(2, .accepted, credit: 1), now: 1)
        // A learner heartbeat keeps the conversation alive; then nothing for longer than learnerSilence.
        var hb = Troupe_V1_Heartbeat()
        hb.currentVersion = PolicyVersion(epoch: 7, step: 0).proto
        _ = core.receive(WireMessage(.heartbeat(hb)), now: 5)
        #expect(core.joinStep(now: 10) == .joined)
        #expect(core.joinStep(now: 11.5) == .reconnect(silentFor: 6.5))
        #expect(!core.joined)
        #expect(core.outgoing(now: 11.5).isEmpty)
        guard case .sayHello = core.joinStep(now: 11.5) else { Issue.record("no Hello after the reconnect"); return }
        core.sent(.hello, now: 11.5)

        let events = core.receive(try Self.welcome(epoch: 8, credit: 4), now: 12)
        guard case .welcomed(_, _, let resending)? = events.first else { Issue.record("not welcomed"); return }
        #expect(resending == 2)
        let out = core.outgoing(now: 12)
        #expect(Self.groups(out) == [1, 3], "the same sequence numbers, oldest first")
        Self.sendAll(out, into: &core, now: 12)
        // The learner had group 1 already: a duplicate's ack settles it and gives back its resend's slot.
        _ = core.receive(Self.ack(1, .duplicate, credit: 1, epoch: 8), now: 12.1)
        _ = core.receive(Self.ack(3, .accepted, credit: 1, epoch: 8), now: 12.1)
        #expect(core.unackedCount == 0)
        #expect(core.credit == 4)
        core.enqueue(Self.group())
        #expect(Self.groups(core.outgoing(now: 12.2)) == [4], "numbering goes on")
    }

    @Test func anAckForAGroupWaitingForItsResendDropsItFromTheResend() throws {
        var core = try Self.welcomed(credit: 2)
        core.enqueue(Self.group())
        core.enqueue(Self.group())
        Self.sendAll(core.outgoing(now: 0), into: &core, now: 0)
        _ = core.receive(try Self.welcome(credit: 2), now: 1)
        #expect(core.unsent == [1, 2])
        _ = core.receive(Self.ack(1, .accepted, credit: 1), now: 1.1)  // answering the first send
        #expect(Self.groups(core.outgoing(now: 1.1)) == [2])
    }

    // MARK: learner restarts

    @Test func aNewEpochAnnouncedMeansHelloAtOnce() throws {
        var core = try Self.welcomed()
        #expect(core.note(PolicyVersion(epoch: 7, step: 3)).isEmpty)
        #expect(core.newest == PolicyVersion(epoch: 7, step: 3))
        #expect(core.note(PolicyVersion(epoch: 0, step: 0)).isEmpty, "epoch 0: nothing announced yet")
        let events = core.note(PolicyVersion(epoch: 9, step: 0))
        guard case .learnerRestarted(let epoch)? = events.first else { Issue.record("restart not seen: \(events)"); return }
        #expect(epoch == 9)
        #expect(!core.joined)
        guard case .sayHello = core.joinStep(now: 0.1) else { Issue.record("no Hello at once"); return }
    }

    @Test func aNewEpochInAnAckMeansHelloToo() throws {
        var core = try Self.welcomed()
        core.enqueue(Self.group())
        Self.sendAll(core.outgoing(now: 0), into: &core, now: 0)
        let events = core.receive(Self.ack(1, .rejected, credit: 1, epoch: 9), now: 0.2)
        #expect(events.contains { if case .learnerRestarted = $0 { true } else { false } })
        #expect(!core.joined)
    }

    @Test func unknownActorMeansHelloAtOnceAndAnIdentityInUseWaits() throws {
        var core = try Self.welcomed()
        _ = core.receive(Self.reject(.unknownActor), now: 0.3)
        #expect(!core.joined)
        guard case .sayHello = core.joinStep(now: 0.3) else { Issue.record("no Hello after unknown_actor"); return }
        core.sent(.hello, now: 0.3)
        _ = core.receive(Self.reject(.configMismatch), now: 0.4)
        #expect(core.joinStep(now: 3.3) == .waiting, "an identity in use: wait 3 s before asking again")
        guard case .sayHello = core.joinStep(now: 3.5) else { Issue.record("never asks again"); return }
    }

    @Test func byeEndsTheConversationOnlyWhenTheRunIsFinished() throws {
        var core = try Self.welcomed()
        var bye = Troupe_V1_Bye()
        bye.reason = "learner stopping"
        guard case .learnerLeft? = core.receive(WireMessage(.bye(bye)), now: 1).first else { Issue.record("not left"); return }
        #expect(!core.joined)
        #expect(core.joinStep(now: 1.5) == .waiting)
        bye.reason = ByeReason.runFinished
        guard case .stop(let reason)? = core.receive(WireMessage(.bye(bye)), now: 2).first else { Issue.record("no stop"); return }
        #expect(reason == "learner: run finished")
        guard case .stop? = core.receive(Self.reject(.protocolMajor), now: 2).last else { Issue.record("protocol mismatch goes on"); return }
    }

    @Test func relayPeersFromTheLearnerAreDecodedAndABadKeyIsNamed() throws {
        let (a1, a2) = (try CurveKeyPair.generate().publicKey, try CurveKeyPair.generate().publicKey)
        var update = Troupe_V1_RelayPeers()
        update.publicKeys = ["a1": a1.z85, "a2": a2.z85]
        var waiting = ActorCore(options: Self.options(), now: 0)
        #expect(waiting.receive(WireMessage(.relayPeers(update)), now: 0).isEmpty, "before a Welcome there is no relay to tell")

        var core = try Self.welcomed()
        guard case .relayPeers(let peers)? = core.receive(WireMessage(.relayPeers(update)), now: 1).first else {
            Issue.record("no relay peers"); return
        }
        #expect(peers == ["a1": a1, "a2": a2])
        update.publicKeys["a3"] = "not a key"
        guard case .badRelayPeers(let problem)? = core.receive(WireMessage(.relayPeers(update)), now: 2).first else {
            Issue.record("a bad key was taken"); return
        }
        #expect(problem.hasPrefix("public_keys.a3: "))
        #expect(core.joined, "a RelayPeers changes nothing in the conversation")
    }

    // MARK: leases and weights

    @Test func aLeaseIsAskedForOnlyWhenNoneIsQueuedOrOutAndGroupsLeaveRoom() throws {
        var core = try Self.welcomed(credit: 1, leaseSize: 3)
        #expect(Self.leaseRequests(core.outgoing(now: 0)) == [3])
        core.sent(.leaseRequest(maxPrompts: 3), now: 0)
        #expect(Self.leaseRequests(core.outgoing(now: 0.01)).isEmpty, "one request out at a time")
        // An empty lease (nothing to do now): ask again after a pause.
        _ = core.receive(Self.lease(id: 0, prompts: []), now: 0.02)
        #expect(Self.leaseRequests(core.outgoing(now: 0.03)).isEmpty)
        #expect(Self.leaseRequests(core.outgoing(now: 0.08)) == [3])
        core.sent(.leaseRequest(maxPrompts: 3), now: 0.08)
        _ = core.receive(Self.lease(id: 5, prompts: [1, 2]), now: 0.1)
        #expect(Self.leaseRequests(core.outgoing(now: 0.1)).isEmpty, "a lease is queued")
        #expect(core.takeLease() == nil, "no weights yet")
        _ = core.weightsApplied(PolicyVersion(epoch: 7, step: 0))
        #expect(core.takeLease()?.leaseID == 5)
        // Unacked groups up to credit + 2 may pile up while sampling goes on; then no more leases.
        for _ in 0..<3 { core.enqueue(Self.group()) }
        #expect(Self.leaseRequests(core.outgoing(now: 0.2)).isEmpty)
        _ = core.receive(Self.ack(1, .accepted, credit: 1), now: 0.3)
        #expect(Self.leaseRequests(core.outgoing(now: 0.3)) == [3])
    }

    @Test func aLeaseWaitsForWeightsAtLeastItsMinimumVersion() throws {
        var core = try Self.welcomed()
        _ = core.receive(Self.lease(id: 1, prompts: [1], minStep: 2), now: 0)
        _ = core.weightsApplied(PolicyVersion(epoch: 7, step: 1))
        #expect(core.wantsWeights == false, "nothing newer announced")
        #expect(core.takeLease() == nil)
        _ = core.note(PolicyVersion(epoch: 7, step: 2))
        #expect(core.wantsWeights)
        _ = core.weightsApplied(PolicyVersion(epoch: 7, step: 2))
        #expect(core.takeLease()?.leaseID == 1)
    }

    @Test func ignoringNewWeightsKeepsTheFirstAndSamplesAnyLease() throws {
        var o = Self.options()
        o.ignoreNewWeights = true
        var core = ActorCore(options: o, now: 0)
        _ = core.receive(try Self.welcome(), now: 0)
        #expect(core.wantsWeights, "the first weights are fetched")
        _ = core.weightsApplied(PolicyVersion(epoch: 7, step: 0))
        _ = core.note(PolicyVersion(epoch: 7, step: 4))
        #expect(!core.wantsWeights)
        _ = core.receive(Self.lease(id: 1, prompts: [1], minStep: 4), now: 0)
        #expect(core.takeLease()?.leaseID == 1)
    }

    // MARK: the Welcome's configuration

    @Test(arguments: [
        ("not json", "config_json"),
        (#"{"model_files": {}}"#, "config"),
        (#"{"config": [], "model_files": {}}"#, "config"),
        (#"{"config": {}}"#, "model_files"),
        (#"{"config": {}, "model_files": {"config.json": 3}}"#, "model_files"),
        (#"{"config": {}, "model_files": {"tokenizer.json": "{}"}}"#, "model_files.config.json"),
        (#"{"config": {}, "model_files": {"config.json": "{}"}}"#, "model_files.config.json"),
    ])
    func aWelcomeWithoutAUsableConfigurationIsRefusedNamingTheKey(text: String, key: String) throws {
        #expect(throws: WelcomeConfigError.self) { try WelcomeConfig(decoding: text) }
        do { _ = try WelcomeConfig(decoding: text) } catch { #expect(error.key == key, "\(error)") }
    }

    @Test func aBadRunConfigurationKeyIsNamed() throws {
        var object = try JSONSerialization.jsonObject(with: Data(try Self.configJSON().utf8)) as! [String: Any]
        var config = object["config"] as! [String: Any]
        var sampling = config["sampling"] as! [String: Any]
        sampling["group_size"] = "four"
        config["sampling"] = sampling
        object["config"] = config
        let text = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        do {
            _ = try WelcomeConfig(decoding: text)
            Issue.record("accepted group_size \"four\"")
        } catch {
            #expect(error.key == "config.sampling.group_size")
            #expect(error.description.contains("config.sampling.group_size: expected an integer"))
        }
        // A file name that would leave the actor's temporary directory.
        var files = object["model_files"] as! [String: String]
        files["../x"] = "y"
        object["model_files"] = files
        object["config"] = try JSONSerialization.jsonObject(with: Data(try Self.configJSON().utf8)) as! [String: Any]
        let escaping = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        do { _ = try WelcomeConfig(decoding: escaping); Issue.record("accepted ../x") } catch { #expect(error.key == "model_files.../x") }
    }

    @Test func aBadWelcomeLeavesTheActorUnwelcomed() throws {
        var core = ActorCore(options: Self.options(), now: 0)
        let events = core.receive(try Self.welcome(configJSON: #"{"config": {}}"#), now: 0)
        guard case .badWelcome(let error)? = events.first else { Issue.record("accepted: \(events)"); return }
        #expect(error.key == "model_files")
        #expect(!core.joined)
        #expect(!core.everWelcomed)
    }

    @Test func theWelcomesConfigurationIsTheLearnersResolvedOne() throws {
        let config = try WelcomeConfig(decoding: try Self.configJSON(["actors.threads=3", "algorithm.loss.kind=reinforce", "sampling.temperature=0.7"]))
        #expect(config.run.actors.threads == 3)
        #expect(config.run.sampling.temperature == 0.7)
        let expected = try RunConfig.load(path: nil, overrides: ["sampling.group_size=4", "algorithm.loss.kind=reinforce"])
        #expect(config.run.algorithm == expected.algorithm)
        #expect(config.run.algorithm.loss.kind == .reinforce)
    }
}
