import Foundation
import TroupeJSON

/// Loads user tasks from JSON Lines: one object per line, `{"id"?: …, "prompt": …, "answer"?: …}`.
///
/// - `prompt`: required, a string with some non-whitespace text (kept verbatim).
/// - `answer`: optional; a non-empty string (kept trimmed) or an integer number (stored in decimal).
///   A fractional or out-of-range number is refused so that its text is never silently rewritten:
///   write it as a string. `null` means absent.
/// - `id`: optional; a non-empty string or an integer. When absent it is `prompt-` + 16 hex digits of
///   a stable 64-bit hash of the prompt, so ids survive reordering and editing other lines. `null` means absent.
/// - Any other key is an error (a typo like `"answr"` must not silently drop the labels).
/// - Blank lines are ignored; a UTF-8 byte-order mark and CRLF line ends are accepted.
///
/// Every bad line is reported with its 1-based number and all its problems; `policy` decides whether
/// any bad line refuses the whole file or is skipped.
public enum TaskFile {
    public enum BadLinePolicy: String, Sendable, CaseIterable {
        /// Throw `TaskFileError.badLines` listing every problem.
        case refuse
        /// Return the good items and the list of skipped lines.
        case skip
    }

    public static let allowedKeys: Set<String> = ["id", "prompt", "answer"]

    public static func load(contentsOf url: URL, policy: BadLinePolicy) throws -> TaskFileContents {
        let data: Data
        if let problem = ReadableFile.problem(at: url.path) { throw TaskFileError.unreadable(path: url.path, reason: problem) }
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TaskFileError.unreadable(path: url.path, reason: (error as NSError).localizedDescription)
        }
        return try parse(data, source: url.path, policy: policy)
    }

    /// Parses JSONL bytes; `source` names the input in errors.
    public static func parse(_ data: Data, source: String, policy: BadLinePolicy) throws -> TaskFileContents {
        var items: [TaskItem] = []
        var itemLines: [Int] = []
        var problems: [TaskFileProblem] = []
        var firstLineOfId: [String: Int] = [:]

        var lineBytes = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if data.last == UInt8(ascii: "\n") { lineBytes.removeLast() }
        for (index, rawLine) in lineBytes.enumerated() {
            let lineNumber = index + 1
            var bytes = Data(rawLine)
            if index == 0 && bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard let text = String(data: bytes, encoding: .utf8) else {
                problems.append(TaskFileProblem(line: lineNumber, reasons: ["not valid UTF-8"]))
                continue
            }
            if text.trimmingWhitespace().isEmpty { continue }
            switch parseLine(bytes, lineNumber: lineNumber, firstLineOfId: &firstLineOfId) {
            case let .success(item):
                items.append(item)
                itemLines.append(lineNumber)
            case let .failure(problem): problems.append(problem)
            }
        }
        if !problems.isEmpty && policy == .refuse {
            throw TaskFileError.badLines(source: source, problems: problems)
        }
        guard !items.isEmpty else { throw TaskFileError.noTasks(source: source, skipped: problems) }
        return TaskFileContents(items: items, lines: itemLines, skipped: problems, source: source)
    }

    private static func parseLine(_ bytes: Data, lineNumber: Int, firstLineOfId: inout [String: Int])
        -> Result<TaskItem, TaskFileProblem>
    {
        let object: [String: JSONValue]
        do {
            switch try JSONValue.parse(bytes) {
            case let .object(fields):
                object = fields
            case let other:
                return .failure(TaskFileProblem(line: lineNumber, reasons: ["expected a JSON object, found \(other.typeName)"]))
            }
        } catch let error as JSONError {
            let column = error.location?.column.map { " at column \($0)" } ?? ""
            return .failure(TaskFileProblem(line: lineNumber, reasons: ["broken JSON: \(error.problem)\(column)"]))
        } catch {
            return .failure(TaskFileProblem(line: lineNumber, reasons: ["broken JSON"]))
        }

        var reasons: [String] = []
        let unknown = object.keys.filter { !allowedKeys.contains($0) }.sorted()
        if !unknown.isEmpty {
            let names = unknown.map { "\"\($0)\"" }.joined(separator: ", ")
            reasons.append("unknown key\(unknown.count > 1 ? "s" : "") \(names) (allowed: id, prompt, answer)")
        }

        var prompt: String?
        switch object["prompt"] {
        case nil: reasons.append("missing \"prompt\"")
        case let .string(text)?:
            if text.trimmingWhitespace().isEmpty { reasons.append("empty \"prompt\"") } else { prompt = text }
        case let value?: reasons.append("\"prompt\" must be a string, found \(value.typeName)")
        }

        var answer: String?
        switch object["answer"] {
        case nil, .null?: break
        case let .string(text)?:
            let trimmed = text.trimmingWhitespace()
            if trimmed.isEmpty {
                reasons.append("empty \"answer\" (leave the key out for an unlabeled prompt)")
            } else {
                answer = trimmed
            }
        case let value? where value.int != nil: answer = String(value.int!)
        case let .number(value)?:
            reasons.append("\"answer\" \(value) is not an integer that fits 64 bits; write it as a string to keep its exact text")
        case let value?: reasons.append("\"answer\" must be a string or an integer, found \(value.typeName)")
        }

        var id: String?
        switch object["id"] {
        case nil, .null?: break
        case let .string(text)?:
            if text.trimmingWhitespace().isEmpty { reasons.append("empty \"id\"") } else { id = text }
        case let value? where value.int != nil: id = String(value.int!)
        case let value?: reasons.append("\"id\" must be a string or an integer, found \(value.typeName)")
        }
        if id == nil, object["id"] == nil || object["id"] == .null, let prompt {
            id = generatedId(prompt: prompt)
        }
        if let id {
            if let first = firstLineOfId[id] {
                let what = object["id"] == nil || object["id"] == .null ? "same prompt as line \(first) (both without id)" : "duplicate id \"\(id)\" (first on line \(first))"
                reasons.append(what)
            } else {
                firstLineOfId[id] = lineNumber
            }
        }

        guard reasons.isEmpty, let id, let prompt else {
            return .failure(TaskFileProblem(line: lineNumber, reasons: reasons))
        }
        return .success(TaskItem(id: id, prompt: prompt, answer: answer))
    }

    /// `prompt-` + 16 hex digits of the stable hash of the prompt's UTF-8 bytes.
    public static func generatedId(prompt: String) -> String {
        "prompt-" + StableHash.hex16(StableHash.hash64(prompt))
    }
}

public struct TaskFileContents: Sendable, Hashable {
    public let items: [TaskItem]
    /// The 1-based line of each item in `items`.
    public let lines: [Int]
    /// Lines skipped under `.skip` (always empty under `.refuse`, which throws instead).
    public let skipped: [TaskFileProblem]
    /// The file's name in errors.
    public let source: String

    /// Where the item with `id` was written, for errors about it: ` (line 7 of tasks.jsonl)`, or ""
    /// for an id not in the file. A generated id (`prompt-…`) alone would not let anyone find the line.
    public func location(ofId id: String) -> String {
        guard let index = items.firstIndex(where: { $0.id == id }) else { return "" }
        return " (line \(lines[index]) of \(source))"
    }
}

public struct TaskFileProblem: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line number.
    public let line: Int
    public let reasons: [String]

    public init(line: Int, reasons: [String]) {
        self.line = line
        self.reasons = reasons
    }

    public var description: String { "line \(line): \(reasons.joined(separator: "; "))" }
}

public enum TaskFileError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case badLines(source: String, problems: [TaskFileProblem])
    case noTasks(source: String, skipped: [TaskFileProblem])

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read task file \(path): \(reason)"
        case let .badLines(source, problems):
            let plural = problems.count == 1 ? "line" : "lines"
            return "\(source): \(problems.count) bad \(plural) (fix them, or have them skipped):\n"
                + problems.map { "  \($0)" }.joined(separator: "\n")
        case let .noTasks(source, skipped):
            if skipped.isEmpty { return "\(source): no tasks (the file is empty)" }
            return "\(source): no usable tasks; every line was bad:\n" + skipped.map { "  \($0)" }.joined(separator: "\n")
        }
    }
}
