import Foundation
import Testing
import TroupeJSON
import TroupeTokenizer

/// A tokenizer.json written from parts loads as the tokenizer it describes.
@Suite struct ByteLevelBPEFileTests {
    @Test func bytesThenMergesThenSpecialTokensInThatOrder() throws {
        let document = ByteLevelBPEFile.document(merges: [(Array(" ".utf8), Array("4".utf8)), (Array(" 4".utf8), Array("2".utf8)),
                                                          (Array("4".utf8), Array("2".utf8))],
                                                 specialTokens: ["<eos>", "<pad>"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bpe-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try document.serialized(compact: true).write(to: URL(fileURLWithPath: path))
        let tokenizer = try loadTokenizer(tokenizerFile: path)
        #expect(tokenizer.vocabularySize == 256 + 3 + 2)
        #expect(tokenizer.encode("a 42 42") == [97, 257, 257])
        #expect(tokenizer.encode("42") == [258])
        #expect(try tokenizer.decode([97, 257, 258, 256]) == "a 4242 4")
        #expect(tokenizer.tokenString(for: 259) == "<eos>" && tokenizer.tokenString(for: 260) == "<pad>")
    }
}
