import Foundation
import TroupeModel

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
    let seconds: Double
}

extension BackgroundWorker where Job == TrainingJob, Outcome == TrainingOutcome {
    /// Trains each job's batch, then (when the job publishes) snapshots the new weights off the I/O thread.
    static func trainer(_ trainer: Trainer) -> BackgroundWorker {
        BackgroundWorker(name: "trainer") { job in
            let t0 = monotonicSeconds()
            let result = Result { try trainer.step(job.groups, stepNumber: job.step) }
            let snapshot = job.publishVersion.map { WeightSnapshot.make(model: trainer.model, version: $0) }
            return TrainingOutcome(job: job, result: result, snapshot: snapshot, seconds: monotonicSeconds() - t0)
        }
    }
}
