import TroupeTensor

/// The pieces of a decoder layer that training and decoding share, so both run the same arithmetic.
extension LlamaModel {
    /// y = x Wᵀ (+ b) with the kernel of the caller's mode: sgemm for packed training batches,
    /// the batch-invariant streaming kernel for decoding steps.
    @inline(__always)
    func linear(_ x: UnsafePointer<Float>, _ weight: Int, _ bias: Int?, _ y: UnsafeMutablePointer<Float>, n: Int,
                inFeatures: Int, outFeatures: Int, decoding: Bool) {
        let b = bias.map { UnsafePointer(w($0)) }
        if decoding {
            StreamingGEMM.forward(x: x, weight: w(weight), bias: b, y: y, n: n, inFeatures: inFeatures, outFeatures: outFeatures)
        } else {
            Linear.forward(x: x, weight: w(weight), bias: b, y: y, n: n, inFeatures: inFeatures, outFeatures: outFeatures)
        }
    }

    /// What training keeps of Qwen3's query and key norms for the backward pass: their inputs,
    /// q: (n, Q) and k: (n, K), and each head row's rstd, (n·heads) and (n·kvHeads).
    struct QueryKeyNormInputs {
        let q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>
        let qRstd: UnsafeMutablePointer<Float>, kRstd: UnsafeMutablePointer<Float>
    }

    /// norm: (n, C) → q: (n, Q), k, v: (n, K), before RoPE; with `queryKeyNorm`, q and k normalised per
    /// head (rows of headDim), in place, or from the projections kept in `saving` when given.
    func projectQKV(layer l: Int, norm: UnsafePointer<Float>, q: UnsafeMutablePointer<Float>,
                    k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, n: Int, decoding: Bool = false,
                    saving: QueryKeyNormInputs? = nil) {
        let c = config, lo = layout.layers[l]
        let projectedQ = saving?.q ?? q, projectedK = saving?.k ?? k
        linear(norm, lo.q, lo.qBias, projectedQ, n: n, inFeatures: c.hiddenSize, outFeatures: c.qDim, decoding: decoding)
        linear(norm, lo.k, lo.kBias, projectedK, n: n, inFeatures: c.hiddenSize, outFeatures: c.kvDim, decoding: decoding)
        linear(norm, lo.v, lo.vBias, v, n: n, inFeatures: c.hiddenSize, outFeatures: c.kvDim, decoding: decoding)
        guard let qNorm = lo.qNorm, let kNorm = lo.kNorm else { return }
        let eps = Float(c.rmsNormEps)
        RMSNorm.forward(x: projectedQ, weight: w(qNorm), y: q, rstd: saving?.qRstd, n: n * c.heads, c: c.headDim, eps: eps)
        RMSNorm.forward(x: projectedK, weight: w(kNorm), y: k, rstd: saving?.kRstd, n: n * c.kvHeads, c: c.headDim, eps: eps)
    }

    /// mid = input + attn · Woᵀ, then the MLP half: out = mid + SwiGLU(norm2(mid)) · Wdownᵀ.
    /// `norm2`, `rstd2`, `gate`, `up`, `h` receive the intermediate values (kept by training).
    func attentionOutputAndMLP(layer l: Int, input: UnsafePointer<Float>, attn: UnsafePointer<Float>,
                               mid: UnsafeMutablePointer<Float>, norm2: UnsafeMutablePointer<Float>,
                               rstd2: UnsafeMutablePointer<Float>?, gate: UnsafeMutablePointer<Float>,
                               up: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>,
                               output: UnsafeMutablePointer<Float>, n: Int, decoding: Bool = false) {
        let c = config, lo = layout.layers[l]
        let C = c.hiddenSize, Q = c.qDim, I = c.intermediateSize
        if decoding {
            // Residual adds after the projection, so each element sees the same arithmetic at any batch size.
            linear(attn, lo.o, lo.oBias, norm2, n: n, inFeatures: Q, outFeatures: C, decoding: true)
            if mid != UnsafeMutablePointer(mutating: input) { mid.update(from: input, count: n * C) }
            Vector.add(norm2, into: mid, count: n * C)
        } else {
            if mid != UnsafeMutablePointer(mutating: input) { mid.update(from: input, count: n * C) }
            sgemm(transA: false, transB: true, m: n, n: C, k: Q, a: attn, lda: Q, b: w(lo.o), ldb: Q, beta: 1, c: mid, ldc: C)
            if let oBias = lo.oBias {
                for t in 0..<n { Vector.add(w(oBias), into: mid + t * C, count: C) }
            }
        }
        RMSNorm.forward(x: mid, weight: w(lo.postNorm), y: norm2, rstd: rstd2, n: n, c: C, eps: Float(c.rmsNormEps))
        linear(norm2, lo.gate, nil, gate, n: n, inFeatures: C, outFeatures: I, decoding: decoding)
        linear(norm2, lo.up, nil, up, n: n, inFeatures: C, outFeatures: I, decoding: decoding)
        if decoding {
            // Element-wise, so the two threads can take halves (split at a multiple of 16) with the same results.
            let count = n * I, parts = count >= 4096 ? 2 : 1, half = (count / parts + 15) & ~15
            let g = UInt(bitPattern: gate), u = UInt(bitPattern: up), hh = UInt(bitPattern: h)
            PairedWorker.shared.run(chunks: parts) { part, _ in
                let lo = part * half, hi = part == parts - 1 ? count : min(half, count)
                guard lo < hi else { return }
                SwiGLU.forward(gate: UnsafePointer<Float>(bitPattern: g)! + lo, up: UnsafePointer<Float>(bitPattern: u)! + lo,
                               h: UnsafeMutablePointer<Float>(bitPattern: hh)! + lo, count: hi - lo)
            }
        } else {
            SwiGLU.forward(gate: gate, up: up, h: h, count: n * I)
        }
        if output != mid { output.update(from: mid, count: n * C) }
        if decoding {
            linear(h, lo.down, nil, gate, n: n, inFeatures: I, outFeatures: C, decoding: true)
            Vector.add(gate, into: output, count: n * C)
        } else {
            sgemm(transA: false, transB: true, m: n, n: C, k: I, a: h, lda: I, b: w(lo.down), ldb: I, beta: 1, c: output, ldc: C)
        }
    }
}
