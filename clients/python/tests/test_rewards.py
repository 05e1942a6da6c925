"""The reward port against the cases of Tests/TroupeRLTests (AnswerTests, MajorityVote): the learner's
own answers, so a divergence here would be a REWARD_MISMATCH there.
    .build/venv-interop/bin/python -m unittest discover -s clients/python/tests"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from troupe_client.rewards import RewardDefinition, UnsupportedReward, canonical_key, extract_answer, majority_rewards  # noqa: E402


class AnswerExtractionTests(unittest.TestCase):
    def test_rules_in_order(self):
        cases = [("so \\boxed{1} then \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"), ("The answer is 5, i.e. \\boxed{ 7 }", "7"),
                 ("\\fbox{12}", "12"), ("Final Answer: The final answer is $42$. I hope it is correct.", "42"),
                 ("We get 3 and 4. The answer is 12. Done.", "12"), ("the ANSWER IS: **x = 5**", "x = 5"), ("所以答案是 8", "8"),
                 ("The answer is \\(\\frac{3}{4}\\)\nmore", "\\frac{3}{4}"), ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
                 ("costs 1,234 dollars and 2.5 cents", "2.5"), ("total 1,234 dollars", "1,234"), ("x went from 3 to -4", "-4"),
                 ("items 3-5", "5"), ("a fraction 3/4", "3/4"), ("value .5", ".5"), ("no digits here", None), ("", None)]
        for text, expected in cases:
            self.assertEqual(extract_answer(text), expected, text)


class AnswerEquivalenceTests(unittest.TestCase):
    def test_numbers_compare_as_exact_rationals(self):
        for lhs, rhs in [("0.5", "1/2"), ("\\frac{1}{2}", "0.50"), ("\\dfrac12", ".5"), ("1,000", "1000"), ("1e3", "1000"),
                         ("-3", "-3.0"), ("$42$", "42"), ("x = 5", "5"), ("50\\%", "50"), ("\\text{7}", "7"), ("2.", "2"),
                         ("-\\frac{3}{4}", "-0.75"), ("+4", "4"), ("0", "-0")]:
            self.assertEqual(canonical_key(lhs), canonical_key(rhs), f"{lhs} should equal {rhs}")
        for lhs, rhs in [("0.333", "1/3"), ("50%", "0.5"), ("1,2,3", "123"), ("2", "3"), ("1/0", "0")]:
            self.assertNotEqual(canonical_key(lhs), canonical_key(rhs), f"{lhs} should differ from {rhs}")
        self.assertEqual(canonical_key("6/4"), "3/2")

    def test_text_answers_compare_normalised(self):
        self.assertEqual(canonical_key("Yes"), canonical_key("yes"))
        self.assertEqual(canonical_key("(B)"), canonical_key("b"))
        self.assertEqual(canonical_key("\\left( 1, 2 \\right)"), canonical_key("(1,2)"))
        self.assertNotEqual(canonical_key("a"), canonical_key("b"))
        self.assertEqual(canonical_key("  $ $ "), "")

    def test_huge_numbers_fall_back_to_text(self):
        big = "123456789012345678901234567890"
        self.assertEqual(canonical_key(big), big)
        self.assertNotEqual(canonical_key(big), canonical_key(big + "1"))


class RewardTests(unittest.TestCase):
    def test_majority_vote(self):
        # The label is the most common valid answer, ties to the first seen; invalid answers never vote.
        self.assertEqual(majority_rewards(["1", "2", "2", None], 1.0, 0.0), [0.0, 1.0, 1.0, 0.0])
        self.assertEqual(majority_rewards(["3", "4", "0.5", "1/2", "4", "1/2"], 1.0, -1.0), [-1.0, -1.0, 1.0, 1.0, -1.0, 1.0])
        self.assertEqual(majority_rewards(["7", "8"], 1.0, 0.0), [1.0, 0.0])
        self.assertEqual(majority_rewards([None, " "], 1.0, 0.0), [0.0, 0.0])

    def test_unsupported_settings_are_refused_by_name(self):
        with self.assertRaisesRegex(UnsupportedReward, "novelty"):
            RewardDefinition({"reward": {"kind": "novelty"}})
        with self.assertRaisesRegex(UnsupportedReward, "overlong_max_length"):
            RewardDefinition({"reward": {"kind": "verifiable", "overlong_max_length": 20480, "overlong_cache": 4096}})
        with self.assertRaisesRegex(UnsupportedReward, "reward.format"):
            RewardDefinition({"reward": {"kind": "majority", "format": "boxed"}})

    def test_verifiable_needs_a_reference_answer(self):
        definition = RewardDefinition({"reward": {"kind": "verifiable", "correct": 1, "incorrect": 0}})
        self.assertEqual([r for _, r, _ in definition.score(["so 46", "it is 47"], "46")], [1.0, 0.0])
        with self.assertRaises(UnsupportedReward):
            definition.score(["46"], None)


if __name__ == "__main__":
    unittest.main()
