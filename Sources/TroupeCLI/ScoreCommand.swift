import ArgumentParser
import Foundation
import TroupeJSON
import TroupeModel
import TroupeTokenizer

/// `troupe score`: per-token log-probs of a completion (or of token ids) through the training forward,
/// the numbers the learner computes for its ratio.
package struct ScoreCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Print per-token log-probs of a completion, or of token ids, as JSON.",
        discussion: """
            Examples:

              troupe score --model DIR --prompt $'Q: 47+85=?\\nA:' --completion $' 132\\n'
              troupe score --model DIR --ids 5,17,42,9 --score-from 2

            Text: the prompt and the completion are encoded separately and joined, as a prompt and its \
            sampled tokens are; the completion's tokens are scored. Ids: tokens from --score-from (an \
            index, ≥ 1, default 1) on are scored, each given the ones before it; no tokenizer is needed. \
            Output: {"ids", "score_from", "scored_ids", "tokens", "logprobs", "sum", "mean", "count"}; \
            "tokens" spell the scored ids when the model directory has a tokenizer.
            """)

    @OptionGroup package var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("The context, not scored.", valueName: "text"))
    package var prompt: String?

    @Option(name: .long, help: ArgumentHelp("The text whose tokens are scored.", valueName: "text"))
    package var completion: String?

    @Option(name: .long, help: ArgumentHelp("Token ids, separated by commas.", valueName: "ids"))
    package var ids: String?

    @Option(name: .long, help: ArgumentHelp("With --ids: index of the first scored token (≥ 1).", valueName: "k"))
    package var scoreFrom: Int?

    @OptionGroup package var temperatureOption: TemperatureOption

    @Flag(name: .long, help: "Prepend the tokenizer's BOS token to the prompt (text only).")
    package var bos = false

    @Flag(name: .long, help: "Also print the entropy of each scored token's distribution.")
    package var entropy = false

    package init() {}

    package var temperature: Float { temperatureOption.temperature }

    package func validate() throws {
        if let ids {
            guard prompt == nil && completion == nil else {
                throw ValidationError("give either --ids or --prompt/--completion, not both")
            }
            let parsed = try parseTokenIds(ids, option: "--ids")
            guard parsed.count >= 2 else { throw ValidationError("--ids needs at least two tokens (one of context, one scored)") }
            if let k = scoreFrom, !(1..<parsed.count).contains(k) {
                throw ValidationError("--score-from must be in 1...\(parsed.count - 1) for \(parsed.count) ids, got \(k)")
            }
            if bos { throw ValidationError("--bos applies to text; put the BOS id in --ids") }
        } else {
            guard let prompt, let completion else {
                throw ValidationError("give --prompt and --completion (text), or --ids (token ids)")
            }
            if scoreFrom != nil { throw ValidationError("--score-from applies to --ids; with text the completion is scored") }
            if prompt.isEmpty && !bos {
                throw ValidationError("--prompt is empty; the first completion token needs context (give text, or --bos)")
            }
            if completion.isEmpty { throw ValidationError("--completion is empty: nothing to score") }
        }
    }

    package func run() throws {
        let model = try modelOptions.loadModel()
        let sequence: [Int32]
        let from: Int
        var tokenizer: (any Tokenizer)?
        if let ids {
            sequence = try parseTokenIds(ids, option: "--ids")
            from = scoreFrom ?? 1
            // Ids need no tokenizer; the directory's spells the tokens, and a damaged one is an error, not a silence.
            tokenizer = try modelOptions.loadTokenizer()
        } else {
            let loaded = try modelOptions.loadTokenizer()
            try model.config.check(fits: loaded, directory: modelOptions.model)
            tokenizer = loaded
            try requireBos(bos, in: loaded, of: modelOptions.model)
            let promptIds = loaded.encodePrompt(prompt!, addingBos: bos)
            let completionIds = loaded.encode(completion!)
            guard !promptIds.isEmpty else { throw CommandError("--prompt encodes to no tokens") }
            guard !completionIds.isEmpty else { throw CommandError("--completion encodes to no tokens") }
            sequence = promptIds + completionIds
            from = promptIds.count
        }
        let result = try TrainingPass(model: model).forward(
            ScoringBatch(sequences: [sequence], scoreFrom: [from], temperatures: [temperature]), entropy: entropy)
        let logprobs = result.logprobs[0].map(Double.init)
        let scored = Array(sequence[from...])
        let sum = logprobs.reduce(0, +)
        func integers(_ ids: [Int32]) -> JSONValue { .array(ids.map { .integer(Int($0)) }) }
        var output: [String: JSONValue] = [
            "ids": integers(sequence), "score_from": .integer(from), "scored_ids": integers(scored),
            "logprobs": .array(logprobs.map(JSONValue.number)), "sum": .number(sum), "mean": .number(sum / Double(logprobs.count)),
            "count": .integer(logprobs.count), "temperature": .number(Double(temperature)),
        ]
        if let tokenizer {
            output["tokens"] = .array(scored.map { id in tokenizer.tokenString(for: id).map(JSONValue.string) ?? .null })
        }
        if let e = result.entropies?[0] { output["entropies"] = .array(e.map { .number(Double($0)) }) }
        try JSONOutput.print(.object(output))
    }
}
