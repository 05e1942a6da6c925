import Foundation
import Testing
import TroupeModel
import TroupeTensor

/// Whole-model finite differences for what the fixtures do not cover: temperature-scaled log-probs,
/// the entropy term's gradient, and partial scoring (only completion tokens).
@Suite struct ModelGradientTests {
    @Test func logprobAndEntropyGradientsMatchFiniteDifferences() throws {
        let config = ModelConfig(modelType: "qwen2", vocabularySize: 31, hiddenSize: 16, intermediateSize: 24, layers: 2,
                                 heads: 4, kvHeads: 2, maxPositions: 32, attentionBias: true, tieWordEmbeddings: true)
        let model = try LlamaModel.random(config: config, seed: 3, std: 0.3)
        let batch = ScoringBatch(sequences: [[1, 5, 7, 9, 2, 3], [4, 4, 6]], scoreFrom: [3, 1], temperatures: [0.8, 1.3])
        let pass = TrainingPass(model: model)
        let base = try pass.forward(batch, entropy: true)
        var rng = Xoshiro256(seed: 11)
        let a = base.logprobs.map { $0.map { _ in Float(rng.nextGaussian()) } }
        let b = base.entropies!.map { $0.map { _ in Float(rng.nextGaussian()) } }
        pass.zeroGradients()
        try pass.backward(dLogprobs: a, dEntropies: b)
        let analytic = pass.gradients.array

        func loss() throws -> Double {
            let r = try TrainingPass(model: model).forward(batch, entropy: true)
            var total = 0.0
            for s in 0..<2 {
                for t in 0..<a[s].count { total += Double(a[s][t] * r.logprobs[s][t] + b[s][t] * r.entropies![s][t]) }
            }
            return total
        }
        let p = model.parameters.pointer
        let gradScale = analytic.map { abs(Double($0)) }.max()!
        var worst = 0.0
        for name in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.v_proj.bias",
                     "model.layers.0.mlp.up_proj.weight", "model.norm.weight", "model.layers.1.post_attention_layernorm.weight"] {
            let e = try #require(model.layout.entry(named: name))
            for k in stride(from: 0, to: e.count, by: max(1, e.count / 7)) {
                let i = e.offset + k
                let saved = p[i]
                let h: Float = 1e-2
                p[i] = saved + h
                let up = try loss()
                p[i] = saved - h
                let down = try loss()
                p[i] = saved
                let numeric = (up - down) / Double(2 * h)
                worst = max(worst, abs(numeric - Double(analytic[i])) / gradScale)
            }
        }
        #expect(worst < 5e-3, "worst relative gradient error \(worst)")
    }

    @Test func backwardRejectsMismatchedShapes() throws {
        let model = try LlamaModel.random(config: ModelConfig(vocabularySize: 11, hiddenSize: 8, intermediateSize: 8, layers: 1,
                                                              heads: 2, kvHeads: 1, maxPositions: 8), seed: 1)
        let pass = TrainingPass(model: model)
        #expect(throws: (any Error).self) { try pass.backward(dLogprobs: [[1]]) }
        _ = try pass.forward(ScoringBatch(sequences: [[1, 2, 3]]))
        #expect(throws: (any Error).self) { try pass.backward(dLogprobs: [[1]]) }
        #expect(throws: (any Error).self) { try pass.backward(dLogprobs: [[1, 1]], dEntropies: [[1, 1]]) }
        #expect(throws: ModelError.sequenceTooLong(length: 9, maxPositions: 8)) {
            try pass.forward(ScoringBatch(sequences: [Array(repeating: 1, count: 9)]))
        }
    }
}
