import Foundation
import TroupeTensor

/// Batched sampling with a KV cache. Prompts are prefilled through the training forward (so prompt
/// positions use exactly the training arithmetic), identical prompts are prefilled once and their cache
/// rows shared, then every active sequence advances one token per step.
///
/// Shapes: B requests, n ≤ B still active, C hidden, Q = heads·headDim, K = kvHeads·headDim,
/// I intermediate, V vocab.
public final class Sampler: @unchecked Sendable {
    public let model: LlamaModel
    let prefill: TrainingPass

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
        try validate(requests, parameters: parameters, tokenBytes: tokenBytes)
        let B = requests.count
        let capacities = requests.map { min($0.prompt.count + parameters.maxNewTokens, c.maxPositions) }
        let cache = KVCache(config: c, capacities: capacities)
        var logits = FloatBuffer(count: B * c.vocabularySize, zeroed: false)  // (B, V): row r is active[r]'s
        try prefillPrompts(requests, temperature: parameters.temperature, cache: cache, logits: logits)

        let draws = TokenDraws(seeds: requests.map(\.seed), temperatures: requests.map { $0.temperature ?? parameters.temperature },
                               vocabularySize: c.vocabularySize, parameters: parameters)
        var transcripts = Transcripts(requests: requests, parameters: parameters, capacity: capacities, tokenBytes: tokenBytes)
        let step = DecodeStep(model: model, rows: B)
        var active = Array(0..<B)
        while !active.isEmpty {
            // Choose the next token of every active sequence from its logits row.
            draws.choose(for: active, logits: logits.pointer)
            var next: [Int32] = []
            var stillActive: [Int] = []
            for (row, i) in active.enumerated() {
                let choice = draws.choices[row]
                if transcripts.append(choice, to: i) {
                    stillActive.append(i)
                    next.append(choice.token)
                }
            }
            active = stillActive
            if active.isEmpty { break }
            let spans = active.map { transcripts.lengths[$0] }
            step.run(tokens: next, sequences: active, spans: spans, cache: cache, logits: &logits)
        }
        return transcripts.outputs
    }

    private func validate(_ requests: [SampleRequest], parameters: SamplingParameters,
                          tokenBytes: ((Int32) -> [UInt8])?) throws {
        let c = model.config
        if !parameters.stopStrings.isEmpty && tokenBytes == nil {
            throw ModelError.invalidArgument(name: "stop_strings", reason: "need a tokenizer to decode tokens")
        }
        for (i, r) in requests.enumerated() {
            if let t = r.temperature, !(t.isFinite && t > 0) {
                throw ModelError.invalidArgument(name: "temperature", reason: "request \(i): must be finite and > 0 (got \(t))")
            }
            try model.validate(sequence: r.prompt, what: "prompt \(i)")
            if r.prompt.count >= c.maxPositions {
                throw ModelError.sequenceTooLong(length: r.prompt.count + 1, maxPositions: c.maxPositions)
            }
        }
    }

    /// Runs each distinct prompt once through the training forward, copies its keys and values into
    /// its cache region and its last position's logits into row i of `logits` (B, V). A repeated
    /// prompt gets a copy of the first one's cache region and logits row.
    private func prefillPrompts(_ requests: [SampleRequest], temperature: Float, cache: KVCache, logits: FloatBuffer) throws {
        let c = model.config, K = c.kvDim, V = c.vocabularySize
        var firstIndex: [[Int32]: Int] = [:]
        var unique: [Int] = []
        for (i, r) in requests.enumerated() where firstIndex[r.prompt] == nil {
            firstIndex[r.prompt] = i
            unique.append(i)
        }
        _ = try prefill.forward(ScoringBatch(sequences: unique.map { requests[$0].prompt },
                                             scoreFrom: unique.map { requests[$0].prompt.count },
                                             temperatures: Array(repeating: temperature, count: unique.count)),
                                lastPositionLogits: true)
        // The prefill's keys and values are position-major: (L_u, K) per prompt.
        for (u, i) in unique.enumerated() {
            let len = requests[i].prompt.count
            for l in 0..<c.layers {
                let (k, v) = prefill.keysAndValues(layer: l, sequence: u)
                for p in 0..<len {
                    cache.store(key: k + p * K, layer: l, sequence: i, position: p)
                    cache.store(value: v + p * K, layer: l, sequence: i, position: p)
                }
            }
            prefill.copyLastLogits(sequence: u, into: logits.pointer + i * V)
        }
        for (i, r) in requests.enumerated() where firstIndex[r.prompt]! != i {
            let src = firstIndex[r.prompt]!
            // Same prompt, same capacity, so the same layout: copy the whole region.
            let count = cache.capacity[i] * K
            for l in 0..<c.layers {
                (cache.keys[l].pointer + cache.offset[i]).update(from: cache.keys[l].pointer + cache.offset[src], count: count)
                (cache.values[l].pointer + cache.offset[i]).update(from: cache.values[l].pointer + cache.offset[src], count: count)
            }
            (logits.pointer + i * V).update(from: logits.pointer + src * V, count: V)
        }
    }
}

/// The batch's key/value cache: per layer one buffer, in which sequence i owns `capacity[i]`
/// positions from `offset[i]`. A region is head-major, so decoding attention reads one head's
/// entries in order: values [kv head][position][d], keys transposed [kv head][d][position]
/// (`DecodeAttention`).
struct KVCache {
    let keys: [FloatBuffer], values: [FloatBuffer]  // per layer: (Σ_i capacity[i] · K)
    let offset: [Int]
    let capacity: [Int]
    let kvHeads: Int, headDim: Int

    init(config c: ModelConfig, capacities: [Int]) {
        var offset: [Int] = [], total = 0
        for cap in capacities { offset.append(total); total += cap * c.kvDim }
        keys = (0..<c.layers).map { _ in FloatBuffer(count: total, zeroed: false) }
        values = (0..<c.layers).map { _ in FloatBuffer(count: total, zeroed: false) }
        self.offset = offset
        capacity = capacities
        kvHeads = c.kvHeads
        headDim = c.headDim
    }

    /// Stores a position-major key row (K) at `position` of sequence i, transposed.
    func store(key row: UnsafePointer<Float>, layer l: Int, sequence i: Int, position: Int) {
        let cache = keys[l].pointer + offset[i], capacity = capacity[i]
        for e in 0..<(kvHeads * headDim) { cache[e * capacity + position] = row[e] }
    }

    /// Stores a position-major value row (K) at `position` of sequence i.
    func store(value row: UnsafePointer<Float>, layer l: Int, sequence i: Int, position: Int) {
        let cache = values[l].pointer + offset[i], capacity = capacity[i], d = headDim
        for g in 0..<kvHeads { (cache + (g * capacity + position) * d).update(from: row + g * d, count: d) }
    }
}

/// Per-request random streams and temperatures and, per worker thread, a token chooser with its own scratch.
final class TokenDraws {
    let count: Int, vocabularySize: Int
    let rngs: UnsafeMutablePointer<Xoshiro256>               // (B)
    let temperatures: [Float]                                // (B)
    let choosers: UnsafeMutablePointer<TokenChooser>         // (2): one per `PairedWorker` thread
    let choices: UnsafeMutablePointer<TokenChooser.Choice>   // (B): row r's token of the last `choose`

    init(seeds: [UInt64], temperatures: [Float], vocabularySize V: Int, parameters: SamplingParameters) {
        count = seeds.count
        self.temperatures = temperatures
        vocabularySize = V
        rngs = .allocate(capacity: count)
        rngs.initialize(from: seeds.map { Xoshiro256(seed: $0) }, count: count)
        choosers = .allocate(capacity: 2)
        for worker in 0..<2 { (choosers + worker).initialize(to: TokenChooser(vocabularySize: V, parameters: parameters)) }
        choices = .allocate(capacity: count)
    }

    deinit {
        rngs.deinitialize(count: count).deallocate()
        choosers.deinitialize(count: 2).deallocate()
        choices.deallocate()
    }

    /// Draws `choices[r]` for row r of `logits` (n, V), which belongs to request `sequences[r]`.
    func choose(for sequences: [Int], logits: UnsafeMutablePointer<Float>) {
        // Rows are independent (each has its own random stream), so the two threads share them.
        let rowsNow = sequences, lp = logits, V = vocabularySize
        let choices = self.choices, choosers = self.choosers, rngs = self.rngs, temperatures = self.temperatures
        let choose = { (row: Int, worker: Int) in
            choices[row] = choosers[worker].choose(logits: lp + row * V, temperature: temperatures[rowsNow[row]], rng: &rngs[rowsNow[row]])
        }
        PairedWorker.shared.run(chunks: rowsNow.count, choose)
    }
}

/// What each request has sampled so far, and the rules that end it: a stop token, a stop string in
/// its text, `maxNewTokens`, or its cache capacity.
struct Transcripts {
    var outputs: [Completion]
    /// Prompt plus sampled tokens: the newest token sits at position `lengths[i] − 1`.
    var lengths: [Int]
    let capacity: [Int]
    let parameters: SamplingParameters
    let tokenBytes: ((Int32) -> [UInt8])?
    let stopBytes: [[UInt8]]
    let longestStop: Int
    /// The end of each request's text, long enough to hold any stop string.
    var textTail: [[UInt8]]

    init(requests: [SampleRequest], parameters: SamplingParameters, capacity: [Int], tokenBytes: ((Int32) -> [UInt8])?) {
        outputs = requests.map { _ in Completion(tokens: [], logprobs: [], entropies: parameters.computeEntropy ? [] : nil, finishReason: .length) }
        lengths = requests.map(\.prompt.count)
        self.capacity = capacity
        self.parameters = parameters
        self.tokenBytes = tokenBytes
        stopBytes = parameters.stopStrings.map { Array($0.utf8) }
        longestStop = stopBytes.map(\.count).max() ?? 0
        textTail = requests.map { _ in [UInt8]() }
    }

    /// Records `choice` as request i's next token; false when the request is finished.
    mutating func append(_ choice: TokenChooser.Choice, to i: Int) -> Bool {
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
            // Matched before the tail is cut: a long token may complete a stop string far from its end.
            if stopBytes.contains(where: { containsSubsequence(textTail[i], $0) }) {
                outputs[i].finishReason = .stop
                finished = true
            }
            if textTail[i].count > 4 * longestStop + 64 { textTail[i].removeFirst(textTail[i].count - 2 * longestStop) }
        }
        if !finished && (outputs[i].tokens.count >= parameters.maxNewTokens || lengths[i] >= capacity[i]) {
            outputs[i].finishReason = .length
            finished = true
        }
        return !finished
    }
}

/// One decoding step: every active sequence advances by one token, with step buffers for up to B rows.
/// Row r of the step is sequence `sequences[r]`; its new token sits at position `spans[r] − 1`.
final class DecodeStep {
    let model: LlamaModel
    let x, norm: FloatBuffer    // (B, C) residual stream and its norm
    let q, attn: FloatBuffer    // (B, Q)
    let kNew, vNew: FloatBuffer // (B, K)
    let gate: FloatBuffer       // (B, max(I, C))
    let up, h: FloatBuffer      // (B, I)
    /// Attention scores of one key/value head's query heads, per worker thread (64-byte aligned).
    let scores: FloatBuffer     // (2, scoreStride)
    let group: Int, scoreStride: Int
    let scale: Float

    init(model: LlamaModel, rows B: Int) {
        let c = model.config
        let K = c.kvDim, C = c.hiddenSize, Q = c.qDim, I = c.intermediateSize
        self.model = model
        x = FloatBuffer(count: B * C, zeroed: false); norm = FloatBuffer(count: B * C, zeroed: false)
        q = FloatBuffer(count: B * Q, zeroed: false); kNew = FloatBuffer(count: B * K, zeroed: false)
        vNew = FloatBuffer(count: B * K, zeroed: false); attn = FloatBuffer(count: B * Q, zeroed: false)
        gate = FloatBuffer(count: B * max(I, C), zeroed: false); up = FloatBuffer(count: B * I, zeroed: false)
        h = FloatBuffer(count: B * I, zeroed: false)
        group = c.heads / c.kvHeads
        scoreStride = (group * c.maxPositions + 15) & ~15
        scores = FloatBuffer(count: 2 * scoreStride, zeroed: false)
        scale = 1 / Float(c.headDim).squareRoot()
    }

    /// Embeds `tokens` (n), runs every layer over the n rows, storing each row's new key and value in
    /// the cache, and leaves the next logits (n, V) in `logits`.
    func run(tokens: [Int32], sequences: [Int], spans: [Int], cache: KVCache, logits: inout FloatBuffer) {
        let c = model.config, n = sequences.count
        let K = c.kvDim, C = c.hiddenSize, Q = c.qDim, V = c.vocabularySize
        let embedding = model.w(model.layout.embedding)
        for (row, token) in tokens.enumerated() { (x.pointer + row * C).update(from: embedding + Int(token) * C, count: C) }
        for l in 0..<c.layers {
            let lo = model.layout.layers[l]
            RMSNorm.forward(x: x.pointer, weight: model.w(lo.inputNorm), y: norm.pointer, rstd: nil, n: n, c: C, eps: Float(c.rmsNormEps))
            model.projectQKV(layer: l, norm: norm.pointer, q: q.pointer, k: kNew.pointer, v: vNew.pointer, n: n, decoding: true)
            for row in 0..<n {
                let pos = spans[row] - 1
                model.rope.apply(q.pointer + row * Q, heads: c.heads, position: pos)
                model.rope.apply(kNew.pointer + row * K, heads: c.kvHeads, position: pos)
                cache.store(key: kNew.pointer + row * K, layer: l, sequence: sequences[row], position: pos)
                cache.store(value: vNew.pointer + row * K, layer: l, sequence: sequences[row], position: pos)
            }
            attend(layer: l, sequences: sequences, spans: spans, cache: cache)
            model.attentionOutputAndMLP(layer: l, input: x.pointer, attn: attn.pointer, mid: x.pointer, norm2: norm.pointer,
                                        rstd2: nil, gate: gate.pointer, up: up.pointer, h: h.pointer, output: x.pointer, n: n,
                                        decoding: true)
        }
        RMSNorm.forward(x: x.pointer, weight: model.w(model.layout.finalNorm), y: norm.pointer, rstd: nil, n: n, c: C, eps: Float(c.rmsNormEps))
        if logits.count < n * V { logits = FloatBuffer(count: n * V, zeroed: false) }
        model.linear(norm.pointer, model.layout.lmHead, nil, logits.pointer, n: n, inFeatures: C, outFeatures: V, decoding: true)
    }

    /// attn (n, Q) from q (n, Q) and layer l's cache, each row over its own span.
    private func attend(layer l: Int, sequences: [Int], spans: [Int], cache: KVCache) {
        let c = model.config, d = c.headDim, Q = c.qDim, n = sequences.count
        let group = self.group, scoreStride = self.scoreStride, scale = self.scale
        let q = self.q, attn = self.attn, scores = self.scores
        // Each row's cache region and span, the same in every layer of this step.
        let caches = sequences.map { cache.offset[$0] }, capacities = sequences.map { cache.capacity[$0] }
        // One (row, kv head) per chunk, shared by the two threads: each chunk writes its own slice
        // of attn, with the same calls whichever thread runs it.
        let kl = cache.keys[l].pointer, vl = cache.values[l].pointer
        let attendChunk = { (chunk: Int, worker: Int) in
            let row = chunk / c.kvHeads, g = chunk % c.kvHeads
            let head = caches[row] + g * capacities[row] * d
            let firstQuery = row * Q + g * group * d
            DecodeAttention.forward(queries: q.pointer + firstQuery, heads: group, keysTransposed: kl + head,
                                    stride: capacities[row], values: vl + head, span: spans[row], d: d, scale: scale,
                                    scores: scores.pointer + worker * scoreStride, out: attn.pointer + firstQuery)
        }
        PairedWorker.shared.run(chunks: n * c.kvHeads, attendChunk)
    }
}

/// Whether `needle` occurs in `haystack` (an empty needle never does): stop sequences are matched on
/// bytes, by the sampler as it samples and by the learner when it checks a group's finish reason.
@inline(__always)
package func containsSubsequence(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, needle.count <= haystack.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        var match = true
        for j in 1..<needle.count where haystack[start + j] != needle[j] { match = false; break }
        if match { return true }
    }
    return false
}

/// Turns one row of logits into a token: behaviour log-prob and entropy from the full tempered
/// distribution at the sample's temperature, then top-k / top-p truncation, then one uniform draw from
/// the sample's own stream.
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

    mutating func choose(logits z: UnsafePointer<Float>, temperature: Float, rng: inout Xoshiro256) -> Choice {
        let V = vocabularySize
        let inv = 1 / temperature
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
