import Testing
import TroupeTasks

@Suite struct CompletionStyleTests {
    @Test func workedCompletionsWriteEveryStepAndRepeatThemBeforeTheAnswer() throws {
        let problem = ArithmeticProblem(operands: [3, 8, 5, 2], operators: [.plus, .plus, .plus])
        let pass = "3+8=11, 11+5=16, 16+2=18."
        let expected = " " + pass + String(repeating: " check " + pass, count: problem.workedRepeats) + " so 18\n"
        #expect(try CompletionStyle.worked.completion(of: problem) == expected)
        #expect(try CompletionStyle.answer.completion(of: problem) == " 18\n")
        // Subtraction runs left to right, through negative intermediate results.
        let mixed = ArithmeticProblem(operands: [3, 8, 5], operators: [.minus, .plus])
        #expect(try mixed.workedCompletion().hasPrefix(" 3-8=-5, -5+5=0."))
        #expect(try mixed.workedCompletion().hasSuffix(" so 0\n"))
    }

    /// Frozen: a changed rule would silently change every worked base model's data.
    @Test func theNumberOfRepeatsIsAStableFunctionOfTheProblem() throws {
        let problems = try TaskSet.generateArithmetic(ArithmeticSpec(operations: .add, digits: 1, terms: 4), split: .train,
                                                      count: 3000, seed: 1)
        var counts = [0, 0, 0]
        for problem in problems { counts[problem.workedRepeats] += 1 }
        for count in counts { #expect((900...1100).contains(count), "repeats 0, 1, 2: \(counts)") }
        #expect(ArithmeticProblem(operands: [3, 8, 5, 2], operators: [.plus, .plus, .plus]).workedRepeats == 1)
        #expect(ArithmeticProblem(operands: [47, 85], operators: [.plus]).workedRepeats == 0)
    }

    @Test func everyWorkedCompletionEndsWithItsAnswerAfterTheLastSo() throws {
        for text in ["arith:add1x4", "arith:mix2x3", "arith:sub2"] {
            guard case .arithmetic(let spec) = try TaskSpec(parsing: text) else { return }
            for problem in try TaskSet.generateArithmetic(spec, split: .test, count: 50, seed: 3) {
                let line = try problem.workedCompletion().dropLast()  // the newline
                #expect(!line.contains("\n"), "one line: \(line)")
                #expect(AnswerComparison.matches(CompletionStyle.worked.answer(inLine: String(line)), String(problem.value)), "\(line)")
            }
        }
        #expect(CompletionStyle.worked.answer(inLine: " 1+2=3. so") == " 1+2=3. so")
        #expect(CompletionStyle.answer.answer(inLine: " 42") == " 42")
    }

    @Test func productsAreRefusedNamingTheProblem() {
        let problem = ArithmeticProblem(operands: [4, 7], operators: [.times])
        #expect(throws: TaskError.notWorkable(problem: "4*7")) { try CompletionStyle.worked.completion(of: problem) }
        #expect(TaskError.notWorkable(problem: "4*7").description.contains("4*7"))
    }
}
