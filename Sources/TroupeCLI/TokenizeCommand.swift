import ArgumentParser
import Foundation
import TroupeJSON
import TroupeTokenizer

/// `troupe tokenize`: text → token ids (and their spellings), or token ids → text, as JSON.
package struct TokenizeCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to token ids, or decode token ids to text, printing JSON.",
        discussion: """
            Examples:

              troupe tokenize --model DIR "Hello world"
              troupe tokenize --model DIR --ids 9906,1917
              troupe tokenize --tokenizer tokenizer.json --decode "9906, 1917"

            Encoding prints {"ids":[...],"tokens":[...]}, decoding {"text":"..."}. A model directory \
            uses its tokenizer.json, or the built-in byte tokenizer when it has none. Encoding adds no \
            special tokens unless --bos is given.
            """)

    @Option(name: .long, help: ArgumentHelp("A model directory (tokenizer.json, or the built-in byte tokenizer).",
                                            valueName: "dir"))
    package var model: String?

    @Option(name: .long, help: ArgumentHelp("A Hugging Face tokenizer.json file.", valueName: "file"))
    package var tokenizer: String?

    @Option(name: .long, help: ArgumentHelp("Token ids to decode, separated by commas.", valueName: "ids"))
    package var ids: String?

    @Flag(name: .long, help: "Decode: the argument is a list of token ids separated by commas.")
    package var decode = false

    @Flag(name: .long, help: "Prepend the tokenizer's BOS token, if it has one.")
    package var bos = false

    @Flag(name: .long, help: "Encode special-token text (e.g. <|eos|>) as ordinary text.")
    package var noSpecialTokens = false

    @Argument(help: "The text to encode, or with --decode the ids to decode.")
    package var text: String?

    package init() {}

    package mutating func validate() throws {
        switch (model, tokenizer) {
        case (nil, nil): throw ValidationError("give --model DIR or --tokenizer FILE")
        case (.some, .some): throw ValidationError("give only one of --model and --tokenizer")
        case let (model?, nil): try validateDirectory(model, option: "--model")
        case let (nil, file?):
            try requirePath(file, directory: false, missing: "--tokenizer \(file) does not exist",
                            wrongKind: "--tokenizer \(file) is a directory (give its tokenizer.json, or the directory as --model)")
        }
        if ids != nil {
            guard text == nil else { throw ValidationError("give either text to encode or --ids to decode, not both") }
        } else if text == nil {
            throw ValidationError(decode ? "--decode needs the ids to decode as the argument"
                                         : "give the text to encode, or --ids to decode")
        }
        if let idList {
            _ = try parseTokenIds(idList, option: idOption)
            if bos || noSpecialTokens { throw ValidationError("--bos and --no-special-tokens apply to encoding only") }
        }
    }

    /// The ids to decode, when decoding.
    private var idList: String? { ids ?? (decode ? text : nil) }

    /// Where the ids to decode came from, for errors.
    private var idOption: String { ids != nil ? "--ids" : "TEXT" }

    package func run() throws {
        let loaded: any Tokenizer
        if let model {
            loaded = try loadTokenizer(modelDirectory: model)
        } else {
            loaded = try loadTokenizer(tokenizerFile: tokenizer!)
        }
        let output: JSONValue
        if let idList {
            output = ["text": .string(try loaded.decode(try parseTokenIds(idList, option: idOption)))]
        } else {
            try requireBos(bos, in: loaded, of: model ?? tokenizer!)
            let encoded = loaded.encode(text!, addingBos: bos, recognizingSpecialTokens: !noSpecialTokens)
            output = ["ids": .array(encoded.map { .integer(Int($0)) }), "tokens": .array(encoded.map { .string(loaded.tokenString(for: $0) ?? "") })]
        }
        print(try JSONOutput.string(output))
    }
}
