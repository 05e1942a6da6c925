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

extension BackgroundWorker where Job == TrainingJob, Outcome == TrainingOutcome {
    /// Trains each job's batch, then (when the job publishes) snapshots the new weights off the I/O thread.
    static func trainer(_ trainer: Trainer, sharedMemoryDirectory: String?) -> BackgroundWorker {
        BackgroundWorker(name: "trainer") { job in
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
    }
}
