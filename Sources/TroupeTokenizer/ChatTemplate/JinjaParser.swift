/// The syntax tree of the Jinja subset chat templates use, and its parser. Anything outside the subset
/// (macros, includes, unknown filters, tests, functions or methods, …) is refused here, when
/// the template is loaded, with its name and line, rather than when a branch happens to run.
indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpression, line: Int)
    /// `if` / `elif` branches in order, then the `else` body (empty when there is none).
    case conditional([(condition: JinjaExpression, body: [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case loop(targets: [String], iterable: JinjaExpression, filter: JinjaExpression?, body: [JinjaNode],
              otherwise: [JinjaNode], line: Int)
    case assignment(target: String, value: JinjaExpression, line: Int)
    /// `{% set ns.attribute = … %}` on a namespace.
    case attributeAssignment(target: String, attribute: String, value: JinjaExpression, line: Int)
    /// `{% break %}` or `{% continue %}` inside a `{% for %}` body.
    case loopControl(isBreak: Bool, line: Int)
}

indirect enum JinjaExpression: Sendable {
    case literal(JinjaValue)
    case variable(String)
    case list([JinjaExpression])
    case dictionary([(key: JinjaExpression, value: JinjaExpression)])
    case attribute(JinjaExpression, String)
    case item(JinjaExpression, JinjaExpression)
    case slice(JinjaExpression, start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?)
    /// A global function (`raise_exception(…)`) or a method (`text.strip()`).
    case call(JinjaExpression, arguments: [JinjaExpression], keywords: [(name: String, value: JinjaExpression)])
    case filter(JinjaExpression, name: String, arguments: [JinjaExpression], keywords: [(name: String, value: JinjaExpression)])
    case test(JinjaExpression, name: String, negated: Bool, arguments: [JinjaExpression])
    case not(JinjaExpression)
    case negative(JinjaExpression)
    case binary(String, JinjaExpression, JinjaExpression)
    case and(JinjaExpression, JinjaExpression)
    case or(JinjaExpression, JinjaExpression)
    case ternary(condition: JinjaExpression, then: JinjaExpression, otherwise: JinjaExpression?)
}

struct JinjaParser {
    static let filters: Set<String> = ["trim", "tojson", "length", "count", "upper", "lower", "string", "join", "first",
                                       "last", "default", "d", "capitalize", "title", "int", "float", "list", "reverse",
                                       "items", "select", "reject", "selectattr", "rejectattr", "map"]
    static let tests: Set<String> = ["defined", "undefined", "none", "string", "number", "integer", "float", "boolean",
                                     "true", "false", "mapping", "sequence", "iterable", "even", "odd", "callable",
                                     "lower", "upper", "divisibleby", "in", "eq", "equalto", "ne", "gt", "greaterthan",
                                     "ge", "lt", "lessthan", "le"]
    /// The operator spellings `select`, `reject`, `selectattr` and `rejectattr` accept for comparison tests.
    static let testOperators: [String: String] = ["==": "eq", "!=": "ne", ">": "gt", ">=": "ge", "<": "lt", "<=": "le"]
    static let functions: Set<String> = ["raise_exception", "range", "namespace", "strftime_now"]
    static let methods: Set<String> = ["strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize", "startswith",
                                       "endswith", "split", "replace", "items", "keys", "values", "get"]
    /// `{% for %}` bodies being parsed around the current tag: `{% break %}` and `{% continue %}` need one.
    private var loopDepth = 0
    /// Blocks being parsed around the current tag: a template comes with a downloaded model, so its
    /// nesting is bounded rather than recursed into until the stack runs out.
    private var blockDepth = 0
    static let maxNesting = 200

    private var segments: [JinjaLexer.Segment]
    private var index = 0

    static func parse(_ template: String) throws -> [JinjaNode] {
        var parser = JinjaParser(segments: try JinjaLexer.segments(template))
        let (nodes, end) = try parser.block(until: [])
        assert(end == nil)
        return nodes
    }

    private init(segments: [JinjaLexer.Segment]) {
        self.segments = segments
    }

    /// Nodes up to a statement whose keyword is in `terminators` (returned with its tokens and line),
    /// or to the end of the template when `terminators` is empty.
    private mutating func block(until terminators: Set<String>) throws
        -> ([JinjaNode], (keyword: String, tokens: [JinjaLexer.Token], line: Int)?) {
        blockDepth += 1
        defer { blockDepth -= 1 }
        if blockDepth > Self.maxNesting {
            var line = lastLine
            if index > 0, case let .statement(_, tagLine) = segments[index - 1] { line = tagLine }
            throw ChatTemplateError.syntax(line: line, problem: "blocks nested more than \(Self.maxNesting) deep")
        }
        var nodes: [JinjaNode] = []
        while index < segments.count {
            let segment = segments[index]
            index += 1
            switch segment {
            case let .text(text):
                nodes.append(.text(text))
            case let .output(tokens, line):
                var expression = ExpressionParser(tokens: tokens, line: line)
                nodes.append(.output(try expression.whole(), line: line))
            case let .statement(tokens, line):
                guard case let .name(keyword)? = tokens.first else {
                    throw ChatTemplateError.syntax(line: line, problem: "a {% %} tag must start with a keyword")
                }
                if terminators.contains(keyword) { return (nodes, (keyword, Array(tokens.dropFirst()), line)) }
                nodes.append(try statement(keyword, Array(tokens.dropFirst()), line: line, inside: terminators))
            }
        }
        if let expected = terminators.first(where: { $0.hasPrefix("end") }) {
            throw ChatTemplateError.syntax(line: lastLine, problem: "missing {% \(expected) %}")
        }
        return (nodes, nil)
    }

    private var lastLine: Int {
        for segment in segments.reversed() {
            if case let .output(_, line) = segment { return line }
            if case let .statement(_, line) = segment { return line }
        }
        return 1
    }

    private mutating func statement(_ keyword: String, _ tokens: [JinjaLexer.Token], line: Int,
                                    inside: Set<String>) throws -> JinjaNode {
        switch keyword {
        case "if":
            var branches: [(condition: JinjaExpression, body: [JinjaNode])] = []
            var conditionTokens = tokens
            var conditionLine = line
            while true {
                var parser = ExpressionParser(tokens: conditionTokens, line: conditionLine)
                let condition = try parser.whole()
                let (body, end) = try block(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                guard let end else { throw ChatTemplateError.syntax(line: line, problem: "missing {% endif %}") }
                switch end.keyword {
                case "elif":
                    conditionTokens = end.tokens
                    conditionLine = end.line
                case "else":
                    try expectEmpty(end.tokens, after: "else", line: end.line)
                    let (otherwise, close) = try block(until: ["endif"])
                    guard let close else { throw ChatTemplateError.syntax(line: line, problem: "missing {% endif %}") }
                    try expectEmpty(close.tokens, after: "endif", line: close.line)
                    return .conditional(branches, otherwise: otherwise, line: line)
                default:
                    try expectEmpty(end.tokens, after: "endif", line: end.line)
                    return .conditional(branches, otherwise: [], line: line)
                }
            }
        case "for":
            var targets: [String] = []
            var rest = tokens[...]
            while case let .name(name)? = rest.first, name != "in" {
                targets.append(name)
                rest = rest.dropFirst()
                if rest.first == .symbol(",") { rest = rest.dropFirst() } else { break }
            }
            guard !targets.isEmpty, rest.first == .name("in") else {
                throw ChatTemplateError.syntax(line: line, problem: "expected {% for NAME in EXPRESSION %}")
            }
            var parser = ExpressionParser(tokens: Array(rest.dropFirst()), line: line)
            let iterable = try parser.expression(allowConditional: false)
            var filter: JinjaExpression?
            if parser.accept(.name("if")) { filter = try parser.expression(allowConditional: false) }
            if parser.accept(.name("recursive")) {
                throw ChatTemplateError.unsupported(line: line, construct: "recursive for loops")
            }
            try parser.finish()
            loopDepth += 1
            let (body, end) = try block(until: ["else", "endfor"])
            loopDepth -= 1
            guard let end else { throw ChatTemplateError.syntax(line: line, problem: "missing {% endfor %}") }
            var otherwise: [JinjaNode] = []
            if end.keyword == "else" {
                try expectEmpty(end.tokens, after: "else", line: end.line)
                let (elseBody, close) = try block(until: ["endfor"])
                guard let close else { throw ChatTemplateError.syntax(line: line, problem: "missing {% endfor %}") }
                try expectEmpty(close.tokens, after: "endfor", line: close.line)
                otherwise = elseBody
            } else {
                try expectEmpty(end.tokens, after: "endfor", line: end.line)
            }
            return .loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, line: line)
        case "set":
            guard case let .name(target)? = tokens.first else {
                throw ChatTemplateError.syntax(line: line, problem: "expected {% set NAME = EXPRESSION %}")
            }
            if tokens.count == 1 {
                throw ChatTemplateError.unsupported(line: line, construct: "block assignment {% set \(target) %}…{% endset %}")
            }
            if tokens.dropFirst().first == .symbol(".") {
                guard tokens.count > 4, case let .name(attribute) = tokens[2], tokens[3] == .symbol("=") else {
                    throw ChatTemplateError.syntax(line: line, problem: "expected {% set NAME.ATTRIBUTE = EXPRESSION %}")
                }
                var parser = ExpressionParser(tokens: Array(tokens.dropFirst(4)), line: line)
                return .attributeAssignment(target: target, attribute: attribute, value: try parser.whole(), line: line)
            }
            guard tokens.dropFirst().first == .symbol("=") else {
                throw ChatTemplateError.unsupported(line: line, construct: "this form of {% set %} (only {% set NAME = EXPRESSION %})")
            }
            var parser = ExpressionParser(tokens: Array(tokens.dropFirst(2)), line: line)
            return .assignment(target: target, value: try parser.whole(), line: line)
        case "break", "continue":
            // Jinja's loopcontrols extension, which apply_chat_template enables.
            guard loopDepth > 0 else { throw ChatTemplateError.syntax(line: line, problem: "{% \(keyword) %} outside a {% for %} loop") }
            try expectEmpty(tokens, after: keyword, line: line)
            return .loopControl(isBreak: keyword == "break", line: line)
        case "elif", "else", "endif", "endfor":
            throw ChatTemplateError.syntax(line: line, problem: "{% \(keyword) %} without a matching opening tag")
        default:
            throw ChatTemplateError.unsupported(line: line, construct: "the {% \(keyword) %} statement")
        }
    }

    private func expectEmpty(_ tokens: [JinjaLexer.Token], after keyword: String, line: Int) throws {
        if !tokens.isEmpty { throw ChatTemplateError.syntax(line: line, problem: "unexpected text after {% \(keyword)") }
    }
}

/// Recursive descent over one tag's tokens, with Jinja's precedence: conditional expression, `or`,
/// `and`, `not`, comparisons and `in`, `+ -`, `~`, `* / // %`, unary minus, then primaries with their
/// postfixes (`.name`, `[…]`, calls) and filters and tests (`| f`, `is t`).
struct ExpressionParser {
    private let tokens: [JinjaLexer.Token]
    private var index = 0
    let line: Int
    /// Sub-expressions being parsed around the current token (parentheses, brackets, arguments, each
    /// `not` and unary sign).
    private var depth = 0

    init(tokens: [JinjaLexer.Token], line: Int) {
        self.tokens = tokens
        self.line = line
    }

    mutating func whole() throws -> JinjaExpression {
        let expression = try self.expression()
        try finish()
        return expression
    }

    func finish() throws {
        if index < tokens.count { throw ChatTemplateError.syntax(line: line, problem: "unexpected \(describe(tokens[index]))") }
    }

    private var next: JinjaLexer.Token? { index < tokens.count ? tokens[index] : nil }

    mutating func accept(_ token: JinjaLexer.Token) -> Bool {
        guard next == token else { return false }
        index += 1
        return true
    }

    private mutating func expect(_ token: JinjaLexer.Token) throws {
        guard accept(token) else {
            throw ChatTemplateError.syntax(line: line, problem: "expected \(describe(token)), found \(next.map(describe) ?? "the end of the tag")")
        }
    }

    private func describe(_ token: JinjaLexer.Token) -> String {
        switch token {
        case let .name(n): return "'\(n)'"
        case let .string(s): return "string \(s.debugDescription)"
        case let .integer(i): return "\(i)"
        case let .number(d): return "\(d)"
        case let .symbol(s): return "'\(s)'"
        }
    }

    /// Counts one level of nesting for the caller's scope (which undoes it with `depth -= 1`).
    private mutating func enter() throws {
        depth += 1
        if depth > JinjaParser.maxNesting {
            throw ChatTemplateError.syntax(line: line, problem: "an expression nested more than \(JinjaParser.maxNesting) deep")
        }
    }

    mutating func expression(allowConditional: Bool = true) throws -> JinjaExpression {
        try enter()
        defer { depth -= 1 }
        let value = try or()
        guard allowConditional, accept(.name("if")) else { return value }
        let condition = try or()
        let otherwise = accept(.name("else")) ? try expression() : nil
        return .ternary(condition: condition, then: value, otherwise: otherwise)
    }

    private mutating func or() throws -> JinjaExpression {
        var left = try and()
        while accept(.name("or")) { left = .or(left, try and()) }
        return left
    }

    private mutating func and() throws -> JinjaExpression {
        var left = try not()
        while accept(.name("and")) { left = .and(left, try not()) }
        return left
    }

    private mutating func not() throws -> JinjaExpression {
        if accept(.name("not")) {
            try enter()
            defer { depth -= 1 }
            return .not(try not())
        }
        return try comparison()
    }

    private mutating func comparison() throws -> JinjaExpression {
        var left = try sum()
        while true {
            if case let .symbol(op)? = next, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                index += 1
                left = .binary(op, left, try sum())
            } else if accept(.name("in")) {
                left = .binary("in", left, try sum())
            } else if next == .name("not"), index + 1 < tokens.count, tokens[index + 1] == .name("in") {
                index += 2
                left = .not(.binary("in", left, try sum()))
            } else {
                return left
            }
        }
    }

    private mutating func sum() throws -> JinjaExpression {
        var left = try concatenation()
        while case let .symbol(op)? = next, op == "+" || op == "-" {
            index += 1
            left = .binary(op, left, try concatenation())
        }
        return left
    }

    private mutating func concatenation() throws -> JinjaExpression {
        var left = try product()
        while accept(.symbol("~")) { left = .binary("~", left, try product()) }
        return left
    }

    private mutating func product() throws -> JinjaExpression {
        var left = try unary(withFilters: true)
        while case let .symbol(op)? = next, ["*", "/", "//", "%"].contains(op) {
            index += 1
            left = .binary(op, left, try unary(withFilters: true))
        }
        if next == .symbol("**") { throw ChatTemplateError.unsupported(line: line, construct: "the ** operator") }
        return left
    }

    private mutating func unary(withFilters: Bool) throws -> JinjaExpression {
        var value: JinjaExpression
        if accept(.symbol("-")) {
            try enter()
            defer { depth -= 1 }
            value = .negative(try unary(withFilters: false))
        } else if accept(.symbol("+")) {
            try enter()
            defer { depth -= 1 }
            value = try unary(withFilters: false)
        } else {
            value = try primary()
        }
        value = try postfix(value)
        return withFilters ? try filtersAndTests(value) : value
    }

    private mutating func primary() throws -> JinjaExpression {
        guard let token = next else { throw ChatTemplateError.syntax(line: line, problem: "expected an expression, found the end of the tag") }
        index += 1
        switch token {
        case let .name(name):
            switch name {
            case "true", "True": return .literal(.boolean(true))
            case "false", "False": return .literal(.boolean(false))
            case "none", "None": return .literal(.none)
            default: return .variable(name)
            }
        case var .string(text):
            while case let .string(more)? = next { text += more; index += 1 }
            return .literal(.string(text))
        case let .integer(value): return .literal(.integer(value))
        case let .number(value): return .literal(.number(value))
        case .symbol("("):
            let inner = try expression()
            if next == .symbol(",") {
                var items = [inner]
                while accept(.symbol(",")), next != .symbol(")") { items.append(try expression()) }
                try expect(.symbol(")"))
                return .list(items)
            }
            try expect(.symbol(")"))
            return inner
        case .symbol("["):
            var items: [JinjaExpression] = []
            while next != .symbol("]") {
                items.append(try expression())
                if !accept(.symbol(",")) { break }
            }
            try expect(.symbol("]"))
            return .list(items)
        case .symbol("{"):
            var pairs: [(key: JinjaExpression, value: JinjaExpression)] = []
            while next != .symbol("}") {
                let key = try expression()
                try expect(.symbol(":"))
                pairs.append((key, try expression()))
                if !accept(.symbol(",")) { break }
            }
            try expect(.symbol("}"))
            return .dictionary(pairs)
        default:
            throw ChatTemplateError.syntax(line: line, problem: "unexpected \(describe(token))")
        }
    }

    private mutating func postfix(_ base: JinjaExpression) throws -> JinjaExpression {
        var value = base
        while true {
            if accept(.symbol(".")) {
                guard case let .name(name)? = next else {
                    throw ChatTemplateError.syntax(line: line, problem: "expected a name after '.'")
                }
                index += 1
                value = .attribute(value, name)
            } else if accept(.symbol("[")) {
                value = try subscriptOrSlice(value)
            } else if next == .symbol("(") {
                value = try call(value)
            } else {
                return value
            }
        }
    }

    private mutating func subscriptOrSlice(_ base: JinjaExpression) throws -> JinjaExpression {
        var parts: [JinjaExpression?] = [nil]
        var isSlice = false
        while next != .symbol("]") {
            if accept(.symbol(":")) {
                isSlice = true
                parts.append(nil)
                guard parts.count <= 3 else { throw ChatTemplateError.syntax(line: line, problem: "a slice has at most two ':'") }
            } else {
                guard parts[parts.count - 1] == nil else { throw ChatTemplateError.syntax(line: line, problem: "expected ']'") }
                parts[parts.count - 1] = try expression()
            }
        }
        try expect(.symbol("]"))
        if !isSlice {
            guard let key = parts[0] else { throw ChatTemplateError.syntax(line: line, problem: "empty subscript []") }
            return .item(base, key)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, start: parts[0], stop: parts[1], step: parts[2])
    }

    private mutating func arguments() throws -> ([JinjaExpression], [(name: String, value: JinjaExpression)]) {
        try expect(.symbol("("))
        var positional: [JinjaExpression] = []
        var keywords: [(name: String, value: JinjaExpression)] = []
        while next != .symbol(")") {
            if case let .name(name)? = next, index + 1 < tokens.count, tokens[index + 1] == .symbol("=") {
                index += 2
                keywords.append((name, try expression()))
            } else {
                positional.append(try expression())
            }
            if !accept(.symbol(",")) { break }
        }
        try expect(.symbol(")"))
        return (positional, keywords)
    }

    private mutating func call(_ callee: JinjaExpression) throws -> JinjaExpression {
        switch callee {
        case let .variable(name):
            guard JinjaParser.functions.contains(name) else {
                throw ChatTemplateError.unsupported(line: line, construct: "the function \(name)() (supported: \(JinjaParser.functions.sorted().joined(separator: ", ")))")
            }
        case let .attribute(_, name):
            guard JinjaParser.methods.contains(name) else {
                throw ChatTemplateError.unsupported(line: line, construct: "the method .\(name)() (supported: \(JinjaParser.methods.sorted().joined(separator: ", ")))")
            }
        default:
            throw ChatTemplateError.unsupported(line: line, construct: "calling an expression that is not a function or a method")
        }
        let (positional, keywords) = try arguments()
        return .call(callee, arguments: positional, keywords: keywords)
    }

    private mutating func filtersAndTests(_ base: JinjaExpression) throws -> JinjaExpression {
        var value = base
        while true {
            if accept(.symbol("|")) {
                guard case let .name(name)? = next else { throw ChatTemplateError.syntax(line: line, problem: "expected a filter name after '|'") }
                index += 1
                guard JinjaParser.filters.contains(name) else {
                    throw ChatTemplateError.unsupported(line: line, construct: "the filter |\(name) (supported: \(JinjaParser.filters.sorted().joined(separator: ", ")))")
                }
                let (positional, keywords) = next == .symbol("(") ? try arguments() : ([], [])
                try checkNamedArgument(of: name, positional)
                value = .filter(value, name: name, arguments: positional, keywords: keywords)
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                guard case let .name(name)? = next else { throw ChatTemplateError.syntax(line: line, problem: "expected a test name after 'is'") }
                index += 1
                let testName = name == "none" || name == "None" ? "none" : name == "true" || name == "True" ? "true"
                    : name == "false" || name == "False" ? "false" : name
                guard JinjaParser.tests.contains(testName) else {
                    throw ChatTemplateError.unsupported(line: line, construct: "the test 'is \(name)' (supported: \(JinjaParser.tests.sorted().joined(separator: ", ")))")
                }
                value = .test(value, name: testName, negated: negated, arguments: try testArguments())
            } else {
                return value
            }
        }
    }

    /// A test's arguments, as Jinja parses them: in parentheses, or one expression right after the name
    /// (`x is divisibleby 3`, `x is equalto y`) unless a keyword that continues the expression follows.
    private mutating func testArguments() throws -> [JinjaExpression] {
        if next == .symbol("(") {
            let (positional, keywords) = try arguments()
            guard keywords.isEmpty else { throw ChatTemplateError.unsupported(line: line, construct: "keyword arguments to a test") }
            return positional
        }
        switch next {
        case .name("is"):
            throw ChatTemplateError.syntax(line: line, problem: "tests cannot be chained with 'is'")
        case .name("else"), .name("or"), .name("and"):
            return []
        case .name, .string, .integer, .number, .symbol("["), .symbol("{"):
            return [try postfix(try primary())]
        default:
            return []
        }
    }

    /// `select('odd')`, `map('upper')`, …: a test or filter named by a string literal is checked now, like one
    /// written after `is` or `|`, so an unsupported one is refused when the template is loaded.
    private func checkNamedArgument(of filter: String, _ positional: [JinjaExpression]) throws {
        let position: Int
        switch filter {
        case "select", "reject": position = 0
        case "selectattr", "rejectattr": position = 1
        case "map": position = 0
        default: return
        }
        guard positional.count > position, case let .literal(.string(named)) = positional[position] else { return }
        if filter == "map" {
            guard JinjaParser.filters.contains(named) else {
                throw ChatTemplateError.unsupported(line: line, construct: "the filter \(named.debugDescription) in |map (supported: \(JinjaParser.filters.sorted().joined(separator: ", ")))")
            }
        } else if !JinjaParser.tests.contains(named) && JinjaParser.testOperators[named] == nil {
            throw ChatTemplateError.unsupported(line: line, construct: "the test \(named.debugDescription) in |\(filter) (supported: \(JinjaParser.tests.sorted().joined(separator: ", ")))")
        }
    }
}

extension JinjaNode {
    /// Whether the template reads the variable or function `name` anywhere, in any branch.
    func mentions(_ name: String) -> Bool {
        switch self {
        case .text, .loopControl: return false
        case let .output(expression, _): return expression.mentions(name)
        case let .conditional(branches, otherwise, _):
            return branches.contains { $0.condition.mentions(name) || $0.body.contains { $0.mentions(name) } }
                || otherwise.contains { $0.mentions(name) }
        case let .loop(_, iterable, filter, body, otherwise, _):
            return iterable.mentions(name) || filter?.mentions(name) == true
                || body.contains { $0.mentions(name) } || otherwise.contains { $0.mentions(name) }
        case let .assignment(_, value, _), let .attributeAssignment(_, _, value, _): return value.mentions(name)
        }
    }
}

extension JinjaExpression {
    func mentions(_ name: String) -> Bool {
        switch self {
        case .literal: return false
        case let .variable(variable): return variable == name
        case let .list(items): return items.contains { $0.mentions(name) }
        case let .dictionary(pairs): return pairs.contains { $0.key.mentions(name) || $0.value.mentions(name) }
        case let .attribute(base, _), let .not(base), let .negative(base): return base.mentions(name)
        case let .item(base, key): return base.mentions(name) || key.mentions(name)
        case let .slice(base, start, stop, step):
            return base.mentions(name) || [start, stop, step].contains { $0?.mentions(name) == true }
        case let .call(callee, arguments, keywords), let .filter(callee, _, arguments, keywords):
            return callee.mentions(name) || arguments.contains { $0.mentions(name) } || keywords.contains { $0.value.mentions(name) }
        case let .test(base, _, _, arguments): return base.mentions(name) || arguments.contains { $0.mentions(name) }
        case let .binary(_, left, right), let .and(left, right), let .or(left, right):
            return left.mentions(name) || right.mentions(name)
        case let .ternary(condition, then, otherwise):
            return condition.mentions(name) || then.mentions(name) || otherwise?.mentions(name) == true
        }
    }
}
