import Foundation
import TroupeModel

/// Runs training steps on their own thread so the learner's I/O loop keeps answering actors
/// (acks, leases, weight chunks, heartbeats) while a step computes.
final class TrainerWorker: @unchecked Sendable {
    struct Job {
        let groups: [RolloutGroup]
        let step: Int
        let publishVersion: PolicyVersion?
    }
    struct Outcome {
        let job: Job
        let result: Result<Trainer.StepResult, Error>
        let snapshot: WeightSnapshot?
        let seconds: Double
    }

    private let trainer: Trainer
    private let condition = NSCondition()
    private var job: Job?
    private var outcome: Outcome?
    private var stopping = false
    private var thread: Thread?
    var busy: Bool { condition.lock(); defer { condition.unlock() }; return job != nil }

    init(trainer: Trainer) {
        self.trainer = trainer
        let t = Thread { [weak self] in self?.loop() }
        t.name = "trainer"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    func submit(_ j: Job) {
        condition.lock()
        precondition(job == nil, "trainer is busy")
        job = j
        condition.broadcast()
        condition.unlock()
    }

    /// The finished step, if any (non-blocking).
    func poll() -> Outcome? {
        condition.lock()
        defer { condition.unlock() }
        let o = outcome
        outcome = nil
        return o
    }

    /// Blocks until the step in progress (if any) finishes, returning its outcome.
    func waitForIdle() -> Outcome? {
        condition.lock()
        while job != nil { condition.wait() }
        let o = outcome
        outcome = nil
        condition.unlock()
        return o
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while job == nil && !stopping { condition.wait() }
            if stopping && job == nil { condition.unlock(); return }
            let j = job!
            condition.unlock()
            let t0 = monotonicSeconds()
            let result = Result { try trainer.step(j.groups, stepNumber: j.step) }
            let snapshot = j.publishVersion.map { WeightSnapshot.make(model: trainer.model, version: $0) }
            condition.lock()
            outcome = Outcome(job: j, result: result, snapshot: snapshot, seconds: monotonicSeconds() - t0)
            job = nil
            condition.broadcast()
            condition.unlock()
        }
    }
}
