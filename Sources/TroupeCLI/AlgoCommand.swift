import ArgumentParser
import Foundation
import TroupeJSON
import TroupeRL
import TroupeRuntime

/// `troupe algo`: prints, as JSON, what the learner would compute for the groups described in a
/// JSON file (rewards, advantages, per-token ratios, gradient coefficients, losses, metrics).
/// The input schema is in docs/algorithms.md; the work is `TroupeRL.AlgorithmWorkbench`.
package struct AlgoCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "algo",
        abstract: "Show what the learner computes (rewards, advantages, ratios, gradient coefficients, losses) for groups in a JSON file.",
        discussion: """
            Input: {"preset": "ttrl", "overrides": {"loss.epsilon_high": 0.28}, "groups": [{"ground_truth": "17", \
            "samples": [{"answer": "17", "logp": [-0.5], "behaviour_logp": [-0.6]}, …]}]}. \
            See docs/algorithms.md for every key. Presets: \(AlgorithmOptions.presetNames.joined(separator: ", ")).
            """)

    @Argument(help: "JSON input file, or - for standard input.")
    package var input: String?

    @Option(help: "Preset to use instead of the input's \"preset\".")
    package var preset: String?

    @Option(name: .customLong("show-preset"), help: "Print a preset's options as JSON and exit.")
    package var showPreset: String?

    @Flag(help: "Print compact JSON on one line.")
    package var compact = false

    package init() {}

    package func validate() throws {
        switch (input, showPreset) {
        case (nil, nil): throw ValidationError("Give an input file (or - for stdin), or --show-preset NAME.")
        case (.some, .some): throw ValidationError("--show-preset takes no input file.")
        case (nil, .some) where preset != nil: throw ValidationError("--show-preset prints the preset it names; --preset applies to an input file.")
        default: break
        }
        for name in [preset, showPreset].compactMap({ $0 }) where !AlgorithmOptions.presetNames.contains(name) {
            throw ValidationError("Unknown preset \"\(name)\"; known presets: \(AlgorithmOptions.presetNames.joined(separator: ", ")).")
        }
        if let input, input != "-", let problem = ReadableFile.problem(at: input) {
            throw ValidationError("Cannot read \(input): \(problem).")
        }
    }

    package func run() throws {
        let output: JSONValue
        if let showPreset {
            output = try AlgorithmOptions.preset(named: showPreset).json
        } else {
            let data = input == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                                    : try Data(contentsOf: URL(fileURLWithPath: input!))
            output = try AlgorithmWorkbench.run(input: JSONValue.parse(data, source: input == "-" ? "standard input" : input!),
                                                 presetOverride: preset)
        }
        StandardStream.output.write(try output.serialized(compact: compact))
        StandardStream.output.write("\n")
    }
}
