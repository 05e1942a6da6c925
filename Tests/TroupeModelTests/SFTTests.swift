import Foundation
import Testing
import TroupeModel
import TroupeTensor
import TroupeTokenizer

private let toyConfig = ModelConfig(vocabularySize: 16, hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 2,
                                    kvHeads: 1, maxPositions: 32, tieWordEmbeddings: false)

/// Three prompts, each with its own continuation ending in token 15 (the toy EOS).
private let toyData = [
    SFTExample(prompt: [1, 2, 3], completion: [4, 5, 15]),
    SFTExample(prompt: [1, 2, 6], completion: [7, 8, 15]),
    SFTExample(prompt: [9, 10], completion: [11, 15]),
]

@Test func sftLossFallsOnToyData() throws {
    let model = try LlamaModel.random(config: toyConfig, seed: 3)
    let trainer = try SFTTrainer(model: model, optimizer: AdamWOptions(learningRate: 1e-2))
    let before = try trainer.evaluate(toyData)
    var last = try trainer.step(toyData)
    #expect(abs(last.loss - before.loss) < 1e-5, "the step reports the loss before its update")
    for _ in 0..<39 { last = try trainer.step(toyData) }
    let after = try trainer.evaluate(toyData)
    #expect(before.completionTokens == 8)
    #expect(before.loss > 2, "a random model is near uniform over 16 tokens (ln 16 ≈ 2.77)")
    #expect(after.loss < 0.3 * before.loss, "loss \(before.loss) → \(after.loss)")
    #expect(!last.skipped && last.gradNorm.isFinite)
}

@Test func sftLossCountsCompletionTokensOnly() throws {
    let model = try LlamaModel.random(config: toyConfig, seed: 5)
    // Every position scored by an independent forward; keep only the completion positions.
    let full = try TrainingPass(model: model).forward(ScoringBatch(sequences: toyData.map(\.sequence)))
    var nll = 0.0, count = 0
    for (s, e) in toyData.enumerated() {
        let completionLogprobs = full.logprobs[s].suffix(e.completion.count)
        nll -= completionLogprobs.reduce(0.0) { $0 + Double($1) }
        count += completionLogprobs.count
    }
    let trainer = try SFTTrainer(model: model, optimizer: AdamWOptions(learningRate: 1e-3))
    let evaluated = try trainer.evaluate(toyData)
    #expect(evaluated.completionTokens == count)
    #expect(abs(evaluated.loss - nll / Double(count)) < 1e-5)
    let allTokens = full.logprobs.reduce(0.0) { $0 - $1.reduce(0.0) { $0 + Double($1) } } / Double(full.logprobs.joined().count)
    #expect(abs(evaluated.loss - allTokens) > 1e-3, "prompt tokens would change the loss if they were scored")
    let step = try trainer.step(toyData)
    #expect(step.completionTokens == 8 && step.totalTokens == 16)
    #expect(abs(step.loss - nll / Double(count)) < 1e-5)
}

@Test func sftMicroBatchingLeavesTheStepUnchanged() throws {
    let a = try LlamaModel.random(config: toyConfig, seed: 7)
    let b = try LlamaModel(config: toyConfig, parameters: FloatBuffer(a.parameters.array))
    let whole = try SFTTrainer(model: a, optimizer: AdamWOptions(learningRate: 1e-2), microBatchTokens: 1000)
    let pieces = try SFTTrainer(model: b, optimizer: AdamWOptions(learningRate: 1e-2), microBatchTokens: 1)
    let ra = try whole.step(toyData), rb = try pieces.step(toyData)
    #expect(abs(ra.loss - rb.loss) < 1e-6)
    #expect(abs(ra.gradNorm - rb.gradNorm) < 1e-5 * ra.gradNorm)
    var maxDiff: Float = 0
    for i in 0..<a.parameters.count { maxDiff = max(maxDiff, abs(a.parameters[i] - b.parameters[i])) }
    // Adam's first step is ≈ lr·sign(g), so rounding in near-zero gradients moves weights by a sliver of lr.
    #expect(maxDiff < 1e-3 * 1e-2)
}

@Test func sftRejectsUnusableExamples() throws {
    let trainer = try SFTTrainer(model: try LlamaModel.random(config: toyConfig, seed: 1),
                                 optimizer: AdamWOptions())
    #expect(throws: ModelError.self) { try trainer.step([SFTExample(prompt: [], completion: [1])]) }
    #expect(throws: ModelError.self) { try trainer.step([SFTExample(prompt: [1], completion: [])]) }
    #expect(throws: ModelError.self) { try trainer.step([SFTExample(prompt: [1], completion: [16])]) }
    #expect(throws: ModelError.self) { try trainer.step([]) }
    let long = SFTExample(prompt: [Int32](repeating: 1, count: 30), completion: [2, 3, 4])
    #expect(throws: ModelError.self) { try trainer.step([long]) }
}

@Test func sftJSONLinesParseAndNameBadLines() throws {
    let good = Data("{\"prompt\": \"Q: 1+1=?\\nA:\", \"completion\": \" 2\\n\", \"id\": 7}\n\n  \r\n{\"prompt\":\"\",\"completion\":\"x\"}\r\n".utf8)
    let records = try SFTData.parseJSONL(good, source: "d.jsonl")
    #expect(records == [SFTRecord(prompt: "Q: 1+1=?\nA:", completion: " 2\n", origin: "d.jsonl:1"),
                        SFTRecord(prompt: "", completion: "x", origin: "d.jsonl:4")])

    func problem(_ text: String) -> String {
        do { _ = try SFTData.parseJSONL(Data(text.utf8), source: "d.jsonl"); return "no error" } catch {
            return "\(error)"
        }
    }
    #expect(problem("{\"prompt\":\"a\",\"completion\":\"b\"}\n{\"prompt\":\"a\"") .hasPrefix("d.jsonl:2: not valid JSON"))
    #expect(problem("\n\n{\"prompt\":\"a\"}") == "d.jsonl:3: missing \"completion\"")
    #expect(problem("{\"prompt\":1,\"completion\":\"b\"}") == "d.jsonl:1: \"prompt\" must be a string")
    #expect(problem("[1,2]") .hasPrefix("d.jsonl:1: expected a JSON object"))
    #expect(problem("{\"prompt\":\"a\",\"completion\":\"\"}") .hasPrefix("d.jsonl:1: \"completion\" is empty"))
    #expect(problem("\n \n") .hasPrefix("d.jsonl: no"))
}

@Test func sftTokenizationAppendsEOSAndOptionalBOS() throws {
    let tokenizer = ByteTokenizer()
    let records = [SFTRecord(prompt: "ab", completion: "c", origin: "x:1")]
    let plain = try SFTData.tokenize(records, tokenizer: tokenizer, addBos: false, eos: ByteTokenizer.eosId)
    #expect(plain == [SFTExample(prompt: [97, 98], completion: [99, 257])])
    let withBos = try SFTData.tokenize(records, tokenizer: tokenizer, addBos: true, eos: ByteTokenizer.eosId)
    #expect(withBos[0].prompt == [256, 97, 98])
    let empty = [SFTRecord(prompt: "", completion: "c", origin: "x:9")]
    #expect(throws: SFTDataError.self) { try SFTData.tokenize(empty, tokenizer: tokenizer, addBos: false, eos: 257) }
    #expect(try SFTData.tokenize(empty, tokenizer: tokenizer, addBos: true, eos: 257)[0].prompt == [256])
}

@Test func learningRateScheduleWarmsUpAndDecays() {
    let cosine = LearningRateSchedule(peak: 1e-3, warmupSteps: 10, totalSteps: 110, decay: .cosine, finalRatio: 0.1)
    #expect(abs(cosine.rate(step: 1) - 1e-4) < 1e-12)
    #expect(abs(cosine.rate(step: 10) - 1e-3) < 1e-12)
    #expect(abs(cosine.rate(step: 60) - 0.55e-3) < 1e-12)
    #expect(abs(cosine.rate(step: 110) - 1e-4) < 1e-12)
    #expect(abs(cosine.rate(step: 500) - 1e-4) < 1e-12)
    let constant = LearningRateSchedule(peak: 2e-4, warmupSteps: 0, totalSteps: 5, decay: .constant)
    #expect(constant.rate(step: 1) == 2e-4 && constant.rate(step: 5) == 2e-4)
}
