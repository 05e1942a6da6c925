import Testing
import TroupeRL

@Suite struct LexicalSimilarityTests {
    @Test func identicalDisjointAndSymmetric() {
        let m = LexicalSimilarity.matrix([" 142\n", " 142\n", " 131\n", "xyz"])
        #expect(m[0][1] == 1)
        #expect(m[0][3] == 0)
        #expect(m[0][2] > 0 && m[0][2] < 1)
        for i in 0..<4 { for j in 0..<4 { #expect(m[i][j] == m[j][i]) } }
        #expect(m.allSatisfy { $0.allSatisfy { $0 >= 0 && $0 <= 1 } })
    }

    @Test func feedsTheNoveltyReward() throws {
        var options = try AlgorithmOptions.preset(named: "evol-rl")
        options.sampling = SamplingOptions(samplesPerPrompt: nil)
        let texts = [" 142\n", " 142\n", " 142\n", " 131\n", " 1\n"]
        let samples = texts.map { RewardSample(completion: $0, length: 3, finishReason: .stop, options: options) }
        let result = try GroupRewards.compute(samples: samples, context: RewardContext(similarities: LexicalSimilarity.matrix(texts)),
                                              options: options)
        #expect(result.rewards.count == 5)
        #expect(result.rewards[0] > result.rewards[3], "majority answers outrank minority ones")
    }
}
