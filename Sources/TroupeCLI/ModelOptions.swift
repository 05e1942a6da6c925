import ArgumentParser
import Foundation
import TroupeJSON
import TroupeModel
import TroupeTensor
import TroupeTokenizer

/// `--threads N`, shared by every command that runs a model.
package struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("OpenBLAS threads (default: OpenBLAS's choice, e.g. OPENBLAS_NUM_THREADS).",
                                            valueName: "n"))
    package var threads: Int?

    package init() {}

    package func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    /// Sets OpenBLAS's thread count, when one was given.
    package func apply() {
        if let threads { BLASInfo.setThreads(threads) }
    }
}

/// `--model DIR` and `--threads N`, shared by the commands that run a model directory.
package struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Model directory: config.json, model.safetensors, and tokenizer.json (without one, the built-in byte tokenizer).",
        valueName: "dir"))
    package var model: String

    @OptionGroup package var threadOptions: ThreadOptions

    package init() {}

    package func validate() throws {
        try validateDirectory(model, option: "--model")
    }

    /// Sets the thread count (when given) and loads the weights.
    package func loadModel() throws -> LlamaModel {
        threadOptions.apply()
        return try ModelDirectory.load(model)
    }

    package func loadTokenizer() throws -> any Tokenizer {
        try TroupeTokenizer.loadTokenizer(modelDirectory: model)
    }
}

/// `--temperature T`: the distribution samples are drawn from and log-probs taken at.
package struct TemperatureOption: ParsableArguments {
    @Option(name: .customLong("temperature"),
            help: "Temperature (0.01 … 10, as sampling.temperature; default 1) of the distribution tokens are sampled from and log-probs taken at.")
    package var givenTemperature: Float?

    package init() {}

    package var temperature: Float { givenTemperature ?? 1 }

    package func validate() throws {
        // The run configuration's range: far below it logits over the temperature overflow to NaN log-probs.
        // Checked as written (0.01, not the Float nearest it, 0.0099999998), as the configuration reads it.
        try requireSettingRange("--temperature", .number(Double("\(temperature)") ?? Double(temperature)), shown: "\(temperature)",
                                as: "sampling.temperature")
    }
}

/// What differs between the commands that share `SamplingOptions`.
package protocol SamplingDefaults {
    static var maxNewTokens: Int { get }
    static var seed: UInt64 { get }
    /// The help of `--seed` (what it seeds).
    static var seedHelp: String { get }
}

/// `--temperature`, `--max-new-tokens` and `--seed`, shared by the commands that sample completions;
/// the defaults are the command's (`Defaults`).
package struct SamplingOptions<Defaults: SamplingDefaults>: ParsableArguments {
    @OptionGroup package var temperatureOption: TemperatureOption

    @Option(name: .long, help: ArgumentHelp("Maximum tokens per completion.", valueName: "n"))
    package var maxNewTokens = Defaults.maxNewTokens

    @Option(name: .long, help: ArgumentHelp(Defaults.seedHelp))
    package var seed = Defaults.seed

    package init() {}

    package var temperature: Float { temperatureOption.temperature }

    package func validate() throws {
        try requireSettingRange("--max-new-tokens", .integer(maxNewTokens), shown: "\(maxNewTokens)", as: "sampling.max_new_tokens")
    }
}

/// Refuses `path` unless it exists and is a directory (`directory`) or a file (not): `missing` and
/// `wrongKind` are the command-line errors' texts.
func requirePath(_ path: String, directory: Bool, missing: @autoclosure () -> String, wrongKind: @autoclosure () -> String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ValidationError(missing()) }
    guard isDirectory.boolValue == directory else { throw ValidationError(wrongKind()) }
}

/// `--bos` asks for a token the tokenizer of `source` (a model directory or tokenizer file) may not have.
func requireBos(_ bos: Bool, in tokenizer: any Tokenizer, of source: String) throws {
    if bos && tokenizer.bosTokenId == nil { throw CommandError("--bos: the tokenizer of \(source) has no BOS token") }
}

/// Checks that `path`, given as `option`, is a directory.
func validateDirectory(_ path: String, option: String) throws {
    try requirePath(path, directory: true, missing: "\(option) \(path) does not exist",
                    wrongKind: "\(option) \(path) is not a directory (a model directory holds config.json and model.safetensors)")
}

/// Checks that `--resume`'s run directory exists and is a directory (what it holds is the learner's to judge).
func validateRunDirectory(_ path: String) throws {
    try requirePath(path, directory: true, missing: "--resume: run directory \(path) does not exist",
                    wrongKind: "--resume: \(path) is a file; give the run directory")
}

/// Parses `1,2, 3` (commas and/or spaces) into token ids.
func parseTokenIds(_ list: String, option: String) throws -> [Int32] {
    // Commas separate entries (spaces may too, within one); an empty entry ("1,,2", "1,") is a mistake.
    try list.split(separator: ",", omittingEmptySubsequences: false).enumerated().flatMap { index, entry in
        let items = entry.split(whereSeparator: \.isWhitespace)
        guard !items.isEmpty else { throw ValidationError("\(option): entry \(index + 1) of \(list.debugDescription) is empty (integers separated by commas)") }
        return try items.map { item in
            guard let id = Int32(item) else {
                throw ValidationError("\(option): \(String(item).debugDescription) is not a token id (integers separated by commas)")
            }
            return id
        }
    }
}
