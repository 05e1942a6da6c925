import TroupeTensor

/// The pieces of a decoder layer that training and decoding share, so both run the same arithmetic.
extension LlamaModel {
    /// norm: (n, C) → q: (n, Q), k, v: (n, K), before RoPE.
    func projectQKV(layer l: Int, norm: UnsafePointer<Float>, q: UnsafeMutablePointer<Float>,
                    k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, n: Int) {
        let c = config, lo = layout.layers[l]
        Linear.forward(x: norm, weight: w(lo.q), bias: lo.qBias.map { UnsafePointer(w($0)) }, y: q, n: n, inFeatures: c.hiddenSize, outFeatures: c.qDim)
        Linear.forward(x: norm, weight: w(lo.k), bias: lo.kBias.map { UnsafePointer(w($0)) }, y: k, n: n, inFeatures: c.hiddenSize, outFeatures: c.kvDim)
        Linear.forward(x: norm, weight: w(lo.v), bias: lo.vBias.map { UnsafePointer(w($0)) }, y: v, n: n, inFeatures: c.hiddenSize, outFeatures: c.kvDim)
    }

    /// mid = input + attn · Woᵀ, then the MLP half: out = mid + SwiGLU(norm2(mid)) · Wdownᵀ.
    /// `norm2`, `rstd2`, `gate`, `up`, `h` receive the intermediate values (kept by training).
    func attentionOutputAndMLP(layer l: Int, input: UnsafePointer<Float>, attn: UnsafePointer<Float>,
                               mid: UnsafeMutablePointer<Float>, norm2: UnsafeMutablePointer<Float>,
                               rstd2: UnsafeMutablePointer<Float>?, gate: UnsafeMutablePointer<Float>,
                               up: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>,
                               output: UnsafeMutablePointer<Float>, n: Int) {
        let c = config, lo = layout.layers[l]
        let C = c.hiddenSize, Q = c.qDim, I = c.intermediateSize
        if mid != UnsafeMutablePointer(mutating: input) { mid.update(from: input, count: n * C) }
        sgemm(transA: false, transB: true, m: n, n: C, k: Q, a: attn, lda: Q, b: w(lo.o), ldb: Q, beta: 1, c: mid, ldc: C)
        RMSNorm.forward(x: mid, weight: w(lo.postNorm), y: norm2, rstd: rstd2, n: n, c: C, eps: Float(c.rmsNormEps))
        Linear.forward(x: norm2, weight: w(lo.gate), bias: nil, y: gate, n: n, inFeatures: C, outFeatures: I)
        Linear.forward(x: norm2, weight: w(lo.up), bias: nil, y: up, n: n, inFeatures: C, outFeatures: I)
        SwiGLU.forward(gate: gate, up: up, h: h, count: n * I)
        if output != mid { output.update(from: mid, count: n * C) }
        sgemm(transA: false, transB: true, m: n, n: C, k: I, a: h, lda: I, b: w(lo.down), ldb: I, beta: 1, c: output, ldc: C)
    }
}
