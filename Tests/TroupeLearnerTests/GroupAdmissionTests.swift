import Foundation
import Testing
import TroupeLearner
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeWire

/// The learner's trust boundary for groups: every input that would stop, stall or skew a run is
/// refused before its ack with a counted reason, and the run goes on to train the next honest group.
@Suite(.serialized) struct GroupAdmissionTests {
    /// A group an actor should never send: how to make it, and what the learner must answer.
    struct Poison: CustomTestStringConvertible, Sendable {
        let name: String
        var overrides: [String] = []
        var tokens: [Int32] = [52, 53, 257]
        var samples = 4
        var logprob: Float = -0.7
        var reward: Double?
        var sequence: UInt64?
        var stepsAhead: UInt64 = 0
        var edit: @Sendable (inout Troupe_V1_GroupSubmit) -> Void = { _ in }
        let reason: Troupe_V1_GroupRejectReason
        /// The accounting key that counts it: a `rejected/…` reason, or a wire refusal.
        let counted: String
        var testDescription: String { name }
    }

    static let poisons: [Poison] = [
        Poison(name: "a token id outside the vocabulary", tokens: [52, 300, 257], reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a token id of 2³¹−1", tokens: [52, Int32.max, 257], reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "more tokens than the model's context", overrides: ["sampling.max_new_tokens=600"],
               tokens: [Int32](repeating: 52, count: 519) + [257], reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "more tokens than max_new_tokens", tokens: [Int32](repeating: 52, count: 9) + [257], reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "rewards of ±1.7e308", reward: 1.7e308, reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a reward of 1e300", reward: 1e300, reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a policy version 1000 steps ahead", stepsAhead: 1000, reason: .futureVersion, counted: "future_version"),
        Poison(name: "5,008 samples where the run samples 4", samples: 5008, reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a temperature of 1e-30", edit: { h in for i in h.samples.indices { h.samples[i].temperature = 1e-30 } },
               reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a temperature of 1e30", edit: { h in for i in h.samples.indices { h.samples[i].temperature = 1e30 } },
               reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a behaviour log-prob of −1e30", logprob: -1e30, reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a positive behaviour log-prob", logprob: 2, reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "a finish_reason of 77", edit: { h in h.samples[0].finishReason = .UNRECOGNIZED(77) },
               reason: .malformed, counted: "wire/invalid_field"),
        Poison(name: "finish_reason stop without a stop token", tokens: [52, 53, 54], edit: { h in
            for i in h.samples.indices { h.samples[i].finishReason = .stop }
        }, reason: .malformed, counted: "malformed"),
        Poison(name: "finish_reason length before the length limit", edit: { h in
            for i in h.samples.indices { h.samples[i].finishReason = .length }
        }, reason: .malformed, counted: "malformed"),
        Poison(name: "a stop token before the last token", tokens: [52, 257, 53, 257], reason: .malformed, counted: "malformed"),
        Poison(name: "a sample with zero tokens", edit: { h in h.samples[0].tokenCount = 0; h.samples[1].tokenCount += 3 },
               reason: .malformed, counted: "malformed"),
        Poison(name: "sequence number 0", sequence: 0, reason: .badSequence, counted: "wire/bad_sequence"),
        Poison(name: "a sequence number far beyond the actor's credit", sequence: 1 << 40, reason: .badSequence, counted: "wire/bad_sequence"),
        Poison(name: "a reward that contradicts the tokens", reward: 0.5, reason: .rewardMismatch, counted: "reward_mismatch"),
        Poison(name: "an answer that contradicts the tokens", edit: { h in h.samples[0].extractedAnswer = "7" },
               reason: .rewardMismatch, counted: "reward_mismatch"),
        Poison(name: "more tokens generated than the samples hold", edit: { h in h.tokensGenerated = 13 },
               reason: .outOfRange, counted: "out_of_range"),
        Poison(name: "fewer tokens generated than the longest sample holds", edit: { h in h.tokensGenerated = 2 },
               reason: .outOfRange, counted: "out_of_range"),
    ]

    @Test(arguments: poisons) func aPoisonedGroupIsRefusedCountedAndTheRunGoesOn(_ poison: Poison) throws {
        let h = try LearnerHarness(["learner.lease_size=2"] + poison.overrides)
        let a = h.connect("a")
        let lease = try h.join(a, prompts: 2)
        try #require(lease.prompts.count == 2)
        var version = PolicyVersion(lease.minVersion)
        version.step += poison.stepsAhead
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: version, samples: poison.samples,
                     tokens: poison.tokens, logprob: poison.logprob, reward: poison.reward, sequence: poison.sequence, edit: poison.edit)
        try h.turn()
        let ack = try #require(try a.acks().first)
        #expect(ack.status == .rejected)
        #expect(ack.rejectReason == poison.reason, "\(ack.text)")
        #expect(ack.creditGranted == 1, "a refused group frees its credit")
        #expect(try h.records("group_accepted").isEmpty, "never acknowledged as accepted")
        let accounting = h.learner.core.accounting
        if poison.counted.hasPrefix("wire/") {
            let stats = try #require(h.network.logs.events(kind: "rejection").last)
            #expect(stats.fields["reason"] == String(poison.counted.dropFirst(5)))
        } else {
            #expect(accounting.rejected[poison.counted] == 1)
        }

        // The run goes on: honest groups for both prompts train a step. A rejected group's prompt went
        // back to the queue; a message refused before it became a group leaves its lease as it was.
        try a.submit(prompt: lease.prompts[1].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
        try h.turn()
        #expect(try a.acks().map(\.status) == [.accepted])
        if poison.counted.hasPrefix("wire/") {
            try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
        } else {
            try a.askForLease()
            try h.turn()
            let again = try a.lease()
            try #require(again.prompts == [lease.prompts[0]])
            try a.submit(prompt: again.prompts[0].promptID, lease: again.leaseID, version: PolicyVersion(again.minVersion))
        }
        try h.turn()
        try h.trainPendingStep()
        let done = try h.records("step_done")
        #expect(done.count == 1)
        #expect(done.first?.body["skipped"]?.bool == false)
        #expect(h.learner.core.accounting.identityHolds)
    }

    @Test func theLearnerTrainsOnItsOwnRewardsNotTheReportedComponents() throws {
        let h = try LearnerHarness()
        let a = h.connect("a")
        let lease = try h.join(a)
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion)) { header in
            for i in header.samples.indices { header.samples[i].rewardComponents = ["base": 99] }
        }
        try h.turn()
        #expect(try a.acks().map(\.status) == [.accepted])
        let accepted = try #require(h.learner.core.pending.first)
        #expect(accepted.samples.allSatisfy { $0.components["base"] != 99 }, "components are the learner's")
    }
}

/// The core's numbering rules and the trainer's last line of defence.
@Suite struct IntakeGuardTests {
    @Test func sequenceNumbersStartAtOneAndStayWithinTheCreditWindow() {
        let core = LearnerCore(prompts: [PromptEntry(id: 1, text: "p", tokens: [1])], epoch: 1, batchGroups: 2, maxStaleness: 0,
                               leaseSize: 1, leaseTimeout: 30, heartbeatTimeout: 10, credit: 4)
        _ = core.hello(identity: "a", runId: 1, now: 0)
        #expect(core.sequenceProblem(GroupKey(actor: "a", actorRunId: 1, sequence: 0)) != nil)
        #expect(core.sequenceProblem(GroupKey(actor: "a", actorRunId: 1, sequence: 1)) == nil)
        #expect(core.sequenceProblem(GroupKey(actor: "a", actorRunId: 1, sequence: core.sequenceWindow)) == nil)
        #expect(core.sequenceProblem(GroupKey(actor: "a", actorRunId: 1, sequence: core.sequenceWindow + 1)) != nil)
        // A heartbeat cannot inflate what the actor run produced past the same window.
        core.touch(identity: "a", now: 1, stats: ["groups_produced": 1e300])
        #expect(core.accounting.producedByRun.values.first == core.sequenceWindow)
    }

    @Test func aStepWhoseLossOverflowsIsSkippedAndCountedNotFatal() throws {
        let directory = LearnerHarness.repositoryRoot + "/models/arith-base"
        let options = try AlgorithmOptions.resolve(RunConfig().algorithmJSON)
        let model = try ModelDirectory.load(directory)
        let trainer = try Trainer(model: model, options: options, optimizer: RunConfig().optimizer, microBatchTokens: 4096)
        let before = model.weightsHash()
        var groups = TrainerTests.groups()
        // Finite rewards whose sum overflows: the group's mean, and so every advantage, is not a number.
        for i in groups[0].samples.indices { groups[0].samples[i].reward = i < 2 ? 1.7e308 : -1.7e308 }
        let result = try trainer.step(groups, stepNumber: 1)
        #expect(result.skipped)
        #expect(result.skipReason != nil)
        #expect(model.weightsHash() == before)
        #expect(trainer.optimizer.skippedSteps == 1)
        // The next batch trains as usual.
        let next = try trainer.step(TrainerTests.groups(), stepNumber: 2)
        #expect(!next.skipped)
        #expect(model.weightsHash() != before)
    }
}

/// `--resume` is never stuck on a poisoned run log: what an older learner accepted but no step can
/// train is quarantined with a record, and the run goes on.
@Suite(.serialized) struct ResumeQuarantineTests {
    /// A learner that accepted one honest group, killed; returns the harness's directory and that group.
    func runWithOneGroup() throws -> (directory: String, group: RolloutGroup) {
        let h = try LearnerHarness()
        let a = h.connect("a")
        let lease = try h.join(a)
        try a.submit(prompt: lease.prompts[0].promptID, lease: lease.leaseID, version: PolicyVersion(lease.minVersion))
        try h.turn()
        let group = try #require(h.learner.core.pending.first)
        let directory = h.directory
        h.kill()
        return (directory, group)
    }

    @Test func aGroupThatFailsTodaysChecksIsQuarantinedOnResume() throws {
        let (directory, honest) = try runWithOneGroup()
        // What an older learner wrote: a group with a token id outside the vocabulary, accepted.
        var poisoned = honest
        poisoned.key.sequence = 2
        poisoned.promptId = honest.promptId + 1
        poisoned.samples[0].tokens[0] = 300
        try RunLog(path: directory + "/run.log").append(.groupAccepted(poisoned))

        let resumed = try LearnerHarness(directory: directory)
        let quarantine = try resumed.records("group_rejected").filter { $0.body["reason"]?.string == "quarantined" }
        #expect(quarantine.map { $0.body["group"]?.string } == [poisoned.key.description])
        #expect((quarantine.first?.body["detail"]?.string)?.contains("outside the vocabulary") == true)
        #expect(resumed.learner.core.pending.map(\.key) == [honest.key])
        #expect(resumed.learner.core.accounting.rejected["quarantined"] == 1)

        // A second resume does not quarantine it again: the record settled it.
        resumed.kill()
        let again = try LearnerHarness(directory: directory)
        #expect(try again.records("group_rejected").filter { $0.body["reason"]?.string == "quarantined" }.count == 1)
        #expect(again.learner.core.pending.map(\.key) == [honest.key])
    }

    @Test func theGroupsOfAFailedStepAreQuarantinedSoTheRunCanGoOn() throws {
        let (directory, honest) = try runWithOneGroup()
        let log = try RunLog(path: directory + "/run.log")
        try log.append("batch_formed", ["step": .integer(1), "groups": .array([.string(honest.key.description)])])
        try log.append("step_failed", ["step": .integer(1), "error": .string("sequenceTooLong")])

        let resumed = try LearnerHarness(directory: directory)
        let quarantine = try resumed.records("group_rejected").filter { $0.body["reason"]?.string == "quarantined" }
        #expect(quarantine.count == 1)
        #expect((quarantine.first?.body["detail"]?.string)?.contains("step 1 failed") == true)
        #expect(resumed.learner.core.pending.isEmpty)
        #expect(resumed.learner.core.step == 0)
    }
}

/// A multi-temperature run (`sampling.temperatures`) admits sample j only at temperatures[j mod n].
@Suite struct MultiTemperatureAdmissionTests {
    static func group(_ temperatures: [Float]) -> RolloutGroup {
        RolloutGroup(key: GroupKey(actor: "a", actorRunId: 1, sequence: 1), promptId: 0, leaseId: 1, version: PolicyVersion(epoch: 1, step: 0),
                     promptTokens: [1, 2], samples: temperatures.map {
                         RolloutSample(tokens: [3], logprobs: [-1], finishReason: .length, temperature: $0, answer: nil, reward: 0)
                     })
    }

    @Test func sampleJIsAdmittedOnlyAtItsScheduledTemperature() throws {
        let config = try RunConfig.parse(.object([:]), overrides: ["sampling.group_size=4", "sampling.temperatures=[0.6,1.2]"])
        let limits = GroupAdmission.Limits(config: config, model: try ModelDirectory.load(LearnerHarness.repositoryRoot + "/models/arith-base").config)
        #expect(limits.temperatures == [0.6, 1.2])
        let admission = GroupAdmission(limits: limits, scorer: nil, stopSequences: [])
        #expect((try? admission.review(Self.group([0.6, 1.2, 0.6, 1.2])).get()) != nil)
        guard case let .failure(refusal) = admission.review(Self.group([1.2, 0.6, 1.2, 0.6])) else {
            Issue.record("swapped temperatures were admitted")
            return
        }
        #expect(refusal.reason == .outOfRange)
        #expect(refusal.detail.contains("sample 0: temperature 1.2") && refusal.detail.contains("at 0.6"), "\(refusal.detail)")
        #expect(refusal.actorAtFault)
    }

    /// Reward workers answering for the wrong number of samples: the group is refused, but not held
    /// against the actor that sampled it.
    @Test func aGroupTheWorkersMiscountedIsRefusedWithoutBlamingTheActor() throws {
        let config = try RunConfig.parse(.object([:]), overrides: ["sampling.group_size=4", "sampling.temperatures=[0.6,1.2]"])
        let limits = GroupAdmission.Limits(config: config, model: try ModelDirectory.load(LearnerHarness.repositoryRoot + "/models/arith-base").config)
        let admission = GroupAdmission(limits: limits, scorer: nil, stopSequences: [])
        guard case let .failure(workers) = admission.review(Self.group([0.6, 1.2, 0.6, 1.2]), workerScores: [], fallback: nil) else {
            Issue.record("a group without its worker scores was admitted")
            return
        }
        #expect(workers.reason == .malformed && !workers.actorAtFault, "\(workers.detail)")
    }
}

/// A serial run (`sampling.shape = serial`) admits its exits earliest first, each the path's prefix,
/// the run's exit phrase and an answer, then the path; anything else is refused naming the sample.
@Suite struct SerialAdmissionTests {
    static let phrase: [Int32] = [90, 91]

    static func sample(_ tokens: [Int32], inserted: Range<Int>? = nil) -> RolloutSample {
        RolloutSample(tokens: tokens, logprobs: tokens.indices.map { inserted?.contains($0) == true ? 0 : -1 }, finishReason: .length,
                      temperature: 1, answer: nil, reward: 0, inserted: inserted)
    }

    static func group(_ samples: [RolloutSample]) -> RolloutGroup {
        RolloutGroup(key: GroupKey(actor: "a", actorRunId: 1, sequence: 1), promptId: 0, leaseId: 1, version: PolicyVersion(epoch: 1, step: 0),
                     promptTokens: [1, 2], samples: samples)
    }

    static func admission() throws -> GroupAdmission {
        let config = try RunConfig.parse(.object([:]), overrides: ["sampling.group_size=3", "sampling.shape=serial", "task.label_free=false",
                                                                   "sampling.serial_exit_phrase=stop now:", "sampling.max_new_tokens=6"])
        var limits = GroupAdmission.Limits(config: config, model: try ModelDirectory.load(LearnerHarness.repositoryRoot + "/models/arith-base").config)
        limits.serial = .init(phrase: phrase, answerTokens: 3)
        return GroupAdmission(limits: limits, scorer: nil, stopSequences: [])
    }

    @Test func exitsThenThePathAreAdmittedAndMisshapenSerialGroupsAreNot() throws {
        let admission = try Self.admission()
        let path = Self.sample([40, 41, 42, 43, 44, 45])
        let good = Self.group([Self.sample([40, 90, 91, 7], inserted: 1..<3), Self.sample([40, 41, 42, 90, 91, 7, 8, 9], inserted: 3..<5), path])
        #expect((try? admission.review(good).get()) != nil)
        // The path and the answers drawn once: 6 + 1 + 3 of the 14 tokens the samples would draw alone.
        var reported = good
        reported.tokensGenerated = 10
        #expect((try? admission.review(reported).get()) != nil)
        let metrics = LearnerTraining.groupMetrics([reported, good])
        #expect(metrics["rollout/tokens_generated"] == 10 && metrics["rollout/tokens_drawn_alone"] == 14, "the unreported group stays out")
        #expect(abs((metrics["rollout/generated_share"] ?? 0) - 10.0 / 14) < 1e-12)
        #expect(LearnerTraining.groupMetrics([good])["rollout/generated_share"] == nil)
        let bad: [(String, RolloutGroup)] = [
            ("exits out of order", Self.group([good.samples[1], good.samples[0], path])),
            ("a prefix that is not the path's", Self.group([Self.sample([49, 90, 91, 7], inserted: 1..<3), good.samples[1], path])),
            ("another phrase", Self.group([Self.sample([40, 90, 92, 7], inserted: 1..<3), good.samples[1], path])),
            ("no answer", Self.group([Self.sample([40, 90, 91], inserted: 1..<3), good.samples[1], path])),
            ("too long an answer", Self.group([Self.sample([40, 90, 91, 7, 7, 7, 7], inserted: 1..<3), good.samples[1], path])),
            ("an exit without its phrase", Self.group([Self.sample([40, 7]), good.samples[1], path])),
            ("a path with inserted tokens", Self.group([good.samples[0], good.samples[1], Self.sample([40, 90, 91, 7], inserted: 1..<3)])),
        ]
        for (name, group) in bad {
            guard case let .failure(refusal) = admission.review(group) else { Issue.record("\(name) was admitted"); continue }
            #expect(refusal.reason == .malformed || refusal.reason == .outOfRange, "\(name): \(refusal.detail)")
        }
        // A span past its sample's end, with the tokens drawn reported: refused before anything counts
        // the tokens it would not have drawn (a negative count once trapped the learner), in both kinds of run.
        var beyond = Self.group([Self.sample([40, 90, 91, 7], inserted: 1..<3), Self.sample([40, 90, 91, 7, 8], inserted: 1..<90), path])
        beyond.tokensGenerated = 10
        var independentLimits = admission.limits
        independentLimits.serial = nil
        for run in [admission, GroupAdmission(limits: independentLimits, scorer: nil, stopSequences: [])] {
            guard case let .failure(refusal) = run.review(beyond) else { Issue.record("a span past the sample was admitted"); continue }
            #expect(refusal.reason == .malformed && refusal.detail == "sample 1: inserted tokens 1..<90 of 5", "\(refusal.detail)")
        }
        // An independent run refuses inserted tokens outright.
        var independent = admission.limits
        independent.serial = nil
        guard case .failure = GroupAdmission(limits: independent, scorer: nil, stopSequences: []).review(good) else {
            Issue.record("inserted tokens were admitted in an independent run")
            return
        }
    }
}

/// A tree run (`sampling.shape = tree`) admits groups the tree sampler made and refuses one whose
/// leaves do not share their path's prefix at the fork points its entropies give.
@Suite struct TreeAdmissionTests {
    /// Two roots, one fork each, two branches: 6 leaves from the arith model, as an actor sends them.
    static func sampledTree() throws -> (GroupAdmission, RolloutGroup) {
        let directory = LearnerHarness.repositoryRoot + "/models/arith-base"
        let config = try RunConfig.parse(.object([:]), overrides: ["sampling.group_size=6", "sampling.shape=tree", "sampling.tree_forks=1",
                                                                   "sampling.tree_branching=2", "sampling.max_new_tokens=8"])
        let model = try ModelDirectory.load(directory)
        let limits = GroupAdmission.Limits(config: config, model: model.config)
        #expect(limits.tree == .init(forks: 1, branching: 2) && limits.entropiesRequired)
        let prompt: [Int32] = Array("Q: 12+34=?\nA:".utf8).map(Int32.init)
        let tree = try Sampler(model: model).generateTree([TreeRequest(prompt: prompt, seed: 7, roots: 2, forks: 1, branching: 2)],
                                                          parameters: SamplingParameters(temperature: 1.5, maxNewTokens: 8, computeEntropy: true))[0]
        let samples = tree.leaves.map { leaf in
            RolloutSample(tokens: leaf.completion.tokens, logprobs: leaf.completion.logprobs, entropies: leaf.completion.entropies,
                          finishReason: leaf.completion.finishReason == .stop ? .stop : .length, temperature: 1.5, answer: nil, reward: 0)
        }
        var group = RolloutGroup(key: GroupKey(actor: "a", actorRunId: 1, sequence: 1), promptId: 0, leaseId: 1,
                                 version: PolicyVersion(epoch: 1, step: 0), promptTokens: prompt, samples: samples)
        group.tokensGenerated = UInt32(tree.leaves.reduce(0) { $0 + $1.completion.tokens.count - ($1.fork ?? 0) })
        var withTemperature = limits
        withTemperature.temperatures = [1.5]
        return (GroupAdmission(limits: withTemperature, scorer: nil, stopSequences: []), group)
    }

    @Test func aSampledTreeIsAdmittedAndMisshapenTreesAreNot() throws {
        let (admission, good) = try Self.sampledTree()
        #expect((try? admission.review(good).get()) != nil, "\(admission.review(good))")
        let fork = TreeRequest.forkPoints(entropies: good.samples[0].entropies!, forks: 1)[0]
        try #require(fork > 0, "the first root forks after its first token (seed 7)")
        func changed(_ change: (inout RolloutGroup) -> Void) -> RolloutGroup {
            var g = good
            change(&g)
            return g
        }
        let bad: [(String, RolloutGroup)] = [
            ("a branch whose prefix is not its path's", changed { $0.samples[1].tokens[fork - 1] ^= 1 }),
            ("a shared log-prob computed again", changed { $0.samples[2].logprobs[0] = $0.samples[2].logprobs[0].nextDown }),
            ("a shared entropy computed again", changed { $0.samples[1].entropies![fork - 1] = $0.samples[1].entropies![fork - 1].nextUp }),
            ("a branch without a token of its own", changed { g in
                g.samples[2] = RolloutSample(tokens: Array(g.samples[2].tokens[..<fork]), logprobs: Array(g.samples[2].logprobs[..<fork]),
                                             entropies: Array(g.samples[2].entropies![..<fork]), finishReason: .stop, temperature: 1.5,
                                             answer: nil, reward: 0)
                g.tokensGenerated = 0
            }),
            ("a path without entropies", changed { $0.samples[3].entropies = nil }),
            ("a token count the tree did not compute", changed { $0.tokensGenerated += 1 }),
        ]
        for (name, group) in bad {
            guard case let .failure(refusal) = admission.review(group) else { Issue.record("\(name) was admitted"); continue }
            #expect(refusal.reason == .malformed || refusal.reason == .outOfRange, "\(name): \(refusal.detail)")
        }
    }
}
