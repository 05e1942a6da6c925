import Foundation
import Testing
import TroupeTasks

private func parse(_ text: String, _ policy: TaskFile.BadLinePolicy = .refuse) throws -> TaskFileContents {
    try TaskFile.parse(Data(text.utf8), source: "tasks.jsonl", policy: policy)
}

@Suite struct TaskFileTests {
    @Test func goodLinesLoadWithAllAnswerForms() throws {
        let text = """
            {"id": "a", "prompt": "Q: 1+1=?\\nA:", "answer": "2"}
            {"id": 7, "prompt": "What is 6*7?", "answer": 42}
            {"prompt": "unlabeled"}
            {"prompt": "null answer", "answer": null, "id": null}

            {"prompt": "spaces kept ", "answer": " -5 "}
            {"prompt": "float that is an integer", "answer": 1e3}
            """
        let contents = try parse(text)
        #expect(contents.skipped.isEmpty)
        #expect(contents.items.map(\.id) == ["a", "7", TaskFile.generatedId(prompt: "unlabeled"),
                                             TaskFile.generatedId(prompt: "null answer"),
                                             TaskFile.generatedId(prompt: "spaces kept "),
                                             TaskFile.generatedId(prompt: "float that is an integer")])
        #expect(contents.items.map(\.answer) == ["2", "42", nil, nil, "-5", "1000"])
        #expect(contents.items[0].prompt == "Q: 1+1=?\nA:")
        #expect(contents.items[4].prompt == "spaces kept ")
    }

    @Test func generatedIdsAreStableContentHashes() {
        let id = TaskFile.generatedId(prompt: "unlabeled")
        #expect(id.hasPrefix("prompt-") && id.count == 23)
        #expect(id == TaskFile.generatedId(prompt: "unlabeled"))
        #expect(id != TaskFile.generatedId(prompt: "unlabeled."))
        #expect(id == "prompt-ea4a5d8124037d92")
    }

    static let badFile = """
        {"id": "a", "prompt": "fine", "answer": "1"}
        {"id": "b", "prompt": "broken",
        {"id": "c", "answer": "3"}
        {"id": "d", "prompt": "   ", "answer": "4"}
        {"id": "a", "prompt": "again", "answer": "5"}
        {"id": "f", "prompt": "bool", "answer": true}
        {"id": "g", "prompt": "list", "answer": [1]}
        {"id": "h", "prompt": "typo", "answr": "8", "meta": 1}
        [1, 2]
        {"id": "j", "prompt": "fraction", "answer": 0.5}
        {"id": "k", "prompt": 11}
        {"id": "l", "prompt": "empty answer", "answer": ""}
        {"id": true, "prompt": "bad id"}
        {"prompt": "fine"}
        {"prompt": "fine"}
        {"id": "ok", "prompt": "good too", "answer": "16"}
        """

    static let expectedReasons: [Int: String] = [
        2: "broken JSON",
        3: "missing \"prompt\"",
        4: "empty \"prompt\"",
        5: "duplicate id \"a\" (first on line 1)",
        6: "\"answer\" must be a string or an integer, found a boolean",
        7: "\"answer\" must be a string or an integer, found an array",
        8: "unknown keys \"answr\", \"meta\" (allowed: id, prompt, answer)",
        9: "expected a JSON object, found an array",
        10: "\"answer\" 0.5 is not an integer",
        11: "\"prompt\" must be a string, found a number",
        12: "empty \"answer\"",
        13: "\"id\" must be a string or an integer, found a boolean",
        15: "same prompt as line 14 (both without id)",
    ]

    @Test func refuseListsEveryBadLineWithItsNumberAndReason() throws {
        do {
            _ = try parse(Self.badFile, .refuse)
            Issue.record("bad file accepted")
        } catch let error as TaskFileError {
            guard case let .badLines(source, problems) = error else { Issue.record("\(error)"); return }
            #expect(source == "tasks.jsonl")
            #expect(problems.map(\.line) == Self.expectedReasons.keys.sorted())
            for problem in problems {
                let expected = Self.expectedReasons[problem.line]!
                #expect(problem.reasons.count == 1 && problem.reasons[0].contains(expected), "\(problem)")
            }
            let message = error.description
            #expect(message.contains("13 bad lines"))
            #expect(message.contains("line 8: unknown keys"))
        }
    }

    @Test func skipReturnsGoodItemsAndSkippedLines() throws {
        let contents = try parse(Self.badFile, .skip)
        #expect(contents.items.map(\.id) == ["a", TaskFile.generatedId(prompt: "fine"), "ok"])
        #expect(contents.skipped.map(\.line) == Self.expectedReasons.keys.sorted())
    }

    @Test func aLineWithSeveralProblemsReportsThemAll() throws {
        #expect {
            try parse(#"{"prompt": "", "answer": false, "extra": 1}"#)
        } throws: { error in
            guard case let .badLines(_, problems) = error as? TaskFileError else { return false }
            return problems.count == 1 && problems[0].line == 1 && problems[0].reasons.count == 3
        }
    }

    @Test func lineEndingsByteOrderMarkAndBlankLines() throws {
        let text = "\u{FEFF}{\"prompt\": \"one\", \"answer\": 1}\r\n\r\n   \n{\"prompt\": \"two\"}\r\n"
        let contents = try parse(text)
        #expect(contents.items.map(\.prompt) == ["one", "two"])
        #expect(contents.items[0].answer == "1")
    }

    @Test func invalidUTF8IsReportedOnItsLine() throws {
        var data = Data(#"{"prompt": "ok"}"#.utf8)
        data.append(0x0A)
        data.append(contentsOf: [0x7B, 0xFF, 0xFE, 0x7D])
        #expect {
            try TaskFile.parse(data, source: "x", policy: .refuse)
        } throws: { error in
            guard case let .badLines(_, problems) = error as? TaskFileError else { return false }
            return problems == [TaskFileProblem(line: 2, reasons: ["not valid UTF-8"])]
        }
    }

    @Test func emptyOrAllBadFilesHaveNoTasks() throws {
        #expect(throws: TaskFileError.noTasks(source: "tasks.jsonl", skipped: [])) { try parse("\n\n", .skip) }
        #expect {
            try parse("nope\n", .skip)
        } throws: { error in
            guard case let .noTasks(_, skipped) = error as? TaskFileError else { return false }
            return skipped.map(\.line) == [1] && "\(error)".contains("every line was bad")
        }
    }

    @Test func loadNamesAMissingFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent/tasks.jsonl")
        #expect {
            try TaskFile.load(contentsOf: url, policy: .refuse)
        } throws: { error in
            "\(error)".contains("cannot read task file /nonexistent/tasks.jsonl")
        }
    }
}

@Suite struct LabelSeparationTests {
    @Test func learnerCopiesCarryNoAnswers() throws {
        let items = [TaskItem(id: "a", prompt: "p", answer: "1"), TaskItem(id: "b", prompt: "q")]
        let (prompts, answerKey) = TaskItem.separatingAnswers(items)
        #expect(prompts.allSatisfy { $0.answer == nil })
        #expect(prompts.map(\.id) == ["a", "b"] && prompts.map(\.prompt) == ["p", "q"])
        #expect(answerKey == ["a": "1"])
        #expect(items[0].withoutAnswer() == TaskItem(id: "a", prompt: "p"))
        #expect(throws: TaskError.missingAnswer(id: "b")) { try items[1].sftCompletion() }
    }
}
