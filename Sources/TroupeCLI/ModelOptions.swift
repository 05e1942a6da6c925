import ArgumentParser
import Foundation
import TroupeModel
import TroupeTensor
import TroupeTokenizer

/// `--model DIR` and `--threads N`, shared by the commands that run a model directory.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Model directory: config.json, model.safetensors, and tokenizer.json (without one, the built-in byte tokenizer).",
        valueName: "dir"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("OpenBLAS threads (default: OpenBLAS's choice, e.g. OPENBLAS_NUM_THREADS).",
                                            valueName: "n"))
    var threads: Int?

    func validate() throws {
        try Self.validateDirectory(model, option: "--model")
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    static func validateDirectory(_ path: String, option: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("\(option) \(path) does not exist")
        }
        guard isDirectory.boolValue else {
            throw ValidationError("\(option) \(path) is not a directory (a model directory holds config.json and model.safetensors)")
        }
    }

    /// Sets the thread count (when given) and loads the weights.
    func loadModel() throws -> LlamaModel {
        if let threads { BLASInfo.setThreads(threads) }
        return try ModelDirectory.load(model)
    }

    func loadTokenizer() throws -> any Tokenizer {
        try TroupeTokenizer.loadTokenizer(modelDirectory: model)
    }
}

/// An error found while a command runs (after argument validation), shown as `Error: <description>`.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Checks that a tokenizer's ids fit the model's embedding table (a tokenizer from another model
/// would otherwise fail only when it emits a large id).
func checkTokenizer(_ tokenizer: any Tokenizer, fits config: ModelConfig, directory: String) throws {
    guard tokenizer.vocabularySize <= config.vocabularySize else {
        throw CommandError("\(directory): the tokenizer has \(tokenizer.vocabularySize) ids but the model's vocab_size is "
            + "\(config.vocabularySize); the tokenizer belongs to another model")
    }
}

/// Stop tokens by default: the tokenizer's EOS and the config's eos_token_id(s), as Hugging Face
/// `generate` stops on the generation config's EOS.
func defaultStopTokens(tokenizer: (any Tokenizer)?, config: ModelConfig) -> [Int32] {
    var ids = config.eosTokenIds.map { Int32($0) }
    if let eos = tokenizer?.eosTokenId, !ids.contains(eos) { ids.append(eos) }
    return ids
}

/// Parses `1,2, 3` (commas and/or spaces) into token ids.
func parseTokenIds(_ list: String, option: String) throws -> [Int32] {
    try list.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map { item in
        guard let id = Int32(item) else {
            throw ValidationError("\(option): \(String(item).debugDescription) is not a token id (integers separated by commas)")
        }
        return id
    }
}
