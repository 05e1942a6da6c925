import Foundation
import Testing
import TroupeModel
import TroupeTensor

/// Logits, log-probs and gradients against Hugging Face transformers' float64 reference.
@Suite struct ConformanceTests {
    /// The model of `directory` run on its fixture's one sequence: its logits and token log-probs within
    /// 1e-4 of the reference.
    static func expectOneSequenceMatches(_ directory: String) throws
        -> (model: LlamaModel, ref: SafetensorsFile, ids: [Int32], pass: TrainingPass, result: ScoringResult) {
        let model = try ModelDirectory.load(directory)
        let ref = try SafetensorsFile(path: directory + "/fixture/fixture.safetensors")
        let ids = try ref.doubles("input_ids").map { Int32($0) }
        let pass = TrainingPass(model: model)
        let result = try pass.forward(ScoringBatch(sequences: [ids]), allLogits: true)
        #expect(maxAbsDiff(try #require(pass.logits(sequence: 0)), try ref.doubles("logits_f64")) < 1e-4)
        #expect(maxAbsDiff(result.logprobs[0], try ref.doubles("token_logprobs_f64")) < 1e-4)
        return (model, ref, ids, pass, result)
    }

    /// The gradients of the mean log-prob over every scored token of the last forward (the fixtures'
    /// quantity), for the named parameters, within 1e-3 of the reference relative to its largest value.
    static func expectGradientsOfTheMeanLogLikelihood(_ pass: TrainingPass, _ result: ScoringResult, _ ref: SafetensorsFile,
                                                      _ names: [String]) throws {
        pass.zeroGradients()
        let total = Float(result.logprobs.reduce(0) { $0 + $1.count })
        try pass.backward(dLogprobs: result.logprobs.map { Array(repeating: 1 / total, count: $0.count) })
        for name in names {
            let e = try #require(pass.model.layout.entry(named: name))
            let ours = Array(UnsafeBufferPointer(start: pass.gradients.pointer + e.offset, count: e.count))
            let diff = maxNormRelDiff(ours, try ref.doubles("grad.\(name)_f64"))
            #expect(diff < 1e-3, "gradient of \(name): relative max-norm difference \(diff)")
        }
    }

    @Test func llamaTinyMatchesTransformers() throws {
        let (_, ref, _, pass, result) = try Self.expectOneSequenceMatches(Fixtures.llamaTiny)
        #expect(abs(result.meanLogLikelihood - (try ref.doubles("mean_loglik_f64"))[0]) < 1e-5)

        try Self.expectGradientsOfTheMeanLogLikelihood(pass, result, ref, ["model.embed_tokens.weight",
                                                                          "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"])
    }

    /// Llama 3 RoPE scaling (scripts/fixtures/make_llama3_rope_tiny.py): frequencies kept, divided and
    /// blended all occur in the sequence, and the same weights without the scaling miss the reference.
    @Test func llama3RopeScalingMatchesTransformers() throws {
        let (model, ref, ids, pass, result) = try Self.expectOneSequenceMatches(Fixtures.llama3RopeTiny)
        #expect(model.config.ropeScaling?.kind == .llama3)
        try Self.expectGradientsOfTheMeanLogLikelihood(pass, result, ref, ["model.embed_tokens.weight",
                                                                          "model.layers.0.self_attn.k_proj.weight",
                                                                          "model.layers.1.self_attn.q_proj.weight"])

        var unscaled = model.config
        unscaled.ropeScaling = nil
        let plain = TrainingPass(model: try LlamaModel(config: unscaled, parameters: model.parameters))
        _ = try plain.forward(ScoringBatch(sequences: [ids]), allLogits: true)
        #expect(maxAbsDiff(try #require(plain.logits(sequence: 0)), try ref.doubles("logits_f64")) > 1e-3,
                "the fixture does not tell a scaled RoPE from an unscaled one")
    }

    /// Qwen3 (scripts/fixtures/make_qwen3_tiny.py): the per-head query and key norms, with norm weights
    /// far from 1, and their gradients; two sequences run as one packed batch.
    @Test func qwen3TinyMatchesTransformersWithItsQueryAndKeyNorms() throws {
        let model = try ModelDirectory.load(Fixtures.qwen3Tiny)
        #expect(model.config.queryKeyNorm && !model.config.attentionBias && !model.config.tieWordEmbeddings)
        let ref = try SafetensorsFile(path: Fixtures.qwen3Tiny + "/fixture/fixture.safetensors")
        let seqs = try (0..<2).map { i in try ref.doubles("input_ids_\(i)").map { Int32($0) } }
        let pass = TrainingPass(model: model)
        let result = try pass.forward(ScoringBatch(sequences: seqs), allLogits: true)
        for i in 0..<2 {
            #expect(maxAbsDiff(try #require(pass.logits(sequence: i)), try ref.doubles("logits_\(i)_f64")) < 1e-4, "logits of sequence \(i)")
            #expect(maxAbsDiff(result.logprobs[i], try ref.doubles("token_logprobs_\(i)_f64")) < 1e-4)
        }
        try Self.expectGradientsOfTheMeanLogLikelihood(pass, result, ref, ["model.layers.0.self_attn.q_norm.weight",
                                                                          "model.layers.1.self_attn.k_norm.weight",
                                                                          "model.layers.0.self_attn.q_proj.weight",
                                                                          "model.layers.1.self_attn.k_proj.weight", "lm_head.weight"])
    }

    /// Llama with `attention_bias` (scripts/fixtures/make_llama_bias_tiny.py): random biases on q, k, v
    /// and o, and the gradients of o's; the same weights without o's bias miss the reference.
    @Test func llamaWithAttentionBiasMatchesTransformers() throws {
        let (model, ref, ids, pass, result) = try Self.expectOneSequenceMatches(Fixtures.llamaBiasTiny)
        #expect(model.config.outputProjectionBias)
        try Self.expectGradientsOfTheMeanLogLikelihood(pass, result, ref, ["model.layers.0.self_attn.o_proj.bias",
                                                                          "model.layers.1.self_attn.o_proj.bias",
                                                                          "model.layers.0.self_attn.o_proj.weight",
                                                                          "model.layers.1.self_attn.q_proj.bias", "lm_head.weight"])

        let withoutOutputBias = try LlamaModel(config: model.config, parameters: FloatBuffer(model.parameters.array))
        for l in 0..<model.config.layers {
            let e = try #require(model.layout.entry(named: "model.layers.\(l).self_attn.o_proj.bias"))
            withoutOutputBias.parameters.pointer.advanced(by: e.offset).update(repeating: 0, count: e.count)
        }
        let plain = TrainingPass(model: withoutOutputBias)
        _ = try plain.forward(ScoringBatch(sequences: [ids]), allLogits: true)
        #expect(maxAbsDiff(try #require(plain.logits(sequence: 0)), try ref.doubles("logits_f64")) > 1e-3,
                "the fixture does not tell an o_proj bias from none")
    }

    @Test func qwen2TinyPaddedBatchMatchesTransformers() throws {
        let model = try ModelDirectory.load(Fixtures.qwen2Tiny)
        #expect(model.config.attentionBias && !model.config.tieWordEmbeddings && model.config.ropeTheta == 1e6)
        let ref = try SafetensorsFile(path: Fixtures.qwen2Tiny + "/fixture.safetensors")
        let seqs = try (0..<3).map { i in try ref.doubles("input_ids.\(i)").map { Int32($0) } }
        let pass = TrainingPass(model: model)
        let result = try pass.forward(ScoringBatch(sequences: seqs), allLogits: true)
        for i in 0..<3 {
            let logits = try #require(pass.logits(sequence: i))
            #expect(maxAbsDiff(logits, try ref.doubles("logits.\(i)_f64")) < 1e-4, "logits of sequence \(i)")
            #expect(maxAbsDiff(result.logprobs[i], try ref.doubles("token_logprobs.\(i)_f64")) < 1e-4)
        }
        try Self.expectGradientsOfTheMeanLogLikelihood(pass, result, ref, ["model.embed_tokens.weight", "lm_head.weight",
                                                                          "model.layers.1.self_attn.k_proj.bias",
                                                                          "model.layers.2.mlp.down_proj.weight",
                                                                          "model.layers.0.input_layernorm.weight"])
    }
}
