import Foundation
import Testing

/// Where the learner is killed: right after `step_done killAfterStep`, or (sampledWithThatStep) once a
/// group sampled with that step's weights has been accepted, so the crash catches it in flight.
struct ResumeCase: Sendable, CustomTestStringConvertible {
    let checkpointEvery: Int
    let batchGroups: Int
    let killAfterStep: Int
    let sampledWithThatStep: Bool
    var settings: [String] = []

    var testDescription: String {
        "checkpoint_every \(checkpointEvery), kill after step \(killAfterStep)" + (sampledWithThatStep ? " and a group sampled with it" : "")
    }

    /// Checkpoint every step: at most the step in progress is lost.
    static let everyStep = ResumeCase(checkpointEvery: 1, batchGroups: 2, killAfterStep: 2, sampledWithThatStep: false)
    /// Checkpoint every 2 steps, kill after step 3 with a group of step-3 weights accepted: step 3 is
    /// voided (its weights died with the learner) and trained again. Batches of 8 groups of 16 longer
    /// samples leave time to kill before step 4 (a checkpoint) completes: 7 more groups to sample.
    static let voidedStep = ResumeCase(checkpointEvery: 2, batchGroups: 8, killAfterStep: 3, sampledWithThatStep: true,
                                       settings: ["sampling.group_size=16", "sampling.max_new_tokens=16"])
}

extension RuntimeIntegrationTests {

    // 4 (and 5, 7): kill -9 of the learner mid-run, then `troupe learner --resume RUN` on the same ports.
    @Test(arguments: [ResumeCase.everyStep, ResumeCase.voidedStep])
    func learnerKilledAndResumedContinuesFromItsCheckpoint(_ c: ResumeCase) throws {
        let maxSteps = 10
        let run = try IntegrationRun("resume-every\(c.checkpointEvery)")
        defer { run.finish() }
        let first = try run.startLearner("learner", maxSteps: maxSteps,
                                         ["learner.checkpoint_every=\(c.checkpointEvery)", "learner.batch_groups=\(c.batchGroups)"] + c.settings)
        let a1 = try run.startActor("a1")
        let a2 = try run.startActor("a2")
        try run.require(run.waitUntil("step_done \(c.killAfterStep)", within: 40) { run.records.stepsDone.contains(c.killAfterStep) },
                        "the first learner did not reach step \(c.killAfterStep)")
        if c.sampledWithThatStep {
            try run.require(run.waitUntil("a group sampled with step \(c.killAfterStep)'s weights", within: 20) {
                run.records.accepted.contains { $0.versionStep == c.killAfterStep }
            }, "no group sampled with the weights of step \(c.killAfterStep)")
        }
        first.killHard()
        try run.require(first.exitStatus == .signal(9), "the learner was not killed: \(first.exitStatus?.description ?? "running")")

        let beforeRestart = run.records
        let lastStep = beforeRestart.stepsDone.last ?? 0
        let checkpointed = try #require(beforeRestart.latestCheckpointStep, "no checkpoints/latest after step \(lastStep)")
        let loggedCheckpoint = beforeRestart.of("checkpoint").compactMap { $0.int("step") }.last ?? 0
        run.check(checkpointed >= loggedCheckpoint && checkpointed <= lastStep,
                  "checkpoints/latest is step \(checkpointed); the log's last checkpoint record is \(loggedCheckpoint), its last step \(lastStep)")
        if c.sampledWithThatStep {
            try run.require(checkpointed < lastStep, "the kill after step \(lastStep) came too late to void a step (checkpoint \(checkpointed))")
        }
        let formedBeforeKill = beforeRestart.survivingSteps.map(\.step)
        let runIds = Dictionary(beforeRestart.of("actor_joined").compactMap { r in r.string("actor").map { ($0, r.string("actor_run") ?? "") } },
                                uniquingKeysWith: { _, last in last })

        // The killed learner could not remove its weight files; the resumed one sweeps them.
        let orphaned = (try? FileManager.default.contentsOfDirectory(atPath: run.sharedMemoryDirectory)) ?? []
        run.check(!orphaned.isEmpty, "the killed learner left no weight file in \(run.sharedMemoryDirectory): is shared memory in use?")

        // The frozen config.json carries the ports: the resumed learner binds the same ones.
        let second = try run.start("learner-resumed", ["learner", "--resume", run.runDirectory] + IntegrationRun.plaintext)
        try run.require(run.expectExit(second, .code(0), within: 60) == .code(0), "the resumed learner did not finish the run")
        run.expectExit(a1, .code(0), within: 10)
        run.expectExit(a2, .code(0), within: 10)

        let records = run.records
        let all = records.all
        let resumed = try #require(all.first { $0.type == "resumed" }, "no resumed record")
        run.check(resumed.int("from_step") == checkpointed, "resumed from_step \(resumed.int("from_step") ?? -1), checkpoints/latest was \(checkpointed)")
        let voided = formedBeforeKill.filter { $0 > checkpointed }
        run.check(resumed.ints("voided_steps") == voided, "resumed voided_steps \(resumed.ints("voided_steps")), batches formed after the checkpoint: \(voided)")
        if c.sampledWithThatStep { run.check(voided.contains(c.killAfterStep), "step \(c.killAfterStep) was not voided: \(voided)") }
        let firstAfter = all.first { $0.type == "step_done" && $0.seq > resumed.seq }?.int("step")
        run.check(firstAfter == checkpointed + 1, "the first step after the restart is \(firstAfter ?? -1), expected \(checkpointed + 1)")

        // The same actor processes (same actor runs) joined the new learner and contributed.
        for identity in ["a1", "a2"] {
            let rejoined = all.contains { $0.type == "actor_joined" && $0.seq > resumed.seq && $0.string("actor") == identity }
            run.check(rejoined, "\(identity) did not rejoin the resumed learner")
            let runId = runIds[identity] ?? "?"
            // Worked for the new learner: a group it sampled after rejoining reached it. (Accepted, or
            // rejected as stale: with max_staleness 0 a slower actor's group can lose the race for a
            // batch to the faster one's, which is synchronous training working as documented.)
            let prefix = "\(identity)#\(runId)#"
            let accepted = records.accepted.contains { $0.seq > resumed.seq && $0.key.hasPrefix(prefix) }
            let sampledForIt = all.contains { r in
                r.type == "group_rejected" && r.seq > resumed.seq && r.string("reason") == "stale"
                    && (r.string("group")?.hasPrefix(prefix) ?? false) && !(r.string("detail")?.contains("voided") ?? false)
            }
            run.check(accepted || sampledForIt, "\(identity) (actor run \(runId)) sent the resumed learner no group sampled for it")
        }
        run.check(records.stepsDone.last == maxSteps, "the resumed run ended at step \(records.stepsDone.last ?? -1), not \(maxSteps)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: run.sharedMemoryDirectory)) ?? ["?"]
        run.check(left.isEmpty, "weight files left after the resumed learner finished: \(left)")

        // No group trained twice, every step once, no group sampled with weights a resume voided.
        Self.expectSummary(run, steps: maxSteps, finished: true)
        for problem in records.historyProblems(maxStaleness: 0) { run.fail("run log history: \(problem)") }
        Self.expectAccountingIdentity(run)
        try Self.expectReplayVerifies(run, steps: maxSteps)
    }
}
