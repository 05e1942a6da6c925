import Foundation
import TroupeModel
import TroupeRuntime
import TroupeTensor
import TroupeWeights

/// A training step for the learner's worker thread.
struct TrainingJob {
    let groups: [RolloutGroup]
    let step: Int
    let publishVersion: PolicyVersion?
}

struct TrainingOutcome {
    let job: TrainingJob
    let result: Result<Trainer.StepResult, Error>
    let snapshot: WeightSnapshot?
    /// Why the snapshot is not in shared memory when it should have been.
    let sharedMemoryProblem: String?
    let seconds: Double
    /// Of `seconds`, the time spent snapshotting the published weights (0 when the step publishes none).
    let publishSeconds: Double
}

/// A checkpoint of the weights and AdamW moments after a recorded step, with its counters (the weights'
/// hash is filled in on the worker thread), and the model directory it also writes.
struct CheckpointJob {
    var checkpoint: Checkpoint
    let runDirectory: String
    /// Where the tokenizer files the checkpoint's model directory copies come from.
    let baseModelPath: String
    /// Tests: the write waits for this first, to hold a checkpoint under way.
    let hold: DispatchSemaphore?
}

struct CheckpointOutcome {
    let result: Result<Checkpoint, Error>
    let seconds: Double
}

/// What the learner's worker thread does: it owns the model and optimizer between the I/O loop's
/// hand-offs, so a checkpoint is written there, between steps, while the I/O loop goes on serving.
enum TrainerTask {
    case train(TrainingJob)
    case checkpoint(CheckpointJob)
}

enum TrainerTaskOutcome {
    case trained(TrainingOutcome)
    case checkpointed(CheckpointOutcome)
}

extension BackgroundWorker where Job == TrainerTask, Outcome == TrainerTaskOutcome {
    /// Trains each job's batch, then (when the job publishes) snapshots the new weights off the I/O
    /// thread; writes the checkpoints it is given.
    static func trainer(_ trainer: Trainer, sharedMemoryDirectory: String?) -> BackgroundWorker {
        BackgroundWorker(name: "trainer") { task in
            switch task {
            case .train(let job): return .trained(train(job, trainer: trainer, sharedMemoryDirectory: sharedMemoryDirectory))
            case .checkpoint(let job): return .checkpointed(write(job, trainer: trainer))
            }
        }
    }

    private static func train(_ job: TrainingJob, trainer: Trainer, sharedMemoryDirectory: String?) -> TrainingOutcome {
        let t0 = monotonicSeconds()
        let result = Result { try trainer.step(job.groups, stepNumber: job.step) }
        let publishStart = monotonicSeconds()
        let made = job.publishVersion.map {
            WeightSnapshot.make(model: trainer.model, version: $0, sharedMemoryDirectory: sharedMemoryDirectory)
        }
        let end = monotonicSeconds()
        return TrainingOutcome(job: job, result: result, snapshot: made?.snapshot, sharedMemoryProblem: made?.sharedMemoryProblem,
                               seconds: end - t0, publishSeconds: made == nil ? 0 : end - publishStart)
    }

    private static func write(_ job: CheckpointJob, trainer: Trainer) -> CheckpointOutcome {
        _ = job.hold?.wait(timeout: .now() + 60)
        let t0 = monotonicSeconds()
        let result = Result { () throws -> Checkpoint in
            var c = job.checkpoint
            c.weightsHash = trainer.model.weightsHash()
            try Checkpoint.save(c, model: trainer.model, optimizer: trainer.optimizer, runDirectory: job.runDirectory)
            // The checkpoint's model directory, loadable by generate/eval.
            let directory = job.runDirectory + "/model"
            try ModelDirectory.save(trainer.model, to: directory)
            for f in ModelOutput.tokenizerFiles {
                let src = job.baseModelPath + "/" + f, dst = directory + "/" + f
                if FileManager.default.fileExists(atPath: src) && !FileManager.default.fileExists(atPath: dst) {
                    try? FileManager.default.copyItem(atPath: src, toPath: dst)
                }
            }
            return c
        }
        return CheckpointOutcome(result: result, seconds: monotonicSeconds() - t0)
    }
}
