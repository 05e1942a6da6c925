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

    /// `learner.backward_precision = bf16`: the linear layers' backward products on bfloat16 operands move
    /// the whole gradient by about bfloat16's rounding (2⁻⁸), not more; the hardware kernel gives the
    /// portable kernel's bits, so a run's replay on a CPU without AVX-512 BF16 finds its hashes.
    @Test func bf16BackwardStaysWithinBFloat16RoundingOfFloat32() throws {
        let config = ModelConfig(vocabularySize: 64, hiddenSize: 48, intermediateSize: 96, layers: 2, heads: 4, kvHeads: 2, maxPositions: 64)
        let model = try LlamaModel.random(config: config, seed: 5, std: 0.2)
        var rng = Xoshiro256(seed: 7)
        let sequences = (0..<6).map { s in (0..<(20 + 3 * s)).map { _ in Int32(rng.next() % 64) } }
        let batch = ScoringBatch(sequences: sequences, scoreFrom: sequences.map { $0.count / 2 }, temperatures: sequences.map { _ in 1 })
        let pass = TrainingPass(model: model)
        let forward = try pass.forward(batch)
        let dLogprobs = forward.logprobs.map { $0.map { _ in Float(rng.nextGaussian()) } }
        func gradients(_ products: BackwardProducts) throws -> [Float] {
            pass.backwardProducts = products
            #expect(try pass.forward(batch).logprobs == forward.logprobs, "the forward must not change with the backward's precision")
            pass.zeroGradients()
            try pass.backward(dLogprobs: dLogprobs)
            return pass.gradients.array
        }
        let exact = try gradients(.fp32), portable = try gradients(.bf16(.portable))
        func norm(_ v: [Float]) -> Double { sqrt(v.reduce(0) { $0 + Double($1) * Double($1) }) }
        let relative = norm(zip(portable, exact).map { $0 - $1 }) / norm(exact)
        #expect(relative > 0 && relative < 0x1p-6, "relative gradient error \(relative)")
        if BF16GEMM.hardwareAvailable {
            let hardware = try gradients(.bf16(.hardware))
            #expect(zip(hardware, portable).allSatisfy { $0.bitPattern == $1.bitPattern })
        }
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
