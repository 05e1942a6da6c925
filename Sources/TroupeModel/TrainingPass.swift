import Foundation
import TroupeTensor

/// The training forward and backward of `LlamaModel` over a packed batch, llm.c style: each layer a
/// forward/backward pair, activations kept in one arena, gradients in one flat buffer laid out like
/// the parameters. The output head scores only the tokens asked for, so RL prompts cost no vocabulary
/// projection.
///
/// Shapes: N packed tokens, C hidden, Q = heads·headDim, K = kvHeads·headDim, I intermediate, V vocab,
/// M scored rows.
public final class TrainingPass: @unchecked Sendable {
    public let model: LlamaModel
    /// ∂L/∂θ, accumulated by `backward` until `zeroGradients`. Made at first use: a pass that only
    /// scores (a sampler's prefill, made for each new weights version) never touches its parameter-sized
    /// pages (111 MB for `small`).
    public private(set) lazy var gradients = FloatBuffer(count: model.layout.totalCount)
    /// How `backward` multiplies the linear layers' matrices (the bulk of its work); attention's
    /// per-head products and the forward stay fp32.
    public var backwardProducts: BackwardProducts = .fp32

    private var arena = FloatBuffer(count: 0)
    private var scratch = FloatBuffer(count: 0)
    private var state: PassState?

    public init(model: LlamaModel) {
        self.model = model
    }

    public func zeroGradients() { gradients.zero() }

    /// Everything one forward leaves for its backward.
    struct PassState {
        var batch: ScoringBatch
        var tokens: [Int32]
        var offsets: [Int]
        var lengths: [Int]
        var probOffsets: [Int]
        var n: Int
        /// Head rows: packed position, sequence, index among the sequence's scored tokens (−1 for a
        /// logits-only row) and target token (−1 when unscored).
        var rowPositions: [Int]
        var rowSequence: [Int]
        var rowScoreIndex: [Int]
        var rowTargets: [Int32]
        var rowTemperature: [Float]
        var rowLogSumExp: [Float]
        var rowEntropy: [Float]
        var layers: [LayerActivations]
        var finalIn: UnsafeMutablePointer<Float>   // (N, C) residual stream after the last layer
        var finalNorm: UnsafeMutablePointer<Float> // (N, C)
        var finalRstd: UnsafeMutablePointer<Float> // (N)
        var headIn: UnsafeMutablePointer<Float>    // (M, C) gathered rows of finalNorm
        var logits: UnsafeMutablePointer<Float>    // (M, V)
        var entropyRequested: Bool
    }

    struct LayerActivations {
        var input: UnsafeMutablePointer<Float>      // (N, C)
        var norm1: UnsafeMutablePointer<Float>      // (N, C)
        var rstd1: UnsafeMutablePointer<Float>      // (N)
        var q: UnsafeMutablePointer<Float>          // (N, Q) after RoPE
        var k: UnsafeMutablePointer<Float>          // (N, K) after RoPE
        var v: UnsafeMutablePointer<Float>          // (N, K)
        var probs: UnsafeMutablePointer<Float>      // Σ_s H·L_s²
        var attn: UnsafeMutablePointer<Float>       // (N, Q)
        var mid: UnsafeMutablePointer<Float>        // (N, C) residual after attention
        var norm2: UnsafeMutablePointer<Float>      // (N, C)
        var rstd2: UnsafeMutablePointer<Float>      // (N)
        var gate: UnsafeMutablePointer<Float>       // (N, I)
        var up: UnsafeMutablePointer<Float>         // (N, I)
        var h: UnsafeMutablePointer<Float>          // (N, I)
        var queryKeyNorm: LlamaModel.QueryKeyNormInputs?  // Qwen3: q (N, Q), k (N, K) before their norms; rstd (N·H), (N·KVH)
    }

    // MARK: forward

    /// Runs the forward pass and returns the log-probs (and entropies) of the requested tokens.
    /// `allLogits`: also project every position (tests and `troupe score`); read them with `logits(sequence:)`.
    /// `lastPositionLogits`: also project each sequence's last position (the sampler's prefill).
    public func forward(_ batch: ScoringBatch, entropy: Bool = false, allLogits: Bool = false,
                        lastPositionLogits: Bool = false) throws -> ScoringResult {
        let c = model.config
        let packing = try pack(batch)
        let rows = HeadRows(batch, packing: packing, allLogits: allLogits, lastPositionLogits: lastPositionLogits)
        var st = layOutActivations(batch, packing: packing, rows: rows, entropy: entropy)
        let n = st.n, C = c.hiddenSize

        // Embedding: x[t] = E[token[t]]
        let emb = model.w(model.layout.embedding)
        let x0 = st.layers[0].input
        for t in 0..<n { (x0 + t * C).update(from: emb + Int(st.tokens[t]) * C, count: C) }

        for l in 0..<c.layers {
            let out = l + 1 < c.layers ? st.layers[l + 1].input : st.finalIn
            layerForward(l, st.layers[l], output: out, state: st)
        }
        RMSNorm.forward(x: st.finalIn, weight: model.w(model.layout.finalNorm), y: st.finalNorm, rstd: st.finalRstd,
                        n: n, c: C, eps: Float(c.rmsNormEps))
        headForward(&st)
        state = st
        return scoringResult(st)
    }

    /// The batch's sequences end to end: N tokens, sequence s at `offsets[s]`, its attention
    /// probabilities (H, L_s, L_s) at `probOffsets[s]` of a layer's `probTotal`.
    private struct Packing {
        var tokens: [Int32] = []
        var offsets: [Int] = [], lengths: [Int] = [], probOffsets: [Int] = []
        var probTotal = 0
    }

    /// Checks the batch and packs its sequences.
    private func pack(_ batch: ScoringBatch) throws -> Packing {
        let c = model.config
        guard !batch.sequences.isEmpty else { throw ModelError.emptyInput(what: "batch has no sequences") }
        guard batch.scoreFrom.count == batch.sequences.count, batch.temperatures.count == batch.sequences.count else {
            throw ModelError.invalidArgument(name: "batch", reason: "scoreFrom and temperatures need one entry per sequence")
        }
        var packing = Packing()
        for (s, seq) in batch.sequences.enumerated() {
            try model.validate(sequence: seq, what: "sequence \(s)")
            let from = batch.scoreFrom[s]
            guard from >= 1 && from <= seq.count else {
                throw ModelError.invalidArgument(name: "scoreFrom[\(s)]", reason: "\(from) is outside 1...\(seq.count)")
            }
            let t = batch.temperatures[s]
            guard t.isFinite && t > 0 else {
                throw ModelError.invalidArgument(name: "temperatures[\(s)]", reason: "must be finite and > 0 (got \(t))")
            }
            packing.offsets.append(packing.tokens.count)
            packing.lengths.append(seq.count)
            packing.probOffsets.append(packing.probTotal)
            packing.probTotal += c.heads * seq.count * seq.count
            packing.tokens += seq
        }
        return packing
    }

    /// The M positions the output head projects: every scored one (its next token is a target), and
    /// every position (`allLogits`) or each sequence's last (`lastPositionLogits`) when asked.
    private struct HeadRows {
        var positions: [Int] = [], sequence: [Int] = [], scoreIndex: [Int] = []
        var targets: [Int32] = [], temperature: [Float] = []

        init(_ batch: ScoringBatch, packing: Packing, allLogits: Bool, lastPositionLogits: Bool) {
            for s in 0..<batch.sequences.count {
                let from = batch.scoreFrom[s], len = packing.lengths[s]
                for p in 0..<len {
                    let scored = p + 1 >= from && p + 1 < len
                    guard scored || allLogits || (lastPositionLogits && p == len - 1) else { continue }
                    positions.append(packing.offsets[s] + p)
                    sequence.append(s)
                    scoreIndex.append(scored ? p + 1 - from : -1)
                    targets.append(scored ? batch.sequences[s][p + 1] : -1)
                    temperature.append(batch.temperatures[s])
                }
            }
        }
    }

    /// Carves every activation of the pass out of the arena (grown when too small).
    private func layOutActivations(_ batch: ScoringBatch, packing: Packing, rows: HeadRows, entropy: Bool) -> PassState {
        let c = model.config, n = packing.tokens.count, m = rows.positions.count, probTotal = packing.probTotal
        let C = c.hiddenSize, Q = c.qDim, K = c.kvDim, I = c.intermediateSize, V = c.vocabularySize
        let qkNorm = c.queryKeyNorm ? n * (Q + K + c.heads + c.kvHeads) : 0
        let perLayer = n * (5 * C + 2 * Q + 2 * K + 3 * I + 2) + probTotal + qkNorm
        let total = c.layers * perLayer + n * (2 * C + 1) + m * (C + V)
        if arena.count < total { arena = FloatBuffer(count: total, zeroed: false) }
        var cursor = arena.pointer
        func take(_ count: Int) -> UnsafeMutablePointer<Float> { defer { cursor += count }; return cursor }
        var layers: [LayerActivations] = []
        for _ in 0..<c.layers {
            layers.append(LayerActivations(input: take(n * C), norm1: take(n * C), rstd1: take(n), q: take(n * Q),
                                           k: take(n * K), v: take(n * K), probs: take(probTotal), attn: take(n * Q),
                                           mid: take(n * C), norm2: take(n * C), rstd2: take(n), gate: take(n * I),
                                           up: take(n * I), h: take(n * I),
                                           queryKeyNorm: c.queryKeyNorm ? .init(q: take(n * Q), k: take(n * K), qRstd: take(n * c.heads),
                                                                                 kRstd: take(n * c.kvHeads)) : nil))
        }
        return PassState(batch: batch, tokens: packing.tokens, offsets: packing.offsets, lengths: packing.lengths,
                         probOffsets: packing.probOffsets, n: n, rowPositions: rows.positions, rowSequence: rows.sequence,
                         rowScoreIndex: rows.scoreIndex, rowTargets: rows.targets, rowTemperature: rows.temperature,
                         rowLogSumExp: [Float](repeating: 0, count: m), rowEntropy: [Float](repeating: 0, count: m),
                         layers: layers, finalIn: take(n * C), finalNorm: take(n * C), finalRstd: take(n),
                         headIn: take(m * C), logits: take(m * V), entropyRequested: entropy)
    }

    /// Each scored token's log-prob (its logit at the row's temperature minus the row's log-sum-exp)
    /// and entropy, per sequence.
    private func scoringResult(_ st: PassState) -> ScoringResult {
        let V = model.config.vocabularySize, batch = st.batch
        var logprobs = batch.sequences.indices.map { [Float](repeating: 0, count: st.lengths[$0] - batch.scoreFrom[$0]) }
        var entropies = logprobs
        for r in 0..<st.rowPositions.count where st.rowScoreIndex[r] >= 0 {
            let s = st.rowSequence[r], i = st.rowScoreIndex[r]
            logprobs[s][i] = st.logits[r * V + Int(st.rowTargets[r])] / st.rowTemperature[r] - st.rowLogSumExp[r]
            entropies[s][i] = st.rowEntropy[r]
        }
        return ScoringResult(logprobs: logprobs, entropies: st.entropyRequested ? entropies : nil)
    }

    /// Raw logits (L × V) of sequence `s` from the last `forward(…, allLogits: true)`.
    public func logits(sequence s: Int) -> [Float]? {
        guard let st = state else { return nil }
        let V = model.config.vocabularySize
        let start = st.rowPositions.firstIndex(of: st.offsets[s]) ?? -1
        guard start >= 0, start + st.lengths[s] <= st.rowPositions.count,
              st.rowPositions[start + st.lengths[s] - 1] == st.offsets[s] + st.lengths[s] - 1 else { return nil }
        return Array(UnsafeBufferPointer(start: st.logits + start * V, count: st.lengths[s] * V))
    }

    /// Post-RoPE keys and values of sequence `s` at layer `l` from the last forward: (L_s, K) each.
    func keysAndValues(layer l: Int, sequence s: Int) -> (UnsafePointer<Float>, UnsafePointer<Float>) {
        let st = state!, K = model.config.kvDim
        return (UnsafePointer(st.layers[l].k + st.offsets[s] * K), UnsafePointer(st.layers[l].v + st.offsets[s] * K))
    }

    /// Logits of the last position of sequence `s` (needs `lastPositionLogits` or `allLogits`).
    func copyLastLogits(sequence s: Int, into destination: UnsafeMutablePointer<Float>) {
        let st = state!, V = model.config.vocabularySize
        let last = st.offsets[s] + st.lengths[s] - 1
        guard let row = st.rowPositions.lastIndex(of: last) else { preconditionFailure("last position was not projected") }
        destination.update(from: st.logits + row * V, count: V)
    }

    private func layerForward(_ l: Int, _ a: LayerActivations, output: UnsafeMutablePointer<Float>, state st: PassState) {
        let c = model.config, lo = model.layout.layers[l], n = st.n
        let C = c.hiddenSize, Q = c.qDim, K = c.kvDim
        RMSNorm.forward(x: a.input, weight: model.w(lo.inputNorm), y: a.norm1, rstd: a.rstd1, n: n, c: C, eps: Float(c.rmsNormEps))
        model.projectQKV(layer: l, norm: a.norm1, q: a.q, k: a.k, v: a.v, n: n, saving: a.queryKeyNorm)
        for s in 0..<st.offsets.count {
            for p in 0..<st.lengths[s] {
                let t = st.offsets[s] + p
                model.rope.apply(a.q + t * Q, heads: c.heads, position: p)
                model.rope.apply(a.k + t * K, heads: c.kvHeads, position: p)
            }
        }
        PackedAttention.forward(q: a.q, k: a.k, v: a.v, out: a.attn, probs: a.probs, offsets: st.offsets,
                                lengths: st.lengths, probOffsets: st.probOffsets, shape: attentionShape)
        model.attentionOutputAndMLP(layer: l, input: a.input, attn: a.attn, mid: a.mid, norm2: a.norm2, rstd2: a.rstd2,
                                    gate: a.gate, up: a.up, h: a.h, output: output, n: n)
    }

    private var attentionShape: PackedAttention.Shape {
        PackedAttention.Shape(heads: model.config.heads, kvHeads: model.config.kvHeads, headDim: model.config.headDim)
    }

    /// Gathers the scored rows, projects them to the vocabulary and computes log-sum-exp (and entropy)
    /// at each row's temperature.
    private func headForward(_ st: inout PassState) {
        let C = model.config.hiddenSize, V = model.config.vocabularySize
        let m = st.rowPositions.count
        for (r, p) in st.rowPositions.enumerated() { (st.headIn + r * C).update(from: st.finalNorm + p * C, count: C) }
        Linear.forward(x: st.headIn, weight: model.w(model.layout.lmHead), bias: nil, y: st.logits, n: m, inFeatures: C, outFeatures: V)
        for r in 0..<m {
            let z = st.logits + r * V
            let inv = 1 / st.rowTemperature[r]
            let mx = Vector.max(z, count: V) * inv
            let sum = Vector.expShiftedSum(z, scale: inv, shift: mx, count: V)
            let lse = mx + logf(sum)
            st.rowLogSumExp[r] = lse
            if st.entropyRequested {
                // H = lse − Σ p·z/T
                var pz: Float = 0
                for j in 0..<V { let zj = z[j] * inv; pz += Vector.exp(zj - lse) * zj }
                st.rowEntropy[r] = lse - pz
            }
        }
    }

    // MARK: backward

    /// Accumulates ∂L/∂θ into `gradients`, given ∂L/∂logprob for every scored token (same shape as the
    /// forward's `logprobs`) and optionally ∂L/∂entropy.
    public func backward(dLogprobs: [[Float]], dEntropies: [[Float]]? = nil) throws {
        guard let st = state else { throw ModelError.invalidArgument(name: "backward", reason: "called before forward") }
        let c = model.config
        let C = c.hiddenSize, V = c.vocabularySize, n = st.n
        guard dLogprobs.count == st.batch.sequences.count else {
            throw ModelError.invalidArgument(name: "dLogprobs", reason: "\(dLogprobs.count) sequences, the forward had \(st.batch.sequences.count)")
        }
        if dEntropies != nil && !st.entropyRequested {
            throw ModelError.invalidArgument(name: "dEntropies", reason: "the forward did not compute entropies")
        }
        // ∂L/∂z for every head row; rows without a target get zero.
        let m = st.rowPositions.count
        for s in 0..<st.batch.sequences.count {
            let expected = st.lengths[s] - st.batch.scoreFrom[s]
            guard dLogprobs[s].count == expected else {
                throw ModelError.invalidArgument(name: "dLogprobs[\(s)]", reason: "\(dLogprobs[s].count) values, \(expected) tokens were scored")
            }
            if let de = dEntropies, de[s].count != expected {
                throw ModelError.invalidArgument(name: "dEntropies[\(s)]", reason: "\(de[s].count) values, \(expected) tokens were scored")
            }
        }
        for r in 0..<m {
            let z = st.logits + r * V
            let s = st.rowSequence[r], i = st.rowScoreIndex[r]
            if i < 0 { z.update(repeating: 0, count: V); continue }
            let inv = 1 / st.rowTemperature[r]
            let lse = st.rowLogSumExp[r]
            let cl = dLogprobs[s][i]
            let ce = dEntropies?[s][i] ?? 0
            let h = st.rowEntropy[r]
            // p_j = softmax(z/T); ∂logp_y/∂z_j = (1[j=y] − p_j)/T; ∂H/∂z_j = −p_j(log p_j + H)/T
            _ = Vector.expShifted(z, scale: inv, shift: lse, out: z, count: V) // z ← p
            if ce != 0 {
                for j in 0..<V {
                    let pj = z[j]
                    let logp = pj > 0 ? logf(pj) : -Float.infinity
                    z[j] = (-cl * pj - ce * (pj > 0 ? pj * (logp + h) : 0)) * inv
                }
            } else {
                Vector.scale(z, by: -cl * inv, count: V)
            }
            z[Int(st.rowTargets[r])] += cl * inv
        }
        // Head: dHeadIn = dZ · W ; dW += dZᵀ · headIn. dHeadIn reuses headIn's rows after dW is done.
        let dHead = scratchBuffer(m * C + n * C * 2 + n * max(c.intermediateSize * 3, c.qDim * 2 + c.kvDim * 4))
        let dHeadIn = dHead
        Linear.backward(dy: st.logits, x: st.headIn, weight: model.w(model.layout.lmHead), dx: dHeadIn,
                        dWeight: gradients.pointer + model.layout.lmHead, dBias: nil, n: m, inFeatures: C, outFeatures: V, products: backwardProducts)
        let dResid = dHead + m * C            // (N, C): ∂L/∂(residual stream) flowing down
        let dNorm = dResid + n * C            // (N, C)
        let work = dNorm + n * C
        dNorm.update(repeating: 0, count: n * C)
        for (r, p) in st.rowPositions.enumerated() { Vector.add(dHeadIn + r * C, into: dNorm + p * C, count: C) }
        RMSNorm.backward(dy: dNorm, x: st.finalIn, weight: model.w(model.layout.finalNorm), rstd: st.finalRstd,
                         dx: dResid, dWeight: gradients.pointer + model.layout.finalNorm, n: n, c: C, accumulate: false)
        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            layerBackward(l, st.layers[l], dResid: dResid, dNorm: dNorm, work: work, state: st)
        }
        // Embedding rows receive the residual gradient at the bottom.
        let dEmb = gradients.pointer + model.layout.embedding
        for t in 0..<n { Vector.add(dResid + t * C, into: dEmb + Int(st.tokens[t]) * C, count: C) }
    }

    private func scratchBuffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        let need = count + maxSequenceSquare()
        if scratch.count < need { scratch = FloatBuffer(count: need, zeroed: false) }
        return scratch.pointer
    }

    private func maxSequenceSquare() -> Int {
        let longest = state?.lengths.max() ?? 0
        return longest * longest
    }

    /// dResid holds ∂L/∂(layer output) on entry and ∂L/∂(layer input) on exit.
    private func layerBackward(_ l: Int, _ a: LayerActivations, dResid: UnsafeMutablePointer<Float>,
                               dNorm: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Float>, state st: PassState) {
        let c = model.config, lo = model.layout.layers[l], n = st.n
        let C = c.hiddenSize, Q = c.qDim, K = c.kvDim, I = c.intermediateSize
        let g = gradients.pointer
        // MLP: out = mid + h·Wdownᵀ
        let dH = work, dGate = work + n * I, dUp = work + 2 * n * I
        Linear.backward(dy: dResid, x: a.h, weight: model.w(lo.down), dx: dH, dWeight: g + lo.down, dBias: nil,
                        n: n, inFeatures: I, outFeatures: C, products: backwardProducts)
        SwiGLU.backward(dh: dH, gate: a.gate, up: a.up, dGate: dGate, dUp: dUp, count: n * I)
        Linear.backward(dy: dGate, x: a.norm2, weight: model.w(lo.gate), dx: dNorm, dWeight: g + lo.gate, dBias: nil,
                        n: n, inFeatures: C, outFeatures: I, products: backwardProducts)
        Linear.backward(dy: dUp, x: a.norm2, weight: model.w(lo.up), dx: dNorm, dWeight: g + lo.up, dBias: nil,
                        n: n, inFeatures: C, outFeatures: I, accumulateInput: true, products: backwardProducts)
        // dResid (∂L/∂mid) += RMSNorm backward
        RMSNorm.backward(dy: dNorm, x: a.mid, weight: model.w(lo.postNorm), rstd: a.rstd2, dx: dResid,
                         dWeight: g + lo.postNorm, n: n, c: C, accumulate: true)
        // Attention: mid = input + attn·Woᵀ
        let dAttn = work, dq = work + n * Q, dk = dq + n * Q, dv = dk + n * K
        let attnScratch = dv + n * K
        Linear.backward(dy: dResid, x: a.attn, weight: model.w(lo.o), dx: dAttn, dWeight: g + lo.o, dBias: lo.oBias.map { g + $0 },
                        n: n, inFeatures: Q, outFeatures: C, products: backwardProducts)
        PackedAttention.backward(dOut: dAttn, q: a.q, k: a.k, v: a.v, probs: a.probs, dq: dq, dk: dk, dv: dv,
                                 scratch: attnScratch, offsets: st.offsets, lengths: st.lengths,
                                 probOffsets: st.probOffsets, totalTokens: n, shape: attentionShape)
        for s in 0..<st.offsets.count {
            for p in 0..<st.lengths[s] {
                let t = st.offsets[s] + p
                model.rope.apply(dq + t * Q, heads: c.heads, position: p, inverse: true)
                model.rope.apply(dk + t * K, heads: c.kvHeads, position: p, inverse: true)
            }
        }
        if let saved = a.queryKeyNorm, let qNorm = lo.qNorm, let kNorm = lo.kNorm {
            // Through Qwen3's per-head norms, in place: dq, dk become ∂L/∂ of the projections' outputs.
            RMSNorm.backward(dy: dq, x: saved.q, weight: model.w(qNorm), rstd: saved.qRstd, dx: dq, dWeight: g + qNorm,
                             n: n * c.heads, c: c.headDim, accumulate: false)
            RMSNorm.backward(dy: dk, x: saved.k, weight: model.w(kNorm), rstd: saved.kRstd, dx: dk, dWeight: g + kNorm,
                             n: n * c.kvHeads, c: c.headDim, accumulate: false)
        }
        Linear.backward(dy: dq, x: a.norm1, weight: model.w(lo.q), dx: dNorm, dWeight: g + lo.q,
                        dBias: lo.qBias.map { g + $0 }, n: n, inFeatures: C, outFeatures: Q, products: backwardProducts)
        Linear.backward(dy: dk, x: a.norm1, weight: model.w(lo.k), dx: dNorm, dWeight: g + lo.k,
                        dBias: lo.kBias.map { g + $0 }, n: n, inFeatures: C, outFeatures: K, accumulateInput: true, products: backwardProducts)
        Linear.backward(dy: dv, x: a.norm1, weight: model.w(lo.v), dx: dNorm, dWeight: g + lo.v,
                        dBias: lo.vBias.map { g + $0 }, n: n, inFeatures: C, outFeatures: K, accumulateInput: true, products: backwardProducts)
        RMSNorm.backward(dy: dNorm, x: a.input, weight: model.w(lo.inputNorm), rstd: a.rstd1, dx: dResid,
                         dWeight: g + lo.inputNorm, n: n, c: C, accumulate: true)
    }
}
