import Foundation
import TroupeTensor

/// One serial group to sample (S-GRPO): a path from `prompt`, then `exits` early exits from it.
public struct SerialRequest: Sendable {
    public var prompt: [Int32]
    /// Seeds the path's stream; exit j's answer and the exit positions have streams derived from it.
    public var seed: UInt64
    public var exits: Int
    /// Tokens appended to the path's prefix at each exit (inserted, not sampled).
    public var exitPhrase: [Int32]
    /// Most answer tokens sampled after the exit phrase.
    public var answerTokens: Int

    public init(prompt: [Int32], seed: UInt64, exits: Int, exitPhrase: [Int32], answerTokens: Int) {
        self.prompt = prompt
        self.seed = seed
        self.exits = exits
        self.exitPhrase = exitPhrase
        self.answerTokens = answerTokens
    }
}

/// An early exit: the path's first `kept` tokens, the exit phrase, then `answer`.
public struct SerialExit: Sendable, Equatable {
    public var kept: Int
    public var answer: Completion
}

public struct SerialOutput: Sendable, Equatable {
    /// The full path: the same completion `generate` draws for (prompt, seed).
    public var path: Completion
    /// Earliest first.
    public var exits: [SerialExit]
    /// Token positions run through the model for this group (prompt, path, each exit's phrase and answer).
    public var computedPositions: Int
    /// What sampling the path and every exit's sequence on its own would run.
    public var parallelPositions: Int
}

extension SerialRequest {
    /// The paper's rule (S-GRPO §3): exit j keeps the path's first P_j tokens, P_j uniform in 1…n−1 (a
    /// proper prefix, so an exit comes before the path's last token, which may end it), drawn `exits`
    /// times from the stream `Xoshiro256(mixing: [seed, 1])` and sorted, earliest first; a path of one
    /// token is exited before it (P = 0).
    public static func exitPositions(pathLength n: Int, exits m: Int, seed: UInt64) -> [Int] {
        guard n >= 2 else { return Array(repeating: 0, count: m) }
        var rng = Xoshiro256(mixing: [seed, 1])
        return (0..<m).map { _ in 1 + Int(rng.next() % UInt64(n - 1)) }.sorted()
    }

    /// The seed of exit j's answer stream.
    public static func exitSeed(_ seed: UInt64, exit j: Int) -> UInt64 {
        var rng = Xoshiro256(mixing: [seed, 2, UInt64(j)])
        return rng.next()
    }
}

extension Sampler {
    /// Serial groups: each request's path is sampled as `generate` samples it, then every exit decodes
    /// the exit phrase and a short answer reading the path's KV cache for the prefix it keeps (the
    /// prefix is neither recomputed nor copied). Log-probs and entropies of the answers are taken as
    /// `generate` takes them, at `parameters.temperature`.
    public func generateSerial(_ requests: [SerialRequest], parameters: SamplingParameters,
                               tokenBytes: ((Int32) -> [UInt8])? = nil) throws -> [SerialOutput] {
        let c = model.config
        try parameters.validate(vocabularySize: c.vocabularySize)
        guard !requests.isEmpty else { return [] }
        if !parameters.stopStrings.isEmpty && tokenBytes == nil {
            throw ModelError.invalidArgument(name: "stop_strings", reason: "need a tokenizer to decode tokens")
        }
        for (i, r) in requests.enumerated() {
            try model.validate(sequence: r.prompt, what: "prompt \(i)")
            guard r.exits >= 1 else { throw ModelError.invalidArgument(name: "exits", reason: "request \(i): needs at least one exit (got \(r.exits))") }
            guard !r.exitPhrase.isEmpty else { throw ModelError.invalidArgument(name: "exit_phrase", reason: "request \(i): is empty") }
            try model.validate(sequence: r.exitPhrase, what: "exit phrase \(i)")
            guard r.answerTokens >= 1 else { throw ModelError.invalidArgument(name: "answer_tokens", reason: "request \(i): must be ≥ 1") }
            // The longest exit (a prefix of n − 1 tokens) must still fit in the model's context.
            if r.prompt.count + parameters.maxNewTokens - 1 + r.exitPhrase.count + r.answerTokens > c.maxPositions {
                throw ModelError.sequenceTooLong(length: r.prompt.count + parameters.maxNewTokens - 1 + r.exitPhrase.count + r.answerTokens,
                                                 maxPositions: c.maxPositions)
            }
        }
        let B = requests.count, V = c.vocabularySize
        // Regions: per request its prompt, its path, then one per exit (phrase + answer).
        let promptRegion = { (r: Int) in 2 * r }, pathRegion = { (r: Int) in 2 * r + 1 }
        var exitRegionStart: [Int] = [], capacities: [Int] = []
        for r in requests { capacities += [r.prompt.count, parameters.maxNewTokens] }
        for r in requests {
            exitRegionStart.append(capacities.count)
            capacities += Array(repeating: r.exitPhrase.count + r.answerTokens, count: r.exits)
        }
        let cache = KVCache(config: c, capacities: capacities)
        var logits = FloatBuffer(count: B * V, zeroed: false)
        try prefillRegions(requests.map(\.prompt), regions: (0..<B).map(promptRegion), cache: cache, logits: logits)
        var computed = requests.map(\.prompt.count)
        let step = SegmentedDecodeStep(model: model, rows: max(B, requests.reduce(0) { $0 + $1.exits }))

        // 1. The paths, exactly as `generate` draws them.
        let pathRequests = requests.map { SampleRequest(prompt: $0.prompt, seed: $0.seed) }
        let pathCapacity = requests.map { $0.prompt.count + parameters.maxNewTokens }
        let draws = TokenDraws(seeds: requests.map(\.seed), temperatures: requests.map { _ in parameters.temperature },
                               vocabularySize: V, parameters: parameters)
        var paths = Transcripts(requests: pathRequests, parameters: parameters, capacity: pathCapacity, tokenBytes: tokenBytes)
        var active = Array(0..<B)
        while !active.isEmpty {
            draws.choose(for: active, logits: logits.pointer)
            var next: [Int32] = [], stillActive: [Int] = []
            for (row, i) in active.enumerated() where paths.append(draws.choices[row], to: i) {
                stillActive.append(i)
                next.append(draws.choices[row].token)
            }
            active = stillActive
            if active.isEmpty { break }
            step.run(tokens: next, rows: active.map { i in
                let p = requests[i].prompt.count, own = paths.lengths[i] - p
                return SegmentedDecodeStep.Row(store: pathRegion(i), local: own - 1, position: p + own - 1,
                                               segments: [(promptRegion(i), p), (pathRegion(i), own)])
            }, cache: cache, logits: &logits)
            for i in active { computed[i] += 1 }
        }

        // 2. The exits: the phrase forced token by token, then the answer sampled.
        struct ExitRow { let request: Int; let exit: Int; let kept: Int }
        var exitRows: [ExitRow] = []
        for (i, r) in requests.enumerated() {
            let kept = SerialRequest.exitPositions(pathLength: paths.outputs[i].tokens.count, exits: r.exits, seed: r.seed)
            for j in 0..<r.exits { exitRows.append(ExitRow(request: i, exit: j, kept: kept[j])) }
        }
        func row(_ e: ExitRow, local: Int) -> SegmentedDecodeStep.Row {
            let r = requests[e.request], p = r.prompt.count
            return SegmentedDecodeStep.Row(store: exitRegionStart[e.request] + e.exit, local: local, position: p + e.kept + local,
                                           segments: [(promptRegion(e.request), p), (pathRegion(e.request), e.kept),
                                                      (exitRegionStart[e.request] + e.exit, local + 1)])
        }
        // Rows whose phrase is still being fed; phrases differ in length only between requests.
        let longestPhrase = requests.map(\.exitPhrase.count).max()!
        let answerLogits = FloatBuffer(count: exitRows.count * V, zeroed: false)
        for t in 0..<longestPhrase {
            let feeding = exitRows.indices.filter { t < requests[exitRows[$0].request].exitPhrase.count }
            step.run(tokens: feeding.map { requests[exitRows[$0].request].exitPhrase[t] }, rows: feeding.map { row(exitRows[$0], local: t) },
                     cache: cache, logits: &logits)
            for (n, e) in feeding.enumerated() {
                computed[exitRows[e].request] += 1
                // A phrase's last token leaves the logits of its exit's first answer token.
                if t == requests[exitRows[e].request].exitPhrase.count - 1 {
                    (answerLogits.pointer + e * V).update(from: logits.pointer + n * V, count: V)
                }
            }
        }
        var answerParameters = parameters
        let answerRequests = exitRows.map { e in
            SampleRequest(prompt: requests[e.request].prompt + Array(paths.outputs[e.request].tokens[..<e.kept]) + requests[e.request].exitPhrase,
                          seed: SerialRequest.exitSeed(requests[e.request].seed, exit: e.exit))
        }
        var answers: Transcripts? = nil
        if !exitRows.isEmpty {
            answerParameters.maxNewTokens = requests.map(\.answerTokens).max()!
            let answerDraws = TokenDraws(seeds: answerRequests.map(\.seed), temperatures: answerRequests.map { _ in parameters.temperature },
                                         vocabularySize: V, parameters: answerParameters)
            var transcripts = Transcripts(requests: answerRequests, parameters: answerParameters,
                                          capacity: zip(answerRequests, exitRows).map { $0.prompt.count + requests[$1.request].answerTokens },
                                          tokenBytes: tokenBytes)
            // Stop strings are matched on the exit's whole text: prefix, phrase and answer.
            if let tokenBytes {
                for (e, x) in exitRows.enumerated() {
                    transcripts.textTail[e] = (paths.outputs[x.request].tokens[..<x.kept] + requests[x.request].exitPhrase).flatMap(tokenBytes)
                }
            }
            var active = Array(exitRows.indices)
            logits = answerLogits
            while !active.isEmpty {
                answerDraws.choose(for: active, logits: logits.pointer)
                var next: [Int32] = [], stillActive: [Int] = []
                for (row, e) in active.enumerated() where transcripts.append(answerDraws.choices[row], to: e) {
                    stillActive.append(e)
                    next.append(answerDraws.choices[row].token)
                }
                active = stillActive
                if active.isEmpty { break }
                step.run(tokens: next, rows: active.map { e in
                    row(exitRows[e], local: requests[exitRows[e].request].exitPhrase.count + transcripts.outputs[e].tokens.count - 1)
                }, cache: cache, logits: &logits)
                for e in active { computed[exitRows[e].request] += 1 }
            }
            answers = transcripts
        }
        return requests.enumerated().map { i, r in
            let mine = exitRows.indices.filter { exitRows[$0].request == i }
            let exits = mine.map { SerialExit(kept: exitRows[$0].kept, answer: answers!.outputs[$0]) }
            let path = paths.outputs[i]
            // On its own, a sequence runs every position but its last through the model.
            let parallel = r.prompt.count + path.tokens.count - 1
                + exits.reduce(0) { $0 + r.prompt.count + $1.kept + r.exitPhrase.count + $1.answer.tokens.count - 1 }
            return SerialOutput(path: path, exits: exits, computedPositions: computed[i], parallelPositions: parallel)
        }
    }

    /// Runs each prompt through the training forward once, storing its keys and values in its region
    /// and its last position's logits in row i of `logits`.
    func prefillRegions(_ prompts: [[Int32]], regions: [Int], cache: KVCache, logits: FloatBuffer) throws {
        let c = model.config, K = c.kvDim, V = c.vocabularySize
        _ = try prefill.forward(ScoringBatch(sequences: prompts, scoreFrom: prompts.map(\.count)), lastPositionLogits: true)
        for (i, prompt) in prompts.enumerated() {
            for l in 0..<c.layers {
                let (k, v) = prefill.keysAndValues(layer: l, sequence: i)
                for p in 0..<prompt.count {
                    cache.store(key: k + p * K, layer: l, sequence: regions[i], position: p)
                    cache.store(value: v + p * K, layer: l, sequence: regions[i], position: p)
                }
            }
            prefill.copyLastLogits(sequence: i, into: logits.pointer + i * V)
        }
    }
}

/// `DecodeStep` for rows whose cache is a chain of regions: row r's new key and value go to position
/// `local` of region `store`, it is rotated as absolute position `position`, and it attends over
/// `segments` (region, positions used) in order. The arithmetic per row is `DecodeStep`'s.
final class SegmentedDecodeStep {
    struct Row {
        var store: Int
        var local: Int
        var position: Int
        var segments: [(region: Int, span: Int)]
    }
    let buffers: DecodeStep
    let model: LlamaModel

    init(model: LlamaModel, rows: Int) {
        self.model = model
        buffers = DecodeStep(model: model, rows: rows)
    }

    func run(tokens: [Int32], rows: [Row], cache: KVCache, logits: inout FloatBuffer) {
        let c = model.config, n = rows.count, b = buffers
        let K = c.kvDim, C = c.hiddenSize, Q = c.qDim, V = c.vocabularySize
        let embedding = model.w(model.layout.embedding)
        for (row, token) in tokens.enumerated() { (b.x.pointer + row * C).update(from: embedding + Int(token) * C, count: C) }
        for l in 0..<c.layers {
            let lo = model.layout.layers[l]
            RMSNorm.forward(x: b.x.pointer, weight: model.w(lo.inputNorm), y: b.norm.pointer, rstd: nil, n: n, c: C, eps: Float(c.rmsNormEps))
            model.projectQKV(layer: l, norm: b.norm.pointer, q: b.q.pointer, k: b.kNew.pointer, v: b.vNew.pointer, n: n, decoding: true)
            for (r, row) in rows.enumerated() {
                model.rope.apply(b.q.pointer + r * Q, heads: c.heads, position: row.position)
                model.rope.apply(b.kNew.pointer + r * K, heads: c.kvHeads, position: row.position)
                cache.store(key: b.kNew.pointer + r * K, layer: l, sequence: row.store, position: row.local)
                cache.store(value: b.vNew.pointer + r * K, layer: l, sequence: row.store, position: row.local)
            }
            attend(layer: l, rows: rows, cache: cache)
            model.attentionOutputAndMLP(layer: l, input: b.x.pointer, attn: b.attn.pointer, mid: b.x.pointer, norm2: b.norm.pointer,
                                        rstd2: nil, gate: b.gate.pointer, up: b.up.pointer, h: b.h.pointer, output: b.x.pointer, n: n,
                                        decoding: true)
        }
        RMSNorm.forward(x: b.x.pointer, weight: model.w(model.layout.finalNorm), y: b.norm.pointer, rstd: nil, n: n, c: C, eps: Float(c.rmsNormEps))
        if logits.count < n * V { logits = FloatBuffer(count: n * V, zeroed: false) }
        model.linear(b.norm.pointer, model.layout.lmHead, nil, logits.pointer, n: n, inFeatures: C, outFeatures: V, decoding: true)
    }

    private func attend(layer l: Int, rows: [Row], cache: KVCache) {
        let c = model.config, d = c.headDim, Q = c.qDim, b = buffers
        let group = b.group, scoreStride = b.scoreStride, scale = b.scale
        let q = b.q, attn = b.attn, scores = b.scores
        let kl = cache.keys[l].pointer, vl = cache.values[l].pointer
        let attendChunk = { (chunk: Int, worker: Int) in
            let r = chunk / c.kvHeads, g = chunk % c.kvHeads
            let segments = rows[r].segments.map { s -> DecodeAttention.Segment in
                let head = cache.offset[s.region] + g * cache.capacity[s.region] * d
                return DecodeAttention.Segment(keys: kl + head, stride: cache.capacity[s.region], values: vl + head, span: s.span)
            }
            let firstQuery = r * Q + g * group * d
            DecodeAttention.forward(queries: q.pointer + firstQuery, heads: group, segments: segments, d: d, scale: scale,
                                    scores: scores.pointer + worker * scoreStride, out: attn.pointer + firstQuery)
        }
        PairedWorker.shared.run(chunks: rows.count * c.kvHeads, attendChunk)
    }
}
