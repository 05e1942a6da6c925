import Foundation
import TroupeTensor

/// The order examples are visited in: a fresh seeded shuffle each epoch, batches taken consecutively
/// (a batch may span two epochs, so every step has a full batch).
public struct BatchOrder: Sendable {
    public let count: Int
    public let seed: UInt64
    /// Epochs started so far (1 during the first pass).
    public private(set) var epoch = 0
    private var order: [Int] = []
    private var position = 0

    public init(count: Int, seed: UInt64) {
        self.count = count
        self.seed = seed
    }

    /// The indices of the next `size` examples.
    public mutating func next(_ size: Int) -> [Int] {
        var batch: [Int] = []
        while batch.count < size {
            if position == order.count {
                var rng = Xoshiro256(mixing: [seed, UInt64(epoch), 0x5f7])
                order = Array(0..<count)
                order.shuffle(using: &rng)
                position = 0
                epoch += 1
            }
            batch.append(order[position])
            position += 1
        }
        return batch
    }
}

/// How long a supervised fine-tuning run is, and when it evaluates and saves.
public struct SFTPlan: Sendable, Equatable {
    /// Examples per step: at most the whole training set.
    public var batchSize: Int
    public var totalSteps: Int
    public var schedule: LearningRateSchedule
    /// Evaluate before the first step and every N steps (0: only at the end).
    public var evaluateEvery: Int
    /// Save every N steps (0: only at the end).
    public var saveEvery: Int
    /// Seeds the order examples are visited in.
    public var seed: UInt64

    /// `steps` steps, or `epochs` passes (default 1) over `trainExamples` in batches of `batchSize`, at a
    /// learning rate rising linearly to `peak` over `warmupSteps`, then `decay` until the last step.
    public init(trainExamples: Int, batchSize: Int, epochs: Int?, steps: Int?, peak: Double, warmupSteps: Int,
                decay: LearningRateSchedule.Decay, evaluateEvery: Int = 0, saveEvery: Int = 0, seed: UInt64) {
        self.batchSize = min(batchSize, trainExamples)
        totalSteps = steps ?? ((epochs ?? 1) * trainExamples + self.batchSize - 1) / self.batchSize
        schedule = LearningRateSchedule(peak: peak, warmupSteps: warmupSteps, totalSteps: totalSteps, decay: decay)
        self.evaluateEvery = evaluateEvery
        self.saveEvery = saveEvery
        self.seed = seed
    }
}

/// One finished optimizer step of an SFT run.
public struct SFTStepReport: Sendable {
    /// 1-based.
    public var step: Int
    public var result: SFTStepResult
    /// Time spent in the step (evaluations and saves excluded).
    public var seconds: Double
    /// The epoch the step's last example belongs to (1-based).
    public var epoch: Int
}

/// How an SFT run ended.
public struct SFTOutcome: Sendable {
    public var steps: Int
    /// Steps whose gradient was not finite, so the weights were left alone.
    public var skippedSteps: Int
    /// The loss of the last step.
    public var lastLoss: Double
    /// Wall time of the whole loop, evaluations and saves included.
    public var seconds: Double
}

/// The supervised fine-tuning loop: batches in `BatchOrder`, one `SFTTrainer.step` each at the plan's
/// learning rate, evaluations and saves at the plan's intervals and once more at the end. What an
/// evaluation measures and where a save goes is the caller's (`evaluate`, `save`).
public struct SFTLoop {
    public let plan: SFTPlan

    public init(plan: SFTPlan) {
        self.plan = plan
    }

    /// Trains `trainer` on `examples`. `evaluate(step)` is called only when `evaluates` (the caller has
    /// held-out examples): before step 1 when the plan evaluates periodically, every `evaluateEvery`
    /// steps, and after the last step; `save(step, lastLoss)` every `saveEvery` steps and at the end.
    public func run(_ trainer: SFTTrainer, on examples: [SFTExample], evaluates: Bool,
                    onStep: (SFTStepReport) -> Void,
                    evaluate: (_ step: Int) throws -> Void,
                    save: (_ step: Int, _ lastLoss: Double) throws -> Void) throws -> SFTOutcome {
        let total = plan.totalSteps
        var order = BatchOrder(count: examples.count, seed: plan.seed)
        var skipped = 0
        var lastLoss = Double.nan
        let began = monotonicSeconds()
        if plan.evaluateEvery > 0 && evaluates { try evaluate(0) }
        for step in 1...total {
            let batch = order.next(plan.batchSize).map { examples[$0] }
            let started = monotonicSeconds()
            let result = try trainer.step(batch, learningRate: plan.schedule.rate(step: step))
            let seconds = monotonicSeconds() - started
            if result.skipped { skipped += 1 }
            lastLoss = result.loss
            onStep(SFTStepReport(step: step, result: result, seconds: seconds, epoch: order.epoch))
            if evaluates && Self.isDue(step, every: plan.evaluateEvery, total: total) { try evaluate(step) }
            if Self.isDue(step, every: plan.saveEvery, total: total) { try save(step, lastLoss) }
        }
        if evaluates { try evaluate(total) }
        try save(total, lastLoss)
        return SFTOutcome(steps: total, skippedSteps: skipped, lastLoss: lastLoss, seconds: monotonicSeconds() - began)
    }

    /// A periodic evaluation or save before the last step (the last step always has its own).
    private static func isDue(_ step: Int, every interval: Int, total: Int) -> Bool {
        interval > 0 && step % interval == 0 && step < total
    }
}
