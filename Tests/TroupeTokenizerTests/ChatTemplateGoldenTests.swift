import Foundation
import Testing
import TroupeTokenizer

/// The interpreter against jinja2 itself: Goldens/chat-templates/jinja2-goldens.json holds what jinja2
/// 3.1.4 renders with `apply_chat_template`'s settings (scripts/tokenizer/make_chat_template_goldens.py)
/// for the SmolLM2-Instruct and Qwen2.5-Instruct templates on several conversations, 300 random mixes
/// of every whitespace-control form, expressions, filters, tests, methods and loops, and `strftime_now` at
/// fixed dates (Python's `datetime.strftime`).
@Suite("Chat templates against jinja2")
struct ChatTemplateGoldenTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var source: String
        var messages: [ChatMessage]
        var addGenerationPrompt: Bool
        var variables: [String: String]
        var date: String?
        var expected: String
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Goldens/chat-templates")
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("jinja2-goldens.json")),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.map { entry in
            let source = (entry["source"] as? String) ?? (entry["template_file"] as? String).flatMap {
                try? String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8)
            } ?? ""
            let messages = (entry["messages"] as? [[String: String]] ?? []).map {
                ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "")
            }
            return Case(name: entry["name"] as? String ?? "?", source: source, messages: messages,
                        addGenerationPrompt: entry["add_generation_prompt"] as? Bool ?? false,
                        variables: entry["variables"] as? [String: String] ?? [:], date: entry["date"] as? String,
                        expected: entry["expected"] as? String ?? "")
        }
    }()

    @Test func theGoldensAreThere() {
        #expect(Self.cases.count == 360)
        #expect(Self.cases.filter { $0.date != nil }.count == 7)
        #expect(Self.cases.allSatisfy { !$0.source.isEmpty })
    }

    @Test(arguments: cases)
    func rendersAsJinja2Does(_ golden: Case) throws {
        let rendered = try ChatTemplate(golden.source).render(messages: golden.messages, addGenerationPrompt: golden.addGenerationPrompt,
                                                              variables: golden.variables, date: try golden.date.map(ChatDate.init(parsing:)))
        #expect(rendered == golden.expected)
    }
}
