import Foundation
import Testing
import TroupeJSON

/// `troupe generate` as a process: what it prints.
@Suite struct GenerateCommandTests {
    static let arithBase = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/arith-base").path

    static func generate(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let (status, output) = try Command.run([try TroupeBinary.path(), "generate", "--model", arithBase] + arguments, within: 60)
        return (status, output)
    }

    /// --prompt-ids samples from exactly the ids given: the same completions as the text that encodes to them
    /// (what a third-party actor needs to sample a lease's token_ids).
    @Test func promptIdsSampleAsTheTextThatEncodesToThem() throws {
        let text = try Self.generate(["--prompt", "Q: 12+30=?\nA:", "--samples", "2", "--json"])
        #expect(text.status == 0, "\(text.output)")
        let fromText = try JSONValue.parse(Array(text.output.utf8), source: "generate --prompt")
        let first = try #require(fromText["results"]?.array?.first)
        let ids = try #require(first["prompt_ids"]?.array).compactMap(\.int).map(String.init).joined(separator: ",")
        let byIds = try Self.generate(["--prompt-ids", ids, "--samples", "2", "--json"])
        #expect(byIds.status == 0, "\(byIds.output)")
        let fromIds = try JSONValue.parse(Array(byIds.output.utf8), source: "generate --prompt-ids")
        let same = try #require(fromIds["results"]?.array?.first)
        #expect(same["completions"] == first["completions"])
        #expect(same["prompt"]?.string == "Q: 12+30=?\nA:")
        let outside = try Self.generate(["--prompt-ids", "1,99999"])
        #expect(outside.status == 1 && outside.output.contains("--prompt-ids 1: token id 99999 is outside the model's vocabulary"), "\(outside.output)")
    }
}
