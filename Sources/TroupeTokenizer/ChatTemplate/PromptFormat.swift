/// How a task's prompt text becomes the token ids a model is given.
///
/// - `plain`: the prompt text itself, encoded with special-token text left as plain text (a task
///   prompt is data, not markup); the built-in tasks and models use this.
/// - `chat`: the prompt as the user message of a conversation (after an optional system message),
///   rendered by the model's chat template with the generation prompt added, and the rendered text
///   encoded with special tokens recognised, as `apply_chat_template(tokenize=True)` does. A prompt or
///   system prompt that spells a special token is refused rather than turned into one.
public enum PromptFormat: Sendable {
    case plain
    case chat(ChatPrompt)

    /// The text the model reads for `prompt`.
    public func text(for prompt: String) throws -> String {
        switch self {
        case .plain: return prompt
        case let .chat(chat): return try chat.text(for: prompt)
        }
    }

    /// The token ids the model reads for `prompt`. A plain prompt gets the BOS when `addingBos` or when
    /// the tokenizer adds it by itself (`addsBosToPrompts`); a chat template writes its own BOS when the
    /// model wants one.
    public func tokens(for prompt: String, tokenizer: any Tokenizer, addingBos: Bool = false) throws -> [Int32] {
        switch self {
        case .plain: return tokenizer.encodePrompt(prompt, addingBos: addingBos, recognizingSpecialTokens: false)
        case let .chat(chat): return tokenizer.encode(try chat.text(for: prompt), recognizingSpecialTokens: true)
        }
    }

    public var isChat: Bool { if case .chat = self { true } else { false } }

    /// The format of a model directory's prompts: its chat template with `systemPrompt` and `date`, or
    /// plain prompts when it has none. A system prompt or date with no template to put it in is an error.
    public static func of(modelDirectory: String, systemPrompt: String?, date: ChatDate?,
                          tokenizer: any Tokenizer) throws -> PromptFormat {
        guard let template = try loadChatTemplate(modelDirectory: modelDirectory) else {
            if systemPrompt != nil { throw NoChatTemplate(modelDirectory: modelDirectory, setting: .systemPrompt) }
            if date != nil { throw NoChatTemplate(modelDirectory: modelDirectory, setting: .date) }
            return .plain
        }
        return .chat(ChatPrompt(template: template, systemPrompt: systemPrompt, tokenizer: tokenizer, date: date))
    }

    /// A notice for a chat template that reads `strftime_now` when no date is given (Llama 3.x): its
    /// prompts carry the template's own fallback date, where transformers would write today's.
    public var undatedTemplateNotice: String? {
        guard case let .chat(chat) = self, chat.template.asksForTheDate, chat.date == nil else { return nil }
        return "the chat template reads strftime_now(), which is undefined without a chat date: its prompts carry the "
            + "template's own date where transformers writes today's (task.chat_date or troupe eval --chat-date sets one)"
    }
}

/// A chat template with what it is rendered with: the system prompt, the special tokens' texts and the date.
public struct ChatPrompt: Sendable {
    public let template: ChatTemplate
    /// The system message's content; nil: no system message (the template may write its default one).
    public let systemPrompt: String?
    /// What the template's `strftime_now` writes; nil leaves it undefined (Llama 3.x templates then write their own date).
    public let date: ChatDate?
    /// `bos_token`, `eos_token`, `pad_token` as the tokenizer names them (absent when it has none).
    public let variables: [String: String]
    private let specialTokenTexts: [String]

    public init(template: ChatTemplate, systemPrompt: String?, tokenizer: any Tokenizer, date: ChatDate? = nil) {
        self.template = template
        self.systemPrompt = systemPrompt
        self.date = date
        var variables: [String: String] = [:]
        for (name, id) in [("bos_token", tokenizer.bosTokenId), ("eos_token", tokenizer.eosTokenId),
                           ("pad_token", tokenizer.padTokenId)] {
            if let id, let text = tokenizer.tokenString(for: id) { variables[name] = text }
        }
        self.variables = variables
        specialTokenTexts = tokenizer.specialTokens.keys.sorted()
    }

    /// The messages for `prompt`: the system prompt (when set), then the prompt as the user's message.
    public func messages(for prompt: String) -> [ChatMessage] {
        (systemPrompt.map { [ChatMessage(role: "system", content: $0)] } ?? []) + [ChatMessage(role: "user", content: prompt)]
    }

    public func text(for prompt: String) throws -> String {
        for (which, text) in [("prompt", prompt), ("system prompt", systemPrompt ?? "")] {
            if let token = specialTokenTexts.first(where: { text.contains($0) }) {
                throw ChatTemplateError.specialTokenInText(which: which, token: token)
            }
        }
        return try template.render(messages: messages(for: prompt), addGenerationPrompt: true, variables: variables, date: date)
    }
}

/// A system prompt or chat date was given for a model directory without a chat template.
public struct NoChatTemplate: Error, CustomStringConvertible {
    public enum Setting: Sendable { case systemPrompt, date }
    public let modelDirectory: String
    /// Which of the two had nowhere to go.
    public let setting: Setting

    public var description: String {
        "\(modelDirectory) has no chat template (tokenizer_config.json chat_template or chat_template.jinja) to "
            + (setting == .systemPrompt ? "put a system prompt in" : "write the date in")
    }
}
