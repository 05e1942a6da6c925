import Foundation
import TroupeModel
import TroupeRL
import TroupeRuntime
import TroupeTensor

/// One optimizer step from a batch of groups, readable top to bottom:
/// advantages over the whole step → micro-batches of packed sequences → forward → per-token loss
/// coefficients (with the step's global denominators, so micro-batching never changes the gradient)
/// → backward → AdamW. Deterministic for a given binary, thread count, backward precision and batch.
package final class Trainer: @unchecked Sendable {
    package let model: LlamaModel
    package let options: AlgorithmOptions
    package let optimizer: AdamW
    package let microBatchTokens: Int
    /// The learning rate of each step (a schedule over the run); nil keeps the optimizer's own.
    package var learningRateForStep: ((Int) -> Double)?
    private let pass: TrainingPass
    /// Frozen initial weights, when the loss has a KL term against a reference.
    private let reference: TrainingPass?

    package struct StepResult: Sendable {
        package var step: Int
        package var weightsHash: String
        package var loss: LossParts
        package var metrics: [String: Double]
        package var skipped: Bool
        /// Why the update was skipped: a non-finite gradient, or a loss the batch's numbers overflow.
        package var skipReason: String?
    }

    package init(model: LlamaModel, options: AlgorithmOptions, optimizer: AdamWOptions, microBatchTokens: Int,
                 backwardProducts: BackwardProducts = .fp32) throws {
        self.model = model
        self.options = options
        self.optimizer = AdamW(parameterCount: model.layout.totalCount, options: optimizer, decayRanges: model.layout.decayRanges)
        self.microBatchTokens = microBatchTokens
        pass = TrainingPass(model: model)
        pass.backwardProducts = backwardProducts
        if options.kl.coefficient > 0 {
            let frozen = FloatBuffer(count: model.parameters.count, zeroed: false)
            frozen.copy(from: model.parameters)
            reference = TrainingPass(model: try LlamaModel(config: model.config, parameters: frozen))
        } else {
            reference = nil
        }
    }

    /// Trains on `groups` (in the given order) as step `stepNumber`, staleness measured against it.
    /// A batch whose numbers the loss cannot hold (an overflowing advantage, a non-finite log-prob or
    /// gradient) leaves the weights as they are: the step is skipped and counted, the run goes on.
    package func step(_ groups: [RolloutGroup], stepNumber: Int) throws -> StepResult {
        let gradients: Gradients
        do {
            gradients = try accumulateGradients(groups, stepNumber: stepNumber)
        } catch let error as AlgorithmError {
            optimizer.skip()
            return StepResult(step: stepNumber, weightsHash: model.weightsHash(), loss: LossParts(),
                              metrics: ["optimizer/skipped_steps": Double(optimizer.skippedSteps), "group_size": Double(groups.map(\.samples.count).max() ?? 0)],
                              skipped: true, skipReason: "\(error)")
        }

        // 4. The optimizer step (skipped and counted when the gradient is not finite).
        if let lr = learningRateForStep?(stepNumber) { optimizer.options.learningRate = lr }
        let optimizerStart = monotonicSeconds()
        let report = optimizer.update(params: model.parameters, grad: pass.gradients)
        var metrics = gradients.metrics
        metrics["time/optimizer"] = monotonicSeconds() - optimizerStart
        metrics["grad_norm"] = report.gradNorm.isFinite ? report.gradNorm : -1
        metrics["grad_clipped"] = report.clipped ? 1 : 0
        metrics["optimizer/skipped_steps"] = Double(optimizer.skippedSteps)
        metrics["learning_rate"] = optimizer.options.learningRate
        return StepResult(step: stepNumber, weightsHash: model.weightsHash(), loss: gradients.loss, metrics: metrics, skipped: report.skipped,
                          skipReason: report.skipped ? "the gradient is not finite" : nil)
    }

    private struct Gradients {
        var loss: LossParts
        var metrics: [String: Double]
    }

    /// Stages 1–3: the step's loss and its gradient in `pass.gradients`.
    private func accumulateGradients(_ groups: [RolloutGroup], stepNumber: Int) throws -> Gradients {
        let groupSize = groups.map(\.samples.count).max() ?? 0
        // 1–2. Advantages and the aggregation denominators, once for the whole step; the samples to train.
        let selection = try StepSelection.compute(groups: groups.map { g in
            StepSelection.Group(samples: g.samples.map { s in
                StepSelection.Sample(reward: s.reward, length: s.trainedTokenCount, finishReason: s.finishReason,
                                     meanEntropy: s.entropies.map(StepSelection.meanEntropy), scored: !s.tokens.isEmpty)
            }, staleness: max(0, stepNumber - 1 - Int(g.version.step)))
        }, options: options)
        let advantages = selection.advantages

        // The training sequences: prompt + completion, scored from the first completion token.
        struct Item { let sequence: [Int32]; let scoreFrom: Int; let temperature: Float; let sample: RolloutSample; let advantage: Double }
        let items = selection.trained.map { t in
            let g = groups[t.group], s = g.samples[t.sample]
            return Item(sequence: g.promptTokens + s.tokens, scoreFrom: g.promptTokens.count, temperature: s.temperature,
                        sample: s, advantage: t.advantage)
        }

        // 3. Micro-batches: forward, loss coefficients, backward.
        pass.zeroGradients()
        var loss = LossParts()
        var lossMetrics = LossMetrics()
        let needEntropy = options.entropy.coefficient > 0
        var forwardSeconds = 0.0, backwardSeconds = 0.0
        for range in ScoringBatch.microBatches(lengths: items.map(\.sequence.count), tokenBudget: microBatchTokens) {
            let micro = Array(items[range])
            let batch = ScoringBatch(sequences: micro.map(\.sequence), scoreFrom: micro.map(\.scoreFrom),
                                     temperatures: micro.map(\.temperature))
            let forwardStart = monotonicSeconds()
            let refLogp = try reference?.forward(batch).logprobs
            let scored = try pass.forward(batch, entropy: needEntropy)
            forwardSeconds += monotonicSeconds() - forwardStart
            let samples = micro.enumerated().map { i, item in
                LossSample(advantage: item.advantage, logp: scored.logprobs[i].map(Double.init),
                           behaviourLogp: item.sample.logprobs.map(Double.init),
                           refLogp: refLogp.map { $0[i].map(Double.init) },
                           entropy: scored.entropies.map { $0[i].map(Double.init) }, finishReason: item.sample.finishReason,
                           inserted: item.sample.inserted)
            }
            let plan = try StepLossPlan.compute(samples: samples, totals: advantages.totals, options: options)
            let backwardStart = monotonicSeconds()
            try pass.backward(dLogprobs: plan.samples.map { $0.logpCoefficients.map(Float.init) },
                              dEntropies: needEntropy ? plan.samples.map { ($0.entropyCoefficients ?? []).map(Float.init) } : nil)
            backwardSeconds += monotonicSeconds() - backwardStart
            loss = loss + plan.loss
            lossMetrics = lossMetrics + plan.metrics
        }

        guard loss.total.isFinite else { throw AlgorithmError(field: "loss", problem: "is \(loss.total)") }
        var metrics = advantages.metrics
        for (k, v) in lossMetrics.summary { metrics[k] = v }
        metrics["loss/total"] = loss.total
        metrics["loss/policy"] = loss.policy
        metrics["loss/kl"] = loss.kl
        metrics["loss/entropy"] = loss.entropy
        metrics["group_size"] = Double(groupSize)
        // Where the step's time goes (the forward pass scores the batch: log-probs, entropies).
        metrics["time/forward"] = forwardSeconds
        metrics["time/backward"] = backwardSeconds
        return Gradients(loss: loss, metrics: metrics)
    }
}
