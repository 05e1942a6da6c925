/// Which built-in task family to generate and how hard, parsed from strings like `arith:add2`.
///
/// Grammar: `arith:<operations><digits>[x<terms>]`
/// - operations: `add` (+), `sub` (−), `mul` (×), `mix` (+ and −), `all` (+, − and ×)
/// - digits: 1…9, the number of digits of every operand
/// - terms: 2…6 operands (default 2)
/// Examples: `arith:add2` (47+85), `arith:add3` (473+850), `arith:mix2` (47-15 or 47+85), `arith:add2x3` (47+85+12).
public enum TaskSpec: Sendable, Hashable, CustomStringConvertible {
    case arithmetic(ArithmeticSpec)

    public static let examples = ["arith:add2", "arith:add3", "arith:mix2", "arith:all1", "arith:add2x3"]

    public init(parsing text: String) throws {
        let normalized = text.trimmingWhitespace().lowercased()
        guard let colon = normalized.firstIndex(of: ":") else {
            throw TaskError.invalidSpec(spec: text, reason: "expected FAMILY:VARIANT")
        }
        let family = String(normalized[..<colon])
        let variant = String(normalized[normalized.index(after: colon)...])
        switch family {
        case "arith", "arithmetic":
            self = .arithmetic(try ArithmeticSpec(parsingVariant: variant, fullSpec: text))
        default:
            throw TaskError.invalidSpec(spec: text, reason: "unknown task family \"\(family)\" (known: arith)")
        }
    }

    /// The canonical spelling, e.g. `arith:add2x3`; parsing it gives back the same spec.
    public var description: String {
        switch self {
        case let .arithmetic(spec): return "arith:\(spec.variantName)"
        }
    }
}

/// Difficulty of an arithmetic task: which operators, how many digits per operand, how many operands.
public struct ArithmeticSpec: Sendable, Hashable {
    public enum Operations: String, Sendable, CaseIterable {
        case add, sub, mul, mix, all

        public var operators: [ArithmeticOperator] {
            switch self {
            case .add: return [.plus]
            case .sub: return [.minus]
            case .mul: return [.times]
            case .mix: return [.plus, .minus]
            case .all: return [.plus, .minus, .times]
            }
        }
    }

    public static let digitRange = 1...9
    public static let termRange = 2...6

    public let operations: Operations
    public let digits: Int
    public let terms: Int

    public init(operations: Operations, digits: Int, terms: Int = 2) throws {
        let name = "arith:\(operations.rawValue)\(digits)" + (terms == 2 ? "" : "x\(terms)")
        guard Self.digitRange.contains(digits) else {
            throw TaskError.invalidSpec(spec: name, reason: "digits must be in \(Self.digitRange), got \(digits)")
        }
        guard Self.termRange.contains(terms) else {
            throw TaskError.invalidSpec(spec: name, reason: "terms must be in \(Self.termRange), got \(terms)")
        }
        // Products of `terms` operands of `digits` digits stay below 10^(digits·terms); keep that inside Int64.
        if operations.operators.contains(.times) && digits * terms > 18 {
            throw TaskError.invalidSpec(
                spec: name, reason: "products of \(terms) \(digits)-digit numbers overflow 64-bit integers; "
                    + "digits × terms must be at most 18 when multiplying")
        }
        self.operations = operations
        self.digits = digits
        self.terms = terms
    }

    init(parsingVariant variant: String, fullSpec: String) throws {
        let letters = variant.prefix { $0.isLetter }
        var rest = variant.dropFirst(letters.count)
        guard let operations = Operations(rawValue: String(letters)) else {
            let known = "add, sub, mul, mix (+ and -), all (+, - and *)"
            let shown = letters.isEmpty ? variant : String(letters)
            throw TaskError.invalidSpec(spec: fullSpec, reason: "unknown operations \"\(shown)\" (known: \(known))")
        }
        let digitText = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(digitText.count)
        guard let digits = Int(digitText) else {
            throw TaskError.invalidSpec(spec: fullSpec, reason: "missing the digit count after \"\(letters)\"")
        }
        var terms = 2
        if !rest.isEmpty {
            guard rest.first == "x", let parsed = Int(rest.dropFirst()), rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw TaskError.invalidSpec(spec: fullSpec, reason: "unexpected \"\(rest)\"; the only suffix allowed is x<terms>, e.g. x3")
            }
            terms = parsed
        }
        do {
            try self.init(operations: operations, digits: digits, terms: terms)
        } catch TaskError.invalidSpec(_, let reason) {
            throw TaskError.invalidSpec(spec: fullSpec, reason: reason)
        }
    }

    var variantName: String {
        "\(operations.rawValue)\(digits)" + (terms == 2 ? "" : "x\(terms)")
    }

    /// Every operand has exactly `digits` digits (one-digit operands include 0).
    var operandRange: ClosedRange<Int> {
        let upper = Int(pow10(digits)) - 1
        return digits == 1 ? 0...upper : Int(pow10(digits - 1))...upper
    }
}

func pow10(_ exponent: Int) -> Int64 {
    var value: Int64 = 1
    for _ in 0..<exponent { value *= 10 }
    return value
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
