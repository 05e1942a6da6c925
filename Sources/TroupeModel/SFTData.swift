import Foundation
import TroupeJSON
import TroupeTokenizer

/// One {prompt, completion} pair as text, with where it came from (for error messages).
public struct SFTRecord: Sendable, Equatable {
    public var prompt: String
    public var completion: String
    /// e.g. `data.jsonl:12` or `arith:47+85`.
    public var origin: String

    public init(prompt: String, completion: String, origin: String) {
        self.prompt = prompt
        self.completion = completion
        self.origin = origin
    }
}

public enum SFTDataError: Error, CustomStringConvertible, Equatable {
    /// `source:line: problem`
    case badLine(source: String, line: Int, problem: String)
    case noRecords(source: String)
    case unusable(origin: String, problem: String)

    public var description: String {
        switch self {
        case let .badLine(source, line, problem): return "\(source):\(line): \(problem)"
        case let .noRecords(source): return "\(source): no {\"prompt\", \"completion\"} records (the file is empty or blank)"
        case let .unusable(origin, problem): return "\(origin): \(problem)"
        }
    }
}

/// Reading SFT data and turning it into token ids. Pure: the caller reads the file.
public enum SFTData {
    /// Parses JSON lines, one object `{"prompt": "...", "completion": "..."}` per non-blank line (other
    /// keys are ignored). `source` names the data in errors, which give the 1-based line number.
    public static func parseJSONL(_ data: Data, source: String) throws -> [SFTRecord] {
        var records: [SFTRecord] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            func bad(_ problem: String) -> SFTDataError { .badLine(source: source, line: lineNumber, problem: problem) }
            guard String(data: Data(bytes), encoding: .utf8) != nil else { throw bad("not valid UTF-8") }
            let object: JSONValue
            do { object = try JSONValue.parse(bytes) } catch let error as JSONError {
                let column = error.location?.column.map { " at column \($0)" } ?? ""
                throw bad("not valid JSON (\(error.problem)\(column))")
            }
            guard case let .object(fields) = object else {
                throw bad("expected a JSON object {\"prompt\": ..., \"completion\": ...}")
            }
            func text(_ key: String) throws -> String {
                guard let value = fields[key] else { throw bad("missing \"\(key)\"") }
                guard case let .string(string) = value else { throw bad("\"\(key)\" must be a string") }
                return string
            }
            let prompt = try text("prompt"), completion = try text("completion")
            guard !completion.isEmpty else { throw bad("\"completion\" is empty; there is nothing to learn") }
            records.append(SFTRecord(prompt: prompt, completion: completion, origin: "\(source):\(lineNumber)"))
        }
        guard !records.isEmpty else { throw SFTDataError.noRecords(source: source) }
        return records
    }

    /// Token ids of each record: the prompt (after BOS when `addBos` or the tokenizer adds it by itself,
    /// `addsBosToPrompts`, and it has one), then
    /// the completion followed by `eos`. Prompt and completion are encoded separately, as the sampler
    /// sees them (a prompt's tokens, then sampled tokens).
    public static func tokenize(_ records: [SFTRecord], tokenizer: any Tokenizer, addBos: Bool,
                                eos: Int32) throws -> [SFTExample] {
        try records.map { r in
            let prompt = tokenizer.encodePrompt(r.prompt, addingBos: addBos)
            guard !prompt.isEmpty else {
                throw SFTDataError.unusable(origin: r.origin, problem: "the prompt is empty; the first completion "
                    + "token needs context (give a prompt, or add BOS with --bos)")
            }
            return SFTExample(prompt: prompt, completion: tokenizer.encode(r.completion) + [eos])
        }
    }
}
