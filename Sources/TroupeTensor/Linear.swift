import CBLAS

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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outFeatures), Int32(inFeatures),
                    1, x, Int32(inFeatures), weight, Int32(inFeatures), bias == nil ? 0 : 1, y, Int32(outFeatures))
    }

    /// Backward of `forward`. dx: (n, in) is overwritten when `accumulateInput` is false, else added to;
    /// dW: (out, in) and db: (out) are always accumulated (gradients sum over micro-batches).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                                dBias: UnsafeMutablePointer<Float>?, n: Int, inFeatures: Int, outFeatures: Int,
                                accumulateInput: Bool = false) {
        if n == 0 { return }
        // dW += dyᵀ · x
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(n),
                    1, dy, Int32(outFeatures), x, Int32(inFeatures), 1, dWeight, Int32(inFeatures))
        if let dBias {
            for r in 0..<n {
                let row = dy + r * outFeatures
                for o in 0..<outFeatures { dBias[o] += row[o] }
            }
        }
        if let dx {
            // dx (+)= dy · W
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(inFeatures), Int32(outFeatures),
                        1, dy, Int32(outFeatures), weight, Int32(inFeatures), accumulateInput ? 1 : 0, dx, Int32(inFeatures))
        }
    }
}

/// General matrix product with explicit strides, for attention blocks that live inside larger buffers.
/// C (m×n, ldc) = alpha · op(A) · op(B) + beta · C.
@inline(__always)
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
