import Testing
import TroupeTasks

@Suite struct TaskSpecTests {
    @Test(arguments: ["arith:add2", "arith:add3", "arith:mix2", "arith:all1", "arith:add2x3", "arith:mul3x6", "arith:sub9"])
    func canonicalSpellingRoundTrips(_ text: String) throws {
        let spec = try TaskSpec(parsing: text)
        #expect(spec.description == text)
        #expect(try TaskSpec(parsing: spec.description) == spec)
    }

    @Test func parsingIsLenientAboutCaseAndSpacesButStoresDifficulty() throws {
        let spec = try TaskSpec(parsing: "  Arithmetic:MIX4x3 ")
        guard case let .arithmetic(arithmetic) = spec else { Issue.record("not arithmetic"); return }
        #expect(arithmetic.operations == .mix && arithmetic.digits == 4 && arithmetic.terms == 3)
        #expect(spec.description == "arith:mix4x3")
    }

    @Test(arguments: [
        ("arith", "expected FAMILY:VARIANT"),
        ("math:add2", "unknown task family \"math\""),
        ("arith:div2", "unknown operations \"div\""),
        ("arith:2", "unknown operations \"2\""),
        ("arith:add", "missing the digit count"),
        ("arith:add0", "digits must be in 1...9, got 0"),
        ("arith:add10", "digits must be in 1...9, got 10"),
        ("arith:add2x1", "terms must be in 2...6, got 1"),
        ("arith:add2x7", "terms must be in 2...6, got 7"),
        ("arith:add2y3", "unexpected \"y3\""),
        ("arith:add2x", "unexpected \"x\""),
        ("arith:mul7x3", "overflow 64-bit integers"),
    ])
    func badSpecsNameTheProblem(_ text: String, _ expected: String) {
        do {
            _ = try TaskSpec(parsing: text)
            Issue.record("\(text) parsed")
        } catch let error as TaskError {
            #expect(error.description.contains(expected), "\(error)")
            #expect(error.description.contains("invalid task spec \"\(text)\""), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

@Suite struct ArithmeticProblemTests {
    @Test func valueFollowsOperatorPrecedence() {
        #expect(ArithmeticProblem(operands: [2, 3, 4], operators: [.plus, .times]).value == 14)
        #expect(ArithmeticProblem(operands: [2, 3, 4], operators: [.times, .minus]).value == 2)
        #expect(ArithmeticProblem(operands: [9, 2, 3], operators: [.minus, .minus]).value == 4)
        #expect(ArithmeticProblem(operands: [9, 2, 3, 5], operators: [.minus, .times, .plus]).value == 8)
        #expect(ArithmeticProblem(operands: [47, 85], operators: [.plus]).value == 132)
    }

    @Test func itemUsesShortQuestionAnswerFormat() throws {
        let item = ArithmeticProblem(operands: [47, 85], operators: [.plus]).item
        #expect(item.id == "arith:47+85")
        #expect(item.prompt == "Q: 47+85=?\nA:")
        #expect(item.answer == "132")
        #expect(try item.sftCompletion() == " 132\n")
        #expect(TaskFormat.stopSequence == "\n")
    }
}
