import Foundation
import TroupeTensor

/// The measurements behind `troupe bench model`: training and sampling throughput on the standard
/// shapes, and the machine's sgemm rate measured in the same run as the yardstick.
public enum ModelBenchmark {
    public struct Shape: Sendable {
        public let name: String
        public let config: ModelConfig
    }

    public static let shapes: [Shape] = [
        Shape(name: "tiny", config: ModelConfig(vocabularySize: 256, hiddenSize: 128, intermediateSize: 352, layers: 4,
                                                heads: 4, kvHeads: 2, maxPositions: 512, tieWordEmbeddings: true)),
        Shape(name: "small", config: ModelConfig(vocabularySize: 4096, hiddenSize: 512, intermediateSize: 1408, layers: 8,
                                                 heads: 8, kvHeads: 4, maxPositions: 512, tieWordEmbeddings: false)),
        Shape(name: "smollm2-135m", config: ModelConfig(vocabularySize: 49152, hiddenSize: 576, intermediateSize: 1536, layers: 30,
                                                        heads: 9, kvHeads: 3, maxPositions: 512, tieWordEmbeddings: true)),
    ]

    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// GFLOP/s of a square sgemm of side n (median of `repeats` after one warm-up).
    public static func sgemmRate(n: Int = 1024, repeats: Int = 5) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        var times: [Double] = []
        for r in 0...repeats {
            let t0 = now()
            sgemm(transA: false, transB: false, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
            if r > 0 { times.append(now() - t0) }
        }
        return 2 * Double(n * n * n) / median(times) / 1e9
    }

    /// Matmul FLOPs of one training step (forward + backward = 3× forward) over `tokens` tokens whose
    /// sequences have `sequenceLength` tokens, every position scored.
    public static func trainingFlops(_ c: ModelConfig, tokens: Int, sequenceLength: Int) -> Double {
        let perLayer = 2.0 * Double(c.hiddenSize) * Double(c.qDim * 2 + c.kvDim * 2)
            + 2.0 * 3 * Double(c.hiddenSize * c.intermediateSize)
            + 2.0 * 2 * Double(sequenceLength) * Double(c.qDim)   // QKᵀ and PV at full square
        let head = 2.0 * Double(c.hiddenSize * c.vocabularySize)
        return 3 * Double(tokens) * (Double(c.layers) * perLayer + head)
    }

    public struct TrainingResult: Sendable {
        public let tokensPerSecond: Double
        public let secondsPerStep: [Double]
        public let flopsPerStep: Double
    }

    /// Forward + backward + AdamW on `batch` random sequences of `length` tokens.
    public static func training(_ shape: Shape, batch: Int = 8, length: Int = 256, steps: Int = 3, seed: UInt64 = 1) throws -> TrainingResult {
        let model = try LlamaModel.random(config: shape.config, seed: seed)
        let pass = TrainingPass(model: model)
        let opt = AdamW(parameterCount: model.layout.totalCount, options: AdamWOptions(learningRate: 1e-5),
                        decayRanges: model.layout.decayRanges)
        var rng = Xoshiro256(seed: seed)
        let seqs = (0..<batch).map { _ in (0..<length).map { _ in Int32(rng.next() % UInt64(shape.config.vocabularySize)) } }
        let grad = (0..<batch).map { _ in [Float](repeating: -1 / Float(batch * (length - 1)), count: length - 1) }
        var times: [Double] = []
        for s in 0...steps {
            let t0 = now()
            pass.zeroGradients()
            _ = try pass.forward(ScoringBatch(sequences: seqs))
            try pass.backward(dLogprobs: grad)
            opt.update(params: model.parameters, grad: pass.gradients)
            if s > 0 { times.append(now() - t0) }
        }
        let tokens = Double(batch * length)
        return TrainingResult(tokensPerSecond: tokens / median(times), secondsPerStep: times,
                              flopsPerStep: trainingFlops(shape.config, tokens: batch * length, sequenceLength: length))
    }

    /// New tokens per second sampling `batch` completions of `newTokens` tokens from distinct
    /// `promptLength`-token prompts (no stop token, so every completion runs to its length).
    public static func sampling(_ shape: Shape, batch: Int, promptLength: Int = 16, newTokens: Int = 128,
                                repeats: Int = 3, seed: UInt64 = 1) throws -> Double {
        let model = try LlamaModel.random(config: shape.config, seed: seed)
        let sampler = Sampler(model: model)
        var rng = Xoshiro256(seed: seed)
        let requests = (0..<batch).map { i in
            SampleRequest(prompt: (0..<promptLength).map { _ in Int32(rng.next() % UInt64(shape.config.vocabularySize)) },
                          seed: UInt64(i))
        }
        var rates: [Double] = []
        for r in 0...repeats {
            let t0 = now()
            let out = try sampler.generate(requests, parameters: SamplingParameters(temperature: 1, maxNewTokens: newTokens))
            let produced = out.reduce(0) { $0 + $1.tokens.count }
            if r > 0 || repeats == 0 { rates.append(Double(produced) / (now() - t0)) }
        }
        return median(rates)
    }
}
