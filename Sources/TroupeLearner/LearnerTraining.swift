import Foundation
import TroupeJSON
import TroupeModel
import TroupeRL
import TroupeRuntime
import TroupeTensor

/// The learner's training side: forms batches from `LearnerCore`, runs each step on the trainer thread,
/// records the finished steps (`RunEvents`), has the trainer thread checkpoint between steps, and keeps
/// the trainer's time accounts.
/// `LearnerServer` owns the conversation and the endpoints; it calls `startStepIfReady` and
/// `recordFinishedSteps` from its I/O loop and publishes new weights in `onStepTrained`.
package final class LearnerTraining {
    let config: RunConfig
    let runDirectory: String
    let epoch: UInt64
    let core: LearnerCore
    let trainer: Trainer
    let worker: BackgroundWorker<TrainerTask, TrainerTaskOutcome>
    let runLog: RunLog
    let events: RunEvents
    let console: Console
    let clock: () -> Double
    let startedAt: Double
    /// Called after a step's record, before its checkpoint: publishes the step's weights, if any.
    var onStepTrained: (TrainingOutcome) throws -> Void = { _ in }
    private var idleSince: Double?
    private var idleSeconds = 0.0
    package private(set) var stalenessHistogram: [Int: Int] = [:]
    package private(set) var tokensTrained = 0
    /// The step of the last checkpoint this learner wrote (nil: none yet).
    private var lastCheckpointStep: Int?
    /// A checkpoint was handed to the trainer thread and its record is not written yet (the thread
    /// goes idle before the I/O loop records it, and no step may start in between).
    private var checkpointPending = false
    /// The trainer thread has a step or a checkpoint under way, or a checkpoint not recorded yet.
    package var isBusy: Bool { checkpointPending || worker.busy }
    /// Tests: each checkpoint's write waits for this semaphore first.
    package var checkpointHold: DispatchSemaphore?

    init(config: RunConfig, runDirectory: String, epoch: UInt64, core: LearnerCore, trainer: Trainer,
         worker: BackgroundWorker<TrainerTask, TrainerTaskOutcome>, runLog: RunLog, events: RunEvents, console: Console,
         clock: @escaping () -> Double, startedAt: Double) {
        self.config = config
        self.runDirectory = runDirectory
        self.epoch = epoch
        self.core = core
        self.trainer = trainer
        self.worker = worker
        self.runLog = runLog
        self.events = events
        self.console = console
        self.clock = clock
        self.startedAt = startedAt
    }

    /// The share of the learner's life the trainer spent waiting for a batch (`countingCurrentWait`:
    /// including the wait under way).
    package func idleRatio(now: Double, countingCurrentWait: Bool = true) -> Double {
        let current = countingCurrentWait ? (idleSince.map { now - $0 } ?? 0) : 0
        return (idleSeconds + current) / max(1e-9, now - startedAt)
    }

    /// Hands the next batch to the trainer thread when `LearnerCore` has one (logging the groups that
    /// aged past `max_staleness` while they waited).
    func startStepIfReady() throws {
        guard core.step < config.run.maxSteps, let taken = core.takeBatch() else {
            if idleSince == nil { idleSince = clock() }
            return
        }
        for g in taken.stale { try events.emit(.staleAtBatch(g)) }
        guard !taken.batch.isEmpty else { return }
        if let s = idleSince { idleSeconds += clock() - s; idleSince = nil }
        let step = core.step + 1
        for g in taken.batch { stalenessHistogram[step - 1 - Int(g.version.step), default: 0] += 1 }
        try events.emit(.batchFormed(step: step, groups: taken.batch))
        let publish = step % config.learner.publishEvery == 0 || step == config.run.maxSteps
        worker.submit(.train(TrainingJob(groups: taken.batch, step: step,
                                         publishVersion: publish ? PolicyVersion(epoch: epoch, step: UInt64(step)) : nil)))
    }

    /// Why the learner stops, when a step failed (`learner failed: …` in its Byes).
    private(set) var failure: String?

    /// Records the steps and checkpoints the trainer thread finished (`waiting`: until it is idle, so
    /// also the checkpoint a step's record hands it, calling `whileWaiting` about once a second).
    /// False when a step failed: the learner then stops. A checkpoint that could not be written throws.
    @discardableResult
    func recordFinishedSteps(waiting: Bool = false, whileWaiting: () -> Void = {}) throws -> Bool {
        var outcomes = waiting ? worker.waitForIdle(upTo: 1) : worker.poll()
        while true {
            for outcome in outcomes {
                switch outcome {
                case .trained(let trained): if try !record(trained) { return false }
                case .checkpointed(let written): try record(written)
                }
            }
            guard waiting, isBusy else { return true }
            whileWaiting()
            outcomes = worker.waitForIdle(upTo: 1)
        }
    }

    private func record(_ outcome: TrainingOutcome) throws -> Bool {
        let job = outcome.job
        switch outcome.result {
        case .failure(let error):
            console.error("training step \(job.step) failed: \(error)")
            failure = "training step \(job.step) failed: \(error)"
            try events.emit(.stepFailed(step: job.step, error: "\(error)"))
            return false
        case .success(let result):
            core.stepCompleted(trainedGroups: job.groups.count)
            let tokens = job.groups.reduce(0) { $0 + $1.tokenCount }
            tokensTrained += tokens
            var m = result.metrics
            m["time/train_step"] = outcome.seconds
            m["time/publish"] = outcome.publishSeconds
            m["tokens_trained"] = Double(tokens)
            m["tokens_per_s"] = Double(tokens) / max(outcome.seconds, 1e-9)
            m["trainer/idle_ratio"] = idleRatio(now: clock(), countingCurrentWait: false)
            m["off_policy/staleness_mean"] = Double(job.groups.reduce(0) { $0 + (job.step - 1 - Int($1.version.step)) }) / Double(max(1, job.groups.count))
            for (k, v) in Self.groupMetrics(job.groups) { m[k] = v }
            var fields: [String: String] = ["weights_hash": result.weightsHash]
            if let reason = result.skipReason {
                fields["skip_reason"] = reason
                console.warn("step \(job.step) skipped: the weights stay as they were", ["reason": .string(reason)])
            }
            // Pseudo-labels per prompt, so a monitor holding the answer key can compute label accuracy.
            fields["labels"] = job.groups.map { "\($0.promptId)=\(Self.majority($0) ?? "")" }.joined(separator: ",")
            fields["rewards"] = job.groups.map { g in "\(g.promptId)=" + g.samples.map { "\($0.answer ?? ""):\($0.reward)" }.joined(separator: ";") }.joined(separator: ",")
            try events.emit(.stepDone(step: job.step, weightsHash: result.weightsHash, loss: result.loss.total, skipped: result.skipped,
                                      groups: job.groups.count, metrics: m, fields: fields))
            try onStepTrained(outcome)
            if job.step % config.learner.checkpointEvery == 0 { try requestCheckpoint() }
            console.info("step \(job.step)", ["loss": .string(String(format: "%.4f", result.loss.total)),
                                              "reward": .string(String(format: "%.3f", m["reward/mean"] ?? .nan)),
                                              "majority_ratio": .string(String(format: "%.3f", m["ttrl/majority_ratio"] ?? .nan)),
                                              "secs": .string(String(format: "%.2f", outcome.seconds))])
            return true
        }
    }

    static func majority(_ g: RolloutGroup) -> String? {
        MajorityVote.vote(answers: g.samples.map(\.answer)).label
    }

    /// Label-free group statistics (TTRL's definitions from TroupeRL): reward, majority ratio, answer
    /// entropy, valid fraction, lengths, truncation.
    package static func groupMetrics(_ groups: [RolloutGroup]) -> [String: Double] {
        var sums: [String: Double] = [:]
        var rewards: [Double] = [], lengths: [Double] = []
        var truncated = 0
        var generated = 0, drawnAlone = 0
        for g in groups {
            if g.tokensGenerated > 0 {
                generated += Int(g.tokensGenerated)
                drawnAlone += g.tokensDrawnAlone
            }
            for (k, v) in MajorityVote.metrics(outcome: MajorityVote.vote(answers: g.samples.map(\.answer)), groundTruth: nil) {
                sums[k, default: 0] += v
            }
            for s in g.samples {
                rewards.append(s.reward)
                lengths.append(Double(s.tokens.count))
                if s.finishReason == .length { truncated += 1 }
            }
        }
        func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }
        var m: [String: Double] = ["reward/mean": mean(rewards), "response_length/mean": mean(lengths),
                                   "is_truncated": Double(truncated) / Double(max(1, rewards.count))]
        for (k, v) in sums { m["ttrl/\(k)"] = v / Double(max(1, groups.count)) }
        // Rollout tokens computed vs the parallel equivalent, over the groups whose actors reported it.
        if drawnAlone > 0 {
            m["rollout/tokens_generated"] = Double(generated)
            m["rollout/tokens_drawn_alone"] = Double(drawnAlone)
            m["rollout/generated_share"] = Double(generated) / Double(drawnAlone)
        }
        return m
    }

    /// Has the trainer thread write a checkpoint of the current step: parameters and AdamW moments, and
    /// the step's model directory `model/`. The thread is idle (a step is recorded after its training),
    /// and no step starts while it writes; the I/O loop goes on serving actors and the status file.
    private func requestCheckpoint() throws {
        // The batches the checkpoint was trained on are on disk before it is: a resume finds every one.
        try runLog.sync()
        let c = Checkpoint(step: core.step, logRecords: runLog.count, optimizerStep: trainer.optimizer.step,
                           skippedSteps: trainer.optimizer.skippedSteps, trainedGroups: core.accounting.trained, weightsHash: "")
        checkpointPending = true
        worker.submit(.checkpoint(CheckpointJob(checkpoint: c, runDirectory: runDirectory, baseModelPath: config.model.path,
                                                  hold: checkpointHold)))
    }

    private func record(_ outcome: CheckpointOutcome) throws {
        checkpointPending = false
        let c = try outcome.result.get()
        lastCheckpointStep = c.step
        try events.emit(.checkpoint(step: c.step, weightsHash: c.weightsHash))
        console.info("checkpoint", ["step": .integer(c.step), "secs": .string(String(format: "%.2f", outcome.seconds))])
    }

    /// Writes a checkpoint of the current step, unless the last one was of it, and waits for it: the
    /// learner's last act. Waits first for the step or checkpoint under way (`whileWaiting` as in
    /// `recordFinishedSteps`). Either way every record appended so far is durable when it returns.
    func checkpointNow(whileWaiting: () -> Void = {}) throws {
        _ = try recordFinishedSteps(waiting: true, whileWaiting: whileWaiting)
        guard lastCheckpointStep != core.step else { return try runLog.sync() }
        try requestCheckpoint()
        _ = try recordFinishedSteps(waiting: true, whileWaiting: whileWaiting)
    }
}
