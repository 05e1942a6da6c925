import Foundation

/// Runs a parsed template against its variables and returns the text. Pure: no I/O, no clock.
struct JinjaRenderer {
    /// Innermost last. A `for` loop opens a scope, so `set` inside a loop does not leak out of it (Jinja's rule).
    private var scopes: [[String: JinjaValue]]
    private var output = ""
    /// Loop iterations run so far (`limits`).
    private var iterations = 0

    /// A chat template comes with a model download: bounds on what rendering one may cost, far beyond any
    /// real template (they loop over a conversation's messages), so a hostile or broken one is an error
    /// naming its line instead of a hang or an allocation that stops the process.
    enum Limits {
        static let iterations = 1_000_000
        /// Characters of any string the template builds, its output included.
        static let length = 1 << 24
    }

    /// What `strftime_now()` writes; nil leaves it undefined, as in a plain Jinja environment.
    private let now: ChatDate?

    private struct Raised: Error {
        let message: String
    }

    /// `{% break %}` or `{% continue %}` on its way to the loop it belongs to.
    private enum LoopControl: Error {
        case breakLoop, continueLoop
    }

    static func render(_ nodes: [JinjaNode], variables: [String: JinjaValue], now: ChatDate? = nil) throws -> String {
        var renderer = JinjaRenderer(scopes: [variables], now: now)
        try renderer.run(nodes)
        return renderer.output
    }

    private init(scopes: [[String: JinjaValue]], now: ChatDate?) {
        self.scopes = scopes
        self.now = now
    }

    private mutating func run(_ nodes: [JinjaNode]) throws {
        for node in nodes {
            switch node {
            case let .text(text):
                output += text
            case let .output(expression, line):
                let value = try at(line) { try evaluate(expression) }
                output += value.text
                try at(line) { try Self.checkLength(output.utf8.count) }
            case let .conditional(branches, otherwise, line):
                var taken = false
                for branch in branches {
                    guard try at(line, { try evaluate(branch.condition).isTrue }) else { continue }
                    try run(branch.body)
                    taken = true
                    break
                }
                if !taken { try run(otherwise) }
            case let .loop(targets, iterable, filter, body, otherwise, line):
                try loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, line: line)
            case let .assignment(target, value, line):
                let result = try at(line) { try evaluate(value) }
                scopes[scopes.count - 1][target] = result
            case let .attributeAssignment(target, attribute, value, line):
                try at(line) {
                    // Jinja looks the name up through the scopes and changes the namespace it finds in place.
                    guard case let .namespace(namespace)? = scopes.last(where: { $0[target] != nil })?[target] else {
                        throw JinjaFailure("cannot assign attribute on non-namespace object \(target)")
                    }
                    namespace.attributes[attribute] = try evaluate(value)
                }
            case let .loopControl(isBreak, _):
                throw isBreak ? LoopControl.breakLoop : LoopControl.continueLoop
            }
        }
    }

    /// Runs `work`, turning its failures into errors that name `line`.
    private func at<T>(_ line: Int, _ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch let failure as JinjaFailure {
            throw ChatTemplateError.render(line: line, problem: failure.problem)
        } catch let raised as Raised {
            throw ChatTemplateError.raised(line: line, message: raised.message)
        }
    }

    private mutating func loop(targets: [String], iterable: JinjaExpression, filter: JinjaExpression?, body: [JinjaNode],
                               otherwise: [JinjaNode], line: Int) throws {
        var items = try at(line) { try Self.iterate(try evaluate(iterable)) }
        if let filter {
            var kept: [JinjaValue] = []
            for item in items {
                scopes.append(try bind(targets, to: item, line: line))
                defer { scopes.removeLast() }
                if try at(line, { try evaluate(filter).isTrue }) { kept.append(item) }
            }
            items = kept
        }
        // As Jinja compiles it: the else body runs unless some iteration reached the end of the body
        // (an empty loop, or one whose every iteration ended in break or continue).
        var completedAnIteration = false
        do {
            scopes.append([:])
            defer { scopes.removeLast() }
            for (index, item) in items.enumerated() {
                iterations += 1
                if iterations > Limits.iterations {
                    throw ChatTemplateError.render(line: line, problem: "the template runs more than \(Limits.iterations) loop iterations")
                }
                for (name, value) in try bind(targets, to: item, line: line) { scopes[scopes.count - 1][name] = value }
                scopes[scopes.count - 1]["loop"] = .dictionary(JinjaDictionary([
                    ("index", .integer(index + 1)), ("index0", .integer(index)),
                    ("revindex", .integer(items.count - index)), ("revindex0", .integer(items.count - index - 1)),
                    ("first", .boolean(index == 0)), ("last", .boolean(index == items.count - 1)),
                    ("length", .integer(items.count)),
                    ("previtem", index > 0 ? items[index - 1] : .undefined("loop.previtem")),
                    ("nextitem", index + 1 < items.count ? items[index + 1] : .undefined("loop.nextitem")),
                ]))
                do {
                    try run(body)
                    completedAnIteration = true
                } catch LoopControl.continueLoop {
                    continue
                } catch LoopControl.breakLoop {
                    break
                }
            }
        }
        if !completedAnIteration { try run(otherwise) }
    }

    private func bind(_ targets: [String], to item: JinjaValue, line: Int) throws -> [String: JinjaValue] {
        if targets.count == 1 { return [targets[0]: item] }
        guard case let .list(parts) = item, parts.count == targets.count else {
            throw ChatTemplateError.render(line: line, problem: "cannot unpack \(item.typeName) into \(targets.count) names")
        }
        return Dictionary(uniqueKeysWithValues: zip(targets, parts).map { ($0, $1) })
    }

    private static func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case let .list(items): return items
        case let .dictionary(d): return d.keys.map(JinjaValue.string)
        case let .generator(items): return items
        case let .string(s): return s.map { .string(String($0)) }
        default: throw JinjaFailure("\(value.typeName) is not iterable")
        }
    }

    private func lookUp(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let value = scope[name] { return value } }
        // The globals apply_chat_template defines, so `strftime_now is defined` reads as there.
        if JinjaParser.functions.contains(name), name != "strftime_now" || now != nil { return .function(name) }
        return .undefined("'\(name)'")
    }

    // MARK: expressions

    private func evaluate(_ expression: JinjaExpression) throws -> JinjaValue {
        switch expression {
        case let .literal(value): return value
        case let .variable(name): return lookUp(name)
        case let .list(items): return .list(try items.map(evaluate))
        case let .dictionary(pairs):
            var d = JinjaDictionary()
            for pair in pairs {
                guard case let .string(key) = try evaluate(pair.key) else { throw JinjaFailure("dictionary keys must be strings") }
                d[key] = try evaluate(pair.value)
            }
            return .dictionary(d)
        case let .attribute(base, name):
            return try member(of: try evaluate(base), name, description: "\(describe(base)).\(name)")
        case let .item(base, key):
            return try item(of: try evaluate(base), try evaluate(key), description: describe(base))
        case let .slice(base, start, stop, step):
            return try slice(try evaluate(base), start: start.map(evaluate), stop: stop.map(evaluate), step: step.map(evaluate))
        case let .call(callee, arguments, keywords):
            let args = try arguments.map(evaluate)
            let kwargs = try keywords.map { ($0.name, try evaluate($0.value)) }
            if case let .variable(name) = callee { return try function(name, args, kwargs) }
            guard case let .attribute(base, name) = callee else { throw JinjaFailure("not callable") }
            return try method(name, of: try evaluate(base), args, kwargs, description: describe(base))
        case let .filter(base, name, arguments, keywords):
            return try filter(name, try evaluate(base), try arguments.map(evaluate),
                              try keywords.map { ($0.name, try evaluate($0.value)) })
        case let .test(base, name, negated, arguments):
            return .boolean(try test(name, try evaluate(base), try arguments.map(evaluate)) != negated)
        case let .not(inner): return .boolean(!(try evaluate(inner).isTrue))
        case let .negative(inner):
            switch try evaluate(inner) {
            case let .integer(i):
                guard i != .min else { throw JinjaFailure("integer overflow") }
                return .integer(-i)
            case let .number(d): return .number(-d)
            case let other: throw JinjaFailure("cannot negate \(other.typeName)")
            }
        case let .and(left, right):
            let l = try evaluate(left)
            return l.isTrue ? try evaluate(right) : l
        case let .or(left, right):
            let l = try evaluate(left)
            return l.isTrue ? l : try evaluate(right)
        case let .ternary(condition, then, otherwise):
            if try evaluate(condition).isTrue { return try evaluate(then) }
            return try otherwise.map(evaluate) ?? .undefined("the missing else of a conditional expression")
        case let .binary(op, left, right):
            return try binary(op, try evaluate(left), try evaluate(right), left: left, right: right)
        }
    }

    /// A short spelling of an expression for error messages (`message.content`, `messages[0]`).
    private func describe(_ expression: JinjaExpression) -> String {
        switch expression {
        case let .variable(name): return name
        case let .attribute(base, name): return "\(describe(base)).\(name)"
        case let .item(base, key):
            if case let .literal(value) = key { return "\(describe(base))[\(value.representation)]" }
            return "\(describe(base))[…]"
        case let .literal(value): return value.representation
        default: return "an expression"
        }
    }

    private func undefinedFailure(_ value: JinjaValue) -> JinjaFailure {
        if case let .undefined(name) = value { return JinjaFailure("\(name) is undefined") }
        return JinjaFailure("undefined value")
    }

    private func member(of base: JinjaValue, _ name: String, description: String) throws -> JinjaValue {
        switch base {
        case .undefined: throw undefinedFailure(base)
        case let .dictionary(d): return d[name] ?? .undefined("'\(description)'")
        case let .namespace(n): return n.attributes[name] ?? .undefined("'\(description)'")
        default: return .undefined("'\(description)'")
        }
    }

    private func item(of base: JinjaValue, _ key: JinjaValue, description: String) throws -> JinjaValue {
        switch (base, key) {
        case (.undefined, _): throw undefinedFailure(base)
        case let (.dictionary(d), .string(k)): return d[k] ?? .undefined("'\(description)[\(key.representation)]'")
        case let (.namespace(n), .string(k)): return n.attributes[k] ?? .undefined("'\(description)[\(key.representation)]'")
        case let (.list(items), .integer(i)):
            let index = i < 0 ? items.count + i : i
            return items.indices.contains(index) ? items[index] : .undefined("'\(description)[\(i)]'")
        case let (.string(s), .integer(i)):
            let characters = Array(s)
            let index = i < 0 ? characters.count + i : i
            return characters.indices.contains(index) ? .string(String(characters[index])) : .undefined("'\(description)[\(i)]'")
        default: return .undefined("'\(description)[\(key.representation)]'")
        }
    }

    private func slice(_ base: JinjaValue, start: JinjaValue?, stop: JinjaValue?, step: JinjaValue?) throws -> JinjaValue {
        func int(_ v: JinjaValue?) throws -> Int? {
            guard let v, !(v.isUndefined) else { return nil }
            if case .none = v { return nil }
            guard case let .integer(i) = v else { throw JinjaFailure("slice indices must be integers") }
            return i
        }
        let stepValue = try int(step) ?? 1
        guard stepValue != 0 else { throw JinjaFailure("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ i: Int?, _ fallback: Int, low: Int, high: Int) -> Int {
                guard var i else { return fallback }
                if i < 0 { i += count }
                return min(max(i, low), high)
            }
            if stepValue > 0 {
                let from = clamp(try int(start), 0, low: 0, high: count), to = clamp(try int(stop), count, low: 0, high: count)
                return Array(stride(from: from, to: to, by: stepValue))
            }
            let from = clamp(try int(start), count - 1, low: -1, high: count - 1), to = clamp(try int(stop), -1, low: -1, high: count - 1)
            return Array(stride(from: from, to: to, by: stepValue))
        }
        switch base {
        case let .list(items): return .list(try indices(items.count).map { items[$0] })
        case let .string(s):
            let characters = Array(s)
            return .string(String(try indices(characters.count).map { characters[$0] }))
        default: throw JinjaFailure("cannot slice \(base.typeName)")
        }
    }

    private func function(_ name: String, _ arguments: [JinjaValue], _ keywords: [(String, JinjaValue)]) throws -> JinjaValue {
        switch name {
        case "namespace":
            // namespace(), namespace(mapping) or namespace(key=value, …), as Jinja's: the keywords last.
            var attributes = JinjaDictionary()
            switch arguments.count {
            case 0: break
            case 1:
                guard case let .dictionary(d) = arguments[0] else { throw JinjaFailure("namespace() takes a mapping, got \(arguments[0].typeName)") }
                attributes = d
            default: throw JinjaFailure("namespace() takes at most one positional argument")
            }
            for (key, value) in keywords { attributes[key] = value }
            return .namespace(JinjaNamespace(attributes))
        case "raise_exception":
            throw Raised(message: arguments.first?.text ?? "")
        case "strftime_now":
            guard let now else {
                throw JinjaFailure("'strftime_now' is undefined: no chat date was given for it to write (task.chat_date; --chat-date in troupe eval)")
            }
            guard arguments.count == 1, keywords.isEmpty, case let .string(format) = arguments[0] else {
                throw JinjaFailure("strftime_now() takes one format string")
            }
            do { return .string(try now.formatted(format)) } catch let error as ChatDateError {
                throw JinjaFailure("strftime_now(): \(error)")
            }
        case "range":
            let bounds = try arguments.map { value -> Int in
                guard case let .integer(i) = value else { throw JinjaFailure("range() takes integers") }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch bounds.count {
            case 1: (start, stop, step) = (0, bounds[0], 1)
            case 2: (start, stop, step) = (bounds[0], bounds[1], 1)
            case 3 where bounds[2] != 0: (start, stop, step) = (bounds[0], bounds[1], bounds[2])
            default: throw JinjaFailure("range() takes 1 to 3 integers (step not 0)")
            }
            // Counted in Double: the bounds may be any integers, their difference not.
            let count = max(0, ((Double(stop) - Double(start)) / Double(step)).rounded(.up))
            guard count <= Double(Limits.iterations) else { throw JinjaFailure("range() of \(Int(count)) integers is longer than \(Limits.iterations)") }
            return .list(stride(from: start, to: stop, by: step).map(JinjaValue.integer))
        default:
            throw JinjaFailure("unknown function \(name)()")
        }
    }

    private func method(_ name: String, of base: JinjaValue, _ arguments: [JinjaValue], _ keywords: [(String, JinjaValue)],
                        description: String) throws -> JinjaValue {
        if base.isUndefined { throw undefinedFailure(base) }
        if case let .dictionary(d) = base {
            switch name {
            case "items": return .list(d.keys.map { .list([.string($0), d[$0]!]) })
            case "keys": return .list(d.keys.map(JinjaValue.string))
            case "values": return .list(d.keys.map { d[$0]! })
            case "get":
                guard case let .string(key)? = arguments.first else { throw JinjaFailure("\(description).get() needs a string key") }
                return d[key] ?? (arguments.count > 1 ? arguments[1] : .none)
            default: break
            }
        }
        guard case let .string(s) = base else {
            throw JinjaFailure("\(description) is \(base.typeName), which has no method .\(name)()")
        }
        func stringArgument(_ i: Int) throws -> String? {
            guard i < arguments.count else { return nil }
            if case .none = arguments[i] { return nil }
            guard case let .string(a) = arguments[i] else { throw JinjaFailure(".\(name)() takes a string argument") }
            return a
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            let characters = try stringArgument(0).map { Set($0.unicodeScalars) }
            func strip(_ c: Unicode.Scalar) -> Bool { characters?.contains(c) ?? c.properties.isWhitespace }
            var scalars = Array(s.unicodeScalars)[...]
            if name != "rstrip" { scalars = scalars.drop(while: strip) }
            if name != "lstrip" { while let last = scalars.last, strip(last) { scalars = scalars.dropLast() } }
            return .string(String(String.UnicodeScalarView(scalars)))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "title": return .string(s.capitalized)
        case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "startswith", "endswith":
            let candidates: [String]
            switch arguments.first {
            case let .string(a)?: candidates = [a]
            case let .list(items)?: candidates = try items.map { item in
                guard case let .string(a) = item else { throw JinjaFailure(".\(name)() takes strings") }
                return a
            }
            default: throw JinjaFailure(".\(name)() takes a string")
            }
            let scalars = Array(s.unicodeScalars)
            return .boolean(candidates.contains { c in
                let p = Array(c.unicodeScalars)
                return name == "startswith" ? scalars.starts(with: p) : scalars.reversed().starts(with: p.reversed())
            })
        case "split":
            let separator = try stringArgument(0) ?? keywords.first(where: { $0.0 == "sep" }).flatMap { if case let .string(a) = $0.1 { a } else { nil } }
            var limit = -1
            if arguments.count > 1, case let .integer(m) = arguments[1] { limit = m }
            if let m = keywords.first(where: { $0.0 == "maxsplit" }), case let .integer(v) = m.1 { limit = v }
            guard let separator else {
                return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
            }
            guard !separator.isEmpty else { throw JinjaFailure(".split() with an empty separator") }
            var parts: [String] = []
            var rest = Substring(s)
            while limit != 0, let range = rest.range(of: separator) {
                parts.append(String(rest[..<range.lowerBound]))
                rest = rest[range.upperBound...]
                limit -= 1
            }
            parts.append(String(rest))
            return .list(parts.map(JinjaValue.string))
        case "replace":
            guard let old = try stringArgument(0), let new = try stringArgument(1) else {
                throw JinjaFailure(".replace() takes two strings")
            }
            return .string(s.replacingOccurrences(of: old, with: new))
        default:
            throw JinjaFailure("\(description) is str, which has no method .\(name)()")
        }
    }

    private func filter(_ name: String, _ value: JinjaValue, _ arguments: [JinjaValue], _ keywords: [(String, JinjaValue)]) throws -> JinjaValue {
        switch name {
        case "default", "d":
            let fallback = arguments.first ?? .string("")
            let onFalse = arguments.count > 1 ? arguments[1].isTrue : false
            return value.isUndefined || (onFalse && !value.isTrue) ? fallback : value
        case "length", "count":
            switch value {
            case .undefined: return .integer(0)
            case let .string(s): return .integer(s.unicodeScalars.count)
            case let .list(items): return .integer(items.count)
            case let .dictionary(d): return .integer(d.keys.count)
            case .generator: throw JinjaFailure("object of type 'generator' has no len() (add |list)")
            default: throw JinjaFailure("\(value.typeName) has no length")
            }
        case "tojson":
            var indent: Int?
            if case let .integer(i)? = arguments.first { indent = i }
            for (key, argument) in keywords {
                guard key == "indent", case let .integer(i) = argument else {
                    throw JinjaFailure("|tojson takes only indent=N")
                }
                indent = i
            }
            if let indent, !(0...64).contains(indent) { throw JinjaFailure("|tojson indent must be in 0 … 64, got \(indent)") }
            return .string(try value.json(indent: indent))
        case "string": return .string(value.text)
        case "list":
            return .list(try Self.iterate(value))
        case "reverse":
            if case let .string(s) = value { return .string(String(s.reversed())) }
            return .list(try Self.iterate(value).reversed())
        case "join":
            let separator = arguments.first?.text ?? ""
            return .string(try Self.iterate(value).map(\.text).joined(separator: separator))
        case "first", "last":
            if name == "last", case .generator = value { throw JinjaFailure("'generator' object is not reversible (add |list before |last)") }
            let items = try Self.iterate(value)
            return (name == "first" ? items.first : items.last) ?? .undefined("|\(name) of an empty sequence")
        case "int":
            if let n = value.numeric { return try Self.integer(n.rounded(.towardZero)) }
            if case let .string(s) = value, let i = Int(s.trimmingCharacters(in: .whitespaces)) { return .integer(i) }
            return .integer(0)
        case "float":
            if let n = value.numeric { return .number(n) }
            if case let .string(s) = value, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .number(d) }
            return .number(0)
        case "items":
            switch value {
            case .undefined: return .generator([])
            case let .dictionary(d): return .generator(d.keys.map { .list([.string($0), d[$0]!]) })
            default: throw JinjaFailure("|items needs a mapping, got \(value.typeName)")
            }
        case "select", "reject":
            // select(), select('test', arguments…): the items the test (or truthiness) keeps; reject the others.
            let keep = name == "select"
            return .generator(try Self.iterateIfTrue(value).filter { item in
                guard let test = arguments.first else { return item.isTrue == keep }
                return try self.test(try testName(test, in: name), item, Array(arguments.dropFirst())) == keep
            })
        case "selectattr", "rejectattr":
            guard case let .string(path)? = arguments.first else { throw JinjaFailure("|\(name) takes an attribute name first") }
            let keep = name == "selectattr"
            return .generator(try Self.iterateIfTrue(value).filter { item in
                let attribute = try self.attribute(path, of: item)
                guard arguments.count > 1 else { return attribute.isTrue == keep }
                return try self.test(try testName(arguments[1], in: name), attribute, Array(arguments.dropFirst(2))) == keep
            })
        case "map":
            // map(attribute='a.b', default=…) or map('filter', arguments…).
            let items = try Self.iterateIfTrue(value)
            if let path = keywords.first(where: { $0.0 == "attribute" })?.1 {
                guard case let .string(path) = path, arguments.isEmpty,
                      keywords.allSatisfy({ $0.0 == "attribute" || $0.0 == "default" }) else {
                    throw JinjaFailure("|map takes attribute='NAME' and optionally default=VALUE")
                }
                // As in Jinja, default=none is no default.
                var fallback = keywords.first { $0.0 == "default" }?.1
                if case .none? = fallback { fallback = nil }
                return .generator(try items.map { item in
                    let attribute = try self.attribute(path, of: item)
                    return attribute.isUndefined ? fallback ?? attribute : attribute
                })
            }
            guard case let .string(filterName)? = arguments.first, JinjaParser.filters.contains(filterName) else {
                throw JinjaFailure("|map takes a filter name (one of \(JinjaParser.filters.sorted().joined(separator: ", "))) or attribute='NAME'")
            }
            return .generator(try items.map { try filter(filterName, $0, Array(arguments.dropFirst()), keywords) })
        default:
            // trim, upper, lower, capitalize, title: string filters.
            if value.isUndefined { throw undefinedFailure(value) }
            let s = value.text
            switch name {
            case "trim":
                return try method("strip", of: .string(s), arguments, [], description: "the value")
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
            case "title": return .string(s.capitalized)
            default: throw JinjaFailure("unknown filter |\(name)")
            }
        }
    }

    /// The test a `select`-style filter names, its operator spellings (`'=='`, `'<'`, …) included.
    private func testName(_ argument: JinjaValue, in filter: String) throws -> String {
        guard case let .string(name) = argument else { throw JinjaFailure("|\(filter) takes a test name, got \(argument.typeName)") }
        return JinjaParser.testOperators[name] ?? name
    }

    /// `item.a.b` as Jinja's attribute getters read it: each dotted part an item or attribute, a part of
    /// digits alone an index.
    private func attribute(_ path: String, of item: JinjaValue) throws -> JinjaValue {
        var value = item
        for part in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
            if value.isUndefined { return value }
            let index = part.isEmpty || !part.allSatisfy(\.isASCII) || !part.allSatisfy(\.isNumber) ? nil : Int(part)
            value = try self.item(of: value, index.map(JinjaValue.integer) ?? .string(part), description: path)
        }
        return value
    }

    /// The items of a value the select and map filters take: nothing when it is false (None, an empty
    /// list, undefined), as their `if seq:` guard in Jinja.
    private static func iterateIfTrue(_ value: JinjaValue) throws -> [JinjaValue] {
        value.isTrue ? try iterate(value) : []
    }

    private static let testArity = ["divisibleby": 1, "in": 1, "eq": 1, "equalto": 1, "ne": 1, "gt": 1, "greaterthan": 1,
                                    "ge": 1, "lt": 1, "lessthan": 1, "le": 1]

    private func test(_ name: String, _ value: JinjaValue, _ arguments: [JinjaValue] = []) throws -> Bool {
        if JinjaParser.tests.contains(name) {
            let arity = Self.testArity[name] ?? 0
            guard arguments.count == arity else {
                throw JinjaFailure("the test '\(name)' takes \(arity == 0 ? "no argument" : "one argument"), got \(arguments.count)")
            }
        }
        func compare(_ op: String) throws -> Bool {
            try binary(op, value, arguments[0], left: .literal(value), right: .literal(arguments[0])).isTrue
        }
        switch name {
        case "eq", "equalto": return value.equals(arguments[0])
        case "ne": return !value.equals(arguments[0])
        case "gt", "greaterthan": return try compare(">")
        case "ge": return try compare(">=")
        case "lt", "lessthan": return try compare("<")
        case "le": return try compare("<=")
        case "in": return try compare("in")
        case "divisibleby": return try binary("%", value, arguments[0], left: .literal(value), right: .literal(arguments[0])).equals(.integer(0))
        case "lower", "upper":
            // Python's str.islower() / isupper(): some cased character, and none of the other case.
            let text = value.text
            let cased = text.contains { $0.isLowercase || $0.isUppercase }
            return cased && !text.contains { name == "lower" ? $0.isUppercase : $0.isLowercase }
        case "callable": if case .function = value { return true } else { return false }
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "number":
            switch value { case .integer, .number, .boolean: return true; default: return false }
        case "integer": if case .integer = value { return true } else { return false }
        case "float": if case .number = value { return true } else { return false }
        case "boolean": if case .boolean = value { return true } else { return false }
        case "true": if case .boolean(true) = value { return true } else { return false }
        case "false": if case .boolean(false) = value { return true } else { return false }
        case "mapping": if case .dictionary = value { return true } else { return false }
        case "sequence", "iterable":
            switch value { case .string, .list, .dictionary: return true; default: return false }
        case "even", "odd":
            guard case let .integer(i) = value else { throw JinjaFailure("'is \(name)' needs an integer, got \(value.typeName)") }
            return (i % 2 == 0) == (name == "even")
        default: throw JinjaFailure("unknown test \(name)")
        }
    }

    private func binary(_ op: String, _ l: JinjaValue, _ r: JinjaValue, left: JinjaExpression, right: JinjaExpression) throws -> JinjaValue {
        switch op {
        case "==": return .boolean(l.equals(r))
        case "!=": return .boolean(!l.equals(r))
        case "~": return try Self.joined(l.text, r.text)
        case "in":
            switch r {
            case let .string(s):
                guard case let .string(needle) = l else { throw JinjaFailure("'in <string>' needs a string on the left, got \(l.typeName)") }
                return .boolean(needle.isEmpty || s.contains(needle))
            case let .list(items): return .boolean(items.contains { $0.equals(l) })
            case let .dictionary(d):
                guard case let .string(key) = l else { return .boolean(false) }
                return .boolean(d[key] != nil)
            case let .generator(items): return .boolean(items.contains { $0.equals(l) })
            // Jinja's Undefined iterates as empty, so nothing is in it.
            case .undefined: return .boolean(false)
            default: throw JinjaFailure("'in' needs a string, list or dict on the right, got \(r.typeName)")
            }
        default: break
        }
        for value in [l, r] where value.isUndefined { throw undefinedFailure(value) }
        switch (op, l, r) {
        case let ("+", .string(a), .string(b)): return try Self.joined(a, b)
        case let ("+", .list(a), .list(b)):
            try Self.checkLength(a.count + b.count)
            return .list(a + b)
        case let ("*", .string(a), .integer(n)), let ("*", .integer(n), .string(a)):
            let (length, overflow) = a.utf8.count.multipliedReportingOverflow(by: max(0, n))
            try Self.checkLength(overflow ? .max : length)
            return .string(String(repeating: a, count: max(0, n)))
        case let ("<", .string(a), .string(b)): return .boolean(a < b)
        case let (">", .string(a), .string(b)): return .boolean(a > b)
        case let ("<=", .string(a), .string(b)): return .boolean(a <= b)
        case let (">=", .string(a), .string(b)): return .boolean(a >= b)
        default: break
        }
        guard let x = l.numeric, let y = r.numeric, !(l.isString || r.isString) else {
            throw JinjaFailure("unsupported operand types for \(op): \(l.typeName) (\(describe(left))) and \(r.typeName) (\(describe(right)))")
        }
        let integers = l.isIntegral && r.isIntegral
        func number(_ d: Double) throws -> JinjaValue { integers ? try Self.integer(d) : .number(d) }
        switch op {
        case "+": return try number(x + y)
        case "-": return try number(x - y)
        case "*": return try number(x * y)
        case "/":
            guard y != 0 else { throw JinjaFailure("division by zero") }
            return .number(x / y)
        case "//":
            guard y != 0 else { throw JinjaFailure("division by zero") }
            return try number((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw JinjaFailure("modulo by zero") }
            let m = x - y * (x / y).rounded(.down)
            return try number(m)
        case "<": return .boolean(x < y)
        case ">": return .boolean(x > y)
        case "<=": return .boolean(x <= y)
        case ">=": return .boolean(x >= y)
        default: throw JinjaFailure("unknown operator \(op)")
        }
    }
}

private extension JinjaValue {
    var isString: Bool { if case .string = self { true } else { false } }
    var isIntegral: Bool {
        switch self { case .integer, .boolean: return true; default: return false }
    }
}

extension JinjaRenderer {
    /// An integer result, or an error where it has no Int (Python's would be a big integer).
    static func integer(_ d: Double) throws -> JinjaValue {
        guard d.isFinite, d >= -9.223372036854775808e18, d < 9.223372036854775808e18 else {
            throw JinjaFailure(d.isFinite ? "integer overflow" : "\(d) is not a finite number")
        }
        return .integer(Int(d))
    }

    /// `a` then `b`, within `Limits.length`.
    static func joined(_ a: String, _ b: String) throws -> JinjaValue {
        try checkLength(a.utf8.count + b.utf8.count)
        return .string(a + b)
    }

    static func checkLength(_ n: Int) throws {
        guard n <= Limits.length else { throw JinjaFailure("a string or list longer than \(Limits.length) would be built") }
    }
}
