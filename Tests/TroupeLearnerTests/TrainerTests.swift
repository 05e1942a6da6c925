import Foundation
import Testing
import TroupeLearner
import TroupeModel
import TroupeRL
import TroupeRuntime

/// The trainer's step does not depend on how it is cut into micro-batches (`learner.micro_batch_tokens`
/// bounds memory only): the same groups, one micro-batch per sequence or all in one, give the same loss
/// and gradient up to the order in which float32 gradients are summed. (Weights after AdamW are not
/// compared: for a parameter whose gradient is near zero, that order decides the update's sign.)
@Suite struct TrainerTests {
    static func groups() -> [RolloutGroup] {
        (0..<3).map { g in
            let samples = (0..<4).map { i -> RolloutSample in
                let tokens: [Int32] = (0..<(3 + i)).map { Int32(40 + (g * 7 + i * 3 + $0) % 20) } + [257]
                return RolloutSample(tokens: tokens, logprobs: tokens.map { _ in -1.5 }, finishReason: .stop, temperature: 1,
                                     answer: "\(i % 2)", reward: Double(i % 2))
            }
            return RolloutGroup(key: GroupKey(actor: "a", actorRunId: 1, sequence: UInt64(g + 1)), promptId: UInt64(g), leaseId: 1,
                                version: PolicyVersion(epoch: 1, step: 0), promptTokens: [256, 49, 43, 50, 61], samples: samples)
        }
    }

    @Test func microBatchingDoesNotChangeTheStep() throws {
        let directory = LearnerHarness.repositoryRoot + "/models/arith-base"
        let options = try AlgorithmOptions.resolve(RunConfig().algorithmJSON)
        var results: [Trainer.StepResult] = []
        for budget in [1, 1_000_000] {
            let trainer = try Trainer(model: try ModelDirectory.load(directory), options: options, optimizer: RunConfig().optimizer,
                                      microBatchTokens: budget)
            results.append(try trainer.step(Self.groups(), stepNumber: 1))
        }
        let (one, all) = (results[0], results[1])
        #expect(!one.skipped && !all.skipped)
        #expect(abs(one.loss.total - all.loss.total) <= 1e-6 * max(1e-3, abs(all.loss.total)) + 1e-7)
        let (g1, g2) = (one.metrics["grad_norm"] ?? .nan, all.metrics["grad_norm"] ?? .nan)
        #expect(g2 > 0 && abs(g1 - g2) <= 1e-5 * g2, "gradient norms \(g1) and \(g2)")
    }
}

/// Resume and replay read the run log's records by type; a body that does not match its type stops them
/// with the line named instead of being skipped.
@Suite struct RunHistoryTests {
    @Test func recordsAreReadByTypeAndABadBodyIsNamed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("history-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try RunLog(path: path)
        try log.append("run_started", ["epoch": "1", "base_model": "m", "base_weights_hash": "h0", "prompts": 2, "threads": 1, "blas_kernel": "x"])
        try log.append("epoch_started", ["epoch": "1", "step": 0, "weights_hash": "h0", "threads": 2, "blas_kernel": "x"])
        try log.append("batch_formed", ["step": 1, "groups": ["a#1#1"]])
        try log.append("step_done", ["step": 1, "weights_hash": "h1", "loss": 0.5, "skipped": false, "groups": 1])
        try log.append("batch_formed", ["step": 2, "groups": ["a#1#2"]])
        try log.append("resumed", ["from_step": 1, "voided_steps": [2], "pending": 1, "trained": 1])
        let history = try RunHistory(records: try RunLog.read(path: path))
        #expect(history.baseModel == "m" && history.baseWeightsHash == "h0" && history.threads == 2)
        #expect(history.effectiveSteps.map(\.step) == [1])
        #expect(history.effectiveSteps.first?.weightsHash == "h1")

        try log.append("batch_formed", ["step": "three", "groups": []])
        #expect {
            _ = try RunHistory(records: try RunLog.read(path: path))
        } throws: { error in
            "\(error)".contains("line 7 (batch_formed)") && "\(error)".contains("step")
        }
    }
}

/// A multi-temperature group reaches the loss with each sample scored at its own temperature: the
/// behaviour log-probs the sampler reported match the trainer's (mismatch ≈ 0), and the same tokens
/// announced at each other's temperature do not.
@Suite struct MultiTemperatureTrainingTests {
    @Test func eachSampleIsScoredAtItsOwnTemperature() throws {
        let directory = LearnerHarness.repositoryRoot + "/models/arith-base"
        let prompt: [Int32] = [256, 49, 43, 50, 61]
        let temperatures: [Float] = [0.5, 1.5, 0.5, 1.5]
        let sampled = try Sampler(model: try ModelDirectory.load(directory)).generate(
            temperatures.enumerated().map { SampleRequest(prompt: prompt, seed: UInt64(90 + $0), temperature: $1) },
            parameters: SamplingParameters(maxNewTokens: 6))
        func mismatch(announcing announced: [Float]) throws -> Double {
            let samples = sampled.enumerated().map { i, c in
                RolloutSample(tokens: c.tokens, logprobs: c.logprobs, finishReason: c.finishReason == .stop ? .stop : .length,
                              temperature: announced[i], answer: "\(i % 2)", reward: Double(i % 2))
            }
            let group = RolloutGroup(key: GroupKey(actor: "a", actorRunId: 1, sequence: 1), promptId: 0, leaseId: 1,
                                     version: PolicyVersion(epoch: 1, step: 0), promptTokens: prompt, samples: samples)
            let trainer = try Trainer(model: try ModelDirectory.load(directory), options: try AlgorithmOptions.resolve(RunConfig().algorithmJSON),
                                      optimizer: RunConfig().optimizer, microBatchTokens: 4096)
            return abs(try #require(try trainer.step([group], stepNumber: 1).metrics["mismatch_kl"]))
        }
        #expect(try mismatch(announcing: temperatures) <= 1e-5)
        #expect(try mismatch(announcing: [1.5, 0.5, 1.5, 0.5]) > 1e-3)
    }
}
