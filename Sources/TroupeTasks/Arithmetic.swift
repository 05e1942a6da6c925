public enum ArithmeticOperator: Character, Sendable, Hashable {
    case plus = "+"
    case minus = "-"
    case times = "*"
}

/// One arithmetic problem, e.g. 47+85. Evaluated with the usual precedence (× before + and −).
public struct ArithmeticProblem: Sendable, Hashable {
    public static let family = "arith"

    public let operands: [Int]
    public let operators: [ArithmeticOperator]

    public init(operands: [Int], operators: [ArithmeticOperator]) {
        precondition(operands.count == operators.count + 1, "an expression has one operator fewer than operands")
        self.operands = operands
        self.operators = operators
    }

    /// The expression without spaces, e.g. `47+85`. The split rule and the item id are derived from it.
    public var canonicalForm: String {
        var text = String(operands[0])
        for (op, operand) in zip(operators, operands.dropFirst()) {
            text.append(op.rawValue)
            text += String(operand)
        }
        return text
    }

    public var value: Int {
        // Fold products into terms first, then add the signed terms.
        var total = 0
        var term = operands[0]
        var sign = 1
        for (op, operand) in zip(operators, operands.dropFirst()) {
            switch op {
            case .times:
                term *= operand
            case .plus, .minus:
                total += sign * term
                sign = op == .plus ? 1 : -1
                term = operand
            }
        }
        return total + sign * term
    }

    public var split: TaskSplit {
        TaskSplit.of(family: Self.family, canonicalProblem: canonicalForm)
    }

    /// `Q: 47+85=?\nA:` with answer `132`; the SFT completion is ` 132\n`.
    public var item: TaskItem {
        TaskItem(id: "\(Self.family):\(canonicalForm)",
                 prompt: TaskFormat.prompt(question: "\(canonicalForm)=?"),
                 answer: String(value))
    }
}

extension ArithmeticProblem {
    /// How many verbatim repeats of the worked steps follow the first pass: 0, 1 or 2, a stable
    /// function of the problem (not of the split, which hashes another key), about a third each.
    public var workedRepeats: Int { Int(StableHash.hash64("worked|" + canonicalForm) % 3) }

    /// `CompletionStyle.worked`: ` 3+8=11, 11+5=16. check 3+8=11, 11+5=16. so 16\n` (steps joined by
    /// ", ", each repeat introduced by " check", the answer after " so").
    public func workedCompletion() throws -> String {
        guard !operators.contains(.times) else { throw TaskError.notWorkable(problem: canonicalForm) }
        var steps: [String] = []
        var running = operands[0]
        for (op, operand) in zip(operators, operands.dropFirst()) {
            let next = op == .plus ? running + operand : running - operand
            steps.append("\(running)\(op.rawValue)\(operand)=\(next)")
            running = next
        }
        let pass = steps.joined(separator: ", ") + "."
        let repeats = String(repeating: " check " + pass, count: workedRepeats)
        return " " + pass + repeats + " so \(running)" + TaskFormat.stopSequence
    }
}

extension ArithmeticSpec {
    /// Two-term subtractions are kept non-negative (a ≥ b) so the smallest specs need no sign;
    /// longer expressions may have negative answers.
    func admits(_ problem: ArithmeticProblem) -> Bool {
        !(terms == 2 && problem.operators[0] == .minus && problem.operands[0] < problem.operands[1])
    }

    /// Operator choices × operand choices, before the non-negativity filter; saturates at Int.max.
    var candidateCount: Int {
        var count = 1
        let factors = Array(repeating: operations.operators.count, count: terms - 1)
            + Array(repeating: operandRange.count, count: terms)
        for factor in factors {
            let (product, overflow) = count.multipliedReportingOverflow(by: factor)
            if overflow { return Int.max }
            count = product
        }
        return count
    }

    /// The candidate with this index in mixed radix: operators first, then operands.
    func candidate(at index: Int) -> ArithmeticProblem {
        var rest = index
        let ops = operations.operators
        var operators: [ArithmeticOperator] = []
        for _ in 0..<(terms - 1) {
            operators.append(ops[rest % ops.count])
            rest /= ops.count
        }
        let range = operandRange
        var operands: [Int] = []
        for _ in 0..<terms {
            operands.append(range.lowerBound + rest % range.count)
            rest /= range.count
        }
        return ArithmeticProblem(operands: operands, operators: operators)
    }

    func randomCandidate(using generator: inout SplitMix64) -> ArithmeticProblem {
        let ops = operations.operators
        let operators = (0..<(terms - 1)).map { _ in ops[Int(generator.next(below: UInt64(ops.count)))] }
        let operands = (0..<terms).map { _ in generator.next(in: operandRange) }
        return ArithmeticProblem(operands: operands, operators: operators)
    }
}
