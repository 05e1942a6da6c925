import Testing
import TroupeTasks

/// Recomputes the answer of a generated prompt independently of the generator: parse `Q: <expr>=?\nA:`.
private func independentAnswer(_ prompt: String) -> Int? {
    guard prompt.hasPrefix("Q: "), prompt.hasSuffix("=?\nA:") else { return nil }
    let expression = prompt.dropFirst(3).dropLast(5)
    // Sum of signed products.
    var total = 0
    for (index, piece) in expression.split(separator: "+", omittingEmptySubsequences: false).enumerated() {
        _ = index
        let minusParts = piece.split(separator: "-", omittingEmptySubsequences: false)
        for (position, part) in minusParts.enumerated() {
            let product = part.split(separator: "*").reduce(1) { $0 * Int($1)! }
            total += position == 0 ? product : -product
        }
    }
    return total
}

private func operands(_ prompt: String) -> [Substring] {
    prompt.dropFirst(3).dropLast(5).split(whereSeparator: { "+-*".contains($0) })
}

@Suite struct TaskSetTests {
    @Test(arguments: ["arith:add2", "arith:mix2", "arith:sub2", "arith:all1", "arith:add3", "arith:mix2x4", "arith:mul2x3"])
    func generatedItemsAreCorrectDistinctAndDeterministic(_ text: String) throws {
        let spec = try TaskSpec(parsing: text)
        for split in TaskSplit.allCases {
            let count = text == "arith:all1" ? (split == .test ? 20 : 200) : 300
            let items = try TaskSet.generate(spec, split: split, count: count, seed: 7)
            #expect(items.count == count)
            #expect(Set(items.map(\.id)).count == count)
            #expect(Set(items.map(\.prompt)).count == count)
            for item in items {
                #expect(item.answer == independentAnswer(item.prompt).map(String.init), "\(item)")
            }
            #expect(try TaskSet.generate(spec, split: split, count: count, seed: 7) == items)
            #expect(try TaskSet.generate(spec, split: split, count: count, seed: 8) != items)
            // A smaller count is a prefix of a larger one.
            #expect(try TaskSet.generate(spec, split: split, count: count / 2, seed: 7) == Array(items.prefix(count / 2)))
        }
    }

    @Test func difficultyControlsOperandsAndOperators() throws {
        let threeDigit = try TaskSet.generate(TaskSpec(parsing: "arith:add3x3"), split: .train, count: 200, seed: 1)
        for item in threeDigit {
            let parts = operands(item.prompt)
            #expect(parts.count == 3 && parts.allSatisfy { $0.count == 3 && $0.first != "0" }, "\(item.prompt)")
            #expect(!item.prompt.contains("-") && !item.prompt.contains("*"))
        }
        let mixed = try TaskSet.generate(TaskSpec(parsing: "arith:mix2"), split: .train, count: 400, seed: 1)
        #expect(mixed.contains { $0.prompt.contains("+") } && mixed.contains { $0.prompt.contains("-") })
        #expect(!mixed.contains { $0.prompt.contains("*") })
        let all = try TaskSet.generate(TaskSpec(parsing: "arith:all2"), split: .train, count: 400, seed: 1)
        #expect(all.contains { $0.prompt.contains("*") })
    }

    @Test func twoTermSubtractionsAreNeverNegative() throws {
        let items = try TaskSet.generate(TaskSpec(parsing: "arith:sub2"), split: .train, count: 2000, seed: 3)
        #expect(items.allSatisfy { Int($0.answer!)! >= 0 })
        let longer = try TaskSet.generate(TaskSpec(parsing: "arith:sub2x3"), split: .train, count: 500, seed: 3)
        #expect(longer.contains { Int($0.answer!)! < 0 }, "longer expressions may go negative, as documented")
    }

    @Test func tooManyProblemsRequestedIsAnExactError() throws {
        let spec = try TaskSpec(parsing: "arith:add1")
        let test = try TaskSet.generate(spec, split: .test, count: 1, seed: 0)
        #expect(!test.isEmpty)
        #expect {
            try TaskSet.generate(spec, split: .test, count: 100, seed: 0)
        } throws: { error in
            guard let error = error as? TaskError, case let .notEnoughProblems(_, split, requested, available) = error else { return false }
            return split == .test && requested == 100 && available > 0 && available < 30
                && error.description.contains("only \(available) distinct problems in the test split")
        }
        #expect(throws: TaskError.invalidCount(0)) { try TaskSet.generate(spec, split: .train, count: 0, seed: 0) }
    }
}

@Suite struct SplitTests {
    @Test func everyProblemOfASmallSpaceIsInExactlyOneSplit() throws {
        let spec = try TaskSpec(parsing: "arith:add1")
        let trainCount = try #require(TaskSet.problemCount(spec, split: .train))
        let testCount = try #require(TaskSet.problemCount(spec, split: .test))
        #expect(trainCount + testCount == 100)
        #expect(throws: TaskError.notEnoughProblems(spec: "arith:add1", split: .test, requested: testCount + 1, available: testCount)) {
            try TaskSet.generate(spec, split: .test, count: testCount + 1, seed: 0)
        }
        let train = try TaskSet.generate(spec, split: .train, count: trainCount, seed: 0)
        let test = try TaskSet.generate(spec, split: .test, count: testCount, seed: 0)
        #expect(Set(train.map(\.prompt)).isDisjoint(with: test.map(\.prompt)))
        #expect(Set(train.map(\.prompt)).union(test.map(\.prompt)).count == 100)
    }

    @Test func trainingAndTestSetsNeverOverlap() throws {
        for text in ["arith:add2", "arith:mix2", "arith:add3"] {
            let spec = try TaskSpec(parsing: text)
            let train = try TaskSet.generate(spec, split: .train, count: 5000, seed: 11)
            let test = try TaskSet.generate(spec, split: .test, count: 500, seed: 12)
            #expect(Set(train.map(\.id)).isDisjoint(with: test.map(\.id)))
            #expect(Set(train.map(\.prompt)).isDisjoint(with: test.map(\.prompt)))
        }
    }

    @Test func splitDependsOnTheProblemNotTheSpec() throws {
        // Every add2 test problem is also a mix2 test problem: training on mix2 cannot leak add2's test set.
        let add = try TaskSet.generateArithmetic(ArithmeticSpec(operations: .add, digits: 2), split: .test, count: 700, seed: 1)
        #expect(add.allSatisfy { $0.split == .test })
        let mixTrain = try TaskSet.generate(TaskSpec(parsing: "arith:mix2"), split: .train, count: 10_000, seed: 1)
        #expect(Set(mixTrain.map(\.prompt)).isDisjoint(with: add.map(\.item.prompt)))
    }

    @Test func problemCountsOfSmallAndLargeSpaces() throws {
        let add2Train = try #require(TaskSet.problemCount(TaskSpec(parsing: "arith:add2"), split: .train))
        let add2Test = try #require(TaskSet.problemCount(TaskSpec(parsing: "arith:add2"), split: .test))
        #expect(add2Train + add2Test == 8100)
        // Two-term subtraction keeps a ≥ b: 90·91/2 pairs.
        let sub2 = try TaskSet.problemCount(TaskSpec(parsing: "arith:sub2"), split: .train)! + TaskSet.problemCount(TaskSpec(parsing: "arith:sub2"), split: .test)!
        #expect(sub2 == 4095)
        #expect(try TaskSet.problemCount(TaskSpec(parsing: "arith:add3"), split: .test) == nil)
    }

    @Test func testShareIsAboutTenPercent() {
        var test = 0
        for a in 10...99 {
            for b in 10...99 where ArithmeticProblem(operands: [a, b], operators: [.plus]).split == .test { test += 1 }
        }
        let share = Double(test) / 8100
        #expect(share > 0.08 && share < 0.12, "test share \(share)")
    }

    @Test func splitRuleIsFrozen() {
        // Pinned values: changing the hash or the rule would silently move problems between splits.
        let pinned = (10...99).flatMap { a in (10...99).map { b in (a, b) } }
            .filter { ArithmeticProblem(operands: [$0.0, $0.1], operators: [.plus]).split == .test }
            .prefix(5).map { "\($0.0)+\($0.1)" }
        #expect(pinned == Self.firstAdd2TestProblems, "\(pinned)")
    }

    static let firstAdd2TestProblems = ["10+10", "10+23", "10+38", "10+50", "10+73"]
}
