import TroupeTensor

/// Causal grouped-query attention over packed sequences: each sequence attends only to its own
/// earlier positions, so a batch of different lengths needs no padding and never mixes sequences.
enum PackedAttention {
    struct Shape {
        let heads: Int, kvHeads: Int, headDim: Int
        var qDim: Int { heads * headDim }
        var kvDim: Int { kvHeads * headDim }
        var group: Int { heads / kvHeads }
        var scale: Float { 1 / Float(headDim).squareRoot() }
    }

    /// q: (N, H·D), k, v: (N, KVH·D) → out: (N, H·D).
    /// probs: for each sequence s and head h, an (L_s × L_s) block at `probOffsets[s] + h·L_s²`.
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                        offsets: [Int], lengths: [Int], probOffsets: [Int], shape: Shape) {
        let d = shape.headDim
        for s in 0..<offsets.count {
            let o = offsets[s], len = lengths[s]
            for h in 0..<shape.heads {
                let g = h / shape.group
                let p = probs + probOffsets[s] + h * len * len
                // S = Q Kᵀ · scale
                sgemm(transA: false, transB: true, m: len, n: len, k: d, alpha: shape.scale,
                      a: q + o * shape.qDim + h * d, lda: shape.qDim,
                      b: k + o * shape.kvDim + g * d, ldb: shape.kvDim, beta: 0, c: p, ldc: len)
                for i in 0..<len { Softmax.rowInPlace(p + i * len, valid: i + 1, length: len) }
                // out_h = P V
                sgemm(transA: false, transB: false, m: len, n: d, k: len,
                      a: p, lda: len, b: v + o * shape.kvDim + g * d, ldb: shape.kvDim,
                      beta: 0, c: out + o * shape.qDim + h * d, ldc: shape.qDim)
            }
        }
    }

    /// Backward: dq is overwritten; dk and dv are overwritten too (zeroed here, then accumulated over
    /// the heads of each kv group). scratch needs max(L_s)² floats.
    static func backward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                         v: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>, offsets: [Int], lengths: [Int], probOffsets: [Int],
                         totalTokens: Int, shape: Shape) {
        let d = shape.headDim
        dk.update(repeating: 0, count: totalTokens * shape.kvDim)
        dv.update(repeating: 0, count: totalTokens * shape.kvDim)
        for s in 0..<offsets.count {
            let o = offsets[s], len = lengths[s]
            for h in 0..<shape.heads {
                let g = h / shape.group
                let p = probs + probOffsets[s] + h * len * len
                let dOutH = dOut + o * shape.qDim + h * d
                let qH = q + o * shape.qDim + h * d
                let kG = k + o * shape.kvDim + g * d
                let vG = v + o * shape.kvDim + g * d
                // dP = dOut Vᵀ
                sgemm(transA: false, transB: true, m: len, n: len, k: d, a: dOutH, lda: shape.qDim,
                      b: vG, ldb: shape.kvDim, beta: 0, c: scratch, ldc: len)
                // dV += Pᵀ dOut
                sgemm(transA: true, transB: false, m: len, n: d, k: len, a: p, lda: len, b: dOutH, ldb: shape.qDim,
                      beta: 1, c: dv + o * shape.kvDim + g * d, ldc: shape.kvDim)
                // dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, causal entries only
                for i in 0..<len {
                    let pr = p + i * len, dr = scratch + i * len
                    let valid = i + 1
                    let dot = Vector.dot(pr, dr, count: valid)
                    for j in 0..<valid { dr[j] = pr[j] * (dr[j] - dot) * shape.scale }
                    if valid < len { (dr + valid).update(repeating: 0, count: len - valid) }
                }
                // dQ = dS K ; dK += dSᵀ Q
                sgemm(transA: false, transB: false, m: len, n: d, k: len, a: scratch, lda: len, b: kG, ldb: shape.kvDim,
                      beta: 0, c: dq + o * shape.qDim + h * d, ldc: shape.qDim)
                sgemm(transA: true, transB: false, m: len, n: d, k: len, a: scratch, lda: len, b: qH, ldb: shape.qDim,
                      beta: 1, c: dk + o * shape.kvDim + g * d, ldc: shape.kvDim)
            }
        }
    }
}
