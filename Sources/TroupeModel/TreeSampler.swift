import Foundation
import TroupeTensor

/// One tree group to sample (ETTRL's entropy-fork tree rollout): `roots` paths from `prompt`; each
/// path forks at its `forks` highest-entropy tokens into `branching` new branches, which redraw that
/// token and continue. A root gives 1 + forks · branching leaves (ETTRL: M = 12 roots, N = 2 forks,
/// B = 2 branches, 60 leaves).
public struct TreeRequest: Sendable {
    public var prompt: [Int32]
    /// Seeds root r's stream (`Xoshiro256(mixing: [seed, 0, r])`) and each branch's.
    public var seed: UInt64
    public var roots: Int
    public var forks: Int
    public var branching: Int

    public init(prompt: [Int32], seed: UInt64, roots: Int, forks: Int, branching: Int) {
        self.prompt = prompt
        self.seed = seed
        self.roots = roots
        self.forks = forks
        self.branching = branching
    }

    public var leafCount: Int { roots * (1 + forks * branching) }

    /// The seed of root r's stream.
    public static func rootSeed(_ seed: UInt64, root r: Int) -> UInt64 {
        var rng = Xoshiro256(mixing: [seed, 0, UInt64(r)])
        return rng.next()
    }

    /// The seed of branch b at fork f of root r.
    public static func branchSeed(_ seed: UInt64, root r: Int, fork f: Int, branch b: Int) -> UInt64 {
        var rng = Xoshiro256(mixing: [seed, 3, UInt64(r), UInt64(f), UInt64(b)])
        return rng.next()
    }

    /// The fork points of a path: the `forks` tokens of highest entropy (ties: the earlier token),
    /// in order of position. A path of fewer tokens forks again at its tokens in entropy order.
    public static func forkPoints(entropies: [Float], forks: Int) -> [Int] {
        let ranked = entropies.indices.sorted { entropies[$0] != entropies[$1] ? entropies[$0] > entropies[$1] : $0 < $1 }
        guard !ranked.isEmpty else { return [] }
        var chosen = Array(ranked.prefix(forks))
        while chosen.count < forks { chosen.append(ranked[chosen.count % ranked.count]) }
        return chosen.sorted()
    }
}

/// A leaf of a tree: the first `shared` tokens of its root's path, then its own.
public struct TreeLeaf: Sendable, Equatable {
    public var root: Int
    /// Where it forked from its root's path (nil: the root's path itself).
    public var fork: Int?
    /// The whole completion: shared prefix and own tokens, with log-probs for every token.
    public var completion: Completion
}

public struct TreeOutput: Sendable, Equatable {
    /// Per root: its path, then its branches by fork point and branch.
    public var leaves: [TreeLeaf]
    /// Token positions run through the model (the prompt once, each root path, each branch's own tokens).
    public var computedPositions: Int
    /// What sampling every leaf on its own would run.
    public var parallelPositions: Int
}

extension Sampler {
    /// Tree groups: each request's prompt is prefilled once; its roots decode as `generate` would with
    /// the root seeds, keeping each step's logits; then each branch redraws its fork token from the
    /// logits its root drew it from and decodes on, reading the prompt's and the root path's KV regions
    /// (neither recomputed nor copied) and writing only its own.
    public func generateTree(_ requests: [TreeRequest], parameters: SamplingParameters,
                             tokenBytes: ((Int32) -> [UInt8])? = nil) throws -> [TreeOutput] {
        let c = model.config, V = c.vocabularySize
        try parameters.validate(vocabularySize: V)
        guard !requests.isEmpty else { return [] }
        if !parameters.stopStrings.isEmpty && tokenBytes == nil {
            throw ModelError.invalidArgument(name: "stop_strings", reason: "need a tokenizer to decode tokens")
        }
        for (i, r) in requests.enumerated() {
            try model.validate(sequence: r.prompt, what: "prompt \(i)")
            guard r.roots >= 1, r.forks >= 0, r.branching >= 1 else {
                throw ModelError.invalidArgument(name: "tree", reason: "request \(i): needs ≥ 1 root, ≥ 0 forks and ≥ 1 branch per fork")
            }
            guard r.forks <= parameters.maxNewTokens else {
                throw ModelError.invalidArgument(name: "forks", reason: "request \(i): \(r.forks) forks need as many tokens, but a completion holds at most \(parameters.maxNewTokens)")
            }
            let room = c.maxPositions - r.prompt.count
            guard room >= max(1, r.forks) else {
                throw ModelError.invalidArgument(name: "tree", reason: "request \(i): its prompt of \(r.prompt.count) tokens leaves \(room) of the model's \(c.maxPositions) positions, but its roots fork at \(r.forks) tokens")
            }
        }
        // A completion ends where the context does (finish reason `length`), as `generate`'s do.
        let capacities = requests.map { min(parameters.maxNewTokens, c.maxPositions - $0.prompt.count) }
        // Entropies pick the fork points; computing them changes no draw.
        var rootParameters = parameters
        rootParameters.computeEntropy = true
        let B = requests.count
        // Regions: each request's prompt, then its roots, then its branches.
        var regions = requests.map(\.prompt.count)
        var rootRegion: [[Int]] = [], branchRegion: [[Int]] = []
        for (i, r) in requests.enumerated() {
            rootRegion.append((0..<r.roots).map { regions.count + $0 })
            regions += Array(repeating: capacities[i], count: r.roots)
        }
        for (i, r) in requests.enumerated() {
            let n = r.roots * r.forks * r.branching
            branchRegion.append((0..<n).map { regions.count + $0 })
            regions += Array(repeating: capacities[i], count: n)
        }
        let cache = KVCache(config: c, capacities: regions)
        var promptLogits = FloatBuffer(count: B * V, zeroed: false)
        try prefillRegions(requests.map(\.prompt), regions: Array(0..<B), cache: cache, logits: promptLogits)
        var computed = requests.map(\.prompt.count)

        // 1. Roots: row k is (request, root); each starts from its prompt's logits.
        struct RootRow { let request: Int; let root: Int }
        let roots = requests.enumerated().flatMap { i, r in (0..<r.roots).map { RootRow(request: i, root: $0) } }
        let rootTotal = roots.count
        let branchTotal = requests.reduce(0) { $0 + $1.roots * $1.forks * $1.branching }
        let step = SegmentedDecodeStep(model: model, rows: max(rootTotal, branchTotal, 1))
        var logits = FloatBuffer(count: rootTotal * V, zeroed: false)
        for (k, row) in roots.enumerated() { (logits.pointer + k * V).update(from: promptLogits.pointer + row.request * V, count: V) }
        promptLogits = FloatBuffer(count: 0, zeroed: false)
        // Per root, its highest-entropy tokens so far and the logits each was drawn from: (root, fork, V).
        let maxForks = max(1, requests.map(\.forks).max()!)
        let kept = FloatBuffer(count: rootTotal * maxForks * V, zeroed: false)
        var slots = roots.map { _ in [(entropy: Float, position: Int)]() }
        let draws = TokenDraws(seeds: roots.map { TreeRequest.rootSeed(requests[$0.request].seed, root: $0.root) },
                               temperatures: roots.map { _ in parameters.temperature }, vocabularySize: V, parameters: rootParameters)
        var paths = Transcripts(requests: roots.map { SampleRequest(prompt: requests[$0.request].prompt, seed: 0) }, parameters: rootParameters,
                                capacity: roots.map { requests[$0.request].prompt.count + capacities[$0.request] }, tokenBytes: tokenBytes)
        var active = Array(0..<rootTotal)
        while !active.isEmpty {
            draws.choose(for: active, logits: logits.pointer)
            // Keep the row's logits while its token ranks among the root's `forks` highest entropies
            // (a later token must beat an earlier one strictly, as `forkPoints` ranks them).
            for (row, k) in active.enumerated() {
                let forks = requests[roots[k].request].forks, entropy = draws.choices[row].entropy
                let position = paths.outputs[k].tokens.count
                var slot: Int?
                if slots[k].count < forks {
                    slot = slots[k].count
                    slots[k].append((entropy, position))
                } else if let weakest = slots[k].indices.min(by: { slots[k][$0].entropy != slots[k][$1].entropy
                                                                    ? slots[k][$0].entropy < slots[k][$1].entropy
                                                                    : slots[k][$0].position > slots[k][$1].position }),
                          entropy > slots[k][weakest].entropy {
                    slot = weakest
                    slots[k][weakest] = (entropy, position)
                }
                if let slot { (kept.pointer + (k * maxForks + slot) * V).update(from: logits.pointer + row * V, count: V) }
            }
            var next: [Int32] = [], stillActive: [Int] = []
            for (row, k) in active.enumerated() where paths.append(draws.choices[row], to: k) {
                stillActive.append(k)
                next.append(draws.choices[row].token)
            }
            active = stillActive
            if active.isEmpty { break }
            step.run(tokens: next, rows: active.map { k in
                let i = roots[k].request, p = requests[i].prompt.count, own = paths.lengths[k] - p
                return SegmentedDecodeStep.Row(store: rootRegion[i][roots[k].root], local: own - 1, position: p + own - 1,
                                               segments: [(i, p), (rootRegion[i][roots[k].root], own)])
            }, cache: cache, logits: &logits)
            for k in active { computed[roots[k].request] += 1 }
        }

        // 2. Branches: redraw the fork token from the root's logits there, then decode on.
        struct BranchRow { let request: Int; let root: Int; let fork: Int; let at: Int; let slot: Int; let branch: Int; let region: Int }
        var branches: [BranchRow] = []
        for (k, row) in roots.enumerated() {
            let r = requests[row.request]
            // A path shorter than `forks` tokens forks again at its tokens in entropy order, so every
            // root gives 1 + forks · branching leaves.
            let ranked = slots[k].indices.sorted { slots[k][$0].entropy != slots[k][$1].entropy
                                                   ? slots[k][$0].entropy > slots[k][$1].entropy : slots[k][$0].position < slots[k][$1].position }
            var chosen = ranked
            while chosen.count < r.forks { chosen.append(ranked[chosen.count % ranked.count]) }
            let points = chosen.enumerated().sorted { slots[k][$0.element].position != slots[k][$1.element].position
                                                      ? slots[k][$0.element].position < slots[k][$1.element].position : $0.offset < $1.offset }.map(\.element)
            for (f, slot) in points.enumerated() {
                let at = slots[k][slot].position
                for b in 0..<r.branching {
                    let index = (row.root * r.forks + f) * r.branching + b
                    branches.append(BranchRow(request: row.request, root: row.root, fork: f, at: at, slot: slot, branch: b,
                                              region: branchRegion[row.request][index]))
                }
            }
        }
        let rootIndex = { (i: Int, root: Int) in roots.firstIndex { $0.request == i && $0.root == root }! }
        var branchTranscripts: Transcripts?
        if !branches.isEmpty {
            logits = FloatBuffer(count: branches.count * V, zeroed: false)
            for (e, br) in branches.enumerated() {
                (logits.pointer + e * V).update(from: kept.pointer + (rootIndex(br.request, br.root) * maxForks + br.slot) * V, count: V)
            }
            let branchDraws = TokenDraws(seeds: branches.map { TreeRequest.branchSeed(requests[$0.request].seed, root: $0.root, fork: $0.fork, branch: $0.branch) },
                                         temperatures: branches.map { _ in parameters.temperature }, vocabularySize: V, parameters: parameters)
            // A branch's budget is what its root had left at the fork.
            var transcripts = Transcripts(requests: branches.map { br in
                SampleRequest(prompt: requests[br.request].prompt + paths.outputs[rootIndex(br.request, br.root)].tokens[..<br.at], seed: 0)
            }, parameters: parameters, capacity: branches.map { requests[$0.request].prompt.count + capacities[$0.request] }, tokenBytes: tokenBytes)
            // Stop strings are matched on the whole completion's text, the shared prefix included.
            if let tokenBytes {
                for (e, br) in branches.enumerated() {
                    transcripts.textTail[e] = paths.outputs[rootIndex(br.request, br.root)].tokens[..<br.at].flatMap(tokenBytes)
                }
            }
            var active = Array(branches.indices)
            while !active.isEmpty {
                branchDraws.choose(for: active, logits: logits.pointer)
                var next: [Int32] = [], stillActive: [Int] = []
                for (row, e) in active.enumerated() where transcripts.append(branchDraws.choices[row], to: e) {
                    stillActive.append(e)
                    next.append(branchDraws.choices[row].token)
                }
                active = stillActive
                if active.isEmpty { break }
                step.run(tokens: next, rows: active.map { e in
                    let br = branches[e], p = requests[br.request].prompt.count, own = transcripts.outputs[e].tokens.count
                    return SegmentedDecodeStep.Row(store: br.region, local: own - 1, position: p + br.at + own - 1,
                                                   segments: [(br.request, p), (rootRegion[br.request][br.root], br.at), (br.region, own)])
                }, cache: cache, logits: &logits)
                for e in active { computed[branches[e].request] += 1 }
            }
            branchTranscripts = transcripts
        }

        return requests.enumerated().map { i, r in
            var leaves: [TreeLeaf] = []
            var parallel = 0
            for (k, row) in roots.enumerated() where row.request == i {
                var path = paths.outputs[k]
                if !parameters.computeEntropy { path.entropies = nil }
                leaves.append(TreeLeaf(root: row.root, fork: nil, completion: path))
                parallel += r.prompt.count + path.tokens.count - 1
                for (e, br) in branches.enumerated() where br.request == i && br.root == row.root {
                    let own = branchTranscripts!.outputs[e]
                    let completion = Completion(tokens: Array(path.tokens[..<br.at]) + own.tokens,
                                                logprobs: Array(path.logprobs[..<br.at]) + own.logprobs,
                                                entropies: parameters.computeEntropy ? Array(paths.outputs[k].entropies![..<br.at]) + own.entropies! : nil,
                                                finishReason: own.finishReason)
                    leaves.append(TreeLeaf(root: row.root, fork: br.at, completion: completion))
                    parallel += r.prompt.count + completion.tokens.count - 1
                }
            }
            return TreeOutput(leaves: leaves, computedPositions: computed[i], parallelPositions: parallel)
        }
    }
}
