import Foundation
import Testing
import TroupeRL
import TroupeRuntime
import TroupeTokenizer

/// An instruct model's completions, as a task-file run scores them (the learner and the actors share
/// `GroupScorer`): no newline stop, the answer from the last `\boxed{}` of the whole completion, and
/// TTRL's majority vote over those answers by canonical key.
@Suite struct ChatCompletionScoringTests {
    @Test func boxedAnswersOfMultiLineCompletionsAreVotedOn() throws {
        let tokenizer = try loadTokenizer(tokenizerFile: LearnerHarness.repositoryRoot
            + "/Tests/TroupeTokenizerTests/Goldens/qwen2-style/tokenizer.json")
        let end = try #require(tokenizer.id(forSpecial: "<|im_end|>"))
        let texts = ["Step 1: 2+3.\nSo the sum is \\boxed{5}.<|im_end|>", "We get \\boxed{5}<|im_end|>",
                     "Halving 10:\n\\boxed{\\frac{10}{2}}<|im_end|>", "I think \\boxed{6}"]
        let completions = texts.map { text in
            GroupScorer.Completion(tokens: tokenizer.encode(text), finishReason: text.hasSuffix("<|im_end|>") ? .stop : .length)
        }
        let scorer = GroupScorer(tokenizer: tokenizer, options: try AlgorithmOptions.resolve(RunConfig().algorithmJSON), stopTokens: [end])
        var config = RunConfig()
        config.task.spec = nil
        config.task.file = "math.jsonl"
        #expect(config.stopSequences == [])
        let scored = try scorer.score(completions, stopSequences: config.stopSequences, groundTruth: nil)
        #expect(scored.map(\.answer) == ["5", "5", "\\frac{10}{2}", "6"])
        // 10/2 is 5 by value, so three of four samples agree with the majority.
        #expect(scored.map(\.reward) == [1, 1, 1, 0])

        // With the built-in tasks' answer line, the first completion would be cut at its first newline.
        let lineScored = try scorer.score(completions, stopSequences: ["\n"], groundTruth: nil)
        #expect(lineScored[0].answer == "3")
    }
}
