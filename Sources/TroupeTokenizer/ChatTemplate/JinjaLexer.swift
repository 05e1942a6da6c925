/// Splits a Jinja template into text and tags, the way Hugging Face's `apply_chat_template` sets Jinja
/// up (`trim_blocks=True, lstrip_blocks=True`): the first newline after a `{% … %}` or `{# … #}` tag is
/// dropped, blanks before such a tag at the start of a line are dropped, and `-` inside a delimiter
/// (`{%-`, `-%}`, `{{-`, `-}}`) strips all whitespace on that side. Tags become expression tokens.
struct JinjaLexer {
    enum Token: Equatable {
        case name(String)
        case string(String)
        case integer(Int)
        case number(Double)
        case symbol(String)
    }

    enum Segment: Equatable {
        case text(String)
        /// `{{ … }}`
        case output([Token], line: Int)
        /// `{% … %}`
        case statement([Token], line: Int)
    }

    private let source: [Unicode.Scalar]
    private var position = 0

    /// Jinja's defaults, which `apply_chat_template` keeps: every newline (`\r\n`, `\r`) becomes `\n`
    /// and one newline at the very end of the template is dropped (`keep_trailing_newline=False`).
    private init(_ template: String) {
        var scalars: [Unicode.Scalar] = []
        var previousWasReturn = false
        for scalar in template.unicodeScalars {
            if scalar == "\r" {
                scalars.append("\n")
            } else if !(scalar == "\n" && previousWasReturn) {
                scalars.append(scalar)
            }
            previousWasReturn = scalar == "\r"
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
    }

    static func segments(_ template: String) throws -> [Segment] {
        var lexer = JinjaLexer(template)
        return try lexer.run()
    }

    private func line(at index: Int) -> Int {
        1 + source[..<min(index, source.count)].reduce(0) { $0 + ($1 == "\n" ? 1 : 0) }
    }

    private func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }
    private func isWhitespace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" }

    private mutating func run() throws -> [Segment] {
        var segments: [Segment] = []
        var stripLeading = false
        var trimNewline = false
        while true {
            let textStart = position
            var tagStart = position
            while tagStart + 1 < source.count,
                  !(source[tagStart] == "{" && ["{", "%", "#"].contains(source[tagStart + 1])) {
                tagStart += 1
            }
            if tagStart + 1 >= source.count { tagStart = source.count }
            var text = Array(source[textStart..<tagStart])
            if stripLeading {
                text = Array(text.drop(while: isWhitespace))
            } else if trimNewline {
                if text.first == "\n" { text.removeFirst() }
            }
            guard tagStart < source.count else {
                if !text.isEmpty { segments.append(.text(String(String.UnicodeScalarView(text)))) }
                return segments
            }
            let kind = source[tagStart + 1]
            var index = tagStart + 2
            var stripTrailing = false
            var keepBlanks = false
            if index < source.count, source[index] == "-" { stripTrailing = true; index += 1 }
            else if index < source.count, source[index] == "+" { keepBlanks = true; index += 1 }
            if stripTrailing {
                while let last = text.last, isWhitespace(last) { text.removeLast() }
            } else if kind != "{" && !keepBlanks {
                // lstrip_blocks: only blanks between the start of the line and the tag.
                var start = tagStart
                while start > textStart, isBlank(source[start - 1]) { start -= 1 }
                if start == 0 || source[start - 1] == "\n" {
                    text.removeLast(min(text.count, tagStart - start))
                }
            }
            if !text.isEmpty { segments.append(.text(String(String.UnicodeScalarView(text)))) }
            let tagLine = line(at: tagStart)
            if kind == "#" {
                guard let end = find(["#", "}"], from: index) else {
                    throw ChatTemplateError.syntax(line: tagLine, problem: "a comment {# is never closed")
                }
                stripLeading = end > index && source[end - 1] == "-"
                trimNewline = !stripLeading
                position = end + 2
                continue
            }
            position = index
            let closer: [Unicode.Scalar] = kind == "{" ? ["}", "}"] : ["%", "}"]
            var tokens: [Token] = []
            // Open brackets inside the tag: as in Jinja, `}}` closes a dict literal, not the tag, while one is open.
            var open = 0
            while true {
                while position < source.count, isWhitespace(source[position]) { position += 1 }
                guard position < source.count else {
                    throw ChatTemplateError.syntax(line: tagLine, problem: "a tag \(kind == "{" ? "{{" : "{%") is never closed")
                }
                if open > 0 {
                    let token = try token(line: tagLine)
                    if case let .symbol(s) = token { open += ["(", "[", "{"].contains(s) ? 1 : [")", "]", "}"].contains(s) ? -1 : 0 }
                    tokens.append(token)
                    continue
                }
                if source[position] == "-", matches(closer, at: position + 1) {
                    stripLeading = true
                    position += 1 + closer.count
                    break
                }
                if kind == "%", source[position] == "+", matches(closer, at: position + 1) {
                    stripLeading = false
                    trimNewline = false
                    position += 1 + closer.count
                    tokens.append(.symbol("+%}"))  // marker, removed below
                    break
                }
                if matches(closer, at: position) {
                    stripLeading = false
                    position += closer.count
                    break
                }
                let token = try token(line: tagLine)
                if case let .symbol(s) = token, ["(", "[", "{"].contains(s) { open += 1 }
                tokens.append(token)
            }
            if tokens.last == .symbol("+%}") {
                tokens.removeLast()
            } else {
                trimNewline = kind == "%" && !stripLeading
            }
            if kind == "{" { trimNewline = false }
            segments.append(kind == "{" ? .output(tokens, line: tagLine) : .statement(tokens, line: tagLine))
        }
    }

    private func matches(_ pattern: [Unicode.Scalar], at index: Int) -> Bool {
        guard index + pattern.count <= source.count else { return false }
        return pattern.indices.allSatisfy { source[index + $0] == pattern[$0] }
    }

    private func find(_ pattern: [Unicode.Scalar], from index: Int) -> Int? {
        var i = index
        while i + pattern.count <= source.count {
            if matches(pattern, at: i) { return i }
            i += 1
        }
        return nil
    }

    private static let symbols = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")",
                                  "[", "]", "{", "}", ",", ".", ":", "|", "="]

    private mutating func token(line: Int) throws -> Token {
        let c = source[position]
        if c == "_" || c.properties.isAlphabetic && c.isASCII {
            let start = position
            while position < source.count,
                  source[position] == "_" || (source[position].isASCII && source[position].properties.isAlphabetic)
                    || ("0"..."9").contains(source[position]) {
                position += 1
            }
            return .name(String(String.UnicodeScalarView(source[start..<position])))
        }
        if ("0"..."9").contains(c) {
            let start = position
            while position < source.count, ("0"..."9").contains(source[position]) { position += 1 }
            var isFloat = false
            if position + 1 < source.count, source[position] == ".", ("0"..."9").contains(source[position + 1]) {
                isFloat = true
                position += 1
                while position < source.count, ("0"..."9").contains(source[position]) { position += 1 }
            }
            // An exponent: 1e3, 2.5E-4.
            if position + 1 < source.count, source[position] == "e" || source[position] == "E" {
                var end = position + 1
                if end < source.count, source[end] == "+" || source[end] == "-" { end += 1 }
                if end < source.count, ("0"..."9").contains(source[end]) {
                    isFloat = true
                    position = end
                    while position < source.count, ("0"..."9").contains(source[position]) { position += 1 }
                }
            }
            if isFloat { return .number(Double(String(String.UnicodeScalarView(source[start..<position])))!) }
            guard let value = Int(String(String.UnicodeScalarView(source[start..<position]))) else {
                throw ChatTemplateError.syntax(line: line, problem: "integer literal too large")
            }
            return .integer(value)
        }
        if c == "'" || c == "\"" { return .string(try stringLiteral(quote: c, line: line)) }
        for symbol in Self.symbols where matches(Array(symbol.unicodeScalars), at: position) {
            position += symbol.unicodeScalars.count
            return .symbol(symbol)
        }
        throw ChatTemplateError.syntax(line: line, problem: "unexpected character \(String(c).debugDescription) in a tag")
    }

    /// A quoted string with Python's escapes (`\n`, `\t`, `\r`, `\\`, `\'`, `\"`, `\uXXXX`); an unknown
    /// escape keeps its backslash, as in Python.
    private mutating func stringLiteral(quote: Unicode.Scalar, line: Int) throws -> String {
        position += 1
        var value = String.UnicodeScalarView()
        while position < source.count {
            let c = source[position]
            position += 1
            if c == quote { return String(value) }
            guard c == "\\", position < source.count else { value.append(c); continue }
            let e = source[position]
            position += 1
            switch e {
            case "n": value.append("\n")
            case "t": value.append("\t")
            case "r": value.append("\r")
            case "\\", "'", "\"": value.append(e)
            case "u", "x":
                let digits = e == "u" ? 4 : 2
                guard position + digits <= source.count,
                      let code = UInt32(String(String.UnicodeScalarView(source[position..<(position + digits)])), radix: 16),
                      let scalar = Unicode.Scalar(code) else {
                    throw ChatTemplateError.syntax(line: line, problem: "bad \\\(e) escape in a string")
                }
                value.append(scalar)
                position += digits
            default:
                value.append("\\")
                value.append(e)
            }
        }
        throw ChatTemplateError.syntax(line: line, problem: "a string literal is never closed")
    }
}
