import Foundation
import Testing
import TroupeModel
import TroupeTensor

@Suite struct SamplerTests {
    /// Weights at 5× Hugging Face's init scale, so logits and their rounding are larger than usual.
    static func qwenLike() throws -> LlamaModel {
        try LlamaModel.random(config: ModelConfig(modelType: "qwen2", vocabularySize: 97, hiddenSize: 48, intermediateSize: 80,
                                                  layers: 2, heads: 6, kvHeads: 2, rmsNormEps: 1e-6, ropeTheta: 1e6,
                                                  maxPositions: 64, attentionBias: true, tieWordEmbeddings: false),
                              seed: 7, std: 0.1)
    }

    /// The zero-mismatch promise: what the sampler reports as behaviour log-probs is what the training
    /// forward computes for the same tokens, within 1e-5 per token.
    @Test(arguments: [Float(1.0), 0.7])
    func decodingLogprobsMatchTrainingForward(temperature: Float) throws {
        for model in [try ModelDirectory.load(Fixtures.llamaTiny), try Self.qwenLike(), try ModelDirectory.load(Fixtures.qwen3Tiny),
                      try ModelDirectory.load(Fixtures.llama3RopeTiny), try ModelDirectory.load(Fixtures.llamaBiasTiny)] {
            let sampler = Sampler(model: model)
            let prompts: [[Int32]] = [[1, 2, 3, 4, 5], [9, 8], [1, 2, 3, 4, 5], [40, 41, 42, 43, 44, 45, 46, 47, 48]]
            let requests = prompts.enumerated().map { SampleRequest(prompt: $1, seed: UInt64($0) + 100) }
            let params = SamplingParameters(temperature: temperature, maxNewTokens: 24, computeEntropy: true)
            let out = try sampler.generate(requests, parameters: params)
            let pass = TrainingPass(model: model)
            let scored = try pass.forward(ScoringBatch(sequences: zip(prompts, out).map { $0 + $1.tokens },
                                                       scoreFrom: prompts.map(\.count),
                                                       temperatures: Array(repeating: temperature, count: prompts.count)),
                                          entropy: true)
            var worst: Float = 0, worstEntropy: Float = 0
            for (i, completion) in out.enumerated() {
                #expect(completion.tokens.count == 24 && completion.finishReason == .length)
                for t in 0..<completion.tokens.count {
                    worst = max(worst, abs(completion.logprobs[t] - scored.logprobs[i][t]))
                    worstEntropy = max(worstEntropy, abs(completion.entropies![t] - scored.entropies![i][t]))
                }
            }
            #expect(worst <= 1e-5, "max |decode − training| log-prob difference \(worst)")
            #expect(worstEntropy <= 1e-4, "max entropy difference \(worstEntropy)")
        }
    }

    @Test func seededSamplesRegenerateExactly() throws {
        let sampler = Sampler(model: try Self.qwenLike())
        let params = SamplingParameters(temperature: 1.0, topK: 20, topP: 0.9, maxNewTokens: 16)
        let a = try sampler.generate([SampleRequest(prompt: [3, 4], seed: 42), SampleRequest(prompt: [5], seed: 43)], parameters: params)
        let b = try sampler.generate([SampleRequest(prompt: [3, 4], seed: 42), SampleRequest(prompt: [5], seed: 43)], parameters: params)
        #expect(a == b)
        let c = try sampler.generate([SampleRequest(prompt: [3, 4], seed: 44)], parameters: params)
        #expect(c[0].tokens != a[0].tokens, "a different seed should give a different sample")
    }

    /// A sample's tokens depend on its seed and the weights only, not on what shares its batch: so
    /// groups come out the same whichever actor, and however many, sampled them.
    @Test func samplingIsBatchInvariant() throws {
        let sampler = Sampler(model: try Self.qwenLike())
        let params = SamplingParameters(temperature: 0.9, maxNewTokens: 20)
        let alone = try sampler.generate([SampleRequest(prompt: [7, 8, 9], seed: 77)], parameters: params)[0]
        let crowd = (0..<11).map { SampleRequest(prompt: [Int32($0 % 5 + 1), 2], seed: UInt64($0)) }
        let batched = try sampler.generate(crowd[0..<4] + [SampleRequest(prompt: [7, 8, 9], seed: 77)] + crowd[4...],
                                           parameters: params)[4]
        #expect(alone == batched)
    }

    @Test func topKOneIsGreedy() throws {
        let model = try Self.qwenLike()
        let out = try Sampler(model: model).generate([SampleRequest(prompt: [1, 2, 3], seed: 1)],
                                                     parameters: SamplingParameters(topK: 1, maxNewTokens: 5))
        let pass = TrainingPass(model: model)
        var seq: [Int32] = [1, 2, 3]
        for t in out[0].tokens {
            _ = try pass.forward(ScoringBatch(sequences: [seq]), allLogits: true)
            let logits = try #require(pass.logits(sequence: 0))
            let last = Array(logits[(seq.count - 1) * 97..<seq.count * 97])
            #expect(Int32(last.firstIndex(of: last.max()!)!) == t)
            seq.append(t)
        }
    }

    @Test func stopTokensAndStopStringsEndCompletions() throws {
        let model = try Self.qwenLike()
        let sampler = Sampler(model: model)
        let free = try sampler.generate([SampleRequest(prompt: [1], seed: 5)], parameters: SamplingParameters(maxNewTokens: 20))[0]
        let stopAt = free.tokens[3]
        let firstIndex = free.tokens.firstIndex(of: stopAt)!
        let stopped = try sampler.generate([SampleRequest(prompt: [1], seed: 5)],
                                           parameters: SamplingParameters(maxNewTokens: 20, stopTokens: [stopAt]))[0]
        #expect(stopped.finishReason == .stop)
        #expect(stopped.tokens == Array(free.tokens[...firstIndex]))
        // Token t decodes to the two characters of String(t % 10) + "x": a stop string across tokens.
        let bytes: (Int32) -> [UInt8] = { Array("\($0 % 10)x".utf8) }
        let target = "\(free.tokens[2] % 10)x\(free.tokens[3] % 10)"
        let byString = try sampler.generate([SampleRequest(prompt: [1], seed: 5)],
                                            parameters: SamplingParameters(maxNewTokens: 20, stopStrings: [target]), tokenBytes: bytes)[0]
        #expect(byString.finishReason == .stop)
        #expect(byString.tokens.count <= 4)
        // A token far longer than the stop string, completing it at its start: found all the same.
        let long: (Int32) -> [UInt8] = { $0 == free.tokens[1] ? Array(("\n" + String(repeating: "y", count: 99)).utf8) : [UInt8(ascii: "z")] }
        let byLongToken = try sampler.generate([SampleRequest(prompt: [1], seed: 5)],
                                               parameters: SamplingParameters(maxNewTokens: 20, stopStrings: ["\n"]), tokenBytes: long)[0]
        #expect(byLongToken.finishReason == .stop && byLongToken.tokens.count == free.tokens.firstIndex(of: free.tokens[1])! + 1,
                "\(byLongToken.tokens) of \(free.tokens)")
    }

    @Test func badInputIsAClearError() throws {
        let sampler = Sampler(model: try Self.qwenLike())
        let ok = SampleRequest(prompt: [1], seed: 1)
        #expect(throws: ModelError.emptyInput(what: "prompt 0")) {
            try sampler.generate([SampleRequest(prompt: [], seed: 1)], parameters: SamplingParameters())
        }
        #expect(throws: ModelError.tokenOutOfRange(id: 97, vocabularySize: 97)) {
            try sampler.generate([SampleRequest(prompt: [97], seed: 1)], parameters: SamplingParameters())
        }
        #expect(throws: ModelError.invalidArgument(name: "max_new_tokens", reason: "must be > 0 (got 0)")) {
            try sampler.generate([ok], parameters: SamplingParameters(maxNewTokens: 0))
        }
        #expect(throws: (any Error).self) { try sampler.generate([ok], parameters: SamplingParameters(temperature: 0)) }
        #expect(throws: (any Error).self) { try sampler.generate([ok], parameters: SamplingParameters(topP: 1.5)) }
        // The position limit ends a completion with reason length.
        let long = try sampler.generate([SampleRequest(prompt: Array(repeating: 3, count: 60), seed: 1)],
                                        parameters: SamplingParameters(maxNewTokens: 50))[0]
        #expect(long.tokens.count == 4 && long.finishReason == .length)
    }
}

/// Multi-temperature groups: each request may carry its own temperature.
@Suite struct MultiTemperatureSamplerTests {
    /// A request at its own temperature comes out as if the whole batch sampled at it, and its
    /// behaviour log-probs are the training forward's at that temperature.
    @Test func eachRequestSamplesAndScoresAtItsOwnTemperature() throws {
        let model = try SamplerTests.qwenLike()
        let sampler = Sampler(model: model)
        let temperatures: [Float] = [0.6, 1.0, 1.3, 0.6, 1.0, 1.3]
        let prompt: [Int32] = [5, 6, 7]
        let requests = temperatures.enumerated().map { SampleRequest(prompt: prompt, seed: UInt64($0) + 500, temperature: $1) }
        let params = SamplingParameters(temperature: 1.0, maxNewTokens: 16)
        let mixed = try sampler.generate(requests, parameters: params)
        for (i, t) in temperatures.enumerated() {
            let alone = try sampler.generate([SampleRequest(prompt: prompt, seed: UInt64(i) + 500)],
                                             parameters: SamplingParameters(temperature: t, maxNewTokens: 16))[0]
            #expect(mixed[i] == alone, "request \(i) at temperature \(t)")
        }
        #expect(Set(mixed.map(\.tokens)).count > 1)
        let scored = try TrainingPass(model: model).forward(ScoringBatch(sequences: mixed.map { prompt + $0.tokens },
                                                                        scoreFrom: mixed.map { _ in prompt.count },
                                                                        temperatures: temperatures))
        var worst: Float = 0
        for (i, c) in mixed.enumerated() {
            for t in c.tokens.indices { worst = max(worst, abs(c.logprobs[t] - scored.logprobs[i][t])) }
        }
        #expect(worst <= 1e-5, "max |decode − training| log-prob difference \(worst)")
    }

    @Test func aRequestTemperatureThatIsNotPositiveIsRefused() throws {
        let sampler = Sampler(model: try SamplerTests.qwenLike())
        #expect(throws: ModelError.self) {
            _ = try sampler.generate([SampleRequest(prompt: [1], seed: 1, temperature: 0)], parameters: SamplingParameters())
        }
    }
}

/// Serial groups (S-GRPO): one path, then early exits that read the path's KV cache.
@Suite struct SerialSamplerTests {
    @Test func exitsReadThePathsCacheAndScoreAsTheTrainingForward() throws {
        let model = try SamplerTests.qwenLike()
        let sampler = Sampler(model: model)
        let params = SamplingParameters(temperature: 0.9, maxNewTokens: 20, computeEntropy: true)
        let requests = [SerialRequest(prompt: [5, 6, 7], seed: 11, exits: 4, exitPhrase: [90, 91, 92], answerTokens: 6),
                        SerialRequest(prompt: [40, 41], seed: 12, exits: 3, exitPhrase: [93], answerTokens: 5)]
        let out = try sampler.generateSerial(requests, parameters: params)
        let plain = try sampler.generate(requests.map { SampleRequest(prompt: $0.prompt, seed: $0.seed) }, parameters: params)
        let pass = TrainingPass(model: model)
        var worst: Float = 0
        for (i, r) in requests.enumerated() {
            let group = out[i]
            // The path is what independent sampling draws: the segmented cache changes no bit.
            #expect(group.path == plain[i])
            #expect(group.exits.count == r.exits)
            #expect(group.exits.map(\.kept) == group.exits.map(\.kept).sorted())
            #expect(group.exits.allSatisfy { $0.kept >= 1 && $0.kept < group.path.tokens.count })
            let sequences = group.exits.map { r.prompt + group.path.tokens[..<$0.kept] + r.exitPhrase + $0.answer.tokens }
            let from = group.exits.map { r.prompt.count + $0.kept + r.exitPhrase.count }
            let scored = try pass.forward(ScoringBatch(sequences: sequences, scoreFrom: from,
                                                       temperatures: sequences.map { _ in params.temperature }), entropy: true)
            for (j, exit) in group.exits.enumerated() {
                #expect(!exit.answer.tokens.isEmpty && exit.answer.tokens.count <= r.answerTokens)
                for t in exit.answer.tokens.indices { worst = max(worst, abs(exit.answer.logprobs[t] - scored.logprobs[j][t])) }
            }
            // The prompt and the kept prefix are run once, by the path; each exit runs only its phrase and answer.
            let n = group.path.tokens.count, phrase = r.exitPhrase.count
            #expect(group.computedPositions == r.prompt.count + n - 1 + group.exits.reduce(0) { $0 + phrase + $1.answer.tokens.count - 1 })
            #expect(group.parallelPositions - group.computedPositions == group.exits.reduce(0) { $0 + r.prompt.count + $1.kept })
        }
        #expect(worst <= 1e-5, "max |serial decode − training| log-prob difference \(worst)")
        #expect(try sampler.generateSerial(requests, parameters: params) == out)
    }

    @Test func exitPositionsFollowThePapersRule() {
        let positions = SerialRequest.exitPositions(pathLength: 10, exits: 200, seed: 3)
        #expect(positions == positions.sorted() && Set(positions) == Set(1...9))
        #expect(SerialRequest.exitPositions(pathLength: 1, exits: 3, seed: 3) == [0, 0, 0])
    }

    @Test func aSerialRequestThatCannotProduceAGroupIsRefused() throws {
        let sampler = Sampler(model: try SamplerTests.qwenLike())
        for bad in [SerialRequest(prompt: [1], seed: 1, exits: 0, exitPhrase: [2], answerTokens: 2),
                    SerialRequest(prompt: [1], seed: 1, exits: 2, exitPhrase: [], answerTokens: 2),
                    SerialRequest(prompt: [1], seed: 1, exits: 2, exitPhrase: [2], answerTokens: 60)] {
            #expect(throws: ModelError.self) { _ = try sampler.generateSerial([bad], parameters: SamplingParameters(maxNewTokens: 8)) }
        }
    }
}

/// Tree groups (ETTRL's entropy-fork tree rollout): roots fork at their highest-entropy tokens and the
/// branches read the shared prefix's KV cache.
@Suite struct TreeSamplerTests {
    @Test func leavesScoreAsAFullRescoreAndTheSharedPrefixIsComputedOnce() throws {
        let model = try SamplerTests.qwenLike()
        let sampler = Sampler(model: model)
        let params = SamplingParameters(temperature: 1.0, maxNewTokens: 14)
        let requests = [TreeRequest(prompt: [5, 6, 7], seed: 21, roots: 3, forks: 2, branching: 2),
                        TreeRequest(prompt: [40, 41], seed: 22, roots: 2, forks: 3, branching: 1)]
        let out = try sampler.generateTree(requests, parameters: params)
        let withEntropy = SamplingParameters(temperature: 1.0, maxNewTokens: 14, computeEntropy: true)
        let pass = TrainingPass(model: model)
        var worst: Float = 0
        for (i, r) in requests.enumerated() {
            let tree = out[i]
            #expect(tree.leaves.count == r.leafCount)
            // Each root is what independent sampling draws with its seed; it forks at its top-entropy tokens.
            let rootPaths = try sampler.generate((0..<r.roots).map { SampleRequest(prompt: r.prompt, seed: TreeRequest.rootSeed(r.seed, root: $0)) },
                                                 parameters: withEntropy)
            for root in 0..<r.roots {
                let mine = tree.leaves.filter { $0.root == root }
                #expect(mine.first?.fork == nil && mine.first?.completion.tokens == rootPaths[root].tokens)
                let points = TreeRequest.forkPoints(entropies: rootPaths[root].entropies!, forks: r.forks)
                #expect(mine.dropFirst().map { $0.fork! } == points.flatMap { Array(repeating: $0, count: r.branching) })
                for leaf in mine.dropFirst() {
                    #expect(leaf.completion.tokens[..<leaf.fork!] == rootPaths[root].tokens[..<leaf.fork!])
                }
            }
            let scored = try pass.forward(ScoringBatch(sequences: tree.leaves.map { r.prompt + $0.completion.tokens },
                                                       scoreFrom: tree.leaves.map { _ in r.prompt.count },
                                                       temperatures: tree.leaves.map { _ in params.temperature }))
            for (j, leaf) in tree.leaves.enumerated() {
                for t in leaf.completion.tokens.indices { worst = max(worst, abs(leaf.completion.logprobs[t] - scored.logprobs[j][t])) }
            }
            // The prompt once, each root's tokens once, then only each branch's own tokens.
            let rootsRun = tree.leaves.filter { $0.fork == nil }.reduce(0) { $0 + $1.completion.tokens.count - 1 }
            let branchesRun = tree.leaves.filter { $0.fork != nil }.reduce(0) { $0 + $1.completion.tokens.count - $1.fork! - 1 }
            #expect(tree.computedPositions == r.prompt.count + rootsRun + branchesRun)
            #expect(tree.parallelPositions == tree.leaves.reduce(0) { $0 + r.prompt.count + $1.completion.tokens.count - 1 })
            #expect(tree.computedPositions < tree.parallelPositions)
        }
        #expect(worst <= 1e-5, "max |tree decode − training| log-prob difference \(worst)")
        #expect(try sampler.generateTree(requests, parameters: params) == out)
    }

    @Test func aTreeThatCannotProduceItsLeavesIsRefused() throws {
        let sampler = Sampler(model: try SamplerTests.qwenLike())
        for bad in [TreeRequest(prompt: [1], seed: 1, roots: 0, forks: 1, branching: 1),
                    TreeRequest(prompt: [1], seed: 1, roots: 1, forks: 9, branching: 1),
                    TreeRequest(prompt: [1], seed: 1, roots: 1, forks: 1, branching: 0)] {
            #expect(throws: ModelError.self) { _ = try sampler.generateTree([bad], parameters: SamplingParameters(maxNewTokens: 8)) }
        }
        // A prompt that leaves fewer positions than the roots fork at.
        let full = TreeRequest(prompt: Array(repeating: 3, count: 63), seed: 1, roots: 1, forks: 2, branching: 1)
        #expect(throws: ModelError.self) { _ = try sampler.generateTree([full], parameters: SamplingParameters(maxNewTokens: 8)) }
    }

    @Test func treeCompletionsEndWhereTheContextDoesAsIndependentOnesDo() throws {
        let model = try SamplerTests.qwenLike()  // 64 positions
        let sampler = Sampler(model: model)
        let params = SamplingParameters(temperature: 1.0, maxNewTokens: 14)
        let long = TreeRequest(prompt: Array(repeating: 9, count: 58), seed: 5, roots: 2, forks: 2, branching: 1)
        let short = TreeRequest(prompt: [5, 6, 7], seed: 6, roots: 1, forks: 2, branching: 2)
        let out = try sampler.generateTree([long, short], parameters: params)
        // The long prompt's leaves hold the 6 positions left; the short one's are untouched by it.
        #expect(out[0].leaves.allSatisfy { $0.completion.tokens.count == 6 && $0.completion.finishReason == .length })
        let alone = try sampler.generateTree([short], parameters: params)[0]
        #expect(out[1].leaves.map(\.completion.tokens) == alone.leaves.map(\.completion.tokens))
        #expect(out[1].computedPositions == alone.computedPositions && out[1].parallelPositions == alone.parallelPositions)
        let lp = zip(out[1].leaves, alone.leaves).map { zip($0.completion.logprobs, $1.completion.logprobs).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
        #expect(lp <= 1e-5, "\(lp)")
        let independent = try sampler.generate([SampleRequest(prompt: long.prompt, seed: TreeRequest.rootSeed(long.seed, root: 0))], parameters: params)
        #expect(out[0].leaves[0].completion.tokens == independent[0].tokens)
        let scored = try TrainingPass(model: model).forward(ScoringBatch(sequences: out[0].leaves.map { long.prompt + $0.completion.tokens },
                                                                          scoreFrom: out[0].leaves.map { _ in long.prompt.count },
                                                                          temperatures: out[0].leaves.map { _ in params.temperature }))
        for (j, leaf) in out[0].leaves.enumerated() {
            for t in leaf.completion.tokens.indices { #expect(abs(leaf.completion.logprobs[t] - scored.logprobs[j][t]) <= 1e-5) }
        }
    }
}
