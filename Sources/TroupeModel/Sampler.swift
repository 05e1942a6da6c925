import Foundation
import TroupeTensor

/// Batched sampling with a KV cache. Prompts are prefilled through the training forward (so prompt
/// positions use exactly the training arithmetic), identical prompts are prefilled once and their cache
/// rows shared, then every active sequence advances one token per step.
public final class Sampler: @unchecked Sendable {
    public let model: LlamaModel
    private let prefill: TrainingPass

    public init(model: LlamaModel) {
        self.model = model
        prefill = TrainingPass(model: model)
    }

    /// `tokenBytes` maps a token id to the bytes it contributes to the text; it is needed only when
    /// `parameters.stopStrings` is not empty.
    public func generate(_ requests: [SampleRequest], parameters: SamplingParameters,
                         tokenBytes: ((Int32) -> [UInt8])? = nil) throws -> [Completion] {
        let c = model.config
        try parameters.validate(vocabularySize: c.vocabularySize)
        guard !requests.isEmpty else { return [] }
        if !parameters.stopStrings.isEmpty && tokenBytes == nil {
            throw ModelError.invalidArgument(name: "stop_strings", reason: "need a tokenizer to decode tokens")
        }
        for (i, r) in requests.enumerated() {
            try model.validate(sequence: r.prompt, what: "prompt \(i)")
            if r.prompt.count >= c.maxPositions {
                throw ModelError.sequenceTooLong(length: r.prompt.count + 1, maxPositions: c.maxPositions)
            }
        }
        let B = requests.count
        let K = c.kvDim, C = c.hiddenSize, Q = c.qDim, I = c.intermediateSize, V = c.vocabularySize
        let capacity = requests.map { min($0.prompt.count + parameters.maxNewTokens, c.maxPositions) }
        var cacheOffset: [Int] = [], total = 0
        for cap in capacity { cacheOffset.append(total); total += cap * K }
        let keys = (0..<c.layers).map { _ in FloatBuffer(count: total, zeroed: false) }
        let values = (0..<c.layers).map { _ in FloatBuffer(count: total, zeroed: false) }

        // Prefill each distinct prompt once.
        var firstIndex: [[Int32]: Int] = [:]
        var unique: [Int] = []
        for (i, r) in requests.enumerated() where firstIndex[r.prompt] == nil {
            firstIndex[r.prompt] = i
            unique.append(i)
        }
        _ = try prefill.forward(ScoringBatch(sequences: unique.map { requests[$0].prompt },
                                             scoreFrom: unique.map { requests[$0].prompt.count },
                                             temperatures: Array(repeating: parameters.temperature, count: unique.count)),
                                lastPositionLogits: true)
        var logits = FloatBuffer(count: B * V, zeroed: false)
        // The cache is head-major per sequence, so decoding attention reads one head's entries in order:
        // values [kv head][position][d], keys transposed [kv head][d][position] (`DecodeAttention`). The
        // prefill's keys and values are position-major, [position][kv head · d].
        let d = c.headDim
        func store(value row: UnsafePointer<Float>, position: Int, into cache: UnsafeMutablePointer<Float>, capacity: Int) {
            for g in 0..<c.kvHeads { (cache + (g * capacity + position) * d).update(from: row + g * d, count: d) }
        }
        func store(key row: UnsafePointer<Float>, position: Int, into cache: UnsafeMutablePointer<Float>, capacity: Int) {
            for e in 0..<(c.kvHeads * d) { cache[e * capacity + position] = row[e] }
        }
        for (u, i) in unique.enumerated() {
            let len = requests[i].prompt.count
            for l in 0..<c.layers {
                let (k, v) = prefill.keysAndValues(layer: l, sequence: u)
                for p in 0..<len {
                    store(key: k + p * K, position: p, into: keys[l].pointer + cacheOffset[i], capacity: capacity[i])
                    store(value: v + p * K, position: p, into: values[l].pointer + cacheOffset[i], capacity: capacity[i])
                }
            }
            prefill.copyLastLogits(sequence: u, into: logits.pointer + i * V)
        }
        for (i, r) in requests.enumerated() where firstIndex[r.prompt]! != i {
            let src = firstIndex[r.prompt]!
            // Same prompt, same capacity, so the same layout: copy the whole region.
            let count = capacity[i] * K
            for l in 0..<c.layers {
                (keys[l].pointer + cacheOffset[i]).update(from: keys[l].pointer + cacheOffset[src], count: count)
                (values[l].pointer + cacheOffset[i]).update(from: values[l].pointer + cacheOffset[src], count: count)
            }
            (logits.pointer + i * V).update(from: logits.pointer + src * V, count: V)
        }

        // Per-request random streams and, per worker thread, a token chooser with its own scratch.
        let rngs = UnsafeMutablePointer<Xoshiro256>.allocate(capacity: B)
        rngs.initialize(from: requests.map { Xoshiro256(seed: $0.seed) }, count: B)
        let choosers = UnsafeMutablePointer<TokenChooser>.allocate(capacity: 2)
        for worker in 0..<2 { (choosers + worker).initialize(to: TokenChooser(vocabularySize: V, parameters: parameters)) }
        let choices = UnsafeMutablePointer<TokenChooser.Choice>.allocate(capacity: B)
        defer {
            rngs.deinitialize(count: B).deallocate()
            choosers.deinitialize(count: 2).deallocate()
            choices.deallocate()
        }
        var outputs = requests.map { _ in Completion(tokens: [], logprobs: [], entropies: parameters.computeEntropy ? [] : nil, finishReason: .length) }
        var lengths = requests.map(\.prompt.count)
        var active = Array(0..<B)
        let stopBytes = parameters.stopStrings.map { Array($0.utf8) }
        var textTail = requests.map { _ in [UInt8]() }
        let longestStop = stopBytes.map(\.count).max() ?? 0

        // Step buffers for up to B rows.
        let x = FloatBuffer(count: B * C, zeroed: false), norm = FloatBuffer(count: B * C, zeroed: false)
        let q = FloatBuffer(count: B * Q, zeroed: false), kNew = FloatBuffer(count: B * K, zeroed: false)
        let vNew = FloatBuffer(count: B * K, zeroed: false), attn = FloatBuffer(count: B * Q, zeroed: false)
        let gate = FloatBuffer(count: B * max(I, C), zeroed: false), up = FloatBuffer(count: B * I, zeroed: false)
        let h = FloatBuffer(count: B * I, zeroed: false)
        // Attention scores of one key/value head's query heads, per worker thread (64-byte aligned).
        let group = c.heads / c.kvHeads
        let scoreStride = (group * c.maxPositions + 15) & ~15
        let scores = FloatBuffer(count: 2 * scoreStride, zeroed: false)
        let embedding = model.w(model.layout.embedding)
        let scale = 1 / Float(c.headDim).squareRoot()

        while !active.isEmpty {
            // Choose the next token of every active sequence from its logits row.
            var next: [Int32] = []
            var stillActive: [Int] = []
            // Rows are independent (each has its own random stream), so the two threads share them.
            let rowsNow = active, lp = logits.pointer
            let choose = { (row: Int, worker: Int) in
                choices[row] = choosers[worker].choose(logits: lp + row * V, rng: &rngs[rowsNow[row]])
            }
            PairedWorker.shared.run(chunks: rowsNow.count, choose)
            for (row, i) in active.enumerated() {
                let choice = choices[row]
                outputs[i].tokens.append(choice.token)
                outputs[i].logprobs.append(choice.logprob)
                if parameters.computeEntropy { outputs[i].entropies!.append(choice.entropy) }
                lengths[i] += 1
                var finished = false
                if parameters.stopTokens.contains(choice.token) {
                    outputs[i].finishReason = .stop
                    finished = true
                } else if !stopBytes.isEmpty, let bytesOf = tokenBytes {
                    textTail[i] += bytesOf(choice.token)
                    if textTail[i].count > 4 * longestStop + 64 { textTail[i].removeFirst(textTail[i].count - 2 * longestStop) }
                    if stopBytes.contains(where: { containsSubsequence(textTail[i], $0) }) {
                        outputs[i].finishReason = .stop
                        finished = true
                    }
                }
                if !finished && (outputs[i].tokens.count >= parameters.maxNewTokens || lengths[i] >= capacity[i]) {
                    outputs[i].finishReason = .length
                    finished = true
                }
                if !finished {
                    stillActive.append(i)
                    next.append(choice.token)
                }
            }
            active = stillActive
            let n = active.count
            if n == 0 { break }

            // One decoding step for the n active rows: the new token sits at position lengths[i] − 1.
            for (row, token) in next.enumerated() { (x.pointer + row * C).update(from: embedding + Int(token) * C, count: C) }
            // Each row's cache region and span, the same in every layer of this step.
            let spans = active.map { lengths[$0] }, caches = active.map { cacheOffset[$0] }, capacities = active.map { capacity[$0] }
            for l in 0..<c.layers {
                let lo = model.layout.layers[l]
                RMSNorm.forward(x: x.pointer, weight: model.w(lo.inputNorm), y: norm.pointer, rstd: nil, n: n, c: C, eps: Float(c.rmsNormEps))
                model.projectQKV(layer: l, norm: norm.pointer, q: q.pointer, k: kNew.pointer, v: vNew.pointer, n: n, decoding: true)
                for row in 0..<n {
                    let pos = spans[row] - 1
                    model.rope.apply(q.pointer + row * Q, heads: c.heads, position: pos)
                    model.rope.apply(kNew.pointer + row * K, heads: c.kvHeads, position: pos)
                    store(key: kNew.pointer + row * K, position: pos, into: keys[l].pointer + caches[row], capacity: capacities[row])
                    store(value: vNew.pointer + row * K, position: pos, into: values[l].pointer + caches[row], capacity: capacities[row])
                }
                // One (row, kv head) per chunk, shared by the two threads: each chunk writes its own slice
                // of attn, with the same calls whichever thread runs it.
                let kl = keys[l].pointer, vl = values[l].pointer
                let attend = { (chunk: Int, worker: Int) in
                    let row = chunk / c.kvHeads, g = chunk % c.kvHeads
                    let head = caches[row] + g * capacities[row] * d
                    let firstQuery = row * Q + g * group * d
                    DecodeAttention.forward(queries: q.pointer + firstQuery, heads: group, keysTransposed: kl + head,
                                            stride: capacities[row], values: vl + head, span: spans[row], d: d, scale: scale,
                                            scores: scores.pointer + worker * scoreStride, out: attn.pointer + firstQuery)
                }
                PairedWorker.shared.run(chunks: n * c.kvHeads, attend)
                model.attentionOutputAndMLP(layer: l, input: x.pointer, attn: attn.pointer, mid: x.pointer, norm2: norm.pointer,
                                            rstd2: nil, gate: gate.pointer, up: up.pointer, h: h.pointer, output: x.pointer, n: n,
                                            decoding: true)
            }
            RMSNorm.forward(x: x.pointer, weight: model.w(model.layout.finalNorm), y: norm.pointer, rstd: nil, n: n, c: C, eps: Float(c.rmsNormEps))
            if logits.count < n * V { logits = FloatBuffer(count: n * V, zeroed: false) }
            model.linear(norm.pointer, model.layout.lmHead, nil, logits.pointer, n: n, inFeatures: C, outFeatures: V, decoding: true)
        }
        return outputs
    }
}

@inline(__always)
func containsSubsequence(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        var match = true
        for j in 1..<needle.count where haystack[start + j] != needle[j] { match = false; break }
        if match { return true }
    }
    return false
}

/// Turns one row of logits into a token: behaviour log-prob and entropy from the full tempered
/// distribution, then top-k / top-p truncation, then one uniform draw from the sample's own stream.
struct TokenChooser {
    let vocabularySize: Int
    let parameters: SamplingParameters
    private var probs: [Float]
    private var order: [Int32]

    init(vocabularySize: Int, parameters: SamplingParameters) {
        self.vocabularySize = vocabularySize
        self.parameters = parameters
        probs = [Float](repeating: 0, count: vocabularySize)
        order = (0..<Int32(vocabularySize)).map { $0 }
    }

    typealias Choice = (token: Int32, logprob: Float, entropy: Float)

    mutating func choose(logits z: UnsafePointer<Float>, rng: inout Xoshiro256) -> Choice {
        let V = vocabularySize
        let inv = 1 / parameters.temperature
        let mx = Vector.max(z, count: V) * inv
        let lse = probs.withUnsafeMutableBufferPointer { p -> Float in
            let sum = Vector.expShifted(z, scale: inv, shift: mx, out: p.baseAddress!, count: V)
            Vector.scale(p.baseAddress!, by: 1 / sum, count: V)
            return mx + logf(sum)
        }
        var entropy: Float = 0
        if parameters.computeEntropy {
            var pz: Float = 0
            for j in 0..<V { pz += probs[j] * z[j] * inv }
            entropy = lse - pz
        }
        let u = Float(rng.nextUnit())
        var token: Int32
        if parameters.topK == 0 && parameters.topP >= 1 {
            token = Self.walk(probs: probs, indices: nil, count: V, mass: 1, u: u)
        } else {
            // Sort descending by probability, ties by id, so the result is fully determined.
            order.withUnsafeMutableBufferPointer { o in
                for j in 0..<V { o[j] = Int32(j) }
            }
            let p = probs
            order.sort { p[Int($0)] != p[Int($1)] ? p[Int($0)] > p[Int($1)] : $0 < $1 }
            var keep = parameters.topK > 0 ? min(parameters.topK, V) : V
            var mass: Float = 0
            if parameters.topP < 1 {
                var cum: Float = 0
                for j in 0..<keep {
                    cum += p[Int(order[j])]
                    if cum >= parameters.topP { keep = j + 1; break }
                }
            }
            for j in 0..<keep { mass += p[Int(order[j])] }
            token = Self.walk(probs: p, indices: order, count: keep, mass: mass, u: u)
        }
        let logprob = z[Int(token)] * inv - lse
        return (token, logprob, entropy)
    }

    /// Inverse-CDF draw over `count` candidates (in `indices` order, or id order) holding `mass`.
    private static func walk(probs: [Float], indices: [Int32]?, count: Int, mass: Float, u: Float) -> Int32 {
        let target = u * mass
        var cum: Float = 0
        var last: Int32 = 0
        for j in 0..<count {
            let id = indices.map { $0[j] } ?? Int32(j)
            let pj = probs[Int(id)]
            if pj <= 0 { continue }
            cum += pj
            last = id
            if cum > target { return id }
        }
        return last
    }
}
