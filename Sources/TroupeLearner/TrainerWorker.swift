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
}

extension BackgroundWorker where Job == TrainingJob, Outcome == TrainingOutcome {
    /// Trains each job's batch, then (when the job publishes) snapshots the new weights off the I/O thread.
    static func trainer(_ trainer: Trainer, sharedMemoryDirectory: String?) -> BackgroundWorker {
        BackgroundWorker(name: "trainer") { job in
            let t0 = monotonicSeconds()
            let result = Result { try trainer.step(job.groups, stepNumber: job.step) }
            let made = job.publishVersion.map {
                WeightSnapshot.make(model: trainer.model, version: $0, sharedMemoryDirectory: sharedMemoryDirectory)
            }
            return TrainingOutcome(job: job, result: result, snapshot: made?.snapshot, sharedMemoryProblem: made?.sharedMemoryProblem,
                                   seconds: monotonicSeconds() - t0)
        }
    }
}
