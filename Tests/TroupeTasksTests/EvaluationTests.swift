import Foundation
import Testing
import TroupeTasks

/// C(n, k) by the textbook formula, for checking the product form.
private func choose(_ n: Int, _ k: Int) -> Double {
    if k < 0 || k > n { return 0 }
    var result = 1.0
    for i in 0..<k { result = result * Double(n - i) / Double(i + 1) }
    return result
}

@Suite struct EvaluationTests {
    @Test func passAtKMatchesTheCombinatorialDefinition() {
        #expect(abs(Evaluation.passAtK(samples: 5, correct: 2, k: 2) - 0.7) < 1e-12)
        #expect(Evaluation.passAtK(samples: 16, correct: 0, k: 16) == 0)
        #expect(Evaluation.passAtK(samples: 16, correct: 1, k: 16) == 1)
        for n in 1...20 {
            for c in 0...n {
                for k in 1...n {
                    let expected = 1 - choose(n - c, k) / choose(n, k)
                    #expect(abs(Evaluation.passAtK(samples: n, correct: c, k: k) - expected) < 1e-9, "n=\(n) c=\(c) k=\(k)")
                }
            }
        }
        // pass@1 is the fraction correct.
        #expect(abs(Evaluation.passAtK(samples: 8, correct: 3, k: 1) - 0.375) < 1e-12)
    }

    @Test func majorityVoteExcludesInvalidAndBreaksTiesByFirstOccurrence() {
        // Test vectors from the TTRL notes (the formulas of docs/eval.md, worked by hand).
        #expect(Evaluation.majorityAnswer(["42", "42", "17", "42", "3", "17", "42", nil]) == "42")
        #expect(Evaluation.majorityAnswer([nil, nil, nil, "5", "5", "9", nil, "1"]) == "5")
        #expect(Evaluation.majorityAnswer(["7", "9", "9", "7"]) == "7")
        #expect(Evaluation.majorityAnswer(["9", "7", "7", "9"]) == "9")
        #expect(Evaluation.majorityAnswer([nil, nil]) == nil)
        // Blank answers are invalid, like nil: they never win.
        #expect(Evaluation.majorityAnswer(["", " ", "", "4"]) == "4")
        #expect(Evaluation.majorityAnswer(["", " "]) == nil)
        #expect(Evaluation.majorityAnswer([]) == nil)
        // Integers compare by value.
        #expect(Evaluation.majorityAnswer(["3", "+07", "7", "3 "]) == "3")
        #expect(Evaluation.majorityAnswer(["1", "007", "7"]) == "7")
    }

    @Test func canonicalIntegers() {
        #expect(AnswerComparison.canonical(" +007 ") == "7")
        #expect(AnswerComparison.canonical("-0") == "0")
        #expect(AnswerComparison.canonical("-012") == "-12")
        #expect(AnswerComparison.canonical("3.0") == "3.0")
        #expect(AnswerComparison.canonical("-") == "-")
        #expect(AnswerComparison.matches("132", "0132"))
        #expect(!AnswerComparison.matches("132", "133"))
    }

    @Test func wilsonIntervalKnownValues() {
        let half = Evaluation.wilsonInterval(mean: 0.5, count: 100)
        #expect(abs(half.lowerBound - 0.403_8) < 1e-4 && abs(half.upperBound - 0.596_2) < 1e-4)
        let zero = Evaluation.wilsonInterval(mean: 0, count: 10)
        #expect(zero.lowerBound == 0 && abs(zero.upperBound - 0.277_5) < 1e-4)
        let one = Evaluation.wilsonInterval(mean: 1, count: 10)
        #expect(abs(one.lowerBound - 0.722_5) < 1e-4 && one.upperBound == 1)
    }

    @Test func evaluateComputesAllThreeMetrics() throws {
        let prompts = [
            // 2 of 4 right; majority "5" is right.
            PromptSamples(id: "p1", referenceAnswer: "5", sampledAnswers: ["5", "5", "4", nil]),
            // 1 of 4 right; majority "8" is wrong.
            PromptSamples(id: "p2", referenceAnswer: "7", sampledAnswers: ["8", "7", "8", "6"]),
            // none valid.
            PromptSamples(id: "p3", referenceAnswer: "1", sampledAnswers: [nil, nil, nil, nil]),
        ]
        let result = try Evaluation.evaluate(prompts, k: 4)
        #expect(abs(result.passAt1.value - (0.5 + 0.25 + 0) / 3) < 1e-12)
        #expect(abs(result.passAtK.value - 2.0 / 3) < 1e-12)
        #expect(abs(result.majorityAtK.value - 1.0 / 3) < 1e-12)
        #expect(abs(result.validAnswerFraction - 7.0 / 12) < 1e-12)
        #expect(result.prompts.map(\.majorityAnswer) == ["5", "8", nil])
        #expect(result.prompts.map(\.correct) == [2, 1, 0])
        for estimate in [result.passAt1, result.passAtK, result.majorityAtK] {
            #expect(estimate.interval.contains(estimate.value))
            #expect(estimate.interval.lowerBound >= 0 && estimate.interval.upperBound <= 1)
        }
        #expect(result.majorityAtK.description == "33.3% [6.1%, 79.2%]")
    }

    @Test func aCustomCanonicalKeyDecidesEquivalence() throws {
        // E.g. TroupeRL's AnswerEquivalence.canonicalKey; here: case-insensitive text.
        let prompt = PromptSamples(id: "p", referenceAnswer: "Paris", sampledAnswers: ["paris", "PARIS", "Rome", ""])
        let result = try Evaluation.evaluate([prompt], k: 4, canonicalKey: { $0.lowercased().trimmingCharacters(in: .whitespaces) })
        #expect(result.passAt1.value == 0.5)
        #expect(result.majorityAtK.value == 1)
        #expect(result.validAnswerFraction == 0.75)
        #expect(try Evaluation.evaluate([prompt], k: 4).passAt1.value == 0)
    }

    @Test func majorityUsesOnlyTheFirstKSamples() throws {
        let prompt = PromptSamples(id: "p", referenceAnswer: "1", sampledAnswers: ["2", "1", "1", "1"])
        #expect(try Evaluation.evaluate([prompt], k: 2).majorityAtK.value == 0)
        #expect(try Evaluation.evaluate([prompt], k: 4).majorityAtK.value == 1)
    }

    @Test func badInputsAreErrors() {
        let prompt = PromptSamples(id: "p", referenceAnswer: "1", sampledAnswers: ["1"])
        #expect(throws: EvaluationError.noPrompts) { try Evaluation.evaluate([], k: 1) }
        #expect(throws: EvaluationError.invalidK(0)) { try Evaluation.evaluate([prompt], k: 0) }
        #expect(throws: EvaluationError.tooFewSamples(id: "p", samples: 1, k: 2)) { try Evaluation.evaluate([prompt], k: 2) }
        let blank = PromptSamples(id: "q", referenceAnswer: "  ", sampledAnswers: ["1"])
        #expect(throws: EvaluationError.emptyReference(id: "q")) { try Evaluation.evaluate([blank], k: 1) }
    }
}
