import Foundation
import TroupeModel
import TroupeTensor

/// The measurements behind `troupe bench model`: training and sampling throughput on the standard
/// shapes, and the machine's sgemm rate measured in the same run as the yardstick.
package enum ModelBenchmark {
    package static func median(_ xs: [Double]) -> Double { BenchStats.median(xs) }

    /// GFLOP/s of a square sgemm of side n (median of `repeats` after one warm-up).
    package static func sgemmRate(n: Int = 1024, repeats: Int = 5) -> Double {
        squareProductRate(n: n, repeats: repeats) { a, b, c in
            sgemm(transA: false, transB: false, m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, beta: 0, c: c, ldc: n)
        }
    }

    /// GFLOP/s of the same product with bfloat16 operands (`BF16GEMM`, the hardware kernel).
    package static func bf16Rate(n: Int = 1024, repeats: Int = 5) -> Double {
        squareProductRate(n: n, repeats: repeats) { a, b, c in
            BF16GEMM.gemm(transA: false, transB: false, m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, beta: 0, c: c, ldc: n)
        }
    }

    private static func squareProductRate(n: Int, repeats: Int,
                                          _ product: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        var times: [Double] = []
        for r in 0...repeats {
            let t0 = monotonicSeconds()
            product(a.pointer, b.pointer, c.pointer)
            if r > 0 { times.append(monotonicSeconds() - t0) }
        }
        return 2 * Double(n * n * n) / median(times) / 1e9
    }

    /// Matmul FLOPs of one training step (forward + backward = 3× forward) over `tokens` tokens whose
    /// sequences have `sequenceLength` tokens, every position scored.
    package static func trainingFlops(_ c: ModelConfig, tokens: Int, sequenceLength: Int) -> Double {
        let perLayer = 2.0 * Double(c.hiddenSize) * Double(c.qDim * 2 + c.kvDim * 2)
            + 2.0 * 3 * Double(c.hiddenSize * c.intermediateSize)
            + 2.0 * 2 * Double(sequenceLength) * Double(c.qDim)   // QKᵀ and PV at full square
        let head = 2.0 * Double(c.hiddenSize * c.vocabularySize)
        return 3 * Double(tokens) * (Double(c.layers) * perLayer + head)
    }

    package struct TrainingResult: Sendable {
        package let tokensPerSecond: Double
        package let secondsPerStep: [Double]
        /// Tokens per second of each measured step.
        package let rates: [Double]
        package let flopsPerStep: Double
    }

    /// A random-weight model of `shape`, `batch` random sequences of `length` tokens, and the
    /// d(loss)/d(log-prob) of every scored position (the mean negative log-likelihood's).
    private static func trainingBatch(_ shape: ModelShape, batch: Int, length: Int, seed: UInt64) throws
        -> (model: LlamaModel, sequences: [[Int32]], dLogprobs: [[Float]]) {
        let model = try LlamaModel.random(config: shape.config, seed: seed)
        var rng = Xoshiro256(seed: seed)
        let sequences = (0..<batch).map { _ in (0..<length).map { _ in Int32(rng.next() % UInt64(shape.config.vocabularySize)) } }
        let dLogprobs = (0..<batch).map { _ in [Float](repeating: -1 / Float(batch * (length - 1)), count: length - 1) }
        return (model, sequences, dLogprobs)
    }

    /// Forward + backward + AdamW on `batch` random sequences of `length` tokens.
    package static func training(_ shape: ModelShape, batch: Int = 8, length: Int = 256, steps: Int = 3, seed: UInt64 = 1,
                                 backwardProducts: BackwardProducts = .fp32) throws -> TrainingResult {
        let (model, seqs, grad) = try trainingBatch(shape, batch: batch, length: length, seed: seed)
        let pass = TrainingPass(model: model)
        pass.backwardProducts = backwardProducts
        let opt = AdamW(parameterCount: model.layout.totalCount, options: AdamWOptions(learningRate: 1e-5),
                        decayRanges: model.layout.decayRanges)
        var times: [Double] = []
        for s in 0...steps {
            let t0 = monotonicSeconds()
            pass.zeroGradients()
            _ = try pass.forward(ScoringBatch(sequences: seqs))
            try pass.backward(dLogprobs: grad)
            opt.update(params: model.parameters, grad: pass.gradients)
            if s > 0 { times.append(monotonicSeconds() - t0) }
        }
        let tokens = Double(batch * length)
        return TrainingResult(tokensPerSecond: tokens / median(times), secondsPerStep: times,
                              rates: times.map { tokens / $0 },
                              flopsPerStep: trainingFlops(shape.config, tokens: batch * length, sequenceLength: length))
    }

    /// ‖g_bf16 − g_fp32‖ / ‖g_fp32‖ over the whole gradient of one training batch (as `training` makes
    /// it), the bf16 backward on `kernel`.
    package static func bf16GradientError(_ shape: ModelShape, batch: Int = 8, length: Int = 256, seed: UInt64 = 1,
                                          kernel: BF16GEMM.Kernel = .hardware) throws -> Double {
        let (model, seqs, grad) = try trainingBatch(shape, batch: batch, length: length, seed: seed)
        let pass = TrainingPass(model: model)
        func gradients(_ products: BackwardProducts) throws -> [Float] {
            pass.backwardProducts = products
            pass.zeroGradients()
            _ = try pass.forward(ScoringBatch(sequences: seqs))
            try pass.backward(dLogprobs: grad)
            return pass.gradients.array
        }
        let exact = try gradients(.fp32), rounded = try gradients(.bf16(kernel))
        var difference = 0.0, norm = 0.0
        for (x, y) in zip(rounded, exact) {
            difference += Double(x - y) * Double(x - y)
            norm += Double(y) * Double(y)
        }
        return (difference / norm).squareRoot()
    }

    /// New tokens per second, one figure per measured repeat, sampling `batch` completions of
    /// `newTokens` tokens from distinct `promptLength`-token prompts (no stop token, so every
    /// completion runs to its length).
    package static func sampling(_ shape: ModelShape, batch: Int, promptLength: Int = 16, newTokens: Int = 128,
                                repeats: Int = 3, seed: UInt64 = 1) throws -> [Double] {
        let model = try LlamaModel.random(config: shape.config, seed: seed)
        let sampler = Sampler(model: model)
        var rng = Xoshiro256(seed: seed)
        let requests = (0..<batch).map { i in
            SampleRequest(prompt: (0..<promptLength).map { _ in Int32(rng.next() % UInt64(shape.config.vocabularySize)) },
                          seed: UInt64(i))
        }
        var rates: [Double] = []
        for r in 0...repeats {
            let t0 = monotonicSeconds()
            let out = try sampler.generate(requests, parameters: SamplingParameters(temperature: 1, maxNewTokens: newTokens))
            let produced = out.reduce(0) { $0 + $1.tokens.count }
            if r > 0 || repeats == 0 { rates.append(Double(produced) / (monotonicSeconds() - t0)) }
        }
        return rates
    }
}
