import TroupeTensor

extension RunConfig {
    /// The products `learner.backward_precision` asks for. A learner needs AVX-512 BF16 for `bf16`
    /// (`troupe run` and the benches check before they write anything); replay (`portableAllowed`)
    /// falls back to the portable kernel, which computes the same sums with the same roundings, slowly.
    package func backwardProducts(portableAllowed: Bool) throws -> BackwardProducts {
        switch learner.backwardPrecision {
        case "bf16":
            if BF16GEMM.hardwareAvailable { return .bf16(.hardware) }
            if portableAllowed { return .bf16(.portable) }
            throw RuntimeError.invalid(Self.bf16Unavailable)
        default:
            return .fp32
        }
    }

    package static let bf16Unavailable = "learner.backward_precision = \"bf16\" needs a CPU with AVX-512 BF16 (VDPBF16PS), "
        + "and this one has none (or TROUPE_BF16_HARDWARE=off says so): a new run can use \"fp32\"; a bf16 run goes on "
        + "only on a CPU with the instructions (troupe replay checks it on any)"
}
