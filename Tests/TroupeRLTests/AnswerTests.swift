import Testing
import TroupeRL

@Suite struct AnswerExtractionTests {
    @Test func boxedWinsAndIsBraceMatched() {
        #expect(AnswerExtractor.extract("so \\boxed{1} then \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}")
        #expect(AnswerExtractor.extract("The answer is 5, i.e. \\boxed{ 7 }") == "7")
        #expect(AnswerExtractor.extract("\\fbox{12}") == "12")
        #expect(AnswerExtractor.boxedContent("\\boxed{}") == nil)
        #expect(AnswerExtractor.boxedContent("\\boxed{unclosed") == nil)
    }

    @Test func answerIsPhrases() {
        #expect(AnswerExtractor.extract("Final Answer: The final answer is $42$. I hope it is correct.") == "42")
        #expect(AnswerExtractor.extract("We get 3 and 4. The answer is 12. Done.") == "12")
        #expect(AnswerExtractor.extract("the ANSWER IS: **x = 5**") == "x = 5")
        #expect(AnswerExtractor.extract("所以答案是 8") == "8")
        #expect(AnswerExtractor.extract("The answer is \\(\\frac{3}{4}\\)\nmore") == "\\frac{3}{4}")
    }

    @Test func gsm8kHashesThenLastNumber() {
        #expect(AnswerExtractor.extract("She has 3 + 4 = 7 apples.\n#### 7") == "7")
        #expect(AnswerExtractor.extract("costs 1,234 dollars and 2.5 cents") == "2.5")
        #expect(AnswerExtractor.extract("total 1,234 dollars") == "1,234")
        #expect(AnswerExtractor.extract("x went from 3 to -4") == "-4")
        #expect(AnswerExtractor.extract("items 3-5") == "5")
        #expect(AnswerExtractor.extract("a fraction 3/4") == "3/4")
        #expect(AnswerExtractor.extract("value .5") == ".5")
        #expect(AnswerExtractor.extract("no digits here") == nil)
        #expect(AnswerExtractor.extract("") == nil)
    }
}

@Suite struct AnswerEquivalenceTests {
    @Test func numbersCompareAsExactRationals() {
        for (lhs, rhs) in [("0.5", "1/2"), ("\\frac{1}{2}", "0.50"), ("\\dfrac12", ".5"), ("1,000", "1000"), ("1e3", "1000"),
                           ("-3", "-3.0"), ("$42$", "42"), ("x = 5", "5"), ("50\\%", "50"), ("\\text{7}", "7"), ("2.", "2"),
                           ("-\\frac{3}{4}", "-0.75"), ("+4", "4"), ("0", "-0")] {
            #expect(AnswerEquivalence.equivalent(lhs, rhs), "\(lhs) should equal \(rhs)")
        }
        for (lhs, rhs) in [("0.333", "1/3"), ("50%", "0.5"), ("1,2,3", "123"), ("2", "3"), ("1/0", "0")] {
            #expect(!AnswerEquivalence.equivalent(lhs, rhs), "\(lhs) should differ from \(rhs)")
        }
        #expect(AnswerEquivalence.numericValue("6/4")?.description == "3/2")
        #expect(AnswerEquivalence.numericValue("abc") == nil)
    }

    @Test func textAnswersCompareNormalised() {
        #expect(AnswerEquivalence.equivalent("Yes", "yes"))
        #expect(AnswerEquivalence.equivalent("(B)", "b"))
        #expect(AnswerEquivalence.equivalent("\\left( 1, 2 \\right)", "(1,2)"))
        #expect(!AnswerEquivalence.equivalent("a", "b"))
        #expect(AnswerEquivalence.canonicalKey("  $ $ ").isEmpty)
    }

    @Test func hugeNumbersFallBackToText() {
        let big = "123456789012345678901234567890"
        #expect(AnswerEquivalence.numericValue(big) == nil)
        #expect(AnswerEquivalence.equivalent(big, big))
        #expect(!AnswerEquivalence.equivalent(big, big + "1"))
    }
}

@Suite struct FormatAndRegionParsingTests {
    @Test func formatChecks() {
        #expect(FormatReward.check("<think>a</think> \\boxed{1}", requirement: .thinkBoxed))
        #expect(!FormatReward.check("\\boxed{1}<think>a</think>", requirement: .thinkBoxed))
        #expect(!FormatReward.check("<think>a<think>b</think>", requirement: .think))
        #expect(FormatReward.check("  <think>x</think>rest", requirement: .think))
        #expect(!FormatReward.check("no box", requirement: .boxed))
        #expect(FormatReward.check("anything", requirement: .none))
    }

    @Test func regionParsing() {
        #expect(RegionPrediction.parse("[10, 20, 30.5, 40]") == .box(x1: 10, y1: 20, x2: 30.5, y2: 40))
        #expect(RegionPrediction.parse("click (12, 7).") == .point(x: 12, y: 7))
        #expect(RegionPrediction.parse("[1, 2, 3]") == nil)
        #expect(RegionPrediction.parse("nothing") == nil)
    }
}
