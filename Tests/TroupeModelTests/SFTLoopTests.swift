import Foundation
import Testing
import TroupeModel
import TroupeTensor
import TroupeTokenizer

private let loopConfig = ModelConfig(vocabularySize: 16, hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 2,
                                     kvHeads: 1, maxPositions: 32, tieWordEmbeddings: false)

private let loopData = [
    SFTExample(prompt: [1, 2, 3], completion: [4, 5, 15]),
    SFTExample(prompt: [1, 2, 6], completion: [7, 8, 15]),
    SFTExample(prompt: [9, 10], completion: [11, 15]),
]

@Test func batchOrderVisitsEveryExampleOncePerEpochInASeededOrder() {
    var order = BatchOrder(count: 5, seed: 7)
    let first = order.next(3) + order.next(2)
    #expect(first.sorted() == [0, 1, 2, 3, 4])
    #expect(order.epoch == 1)
    // A batch spans two epochs rather than coming up short.
    let spanning = order.next(7)
    #expect(spanning.count == 7 && order.epoch == 3)
    var again = BatchOrder(count: 5, seed: 7)
    #expect(again.next(5) == first)
    var other = BatchOrder(count: 5, seed: 8)
    #expect(other.next(5) != first)
}

@Test func sftPlanCountsStepsFromEpochsOrSteps() {
    let epochs = SFTPlan(trainExamples: 10, batchSize: 4, epochs: 3, steps: nil, peak: 1e-3, warmupSteps: 2, decay: .cosine, seed: 0)
    #expect(epochs.batchSize == 4 && epochs.totalSteps == 8)  // ⌈30 / 4⌉
    #expect(epochs.schedule == LearningRateSchedule(peak: 1e-3, warmupSteps: 2, totalSteps: 8, decay: .cosine))
    let capped = SFTPlan(trainExamples: 3, batchSize: 16, epochs: nil, steps: nil, peak: 1e-3, warmupSteps: 0, decay: .constant, seed: 0)
    #expect(capped.batchSize == 3 && capped.totalSteps == 1)
    let steps = SFTPlan(trainExamples: 3, batchSize: 2, epochs: nil, steps: 5, peak: 1e-3, warmupSteps: 0, decay: .constant, seed: 0)
    #expect(steps.totalSteps == 5)
}

/// The loop's calls, in order: evaluations before step 1, every `evaluateEvery` and at the end; saves
/// every `saveEvery` and at the end (never twice for the last step); the step's own learning rate.
@Test func sftLoopEvaluatesAndSavesOnSchedule() throws {
    let trainer = try SFTTrainer(model: try LlamaModel.random(config: loopConfig, seed: 1), optimizer: AdamWOptions())
    let plan = SFTPlan(trainExamples: loopData.count, batchSize: 2, epochs: nil, steps: 5, peak: 1e-2, warmupSteps: 2,
                       decay: .cosine, evaluateEvery: 2, saveEvery: 3, seed: 4)
    var calls: [String] = []
    var rates: [Double] = []
    let outcome = try SFTLoop(plan: plan).run(trainer, on: loopData, evaluates: true, onStep: { report in
        calls.append("step \(report.step)")
        rates.append(report.result.learningRate)
    }, evaluate: { calls.append("eval \($0)") }, save: { step, _ in calls.append("save \(step)") })
    #expect(calls == ["eval 0", "step 1", "step 2", "eval 2", "step 3", "save 3", "step 4", "eval 4", "step 5",
                      "eval 5", "save 5"])
    #expect(rates == (1...5).map { plan.schedule.rate(step: $0) })
    #expect(outcome.steps == 5 && outcome.skippedSteps == 0 && outcome.lastLoss.isFinite)

    // Without held-out examples there are no evaluations, and saving only at the end.
    let quiet = SFTPlan(trainExamples: loopData.count, batchSize: 3, epochs: 1, steps: nil, peak: 1e-2, warmupSteps: 0,
                        decay: .constant, evaluateEvery: 1, seed: 4)
    calls = []
    _ = try SFTLoop(plan: quiet).run(trainer, on: loopData, evaluates: false, onStep: { calls.append("step \($0.step)") },
                                     evaluate: { calls.append("eval \($0)") }, save: { step, _ in calls.append("save \(step)") })
    #expect(calls == ["step 1", "save 1"])
}

/// The same plan and seed train to the same weights.
@Test func sftLoopIsReproducible() throws {
    func train() throws -> String {
        let trainer = try SFTTrainer(model: try LlamaModel.random(config: loopConfig, seed: 2), optimizer: AdamWOptions(learningRate: 1e-2))
        let plan = SFTPlan(trainExamples: loopData.count, batchSize: 2, epochs: 2, steps: nil, peak: 1e-2, warmupSteps: 1,
                           decay: .cosine, seed: 9)
        _ = try SFTLoop(plan: plan).run(trainer, on: loopData, evaluates: false, onStep: { _ in }, evaluate: { _ in },
                                        save: { _, _ in })
        return trainer.model.weightsHash()
    }
    #expect(try train() == train())
}

@Test func tokenizerFitsTheModelOrIsRefusedByName() throws {
    let bytes = ByteTokenizer()
    var config = loopConfig
    #expect(throws: ModelError.invalidArgument(name: "dir", reason: "the tokenizer has 259 ids but the model's vocab_size is 16; "
                                               + "the tokenizer belongs to another model")) {
        try config.check(fits: bytes, directory: "dir")
    }
    let sized = config.sized(for: bytes)
    try sized.check(fits: bytes, directory: "dir")
    #expect(sized.vocabularySize == 259 && sized.bosTokenId == 256 && sized.eosTokenIds == [257] && sized.padTokenId == 258)
    #expect(sized.defaultStopTokens(tokenizer: bytes) == [257])
    #expect(try sized.endOfSequence(tokenizer: bytes) == 257)

    config.vocabularySize = 300
    config.bosTokenId = 1
    #expect(throws: ModelError.invalidArgument(name: "c.json", reason: "bos_token_id 1 is not the byte tokenizer's 256; give a tokenizer.json")) {
        try config.checked(for: bytes, byteTokenizer: true, source: "c.json")
    }
    config.bosTokenId = nil
    let filled = try config.checked(for: bytes, byteTokenizer: true, source: "c.json")
    #expect(filled.bosTokenId == 256 && filled.eosTokenIds == [257] && filled.padTokenId == 258)
    config.vocabularySize = 100
    #expect(throws: ModelError.invalidArgument(name: "c.json", reason: "vocab_size 100 is smaller than the tokenizer's 259 ids")) {
        try config.checked(for: bytes, byteTokenizer: false, source: "c.json")
    }
}

@Test func sampleSeedsMixBaseSeedPromptAndSample() {
    var mixer = Xoshiro256(mixing: [5, 1, 2])
    #expect(SampleRequest.seed(base: 5, prompt: 1, sample: 2) == mixer.next())
    #expect(SampleRequest.seed(base: 0, prompt: 0, sample: 0) == 3431597276556439054)  // docs/cli.md's example
}
