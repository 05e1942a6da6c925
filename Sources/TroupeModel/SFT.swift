import Foundation
import TroupeTensor

/// One supervised example: the model reads `prompt` and is trained to continue with `completion`
/// (which should end with the EOS token, so the model learns to stop).
public struct SFTExample: Sendable, Equatable {
    public var prompt: [Int32]
    public var completion: [Int32]

    public init(prompt: [Int32], completion: [Int32]) {
        self.prompt = prompt
        self.completion = completion
    }

    public var sequence: [Int32] { prompt + completion }
}

/// What one optimizer step did.
public struct SFTStepResult: Sendable {
    /// Mean negative log-likelihood per completion token over the whole step, before the update.
    public var loss: Double
    public var completionTokens: Int
    /// Prompt and completion tokens that went through the forward and backward.
    public var totalTokens: Int
    public var learningRate: Double
    /// Global gradient norm before clipping (NaN when non-finite).
    public var gradNorm: Double
    public var clipped: Bool
    /// The gradient was not finite, so AdamW left the weights alone.
    public var skipped: Bool
}

/// Supervised fine-tuning, loss on completion tokens only:
///
///     L = −(1/N) Σ_{examples} Σ_{t ∈ completion} log p(x_t | x_<t),   N = completion tokens in the step
///
/// Prompt tokens are context, never targets (`ScoringBatch.scoreFrom` = prompt length). The step's
/// examples are split into micro-batches of at most `microBatchTokens` tokens whose gradients add up
/// in `TrainingPass.gradients`; N is global over the step, so micro-batching does not change the
/// gradient. Then one AdamW update (decoupled weight decay on matrices only, global-norm clipping,
/// non-finite steps skipped).
public final class SFTTrainer: @unchecked Sendable {
    public let model: LlamaModel
    public let optimizer: AdamW
    public let microBatchTokens: Int
    private let pass: TrainingPass

    public init(model: LlamaModel, optimizer options: AdamWOptions, microBatchTokens: Int = 8192) throws {
        try options.validate()
        guard microBatchTokens > 0 else {
            throw ModelError.invalidArgument(name: "microBatchTokens", reason: "must be > 0 (got \(microBatchTokens))")
        }
        self.model = model
        optimizer = AdamW(parameterCount: model.layout.totalCount, options: options, decayRanges: model.layout.decayRanges)
        self.microBatchTokens = microBatchTokens
        pass = TrainingPass(model: model)
    }

    /// Checks that `example` can be trained on: a non-empty prompt (the first completion token needs
    /// context), a non-empty completion, ids inside the vocabulary, length within the position table.
    public func validate(_ example: SFTExample, name: String) throws {
        guard !example.prompt.isEmpty else { throw ModelError.emptyInput(what: "\(name): prompt has no tokens") }
        guard !example.completion.isEmpty else { throw ModelError.emptyInput(what: "\(name): completion has no tokens") }
        do {
            try model.validate(sequence: example.sequence, what: name)
        } catch let error as ModelError {
            throw ModelError.invalidArgument(name: name, reason: error.description)
        }
    }

    /// One optimizer step on `examples` at `learningRate` (the options' rate when nil).
    public func step(_ examples: [SFTExample], learningRate: Double? = nil) throws -> SFTStepResult {
        guard !examples.isEmpty else { throw ModelError.emptyInput(what: "SFT step has no examples") }
        for (i, e) in examples.enumerated() { try validate(e, name: "example \(i)") }
        if let rate = learningRate {
            guard rate.isFinite && rate >= 0 else {
                throw ModelError.invalidArgument(name: "learningRate", reason: "must be finite and ≥ 0 (got \(rate))")
            }
            optimizer.options.learningRate = rate
        }
        let completionTokens = examples.reduce(0) { $0 + $1.completion.count }
        let weight = -1 / Float(completionTokens)
        pass.zeroGradients()
        var nll = 0.0
        for micro in microBatches(examples) {
            let result = try pass.forward(batch(micro))
            for row in result.logprobs { for lp in row { nll -= Double(lp) } }
            try pass.backward(dLogprobs: result.logprobs.map { [Float](repeating: weight, count: $0.count) })
        }
        let report = optimizer.update(params: model.parameters, grad: pass.gradients)
        return SFTStepResult(loss: nll / Double(completionTokens), completionTokens: completionTokens,
                             totalTokens: examples.reduce(0) { $0 + $1.prompt.count + $1.completion.count },
                             learningRate: optimizer.options.learningRate, gradNorm: report.gradNorm,
                             clipped: report.clipped, skipped: report.skipped)
    }

    /// Mean NLL per completion token over `examples`, and how many completion tokens that is; no update.
    public func evaluate(_ examples: [SFTExample]) throws -> (loss: Double, completionTokens: Int) {
        guard !examples.isEmpty else { throw ModelError.emptyInput(what: "no evaluation examples") }
        for (i, e) in examples.enumerated() { try validate(e, name: "evaluation example \(i)") }
        var nll = 0.0, count = 0
        for micro in microBatches(examples) {
            let result = try pass.forward(batch(micro))
            for row in result.logprobs {
                for lp in row { nll -= Double(lp) }
                count += row.count
            }
        }
        return (nll / Double(count), count)
    }

    private func batch(_ examples: ArraySlice<SFTExample>) -> ScoringBatch {
        ScoringBatch(sequences: examples.map(\.sequence), scoreFrom: examples.map(\.prompt.count))
    }

    private func microBatches(_ examples: [SFTExample]) -> [ArraySlice<SFTExample>] {
        ScoringBatch.microBatches(lengths: examples.map { $0.prompt.count + $0.completion.count }, tokenBudget: microBatchTokens)
            .map { examples[$0] }
    }
}

/// Learning rate per step: linear warm-up from 0 to `peak` over `warmupSteps`, then constant or a
/// cosine decay to `peak · finalRatio` at `totalSteps` (Loshchilov & Hutter 2017, without restarts).
/// `troupe sft` and the RL learner (`optimizer.schedule`) both use it.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Decay: String, Sendable, CaseIterable { case constant, cosine }

    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var decay: Decay
    public var finalRatio: Double

    public init(peak: Double, warmupSteps: Int = 0, totalSteps: Int, decay: Decay = .cosine, finalRatio: Double = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.decay = decay
        self.finalRatio = finalRatio
    }

    /// The rate for step `step` (1-based: the first update is step 1).
    public func rate(step: Int) -> Double {
        if warmupSteps > 0 && step <= warmupSteps { return peak * Double(step) / Double(warmupSteps) }
        switch decay {
        case .constant:
            return peak
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let progress = min(1, max(0, Double(step - warmupSteps) / Double(span)))
            let floor = peak * finalRatio
            return floor + (peak - floor) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
