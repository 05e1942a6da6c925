import Testing
import TroupeRL

@Suite struct StepSelectionTests {
    /// A group's samples, rewards and token entropies as the sampler records them (Float).
    private func group(_ rewards: [Double], entropies: [[Float]], scored: [Bool]? = nil, staleness: Int = 0) -> StepSelection.Group {
        StepSelection.Group(samples: rewards.indices.map { i in
            StepSelection.Sample(reward: rewards[i], length: entropies[i].count, finishReason: .stop,
                                 meanEntropy: StepSelection.meanEntropy(of: entropies[i]), scored: scored?[i] ?? true)
        }, staleness: staleness)
    }

    @Test func anEmptyResponseKeepsEntropyReshapingForItsGroup() throws {
        var options = try AlgorithmOptions.preset(named: "ettrl")
        options.sampling = SamplingOptions()
        let selection = try StepSelection.compute(groups: [
            group([1, 0, 1, 0], entropies: [[0.5, 0.7], [], [1.0], [0.2, 0.4, 0.6]], scored: [true, false, true, true]),
        ], options: options)
        #expect(selection.advantages.groups[0].kept)
        // The empty response holds its advantage slot but gets no loss.
        #expect(selection.trained.map(\.sample) == [0, 2, 3])
        let reshaped = selection.advantages.groups[0].advantages
        let plain = try StepAdvantages.compute(groups: [AdvantageGroup(rewards: [1, 0, 1, 0], lengths: [2, 0, 1, 3])], options: {
            var o = options; o.advantage.entropyReshaping = false; return o }()).groups[0].advantages
        #expect(reshaped != plain, "EAR changed nothing")
    }

    @Test func trainingSubsetsAndDroppedGroupsDecideWhoIsTrained() throws {
        var options = try AlgorithmOptions.preset(named: "grpo")
        options.sampling.trainSamples = 2
        options.filter.zeroVarianceTolerance = 0
        let selection = try StepSelection.compute(groups: [
            group([1, 0, 1], entropies: [[0.1], [0.2], [0.3]]),
            group([1, 1, 0], entropies: [[0.1], [0.2], [0.3]]),   // its training subset [1, 1] has no variance
        ], options: options)
        #expect(selection.trainingIndices == [0..<2, 0..<2])
        #expect(!selection.advantages.groups[1].kept)
        #expect(selection.trained.map { [$0.group, $0.sample] } == [[0, 0], [0, 1]])
        #expect(selection.trained.map(\.advantage) == selection.advantages.groups[0].advantages)
    }

    @Test func meanEntropySumsInTheRecordedPrecision() {
        let tokens: [Float] = [0.1, 0.2, 0.7]
        #expect(StepSelection.meanEntropy(of: tokens) == Double(tokens.reduce(0, +)) / 3)
        #expect(StepSelection.meanEntropy(of: [Double]()) == 0)
    }
}
