/// Where something is in a source: `config.json:3:14`, or only a name (`--set`) when there are no lines.
public struct JSONLocation: Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var line: Int?
    public var column: Int?

    public init(source: String, line: Int? = nil, column: Int? = nil) {
        self.source = source
        self.line = line
        self.column = column
    }

    public var description: String {
        guard let line, let column else { return source }
        return "\(source):\(line):\(column)"
    }
}

/// A JSON document that cannot be parsed, or a value that cannot be decoded: what is wrong, the key
/// path it is about (`run.max_steps`; empty for the top level) and, when known, where it is written.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String?
    public var problem: String
    public var location: JSONLocation?

    public init(path: String?, problem: String, location: JSONLocation? = nil) {
        self.path = path
        self.problem = problem
        self.location = location
    }

    /// `config.json:3:14: run.max_steps: expected an integer, got "ten"`
    public var description: String {
        var parts: [String] = []
        if let location { parts.append(location.description) }
        if let path { parts.append(path.isEmpty ? "(top level)" : path) }
        parts.append(problem)
        return parts.joined(separator: ": ")
    }
}
