/// The peer systems' throughput on the benchmark shapes, measured on the project's reference machine
/// with 2 threads, and the targets `troupe bench model` checks against them.
extension ModelBenchmark {
    package enum Measure: String, Sendable, CaseIterable {
        /// Training tokens/s, batch 8 × 256, forward + backward + AdamW, against PyTorch 2.15 CPU.
        case training
        /// Sampling tokens/s, batch 8, 16-token prompts, 128 new tokens, against Hugging Face `generate`.
        case samplingBatch8 = "sampling_batch8"
        /// Sampling tokens/s, batch 1, against llama.cpp (f32).
        case samplingBatch1 = "sampling_batch1"

        package var peerName: String {
            switch self {
            case .training: return "PyTorch"
            case .samplingBatch8: return "HF generate"
            case .samplingBatch1: return "llama.cpp"
            }
        }
    }

    /// Peer tokens/s by measure and shape name (no figures exist for `tiny`).
    package static let peerTokensPerSecond: [Measure: [String: Double]] = [
        .training: ["small": 1045, "smollm2-135m": 185],
        .samplingBatch8: ["small": 527, "smollm2-135m": 100],
        .samplingBatch1: ["small": 429, "smollm2-135m": 67],
    ]

    /// Minimum ratio ours / peer. Training must match PyTorch with the OpenBLAS kernel the environment
    /// pins (OPENBLAS_CORETYPE set) and beat it 1.5× with the kernel OpenBLAS picks for the machine
    /// (PyTorch itself uses AVX-512 there).
    package static func targetRatio(_ measure: Measure, environmentKernel: Bool) -> Double {
        switch measure {
        case .training: return environmentKernel ? 1.0 : 1.5
        case .samplingBatch8: return 4.0
        case .samplingBatch1: return 0.8
        }
    }

    package struct Comparison: Sendable, Equatable {
        package let measure: Measure
        package let ours: Double
        package let peer: Double
        package let ratio: Double
        package let target: Double
        package var met: Bool { ratio >= target }
    }

    /// Ours against the peer figure for `shape`, or nil when the peers were not measured on it.
    package static func compare(_ measure: Measure, shape: String, tokensPerSecond ours: Double,
                               environmentKernel: Bool) -> Comparison? {
        guard let peer = peerTokensPerSecond[measure]?[shape] else { return nil }
        return Comparison(measure: measure, ours: ours, peer: peer, ratio: ours / peer,
                          target: targetRatio(measure, environmentKernel: environmentKernel))
    }
}
