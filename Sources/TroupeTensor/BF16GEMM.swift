import CBF16
import Foundation

/// C = op(A)·op(B) + beta·C with op(A) and op(B) rounded to bfloat16 (nearest, ties to even) and every
/// sum kept in float: the kind of product OpenBLAS's `sbgemm` offers, which Debian's OpenBLAS does not
/// build. The blocking follows the usual GEMM scheme (packed panels of op(B) shared by both threads,
/// blocks of op(A) rows packed by the thread that computes them); the micro-kernels are C (`CBF16`).
///
/// Each element's sum runs over k in the same order whichever thread computes it and however m is
/// split, so a result does not depend on the thread count or on which chunk ran where.
public enum BF16GEMM {
    /// Where products run: `hardware` is VDPBF16PS (AVX-512 BF16); `portable` computes the same
    /// sums with the same roundings in plain C (one fused multiply-add per product), far slower: for
    /// replay and tests on any CPU.
    public enum Kernel: Sendable { case hardware, portable }

    /// Whether this CPU (and its OS) runs AVX-512 BF16, and `TROUPE_BF16_HARDWARE` is not `off` (a
    /// diagnostic: a machine with it can then show what one without it does).
    public static let hardwareAvailable: Bool = {
        if let setting = getenv("TROUPE_BF16_HARDWARE"), String(cString: setting) == "off" { return false }
        return troupe_bf16_hardware() != 0
    }()

    /// The depth of k each sum runs over before it is added to C (the blocks of the definition).
    public static let blockDepth = Int(TROUPE_BF16_KC)

    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, kernel: Kernel = .hardware) {
        precondition(kernel == .portable || hardwareAvailable, "BF16GEMM: this CPU has no AVX-512 BF16")
        if m == 0 || n == 0 { return }
        if beta != 1 {
            for row in 0..<m {
                if beta == 0 { (c + row * ldc).update(repeating: 0, count: n) } else { Vector.scale(c + row * ldc, by: beta, count: n) }
            }
        }
        if k == 0 { return }
        let hardware: Int32 = kernel == .hardware ? 1 : 0
        let (nr, kcMax, mcMax, ncMax) = (Int(TROUPE_BF16_NR), Int(TROUPE_BF16_KC), Int(TROUPE_BF16_MC), Int(TROUPE_BF16_NC))
        let split = m * n * k >= GEMMRowSplit.minimum
        let (ta, tb): (Int32, Int32) = (transA ? 1 : 0, transB ? 1 : 0)
        let ld = (a: lda, b: ldb, c: ldc)
        let slivers = (min(n, ncMax) + nr - 1) / nr
        guard let packedB = troupe_bf16_packed_b_buffer((kcMax / 2) * slivers * nr) else {
            fatalError("BF16GEMM: no memory for a packed block of op(B)")
        }
        for jc in stride(from: 0, to: n, by: ncMax) {
            let nc = min(ncMax, n - jc)
            for pc in stride(from: 0, to: k, by: kcMax) {
                let kc = min(kcMax, k - pc), pairs = (kc + 1) / 2
                let blockSlivers = (nc + nr - 1) / nr
                // op(B)'s block, packed in sliver ranges by both threads, then every block of rows.
                let packChunks = split ? min(blockSlivers, 8) : 1
                run(chunks: packChunks, parallel: split) { chunk in
                    let first = blockSlivers * chunk / packChunks, end = blockSlivers * (chunk + 1) / packChunks
                    guard end > first else { return }
                    let j0 = first * nr, width = min(nc, end * nr) - j0
                    troupe_bf16_pack_b(hardware, tb, b, ld.b, pc, kc, jc + j0, width, packedB + j0 * pairs)
                }
                let rowBlocks = (m + mcMax - 1) / mcMax
                run(chunks: rowBlocks, parallel: split) { block in
                    let i0 = block * mcMax
                    troupe_bf16_block(hardware, ta, a, ld.a, i0, min(mcMax, m - i0), pc, kc, packedB, nc, c + jc, ld.c)
                }
            }
        }
    }

    private static func run(chunks: Int, parallel: Bool, _ body: @escaping (Int) -> Void) {
        if parallel && chunks > 1 {
            PairedWorker.shared.run(chunks: chunks) { chunk, _ in body(chunk) }
        } else {
            for chunk in 0..<chunks { body(chunk) }
        }
    }
}
