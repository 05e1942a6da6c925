import ArgumentParser
import Foundation
import TroupeJSON
import TroupeModel
import TroupeTensor
import TroupeTokenizer

/// `troupe generate`: sample completions of one or more prompts from a model directory, with the same
/// sampler (KV cache, behaviour log-probs, per-sample seeds) the actors use.
package struct GenerateCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample completions of prompts from a model directory.",
        discussion: """
            Examples:

              troupe generate --model DIR --prompt $'Q: 47+85=?\\nA:' --stop $'\\n' --temperature 0.7
              troupe generate --model DIR --prompt "Once upon" --samples 4 --json

            Sampling stops at the tokenizer's EOS token (and the config's eos_token_id) unless \
            --ignore-eos is given, at any --stop string, or after --max-new-tokens. Sample j of \
            prompt i uses seed Xoshiro256(mixing: [seed, i, j]) (printed with --json), so a sample is \
            reproduced exactly by the same command. The text shown is the decoded completion with \
            special tokens left out; stop strings are kept, as the sampler returns them.
            """)

    @OptionGroup package var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("A prompt (repeat for several; they are sampled as one batch).", valueName: "text"))
    package var prompt: [String] = []

    @Option(name: .customLong("prompt-ids"), help: ArgumentHelp("A prompt as token ids, separated by commas (repeat for several), instead of --prompt: sampled from exactly these ids, as an actor samples a lease's token_ids.", valueName: "ids"))
    package var promptIdLists: [String] = []

    @Option(name: .long, help: "Completions per prompt.")
    package var samples = 1

    @OptionGroup package var sampling: SamplingOptions<GenerateDefaults>

    @Option(name: .long, help: "Keep the K most likely tokens (0: all).")
    package var topK = 0

    @Option(name: .long, help: "Keep the most likely tokens holding probability P (1: all).")
    package var topP: Float = 1

    @Option(name: .long, help: ArgumentHelp("Stop once the completion's text contains this string (repeatable).",
                                            valueName: "string"))
    package var stop: [String] = []

    @Flag(name: .long, help: "Do not stop at the EOS token.")
    package var ignoreEos = false

    @Flag(name: .long, help: "Prepend the tokenizer's BOS token to each prompt (if it has one).")
    package var bos = false

    @Flag(name: .long, help: "Also compute the entropy of each token's distribution (printed in the JSON, so it implies --json).")
    package var entropy = false

    @Flag(name: .long, help: "Print JSON: token ids, behaviour log-probs, finish reasons, seeds.")
    package var json = false

    package init() {}

    package enum GenerateDefaults: SamplingDefaults {
        package static let maxNewTokens = 64
        package static let seed: UInt64 = 0
        package static let seedHelp = "Base seed of the samples' random streams."
    }

    package func validate() throws {
        guard prompt.isEmpty || promptIdLists.isEmpty else { throw ValidationError("give prompts as --prompt (text) or --prompt-ids, not both") }
        guard !prompt.isEmpty || !promptIdLists.isEmpty else { throw ValidationError("give at least one --prompt (or --prompt-ids)") }
        for list in promptIdLists { _ = try parseTokenIds(list, option: "--prompt-ids") }
        if bos && !promptIdLists.isEmpty { throw ValidationError("--bos applies to text; put the BOS id in --prompt-ids") }
        if let i = prompt.firstIndex(where: \.isEmpty), !bos {
            throw ValidationError("--prompt \(i + 1) is empty; give some text (or --bos to start from the BOS token)")
        }
        try requireSettingRange("--samples", .integer(samples), shown: "\(samples)", as: "eval.samples")
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0, got \(topK)") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
        if stop.contains("") { throw ValidationError("--stop must not be empty: it would end every completion at once") }
    }

    package func run() throws {
        let model = try modelOptions.loadModel()
        let tokenizer = try modelOptions.loadTokenizer()
        try model.config.check(fits: tokenizer, directory: modelOptions.model)
        let option = promptIdLists.isEmpty ? "--prompt" : "--prompt-ids"
        try requireBos(bos, in: tokenizer, of: modelOptions.model)
        let promptIds = promptIdLists.isEmpty ? prompt.map { tokenizer.encodePrompt($0, addingBos: bos) }
            : try promptIdLists.map { try parseTokenIds($0, option: option) }
        if let i = promptIds.firstIndex(where: \.isEmpty) {
            throw CommandError("--prompt \(i + 1) encodes to no tokens")
        }
        if let i = promptIds.firstIndex(where: { $0.count > model.config.maxPositions }) {
            throw CommandError("\(option) \(i + 1) is \(promptIds[i].count) tokens, longer than the model's context of \(model.config.maxPositions)")
        }
        for (i, ids) in promptIds.enumerated() {
            if let id = ids.first(where: { $0 < 0 || Int($0) >= model.config.vocabularySize }) {
                throw CommandError("\(option) \(i + 1): token id \(id) is outside the model's vocabulary (0..<\(model.config.vocabularySize))")
            }
        }
        var requests: [SampleRequest] = []
        for (i, ids) in promptIds.enumerated() {
            for j in 0..<samples { requests.append(SampleRequest(prompt: ids, seed: SampleRequest.seed(base: sampling.seed, prompt: i, sample: j))) }
        }
        let stopTokens = ignoreEos ? [] : model.config.defaultStopTokens(tokenizer: tokenizer)
        let parameters = SamplingParameters(temperature: sampling.temperature, topK: topK, topP: topP,
                                            maxNewTokens: sampling.maxNewTokens,
                                            stopTokens: stopTokens, stopStrings: stop, computeEntropy: entropy)
        let started = monotonicSeconds()
        let completions = try Sampler(model: model).generate(requests, parameters: parameters,
                                                             tokenBytes: { tokenizer.bytes(of: $0) })
        let seconds = monotonicSeconds() - started

        if json || entropy {
            func integers(_ ids: [Int32]) -> JSONValue { .array(ids.map { .integer(Int($0)) }) }
            func numbers(_ values: [Float]) -> JSONValue { .array(values.map { .number(Double($0)) }) }
            var results: [JSONValue] = []
            let texts = promptIdLists.isEmpty ? prompt : try promptIds.map { try tokenizer.sampledText($0, skippingSpecialTokens: false) }
            for (i, text) in texts.enumerated() {
                let samples = try (0..<self.samples).map { j throws -> JSONValue in
                    let r = i * self.samples + j, c = completions[r]
                    var entry: [String: JSONValue] = [
                        "sample": .integer(j), "seed": JSONOutput.unsigned(requests[r].seed), "ids": integers(c.tokens),
                        "tokens": .array(c.tokens.map { tokenizer.tokenString(for: $0).map(JSONValue.string) ?? .null }),
                        "text": .string(try tokenizer.sampledText(c.tokens)),
                        "logprobs": numbers(c.logprobs), "sum_logprob": .number(c.logprobs.reduce(0.0) { $0 + Double($1) }),
                        "finish_reason": .string(c.finishReason.rawValue),
                    ]
                    if let e = c.entropies { entry["entropies"] = numbers(e) }
                    return .object(entry)
                }
                results.append(["prompt": .string(text), "prompt_ids": integers(promptIds[i]), "completions": .array(samples)])
            }
            let generated = completions.reduce(0) { $0 + $1.tokens.count }
            try JSONOutput.print([
                "model": .string(modelOptions.model), "weights_hash": .string(model.weightsHash()),
                "parameters": ["temperature": .number(Double(sampling.temperature)), "top_k": .integer(topK), "top_p": .number(Double(topP)),
                               "max_new_tokens": .integer(sampling.maxNewTokens), "stop_tokens": integers(stopTokens),
                               "stop": .array(stop.map(JSONValue.string)), "seed": JSONOutput.unsigned(sampling.seed)],
                "results": .array(results), "generated_tokens": .integer(generated), "seconds": .number(seconds),
                "tokens_per_s": .number(seconds > 0 ? Double(generated) / seconds : 0),
            ], pretty: true)
            return
        }
        let several = completions.count > 1
        for (r, c) in completions.enumerated() {
            let text = try tokenizer.sampledText(c.tokens)
            if several {
                let i = r / samples, j = r % samples
                print("--- prompt \(i + 1)" + (samples > 1 ? ", sample \(j + 1)" : "")
                      + " (\(c.tokens.count) tokens, \(c.finishReason.rawValue)) ---")
            }
            print(text)
        }
    }
}
