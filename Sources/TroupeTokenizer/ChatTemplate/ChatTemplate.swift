import Foundation
import TroupeJSON

/// A Hugging Face chat template: the Jinja program in `tokenizer_config.json`'s `chat_template` (or in
/// `chat_template.jinja`) that turns a list of messages into the model's prompt text.
///
/// Runs the subset of Jinja that chat templates use, with the settings `apply_chat_template` uses
/// (`trim_blocks`, `lstrip_blocks`, no autoescaping): `{% if/elif/else %}`, `{% for %}` (with `loop.index`,
/// `loop.index0`, `loop.first`, `loop.last`, `loop.length`, …, an `if` filter and an `else` body),
/// `{% set NAME = … %}`, `{% set NAMESPACE.ATTRIBUTE = … %}`, `{% break %}`, `{% continue %}`, `{# comments #}`, whitespace
/// control (`{%-`, `-%}`, `{{-`, `-}}`); literals,
/// lists, dicts, attribute and item access, slices, `+ - * / // % ~`, comparisons, `in`, `not in`,
/// `and`, `or`, `not`, `a if c else b`; the functions `raise_exception`, `range`, `namespace` and
/// `strftime_now` (defined only when a `ChatDate` is given); string and dict
/// methods (`strip`, `lstrip`, `rstrip`, `upper`, `lower`, `title`, `capitalize`, `startswith`,
/// `endswith`, `split`, `replace`, `items`, `keys`, `values`, `get`); the filters in
/// `supportedFilters` and the tests in `supportedTests`. Anything else (macros, `{% raw %}`,
/// `{% generation %}`, other filters, …) is refused when the template is parsed, naming the construct
/// and its line, so a model is refused before a run starts rather than in the middle of one.
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [JinjaNode]

    public static var supportedFilters: [String] { JinjaParser.filters.sorted() }
    public static var supportedTests: [String] { JinjaParser.tests.sorted() }

    /// The file the template was read from (`chat_template.jinja` or `tokenizer_config.json`), which
    /// errors in rendering it name.
    public let origin: String?

    public init(_ source: String, origin: String? = nil) throws {
        self.source = source
        self.origin = origin
        nodes = try JinjaParser.parse(source)
        asksForTheDate = nodes.contains { $0.mentions("strftime_now") }
    }

    /// The template reads `strftime_now` somewhere (Llama 3.x's date line): without a `ChatDate` it is
    /// undefined there, and such a template writes its own fallback date or fails.
    public let asksForTheDate: Bool

    /// The template's text for `messages`, as `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=…)` renders it. `variables` are the special tokens by name (`bos_token`,
    /// `eos_token`, …); `tools` and `documents` are None, as when no tools are given. `date` is what
    /// `strftime_now` writes; without one it is undefined, and a template that calls it anyway fails.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, variables: [String: String] = [:],
                       date: ChatDate? = nil) throws -> String {
        var context: [String: JinjaValue] = variables.mapValues(JinjaValue.string)
        context["messages"] = .list(messages.map { message in
            .dictionary(JinjaDictionary([("role", .string(message.role)), ("content", .string(message.content))]))
        })
        context["add_generation_prompt"] = .boolean(addGenerationPrompt)
        context["tools"] = JinjaValue.none
        context["documents"] = JinjaValue.none
        do { return try JinjaRenderer.render(nodes, variables: context, now: date) } catch let error as ChatTemplateError {
            throw origin.map { ChatTemplateError.inFile(path: $0, error) } ?? error
        }
    }
}

public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

public enum ChatTemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    case syntax(line: Int, problem: String)
    /// A Jinja construct outside the supported subset.
    case unsupported(line: Int, construct: String)
    /// An evaluation error: an undefined value used, a type mismatch.
    case render(line: Int, problem: String)
    /// The template called `raise_exception(message)`.
    case raised(line: Int, message: String)
    /// `chat_template` in tokenizer_config.json is neither a string nor a list of named templates.
    case invalidField(field: String, problem: String)
    /// The prompt or system prompt spells a special token, which the rendered text would turn into that token.
    case specialTokenInText(which: String, token: String)
    indirect case inFile(path: String, ChatTemplateError)

    /// The error is the template file's (`inFile`), not the text rendered with it.
    public var isInFile: Bool { if case .inFile = self { true } else { false } }

    public var description: String {
        switch self {
        case let .syntax(line, problem):
            return "chat template line \(line): \(problem)"
        case let .unsupported(line, construct):
            return "chat template line \(line): \(construct) is not supported (troupe runs the subset of Jinja that "
                + "chat templates use; see docs/models.md)"
        case let .render(line, problem):
            return "chat template line \(line): \(problem)"
        case let .raised(line, message):
            return "the chat template refused the conversation (raise_exception at line \(line)): \(message)"
        case let .invalidField(field, problem):
            return "field \(field): \(problem)"
        case let .specialTokenInText(which, token):
            return "the \(which) contains the special token text \(token.debugDescription); the chat template's text is "
                + "tokenized with special tokens recognised, so it would become a control token: remove it"
        case let .inFile(path, error):
            return "\(path): \(error)"
        }
    }
}

/// The chat template of a model directory: `chat_template.jinja` when it exists (newer `transformers`
/// save it there), else `chat_template` in `tokenizer_config.json` (a string, or a list of
/// `{"name", "template"}` of which the one named `default` is used); nil when neither has one.
public func loadChatTemplate(modelDirectory: String) throws -> ChatTemplate? {
    let directory = URL(fileURLWithPath: modelDirectory)
    let jinjaFile = directory.appendingPathComponent("chat_template.jinja").path
    if FileManager.default.fileExists(atPath: jinjaFile) {
        guard let data = FileManager.default.contents(atPath: jinjaFile), let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.unreadableFile(path: jinjaFile, reason: "not readable UTF-8 text")
        }
        do { return try ChatTemplate(text, origin: jinjaFile) } catch let error as ChatTemplateError {
            throw ChatTemplateError.inFile(path: jinjaFile, error)
        }
    }
    let configFile = directory.appendingPathComponent("tokenizer_config.json").path
    guard FileManager.default.fileExists(atPath: configFile) else { return nil }
    guard let data = FileManager.default.contents(atPath: configFile) else {
        throw TokenizerError.unreadableFile(path: configFile, reason: "permission denied or not a file")
    }
    let config: JSONField
    do {
        config = try JSONField.parse(data)
        _ = try config.object()
    } catch let error as TokenizerError {
        throw TokenizerError.inFile(path: configFile, error)
    }
    guard let field = try? config.member("chat_template") else { return nil }
    let source: String
    switch field.value {
    case .null:
        return nil
    case let .string(text):
        source = text
    case let .array(entries):
        let named = entries.compactMap { entry -> (String, String)? in
            guard case let .object(members) = entry, case let .string(name)? = members["name"],
                  case let .string(template)? = members["template"] else { return nil }
            return (name, template)
        }
        guard named.count == entries.count, let chosen = named.first(where: { $0.0 == "default" }) else {
            throw ChatTemplateError.inFile(path: configFile, .invalidField(
                field: "chat_template", problem: "a list of templates needs {\"name\", \"template\"} entries, one named \"default\""))
        }
        source = chosen.1
    default:
        throw ChatTemplateError.inFile(path: configFile, .invalidField(
            field: "chat_template", problem: "must be a string or a list of {\"name\", \"template\"}"))
    }
    do { return try ChatTemplate(source, origin: configFile) } catch let error as ChatTemplateError {
        throw ChatTemplateError.inFile(path: configFile, error)
    }
}
