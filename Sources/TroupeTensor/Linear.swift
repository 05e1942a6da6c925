import CBLAS
import Foundation

/// Linear layer as Hugging Face stores it: W is (out, in) row-major, y = x Wᵀ + b.
/// All calls go to OpenBLAS sgemm on the batched tokens; decoding uses `StreamingGEMM` instead.
public enum Linear {
    /// y: (n, out) = x: (n, in) · Wᵀ (+ b: (out)). Overwrites y.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, n: Int, inFeatures: Int, outFeatures: Int) {
        if n == 0 { return }
        if let bias {
            for r in 0..<n { (y + r * outFeatures).update(from: bias, count: outFeatures) }
        }
        sgemm(transA: false, transB: true, m: n, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: weight, ldb: inFeatures,
              beta: bias == nil ? 0 : 1, c: y, ldc: outFeatures)
    }

    /// Backward of `forward`. dx: (n, in) is overwritten when `accumulateInput` is false, else added to;
    /// dW: (out, in) and db: (out) are always accumulated (gradients sum over micro-batches).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                                dBias: UnsafeMutablePointer<Float>?, n: Int, inFeatures: Int, outFeatures: Int,
                                accumulateInput: Bool = false, products: BackwardProducts = .fp32) {
        if n == 0 { return }
        // dW += dyᵀ · x
        products.gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: n, a: dy, lda: outFeatures, b: x, ldb: inFeatures,
              beta: 1, c: dWeight, ldc: inFeatures)
        if let dBias {
            for r in 0..<n {
                let row = dy + r * outFeatures
                for o in 0..<outFeatures { dBias[o] += row[o] }
            }
        }
        if let dx {
            // dx (+)= dy · W
            products.gemm(transA: false, transB: false, m: n, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures, b: weight, ldb: inFeatures,
                  beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
        }
    }
}

/// How a backward pass multiplies its linear layers' matrices (`learner.backward_precision`).
public enum BackwardProducts: Sendable, Equatable {
    /// OpenBLAS sgemm (`sgemm` below), as the forward.
    case fp32
    /// Operands rounded to bfloat16, sums in float (`BF16GEMM`), on the given kernel.
    case bf16(BF16GEMM.Kernel)

    @inline(__always)
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
              b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        switch self {
        case .fp32: sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        case .bf16(let kernel): BF16GEMM.gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                              beta: beta, c: c, ldc: ldc, kernel: kernel)
        }
    }
}

/// General matrix product with explicit strides, for attention blocks that live inside larger buffers.
/// C (m×n, ldc) = alpha · op(A) · op(B) + beta · C.
///
/// While OpenBLAS runs on one thread, a product of at least `GEMMRowSplit.minimum` multiply-adds is
/// two single-threaded calls on the halves of C's rows, one on each of `PairedWorker`'s threads, where
/// the loaded kernel gives that bit for bit (`GEMMRowSplit.enabled`): each element still sums over k
/// in the same blocks (OpenBLAS picks them from k alone) and the split keeps the micro-kernel's tiles
/// (`GEMMRowSplit.splitRow`). So a learner at `learner.threads` 1 trains on two cores without changing
/// its weights; OpenBLAS's own threads split the sum over k differently, which changes them.
@inline(__always)
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    let split = GEMMRowSplit.splitRow(m)
    func product(_ rows: Range<Int>) {
        GEMMRowSplit.rows(rows, transA: transA, transB: transB, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                          beta: beta, c: c, ldc: ldc)
    }
    guard m * n * k >= GEMMRowSplit.minimum, split < m, BLASInfo.threads == 1, GEMMRowSplit.enabled else {
        return product(0..<m)
    }
    PairedWorker.shared.run(chunks: 2) { chunk, _ in product(chunk == 0 ? 0..<split : split..<m) }
}

/// When `sgemm` splits a product's rows over two threads.
public enum GEMMRowSplit {
    /// Multiply-adds below which a product stays one call: a hand-off to the helper costs a few
    /// microseconds, about what 2^20 multiply-adds take on one core.
    public static let minimum = 1 << 20

    /// Where the second half starts: half of `m` rounded up to a multiple of 96. Micro-kernels compute
    /// the rows of a tile together and the rows past the last whole tile apart, so the halves must
    /// keep the whole call's tiles. 96 is a multiple of the usual tile heights (8, 16, 24, 32, 48);
    /// measured: a split on a multiple of 96 rows is exact with the Haswell, Zen and Sandybridge
    /// kernels; with Haswell also on 24 or 48, not on 16 or 64.
    static func splitRow(_ m: Int) -> Int { (m / 2 + 95) / 96 * 96 }

    /// Rows `rows` of C = alpha · op(A) · op(B) + beta · C, as one sgemm call on those rows alone.
    static func rows(_ rows: Range<Int>, transA: Bool, transB: Bool, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        // Row i of op(A) is row i of A, or column i of Aᵀ.
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(rows.count), Int32(n), Int32(k), alpha, a + (transA ? rows.lowerBound : rows.lowerBound * lda), Int32(lda),
                    b, Int32(ldb), beta, c + rows.lowerBound * ldc, Int32(ldc))
    }

    /// Whether products are split: the loaded OpenBLAS kernel gives split products bit for bit
    /// (`splitIsExact`, checked once per process on one thread), and `TROUPE_GEMM_ROW_SPLIT` is not
    /// `off` (a diagnostic: the split must never change a result).
    public static let enabled: Bool = {
        if let setting = getenv("TROUPE_GEMM_ROW_SPLIT"), String(cString: setting) == "off" { return false }
        return splitIsExact()
    }()

    /// Computes products of the shapes a learner step makes (each transposition, rows off the tile
    /// height, strided operands) whole and in row halves, and compares the bits. Meaningful only
    /// while OpenBLAS runs on one thread.
    public static func splitIsExact() -> Bool {
        var generator = Xoshiro256(seed: 1)
        func random() -> Float { Float(generator.nextUnit() * 2 - 1) }
        for (transA, transB, m, n, k) in [(false, true, 300, 352, 128), (true, false, 230, 352, 300), (false, false, 301, 128, 352),
                                          (true, true, 197, 200, 180), (true, false, 128, 352, 2304)] {
            let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 7
            let a = (0..<(transA ? k : m) * lda).map { _ in random() }, b = (0..<(transB ? n : k) * ldb).map { _ in random() }
            let c0 = (0..<m * ldc).map { _ in random() }
            var whole = c0, halves = c0
            let split = splitRow(m)
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    func product(_ parts: [Range<Int>], into c: UnsafeMutableBufferPointer<Float>) {
                        for part in parts {
                            rows(part, transA: transA, transB: transB, n: n, k: k, alpha: 0.5, a: a.baseAddress!, lda: lda,
                                 b: b.baseAddress!, ldb: ldb, beta: 1, c: c.baseAddress!, ldc: ldc)
                        }
                    }
                    whole.withUnsafeMutableBufferPointer { product([0..<m], into: $0) }
                    halves.withUnsafeMutableBufferPointer { product([0..<split, split..<m], into: $0) }
                }
            }
            if !zip(whole, halves).allSatisfy({ $0.bitPattern == $1.bitPattern }) { return false }
        }
        return true
    }
}
