import Foundation
import Testing
import TroupeBench
import TroupeJSON
import TroupeModel
import TroupeRuntime
import TroupeTasks
import TroupeTokenizer

/// The rl-step workload both Troupe and the peers run: TRL's benchmark shape, a tokenizer that
/// covers the vocabulary, prompts with answers, and learner settings that resolve.
@Suite struct RLStepWorkloadTests {
    @Test func theExportedWorkloadIsTheSmallShapeWithATokenizerOverItsWholeVocabulary() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rl-step-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let workload = RLStepBench.Workload()
        try workload.export(to: directory)

        let model = try ModelDirectory.load(directory + "/model")
        #expect(model.config.vocabularySize == 4096)
        #expect(model.layout.totalCount == 27_795_968)
        let tokenizer = try loadTokenizer(modelDirectory: directory + "/model")
        #expect(tokenizer.vocabularySize == 4096)
        try model.config.check(fits: tokenizer, directory: directory)
        #expect(model.config.eosTokenIds == [Int(try #require(tokenizer.eosTokenId))])
        // Every id the sampler can draw decodes, so an actor can score any completion.
        for id in Int32(0)..<4096 { _ = try tokenizer.decode([id]) }

        let tasks = try TaskFile.load(contentsOf: URL(fileURLWithPath: directory + "/tasks.jsonl"), policy: .refuse)
        #expect(tasks.items.count == workload.prompts && tasks.items.allSatisfy { $0.answer != nil })
        let settings = try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: directory + "/workload.json")), source: "workload.json")
        #expect(settings["parameters"]?.int == 27_795_968)
        #expect(settings["prompt_tokens"]?.array?.compactMap(\.int) == tasks.items.map { tokenizer.encode($0.prompt).count })

        // The learner's settings resolve: the group, the batch and GRPO without its KL term.
        var overrides = workload.learnerOverrides(directory: directory)
        overrides.append("model.path=\(directory)/model")
        let config = try RunConfig.load(path: nil, overrides: overrides)
        #expect(config.sampling.groupSize == 8 && config.learner.batchGroups == 8 && config.sampling.maxNewTokens == 64)
        #expect(config.algorithm.kl.coefficient == 0)
        #expect(config.learner.threads == ProcessInfo.processInfo.activeProcessorCount)
        #expect(config.task.file == directory + "/tasks.jsonl" && config.task.labelFree == false)
    }

    @Test func stepTimesAndTheirSplitAreReadFromTheMetricsFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("""
            {"kind":"train","step":2,"time_s":9.0,"time/train_step":4.0,"time/forward":1.0,"time/backward":2.5,"time/optimizer":0.3,"time/publish":0.1,"tokens_trained":4096}
            {"kind":"eval","step":1,"time_s":4.5}
            {"kind":"train","step":1,"time_s":5.0,"time/train_step":4.5}

            """.utf8).write(to: URL(fileURLWithPath: path))
        let steps = try EndToEndBench.readSteps(path, phase: "test")
        #expect(steps.map(\.step) == [1, 2])
        #expect(steps.map(\.cycleSeconds) == [5.0, 4.0])
        #expect(steps[0].forwardSeconds == 0 && steps[0].tokensTrained == 0)
        #expect(steps[1].forwardSeconds == 1.0 && steps[1].backwardSeconds == 2.5 && steps[1].optimizerSeconds == 0.3)
        #expect(steps[1].publishSeconds == 0.1 && steps[1].tokensTrained == 4096 && steps[1].waitSeconds == 0)
    }
}
