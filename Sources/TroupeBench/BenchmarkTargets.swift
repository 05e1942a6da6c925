/// What `troupe bench model` compares against the peers, and the targets it checks. The peers'
/// figures come from a results file measured in the same sitting (`PeerResults`), never from here.
extension ModelBenchmark {
    package enum Measure: String, Sendable, CaseIterable {
        /// Training tokens/s, batch 8 × 256, forward + backward + AdamW, against PyTorch on CPU.
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

        /// The figure's key in the peer results file: `<measure>/<shape>`.
        package func peerKey(shape: String) -> String { "\(rawValue)/\(shape)" }
    }

    /// Minimum ratio ours / peer. Training must match PyTorch with the OpenBLAS kernel the environment
    /// pins (OPENBLAS_CORETYPE set) and beat it 1.5× with the kernel OpenBLAS picks for the machine.
    package static func targetRatio(_ measure: Measure, environmentKernel: Bool) -> Double {
        switch measure {
        case .training: return environmentKernel ? 1.0 : 1.5
        case .samplingBatch8: return 4.0
        case .samplingBatch1: return 0.8
        }
    }

    package struct Comparison: Sendable, Equatable {
        package let measure: Measure
        package let result: PeerComparison
        package let target: Double
        package var met: Bool? {
            if case .ratio(let r, _) = result { return r >= target }
            return nil
        }
    }

    /// Our repeats (tokens/s) against the peer's figure for `shape` from the same sitting.
    package static func compare(_ measure: Measure, shape: String, tokensPerSecond ours: [Double],
                               peers: (results: PeerResults?, problem: String?), maxSpread: Double, environmentKernel: Bool) -> Comparison {
        let result = PeerComparison.compare(ours: ours, peers: peers.results, unavailable: peers.problem ?? "no peer results",
                                            key: measure.peerKey(shape: shape), maxSpread: maxSpread)
        return Comparison(measure: measure, result: result,
                   target: targetRatio(measure, environmentKernel: environmentKernel))
    }
}
