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
        for model in [try ModelDirectory.load(Fixtures.llamaTiny), try Self.qwenLike()] {
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
