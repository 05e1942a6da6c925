import ArgumentParser
import Foundation
import Testing
import TroupeCLI

/// Parses `arguments` (without the program name) with the root command, as `troupe` does, and
/// returns the subcommand it chose as a `C`.
func parse<C: ParsableCommand>(_ arguments: [String], as type: C.Type,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> C {
    let command = try Troupe.parseAsRoot(Troupe.joiningNegativeValues(arguments))
    return try #require(command as? C, "parsed as \(Swift.type(of: command))", sourceLocation: sourceLocation)
}

/// What `troupe` says about `arguments` when it refuses them: the first line of its error message
/// (after `Error: `) and the exit status. Nil when they parse and validate.
func refusal(_ arguments: [String]) -> (message: String, status: Int32)? {
    do {
        _ = try Troupe.parseAsRoot(Troupe.joiningNegativeValues(arguments))
        return nil
    } catch {
        let message = Troupe.message(for: error).split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
        return (String(message), Troupe.exitCode(for: error).rawValue)
    }
}

/// Expects `arguments` to be refused as a usage error (status 64) whose message contains `text`.
func expectUsageError(_ arguments: [String], _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let refused = refusal(arguments) else {
        Issue.record("troupe \(arguments.joined(separator: " ")) was accepted", sourceLocation: sourceLocation)
        return
    }
    #expect(refused.status == ExitCode.validationFailure.rawValue, "status \(refused.status) for \(arguments)",
            sourceLocation: sourceLocation)
    #expect(refused.message.contains(text), "message: \(refused.message)", sourceLocation: sourceLocation)
}

/// A scratch directory with what the commands' validation looks at: an (empty) model directory, a
/// JSONL file, a run directory with metrics.jsonl, and a replayable-looking run directory.
final class Scratch {
    let root: String
    var model: String { root + "/model" }
    var pairs: String { root + "/pairs.jsonl" }
    var file: String { root + "/plain.txt" }
    var run: String { root + "/run" }
    var missing: String { root + "/missing" }

    init() throws {
        root = NSTemporaryDirectory() + "troupe-cli-\(UUID().uuidString)"
        let files = FileManager.default
        for directory in [model, run] { try files.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try Data("{\"prompt\": \"Q: 1+1=?\\nA:\", \"completion\": \" 2\\n\"}\n".utf8).write(to: URL(fileURLWithPath: pairs))
        try Data("text\n".utf8).write(to: URL(fileURLWithPath: file))
        for name in ["metrics.jsonl", "run.log", "config.json"] {
            try Data().write(to: URL(fileURLWithPath: run + "/" + name))
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}
