import TroupeRuntime
import TroupeTensor

extension RunConfig {
    /// The products `learner.backward_precision` asks for. A learner needs AVX-512 BF16 for `bf16`;
    /// replay (`portableAllowed`) falls back to the portable kernel, which gives the same bits, slowly.
    package func backwardProducts(portableAllowed: Bool) throws -> BackwardProducts {
        switch learner.backwardPrecision {
        case "bf16":
            if BF16GEMM.hardwareAvailable { return .bf16(.hardware) }
            if portableAllowed { return .bf16(.portable) }
            throw RuntimeError.invalid("learner.backward_precision = \"bf16\" needs a CPU with AVX-512 BF16 (VDPBF16PS), and this one has none; use \"fp32\"")
        default:
            return .fp32
        }
    }
}
