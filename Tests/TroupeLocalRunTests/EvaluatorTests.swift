import Foundation
import Testing
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeLocalRun
import TroupeRuntime
import TroupeTasks
import TroupeTensor
import TroupeTokenizer

/// The random-weight llama-tiny fixture with its byte-level tokenizer.json: its answers are noise, but
/// noise that must be reproducible and counted correctly.
private enum EvaluatorFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/llama-tiny").path

    static func evaluator() throws -> Evaluator {
        try Evaluator(model: ModelDirectory.load(directory), tokenizer: loadTokenizer(modelDirectory: directory))
    }

    static func items(_ count: Int = 5) throws -> [TaskItem] {
        try TaskSet.generate(TaskSpec(parsing: "arith:add2"), split: .test, count: count, seed: 7)
    }
}

@Suite struct EvaluatorTests {
    @Test func sameSeedSameResultWhateverTheBatchSize() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items()
        let settings = EvaluationSettings(samplesPerPrompt: 4, temperature: 1, maxNewTokens: 24, seed: 11, batchSize: 64)
        let first = try evaluator.evaluate(items, settings: settings)
        let again = try evaluator.evaluate(items, settings: settings)
        var smallBatches = settings
        smallBatches.batchSize = 3  // cuts prompts' sample groups across sampler calls
        let split = try evaluator.evaluate(items, settings: smallBatches)

        #expect(first.samples == again.samples)
        #expect(first.result == again.result)
        #expect(first.generatedTokens == again.generatedTokens)
        #expect(split.samples == first.samples)
        #expect(split.result == first.result)
        #expect(split.generatedTokens == first.generatedTokens)

        // The fixture emits digits often enough that another seed gives other answers.
        var otherSeed = settings
        otherSeed.seed = 12
        #expect(try evaluator.evaluate(items, settings: otherSeed).samples != first.samples)
        #expect(first.samples.contains { $0.sampledAnswers.contains { $0 != nil } }, "no sample had an answer; the test proves little")
    }

    @Test func countsAddUp() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items(6)
        let k = 3, maxNewTokens = 20
        let evaluation = try evaluator.evaluate(items, settings: EvaluationSettings(
            samplesPerPrompt: k, maxNewTokens: maxNewTokens, seed: 3, batchSize: 8))
        let result = evaluation.result

        #expect(evaluation.promptCount == items.count)
        #expect(evaluation.sampleCount == items.count * k)
        #expect(evaluation.samples.map(\.id) == items.map(\.id))
        #expect(evaluation.samples.map(\.referenceAnswer) == items.map { $0.answer! })
        #expect(result.k == k)
        #expect(result.prompts.count == items.count)
        for (outcome, samples) in zip(result.prompts, evaluation.samples) {
            #expect(outcome.samples == k)
            let reference = AnswerEquivalence.canonicalKey(samples.referenceAnswer)
            let correct = samples.sampledAnswers.filter { $0.map(AnswerEquivalence.canonicalKey) == reference }.count
            #expect(outcome.correct == correct)
            #expect(outcome.passAt1 == Double(correct) / Double(k))
        }
        let valid = evaluation.samples.flatMap(\.sampledAnswers)
            .filter { $0 != nil && !AnswerEquivalence.canonicalKey($0!).isEmpty }.count
        #expect(result.validAnswerFraction == Double(valid) / Double(items.count * k))
        // Every sample has at least one token and at most maxNewTokens.
        #expect(evaluation.generatedTokens >= items.count * k)
        #expect(evaluation.generatedTokens <= items.count * k * maxNewTokens)
        #expect(evaluation.meanCompletionTokens == Double(evaluation.generatedTokens) / Double(items.count * k))
        #expect(evaluation.lengthFinishedSamples <= items.count * k)
        #expect(evaluation.wallSeconds >= evaluation.samplingSeconds)
        #expect(evaluation.tokensPerSecond > 0)
        for estimate in [result.passAt1, result.passAtK, result.majorityAtK] {
            #expect(estimate.interval.contains(estimate.value))
        }
        #expect(result.passAt1.value <= result.passAtK.value)
    }

    @Test func oneSampleMakesPassAt1EqualMajAt1() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items(8)
        let evaluation = try evaluator.evaluate(items, settings: EvaluationSettings(samplesPerPrompt: 1, maxNewTokens: 24, seed: 5))
        #expect(evaluation.result.passAt1 == evaluation.result.majorityAtK)
        #expect(evaluation.result.passAt1 == evaluation.result.passAtK)
        // troupe run's metrics line of such an evaluation (eval.samples = 1) names pass@1 once.
        let line = try #require(ProcessEvent<Never>.evaluated(step: 0, samples: 1, evaluation.result, meanCompletionTokens: 3).metricsLine)
        #expect(line.metrics.keys.sorted() == ["eval/maj@1", "eval/mean_completion_tokens", "eval/pass@1", "eval/valid_fraction"])
        #expect(line.metrics["eval/pass@1"] == evaluation.result.passAt1.value)
    }

    /// Relabel every prompt with the answer its first sample gave: re-evaluating with the same seed must
    /// then score each prompt that had a valid first answer as correct on that sample — the whole chain
    /// (seeds, sampling, answer line, extraction, comparison) is consistent.
    @Test func answersTheModelGaveScoreAsCorrect() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items(8)
        let settings = EvaluationSettings(samplesPerPrompt: 2, maxNewTokens: 24, seed: 9)
        let first = try evaluator.evaluate(items, settings: settings)
        // Same prompts in the same order, so every sample keeps its seed; only the references change.
        let relabelled = zip(items, first.samples).map { item, samples in
            TaskItem(id: item.id, prompt: item.prompt, answer: samples.sampledAnswers[0] ?? item.answer)
        }
        let answered = first.samples.indices.filter { first.samples[$0].sampledAnswers[0] != nil }
        try #require(!answered.isEmpty, "no prompt had a valid first answer; pick another seed")
        let second = try evaluator.evaluate(relabelled, settings: settings)
        #expect(second.samples.map(\.sampledAnswers) == first.samples.map(\.sampledAnswers))
        for p in answered {
            #expect(second.result.prompts[p].correct >= 1,
                    "prompt \(items[p].id) answered \(relabelled[p].answer!) but scored no correct sample")
        }
    }

    /// The documented seed of each sample regenerates it with the sampler alone.
    @Test func sampleSeedsAreTheDocumentedOnes() throws {
        let directory = EvaluatorFixture.directory
        let model = try ModelDirectory.load(directory)
        let tokenizer = try loadTokenizer(modelDirectory: directory)
        let evaluator = try Evaluator(model: model, tokenizer: tokenizer)
        let items = try EvaluatorFixture.items(3)
        let settings = EvaluationSettings(samplesPerPrompt: 2, maxNewTokens: 24, seed: 21)
        let evaluation = try evaluator.evaluate(items, settings: settings)

        var documented = Xoshiro256(mixing: [21, 1, 0])
        #expect(Evaluator.sampleSeed(run: 21, prompt: 1, sample: 0) == documented.next())
        let sampler = Sampler(model: model)
        let parameters = SamplingParameters(temperature: 1, maxNewTokens: 24, stopTokens: [tokenizer.eosTokenId!],
                                            stopStrings: ["\n"])
        for (p, item) in items.enumerated() {
            for s in 0..<2 {
                let prompt = tokenizer.encode(item.prompt, recognizingSpecialTokens: false)
                let completion = try sampler.generate(
                    [SampleRequest(prompt: prompt, seed: Evaluator.sampleSeed(run: 21, prompt: p, sample: s))],
                    parameters: parameters, tokenBytes: tokenizer.bytes(of:))[0]
                let text = try tokenizer.decode(completion.tokens, skippingSpecialTokens: true)
                let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
                #expect(evaluation.samples[p].sampledAnswers[s] == AnswerExtractor.extract(line))
            }
        }
    }

    @Test func progressCountsPromptsUpToTheTotal() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items(5)
        var calls: [EvaluationProgress] = []
        let evaluation = try evaluator.evaluate(items, settings: EvaluationSettings(samplesPerPrompt: 3, maxNewTokens: 8,
                                                                                    batchSize: 4)) { calls.append($0) }
        // 15 samples in batches of 4 end after samples 4, 8, 12, 15: prompts 1, 2, 4 and 5 complete.
        #expect(calls.map(\.promptsDone) == [0, 1, 2, 4, 5])
        #expect(calls.allSatisfy { $0.promptsTotal == 5 })
        #expect(zip(calls, calls.dropFirst()).allSatisfy { $0.generatedTokens < $1.generatedTokens })
        #expect(calls.last!.generatedTokens == evaluation.generatedTokens)
        #expect(calls.last!.samplingSeconds == evaluation.samplingSeconds)
    }

    @Test func badInputIsAClearError() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items(2)
        let settings = EvaluationSettings(samplesPerPrompt: 2, maxNewTokens: 4)

        #expect(throws: EvaluatorError.noItems) { try evaluator.evaluate([], settings: settings) }
        let unlabeled = [items[0], items[1].withoutAnswer()]
        #expect(throws: EvaluatorError.missingAnswer(id: items[1].id)) { try evaluator.evaluate(unlabeled, settings: settings) }
        let blank = [TaskItem(id: "blank", prompt: "Q: 1+1\nA:", answer: " $ ")]
        #expect(throws: EvaluatorError.missingAnswer(id: "blank")) { try evaluator.evaluate(blank, settings: settings) }
        let long = [TaskItem(id: "long", prompt: String(repeating: "1+ ", count: 600), answer: "2")]
        let longTokens = evaluator.tokenizer.encode(long[0].prompt, recognizingSpecialTokens: false).count
        #expect(throws: EvaluatorError.promptTooLong(id: "long", tokens: longTokens, maxPositions: 512)) {
            try evaluator.evaluate(long, settings: settings)
        }

        for (bad, name) in [(EvaluationSettings(samplesPerPrompt: 0), "samples"),
                            (EvaluationSettings(samplesPerPrompt: 1, temperature: 0), "temperature"),
                            (EvaluationSettings(samplesPerPrompt: 1, temperature: .nan), "temperature"),
                            (EvaluationSettings(samplesPerPrompt: 1, maxNewTokens: 0), "max_new_tokens"),
                            (EvaluationSettings(samplesPerPrompt: 1, batchSize: 0), "batch_size")] {
            let error = #expect(throws: EvaluatorError.self) { try evaluator.evaluate(items, settings: bad) }
            #expect(error?.description.hasPrefix(name) == true, "\(String(describing: error))")
        }

        // The built-in byte tokenizer has 259 ids; the fixture's embedding table has 256.
        let model = try ModelDirectory.load(EvaluatorFixture.directory)
        #expect(throws: EvaluatorError.tokenizerMismatch(tokenizerSize: 259, modelSize: 256)) {
            try Evaluator(model: model, tokenizer: ByteTokenizer())
        }
    }
}

/// `troupe run`'s evaluations and label accuracy go to metrics.jsonl as `eval` and `monitor` lines.
@Test func localRunEventsAreMetricsLines() throws {
    let path = NSTemporaryDirectory() + "troupe-localrun-metrics-\(UUID().uuidString).jsonl"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let kept = InMemoryProcessEvents<Never>()
    let events = LocalRunEvents([kept, MetricsFileSink<Never>(MetricsWriter(path: path))])
    try events.emit(.labelAccuracy(step: 2, labels: 0.75, rewards: nil))
    #expect(kept.events.map { $0.metricsLine?.kind } == ["monitor"])
    #expect(kept.events.first?.stream == nil)
    let line = try String(contentsOfFile: path, encoding: .utf8)
    // A non-finite metric (no reward accuracy yet) is left out of the line.
    #expect(line.contains("\"ttrl/label_accuracy\":0.75") && !line.contains("reward_accuracy") && line.contains("\"kind\":\"monitor\""))
}

/// Multi-temperature maj@k: sample j of each prompt at temperatures[j mod n], all k voting together.
@Suite struct MultiTemperatureEvaluationTests {
    @Test func sampleJIsTheSingleTemperatureSampleJAtItsTemperature() throws {
        let evaluator = try EvaluatorFixture.evaluator()
        let items = try EvaluatorFixture.items(3)
        let mixed = try evaluator.evaluate(items, settings: EvaluationSettings(samplesPerPrompt: 4, temperatures: [0.4, 2.5],
                                                                               maxNewTokens: 12, seed: 3))
        #expect(mixed.result.k == 4)
        for t: Float in [0.4, 2.5] {
            let single = try evaluator.evaluate(items, settings: EvaluationSettings(samplesPerPrompt: 4, temperature: t,
                                                                                    maxNewTokens: 12, seed: 3))
            let j0 = t == 0.4 ? 0 : 1
            for (a, b) in zip(mixed.samples, single.samples) {
                #expect(a.sampledAnswers[j0] == b.sampledAnswers[j0] && a.sampledAnswers[j0 + 2] == b.sampledAnswers[j0 + 2])
            }
        }
    }

    @Test func aTemperatureListThatCannotFillTheSamplesIsRefused() throws {
        for (bad, reason) in [(EvaluationSettings(samplesPerPrompt: 2, temperatures: []), "empty"),
                              (EvaluationSettings(samplesPerPrompt: 2, temperatures: [0.5, 1, 1.5]), "3 temperatures"),
                              (EvaluationSettings(samplesPerPrompt: 2, temperatures: [0.5, -1]), "finite and > 0")] {
            #expect { try bad.validate() } throws: { "\($0)".contains("temperatures") && "\($0)".contains(reason) }
        }
    }
}

/// `troupe run`'s label accuracy is one step's: a step whose prompts have no answer in the task has none,
/// rather than the previous step's again.
@Test func liveStatusLabelAccuracyIsTheStepsOwn() {
    var status = LiveStatus(maxSteps: 3, started: 0)
    func step(_ n: UInt64, labels: String) -> Troupe_V1_LogEvent {
        var e = Troupe_V1_LogEvent()
        e.kind = "step"
        e.step = n
        e.fields = ["labels": labels, "rewards": labels.split(separator: ",").map { "\($0.split(separator: "=")[0])=\($0.split(separator: "=")[1]):1" }.joined(separator: ",")]
        return e
    }
    status.ingest(step(1, labels: "1=4,2=5"), answerKey: [1: "4", 2: "6"])
    #expect(status.labelAccuracy == 0.5 && status.rewardAccuracy == 0.5)
    status.ingest(step(2, labels: "9=4"), answerKey: [1: "4", 2: "6"])
    #expect(status.labelAccuracy == nil && status.rewardAccuracy == nil)
    #expect(status.line.contains("label_acc 0.500"))
    // Answers with commas and semicolons (1,234; a boxed list) are read whole.
    var listed = Troupe_V1_LogEvent()
    listed.kind = "step"
    listed.step = 3
    listed.fields = ["labels": "1=1,234,2=a;b", "rewards": "1=1,234:1;1,235:0,2=a;b:1;c:0"]
    status.ingest(listed, answerKey: [1: "1,234", 2: "a;b"])
    #expect(status.labelAccuracy == 1 && status.rewardAccuracy == 1)
}
