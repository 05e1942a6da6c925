ÒNÿÿÿÿÿÿÿÿÿ
"5sample 2: answer "46" differs from the learner's "47"(2