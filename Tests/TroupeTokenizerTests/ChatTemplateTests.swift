import Foundation
import Testing
import TroupeTokenizer

/// The chat templates of SmolLM2-Instruct and Qwen2.5-Instruct as their tokenizer_config.json ships
/// them (Goldens/chat-templates); the expected texts below are written by hand from the templates.
private func template(_ name: String) throws -> ChatTemplate {
    try ChatTemplate(String(contentsOfFile: Goldens.path("chat-templates/\(name).jinja"), encoding: .utf8))
}

private let user = ChatMessage(role: "user", content: "What is 2+3?")
private let boxedSystem = ChatMessage(role: "system", content: "Please reason step by step, and put your final answer within \\boxed{}.")

/// The error `body` throws, as text.
private func failure<T>(_ body: () throws -> T) -> String {
    do {
        _ = try body()
        return "no error"
    } catch {
        return "\(error)"
    }
}

@Suite("Chat templates")
struct ChatTemplateTests {
    @Test func smolLM2AddsItsDefaultSystemPromptAndTheGenerationPrompt() throws {
        let t = try template("smollm2-instruct")
        #expect(try t.render(messages: [user], addGenerationPrompt: true) ==
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
        #expect(try t.render(messages: [user], addGenerationPrompt: false) ==
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n")
    }

    @Test func smolLM2UsesAGivenSystemPrompt() throws {
        let t = try template("smollm2-instruct")
        #expect(try t.render(messages: [boxedSystem, user, ChatMessage(role: "assistant", content: "5"), user],
                             addGenerationPrompt: true) ==
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func qwen25DefaultAndGivenSystemPrompts() throws {
        let t = try template("qwen2.5-instruct")
        #expect(try t.render(messages: [user], addGenerationPrompt: true) ==
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
        #expect(try t.render(messages: [boxedSystem, user], addGenerationPrompt: true) ==
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
        #expect(try t.render(messages: [boxedSystem, user], addGenerationPrompt: false) ==
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n")
    }

    @Test func qwen25AssistantAndToolTurns() throws {
        let t = try template("qwen2.5-instruct")
        let messages = [user, ChatMessage(role: "assistant", content: "Let me check."), ChatMessage(role: "tool", content: "5"),
                        ChatMessage(role: "tool", content: "five"), ChatMessage(role: "user", content: "So?")]
        #expect(try t.render(messages: messages, addGenerationPrompt: true) ==
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
            + "<|im_start|>assistant\nLet me check.<|im_end|>\n"
            + "<|im_start|>user\n<tool_response>\n5\n</tool_response>\n<tool_response>\nfive\n</tool_response><|im_end|>\n"
            + "<|im_start|>user\nSo?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func trimBlocksAndLstripBlocksAsApplyChatTemplateSetsThem() throws {
        let t = try ChatTemplate("{% for m in messages %}\n  {{ m.role }}\n    {% if loop.last %}\nlast\n  {% endif %}\n{% endfor %}\n")
        #expect(try t.render(messages: [user, user], addGenerationPrompt: false) == "  user\n  user\nlast\n")
        let dashes = try ChatTemplate("a  \n {{- 'b' -}}  \n c {%- if true -%}   d   {%- endif %}")
        #expect(try dashes.render(messages: [], addGenerationPrompt: false) == "abcd")
        let comment = try ChatTemplate("x\n  {# note #}\ny{#- gone -#}  z")
        #expect(try comment.render(messages: [], addGenerationPrompt: false) == "x\nyz")
    }

    @Test func expressionsFollowJinja() throws {
        func render(_ source: String, _ variables: [String: String] = [:]) throws -> String {
            try ChatTemplate(source).render(messages: [boxedSystem, user], addGenerationPrompt: true, variables: variables)
        }
        // Filters bind tighter than +, `~` stringifies, bos_token comes from the variables.
        #expect(try render("{{ bos_token }}{% for m in messages %}{{ '<h>' + m['role'] + '\n' + m['content'] | trim + '<e>' }}{% endfor %}",
                           ["bos_token": "<s>"]) ==
            "<s><h>system\nPlease reason step by step, and put your final answer within \\boxed{}.<e><h>user\nWhat is 2+3?<e>")
        #expect(try render("{% for m in messages[::-1] %}{{ loop.index }}{{ m.role[0] }}{% if not loop.last %},{% endif %}{% endfor %}") == "1u,2s")
        #expect(try render("{{ {'a': [1, 2.5, none, true], 'b': 'x\"y'} | tojson }}") == "{\"a\": [1, 2.5, null, true], \"b\": \"x\\\"y\"}")
        #expect(try render("{{ messages | length - 1 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1 ~ 'x' }} {{ 3 / 2 }} {{ none }} {{ true }}") == "1 3 1 1x 1.5 None True")
        #expect(try render("{{ 'a' if messages[5] is defined else 'b' }}{{ 'c' if 'ser' in messages[1].role else 'd' }}") == "bc")
        #expect(try render("{% set x = messages[1].content.split('+') %}{{ x[0] }}|{{ x[1].rstrip('?') }}|{{ ' t '.strip() }}|{{ 'ab'.upper() }}") == "What is 2|3|t|AB")
        #expect(try render("{% for k, v in {'p': 1, 'q': 2}.items() %}{{ k }}={{ v }};{% endfor %}") == "p=1;q=2;")
        #expect(try render("{% for m in messages if m.role == 'user' %}{{ loop.length }}{% else %}none{% endfor %}{% for x in [] %}x{% else %}empty{% endfor %}") == "1empty")
        #expect(try render("{% set a = 1 %}{% for m in messages %}{% set a = a + 1 %}{% endfor %}{{ a }}") == "1",
                "set inside a loop does not leak out of it")
        #expect(try render("{{ messages[0].tool_calls is not defined and not messages[0].tool_calls }}") == "True")
    }

    @Test func raiseExceptionStopsRendering() throws {
        let t = try ChatTemplate("{% if messages[0]['role'] != 'user' %}\n{{ raise_exception('Conversation roles must alternate user/assistant') }}\n{% endif %}ok")
        #expect(failure { try t.render(messages: [boxedSystem], addGenerationPrompt: true) } ==
            "the chat template refused the conversation (raise_exception at line 2): Conversation roles must alternate user/assistant")
        #expect(try t.render(messages: [user], addGenerationPrompt: true) == "ok")
    }

    @Test func renderErrorsNameTheFileTheTemplateCameFrom() throws {
        let t = try ChatTemplate("a\n{{ raise_exception('no') }}", origin: "/models/m/tokenizer_config.json")
        #expect(failure { try t.render(messages: [user], addGenerationPrompt: true) } ==
            "/models/m/tokenizer_config.json: the chat template refused the conversation (raise_exception at line 2): no")
    }

    @Test func renderErrorsNameTheLine() throws {
        let t = try ChatTemplate("a\n{{ messages[0].content.missing.deeper }}")
        #expect(failure { try t.render(messages: [user], addGenerationPrompt: true) } ==
            "chat template line 2: 'messages[0].content.missing' is undefined")
        let add = try ChatTemplate("{{ 'n' + 1 }}")
        #expect(failure { try add.render(messages: [], addGenerationPrompt: true) }.contains("unsupported operand types for +: str"))
    }

    /// A template that would overflow an integer, build an absurd string or list, or loop without end is an
    /// error naming its line, not a trap, an allocation failure or a hang (templates come with downloads).
    @Test(arguments: [
        ("{{ 9223372036854775807 + 1 }}", "chat template line 1: integer overflow"),
        ("{{ 9223372036854775807 * 3 }}", "chat template line 1: integer overflow"),
        ("{{ (-9223372036854775807 - 1) // -1 }}", "chat template line 1: integer overflow"),
        ("{{ -(-9223372036854775807 - 1) }}", "chat template line 1: integer overflow"),
        ("{{ 1e300 | int }}", "chat template line 1: integer overflow"),
        ("{{ 'nan' | float | int }}", "chat template line 1: nan is not a finite number"),
        ("{{ messages | tojson(indent=-1) }}", "chat template line 1: |tojson indent must be in 0 … 64, got -1"),
        ("{{ range(100000000000) }}", "chat template line 1: range() of 100000000000 integers is longer than 1000000"),
        ("{{ 'x' * 1000000000 }}", "chat template line 1: a string or list longer than 16777216 would be built"),
        ("{% set s = 'xxxxxxxx' %}{% for i in range(40) %}{% set s = s + s %}{{ s }}{% endfor %}",
         "chat template line 1: a string or list longer than 16777216 would be built"),
        ("{% for i in range(1000000) %}\n{% for j in range(1000000) %}{% endfor %}{% endfor %}",
         "chat template line 2: the template runs more than 1000000 loop iterations"),
    ])
    func runawayTemplatesAreErrorsNamingTheLine(source: String, message: String) throws {
        let t = try ChatTemplate(source)
        #expect(failure { try t.render(messages: [user], addGenerationPrompt: true) } == message)
    }

    /// Nesting is bounded at parse time (200 levels), so a crafted template is an error naming its line,
    /// not a stack overflow; templates nested within the bound still render.
    @Test func deeplyNestedTemplatesAreRefusedNamingTheLine() throws {
        let parens = { (n: Int) in "{{ " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n) + " }}" }
        let ifs = { (n: Int) in "x\n" + String(repeating: "{% if true %}", count: n) + "y" + String(repeating: "{% endif %}", count: n) }
        for (source, problem) in [(parens(1_000), "chat template line 1: an expression nested more than 200 deep"),
                                  ("{{ " + String(repeating: "not ", count: 1_000) + "1 }}", "chat template line 1: an expression nested more than 200 deep"),
                                  ("{{ " + String(repeating: "-", count: 1_000) + "1 }}", "chat template line 1: an expression nested more than 200 deep"),
                                  ("{{ " + String(repeating: "[", count: 1_000) + String(repeating: "]", count: 1_000) + " }}",
                                   "chat template line 1: an expression nested more than 200 deep"),
                                  (ifs(1_000), "chat template line 2: blocks nested more than 200 deep")] {
            #expect(failure { _ = try ChatTemplate(source) } == problem)
        }
        #expect(try ChatTemplate(parens(150)).render(messages: [], addGenerationPrompt: true) == "1")
        #expect(try ChatTemplate(ifs(150)).render(messages: [], addGenerationPrompt: true) == "x\ny")
    }

    /// namespace() as Jinja has it, and what it refuses: an attribute set on anything else, a positional
    /// argument that is not a mapping, a namespace written as JSON.
    @Test(arguments: [
        ("{% set x = 1 %}\n{% set x.a = 2 %}", "chat template line 2: cannot assign attribute on non-namespace object x"),
        ("{% set ns.a = 2 %}", "chat template line 1: cannot assign attribute on non-namespace object ns"),
        ("{{ namespace(1) }}", "chat template line 1: namespace() takes a mapping, got int"),
        ("{{ namespace({}, {}) }}", "chat template line 1: namespace() takes at most one positional argument"),
        ("{{ namespace(a=1) | tojson }}", "chat template line 1: a Namespace cannot be written as JSON"),
    ])
    func namespaceMisuseIsAnErrorNamingTheLine(source: String, message: String) throws {
        let t = try ChatTemplate(source)
        #expect(failure { try t.render(messages: [user], addGenerationPrompt: true) } == message)
    }

    /// Filters and tests given what they cannot use are errors naming the line.
    @Test(arguments: [
        ("{{ 1 is eq }}", "chat template line 1: the test 'eq' takes one argument, got 0"),
        ("{{ 1 is odd(2) }}", "chat template line 1: the test 'odd' takes no argument, got 1"),
        ("{{ [1] | select(3) | list }}", "chat template line 1: |select takes a test name, got int"),
        ("{{ [1] | select(x) | list }}", "chat template line 1: |select takes a test name, got undefined"),
        ("{{ messages | selectattr | list }}", "chat template line 1: |selectattr takes an attribute name first"),
        ("{{ 1 | items }}", "chat template line 1: |items needs a mapping, got int"),
        ("{{ [1] | map(3) }}", "chat template line 1: |map takes a filter name (one of "),
        ("{{ messages | map(attribute=1) }}", "chat template line 1: |map takes attribute='NAME' and optionally default=VALUE"),
        ("{{ 3 is divisibleby 0 }}", "chat template line 1: modulo by zero"),
        ("{{ messages | selectattr('role') | length }}", "chat template line 1: object of type 'generator' has no len() (add |list)"),
        ("{{ messages | map(attribute='role') | last }}", "chat template line 1: 'generator' object is not reversible (add |list before |last)"),
        ("{{ messages | select | tojson }}", "chat template line 1: a generator cannot be written as JSON (add |list)"),
    ])
    func filterAndTestMisuseIsAnErrorNamingTheLine(source: String, message: String) throws {
        let t = try ChatTemplate(source)
        #expect(failure { try t.render(messages: [user], addGenerationPrompt: true) }.hasPrefix(message))
    }

    /// strftime_now writes the date it is given, as Llama 3.x templates ask for it; without one it is undefined,
    /// so those templates take their own fallback and a template that calls it anyway fails, saying why.
    @Test func strftimeNowWritesTheGivenDateAndIsUndefinedWithoutOne() throws {
        let llama = try ChatTemplate("""
            {%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}\
            {%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}{%- endif %}Today Date: {{ date_string }}
            """)
        #expect(try llama.render(messages: [user], addGenerationPrompt: true) == "Today Date: 26 Jul 2024")
        #expect(try llama.render(messages: [user], addGenerationPrompt: true, date: ChatDate(parsing: "2026-12-06")) == "Today Date: 06 Dec 2026")
        let direct = try ChatTemplate("x\n{{ strftime_now('%Y') }}")
        #expect(failure { try direct.render(messages: [user], addGenerationPrompt: true) } ==
            "chat template line 2: 'strftime_now' is undefined: no chat date was given for it to write (task.chat_date; --chat-date in troupe eval)")
        let unknown = try ChatTemplate("{{ strftime_now('%Y %Q') }}")
        #expect(failure { try unknown.render(messages: [user], addGenerationPrompt: true, date: ChatDate(parsing: "2026-12-06")) } ==
            "chat template line 1: strftime_now(): \"%Q\": is not a supported strftime conversion (docs/models.md lists them)")
        #expect(llama.asksForTheDate && direct.asksForTheDate && unknown.asksForTheDate)
        #expect(try !ChatTemplate("{{ messages[0].content }}{% if x is defined %}{{ now }}{% endif %}").asksForTheDate)
        #expect(try ChatTemplate("{% for m in messages %}{% if m.role == 'system' %}{{ [1, strftime_now('%d')]|join }}{% endif %}{% endfor %}").asksForTheDate)
        let prompt = try ChatTemplate("{{ strftime_now('%F %T') }}")
        #expect(try prompt.render(messages: [], addGenerationPrompt: false, date: ChatDate(parsing: "2024-02-29T23:59")) == "2024-02-29 23:59:00")
    }

    @Test(arguments: [
        ("{% macro m() %}x{% endmacro %}", "chat template line 1: the {% macro %} statement is not supported"),
        ("{% generation %}{{ x }}{% endgeneration %}", "chat template line 1: the {% generation %} statement is not supported"),
        ("{% set ns.found %}", "chat template line 1: expected {% set NAME.ATTRIBUTE = EXPRESSION %}"),
        ("{{ messages | wordcount }}", "chat template line 1: the filter |wordcount (supported: "),
        ("{{ x is sameas(3) }}", "chat template line 1: the test 'is sameas' (supported: "),
        ("{{ [1] | select('prime') }}", "chat template line 1: the test \"prime\" in |select (supported: "),
        ("{{ messages | rejectattr('role', 'sameas', 'user') }}", "chat template line 1: the test \"sameas\" in |rejectattr (supported: "),
        ("{{ [1] | map('wordcount') }}", "chat template line 1: the filter \"wordcount\" in |map (supported: "),
        ("{{ 1 is eq is none }}", "chat template line 1: tests cannot be chained with 'is'"),
        ("{% if x %}\n{% break %}{% endif %}", "chat template line 2: {% break %} outside a {% for %} loop"),
        ("{% for m in messages %}{% endfor %}{% continue %}", "chat template line 1: {% continue %} outside a {% for %} loop"),
        ("{{ x.format(1) }}", "chat template line 1: the method .format() (supported: "),
        ("{{ dict(a=1) }}", "chat template line 1: the function dict() (supported: "),
        ("{% raw %}{{ x }}{% endraw %}", "chat template line 1: the {% raw %} statement is not supported"),
        ("{% if x %}a", "chat template line 1: missing {% endif %}"),
        ("{{ 'a' ", "chat template line 1: a tag {{ is never closed"),
        ("{% endfor %}", "chat template line 1: {% endfor %} without a matching opening tag"),
        ("{{ 2 ** 3 }}", "chat template line 1: the ** operator is not supported"),
    ])
    func unsupportedConstructsAreRefusedWhenParsed(source: String, message: String) {
        #expect(failure { try ChatTemplate(source) }.hasPrefix(message))
    }

    @Test func loadsTheTemplateOfAModelDirectory() throws {
        let smol = try String(contentsOfFile: Goldens.path("chat-templates/smollm2-instruct.jinja"), encoding: .utf8)
        let config = String(decoding: try JSONSerialization.data(withJSONObject: ["chat_template": smol, "eos_token": "<|im_end|>"]),
                            as: UTF8.self)
        let plain = try temporaryDirectory(["tokenizer_config.json": config])
        #expect(try loadChatTemplate(modelDirectory: plain)?.source == smol)

        let listed = String(decoding: try JSONSerialization.data(withJSONObject: ["chat_template": [
            ["name": "tool_use", "template": "x"], ["name": "default", "template": smol]]]), as: UTF8.self)
        #expect(try loadChatTemplate(modelDirectory: try temporaryDirectory(["tokenizer_config.json": listed]))?.source == smol)

        // chat_template.jinja wins over tokenizer_config.json.
        let both = try temporaryDirectory(["tokenizer_config.json": config, "chat_template.jinja": "{{ 'file' }}"])
        #expect(try loadChatTemplate(modelDirectory: both)?.source == "{{ 'file' }}")

        #expect(try loadChatTemplate(modelDirectory: try temporaryDirectory(["tokenizer_config.json": "{\"eos_token\": \"x\"}"]))?.source == nil)
        #expect(try loadChatTemplate(modelDirectory: try temporaryDirectory([:]))?.source == nil)

        let wrongType = try temporaryDirectory(["tokenizer_config.json": "{\"chat_template\": 3}"])
        #expect(failure { try loadChatTemplate(modelDirectory: wrongType) } ==
            "\(wrongType)/tokenizer_config.json: field chat_template: must be a string or a list of {\"name\", \"template\"}")
        let macro = try temporaryDirectory(["tokenizer_config.json": "{\"chat_template\": \"{% macro x() %}{% endmacro %}\"}"])
        #expect(failure { try loadChatTemplate(modelDirectory: macro) }.hasPrefix(
            "\(macro)/tokenizer_config.json: chat template line 1: the {% macro %} statement is not supported"))
    }

    @Test func chatPromptsAreRenderedThenTokenizedWithSpecialTokens() throws {
        let directory = try Goldens.path("qwen2-style")
        let tokenizer = try loadTokenizer(modelDirectory: directory)
        let qwen = try template("qwen2.5-instruct")
        let format = PromptFormat.chat(ChatPrompt(template: qwen, systemPrompt: boxedSystem.content, tokenizer: tokenizer))
        let text = try format.text(for: "What is 2+3?")
        #expect(text == "<|im_start|>system\n\(boxedSystem.content)<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
        let ids = try format.tokens(for: "What is 2+3?", tokenizer: tokenizer)
        let start = try #require(tokenizer.id(forSpecial: "<|im_start|>")), end = try #require(tokenizer.id(forSpecial: "<|im_end|>"))
        #expect(ids.filter { $0 == start }.count == 3 && ids.filter { $0 == end }.count == 2)
        #expect(try tokenizer.decode(ids) == text)
        #expect(try PromptFormat.plain.tokens(for: "What is 2+3?", tokenizer: tokenizer) == tokenizer.encode("What is 2+3?"))

        #expect(failure { try format.tokens(for: "2+3?<|im_end|>", tokenizer: tokenizer) } ==
            "the prompt contains the special token text \"<|im_end|>\"; the chat template's text is tokenized with special "
            + "tokens recognised, so it would become a control token: remove it")
        let eos = try #require(tokenizer.eosTokenId)
        let withEos = ChatPrompt(template: try ChatTemplate("{{ messages[0].content }}{{ eos_token }}{{ bos_token is defined }}"),
                                 systemPrompt: nil, tokenizer: tokenizer)
        #expect(try withEos.text(for: "x") == "x\(tokenizer.tokenString(for: eos)!)False", "Qwen2 tokenizers have no BOS token")
    }
}

/// A fresh temporary directory holding `files` (name → contents).
private func temporaryDirectory(_ files: [String: String]) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-chat-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    for (name, contents) in files { try Data(contents.utf8).write(to: url.appendingPathComponent(name)) }
    return url.path
}
