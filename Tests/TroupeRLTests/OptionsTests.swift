import Foundation
import Testing
import TroupeJSON
import TroupeRL

@Suite struct OptionsTests {
    @Test func everyPresetIsValidAndNamed() throws {
        for name in AlgorithmOptions.presetNames {
            let options = try AlgorithmOptions.preset(named: name)
            try options.validate()
            #expect(try AlgorithmOptions.resolve(.object(["preset": .string(name)])) == options)
        }
        #expect(AlgorithmOptions.presetNames.count == 12)
    }

    @Test func presetConventions() throws {
        let dapo = try AlgorithmOptions.preset(named: "dapo")
        #expect(dapo.loss.epsilonLow == 0.2 && dapo.loss.epsilonHigh == 0.28)
        #expect(dapo.reward.incorrect == -1 && dapo.reward.overlongMaxLength == 20480 && dapo.reward.overlongCache == 4096)
        #expect(dapo.aggregation.mode == .tokenMean && dapo.kl.coefficient == 0 && dapo.filter.zeroVarianceTolerance != nil)
        let cispo = try AlgorithmOptions.preset(named: "cispo")
        #expect(cispo.loss.kind == .cispo && cispo.loss.epsilonLow == nil && !cispo.loss.cispoMask)
        let topr = try AlgorithmOptions.preset(named: "topr")
        #expect(topr.advantage.estimator == .raw && topr.loss.toprRatio == .sequenceProduct && topr.reward.incorrect == -1)
        let ttrl = try AlgorithmOptions.preset(named: "ttrl")
        #expect(ttrl.reward.kind == .majority && ttrl.sampling.samplesPerPrompt == 64 && ttrl.sampling.trainSamples == 32 && ttrl.kl.coefficient == 0.001)
        #expect(try AlgorithmOptions.preset(named: "ettrl").advantage.entropyReshaping)
        let evol = try AlgorithmOptions.preset(named: "evol-rl")
        #expect(evol.reward.kind == .novelty && evol.entropy.coefficient == 0.003 && evol.loss.epsilonHigh == 0.28)
        let ttrv = try AlgorithmOptions.preset(named: "ttrv")
        #expect(ttrv.advantage.std == .population && ttrv.reward.frequencyEntropyWeight == 0.75)
        let gui = try AlgorithmOptions.preset(named: "gui-rcpo")
        #expect(gui.advantage.epsilon == 1e-4 && gui.kl.coefficient == 0.04 && gui.aggregation.mode == .seqMeanTokenMean)
        let dler = try AlgorithmOptions.preset(named: "dler")
        #expect(dler.reward.truncationLength == 4000 && dler.advantage.estimator == .batchnorm && dler.advantage.batchWeighting == .token && dler.loss.dualClip == 10)
        #expect(try AlgorithmOptions.preset(named: "s-grpo").advantage.estimator == .drgrpo)
        #expect(try AlgorithmOptions.preset(named: "drgrpo").aggregation == AggregationOptions(mode: .tokenSumConstant, constant: 3000))
    }

    @Test func overridesNestedDottedAndNull() throws {
        let options = try AlgorithmOptions.make("dapo").applying(overrides: [
            "loss": ["kind": "cispo", "epsilon_high": 4.0], "kl.coefficient": 0.01, "loss.epsilon_low": nil, "sampling": ["train_samples": 8],
        ])
        #expect(options.loss.kind == .cispo && options.loss.epsilonHigh == 4 && options.loss.epsilonLow == nil)
        #expect(options.kl.coefficient == 0.01 && options.sampling.trainSamples == 8)
        // Untouched fields keep the preset's values.
        #expect(options.reward.overlongMaxLength == 20480)
        #expect(try AlgorithmOptions.make("dapo").applying(overrides: JSONValue.object([:])) == AlgorithmOptions.make("dapo"))
    }

    @Test func jsonRoundTripAndCodable() throws {
        for name in AlgorithmOptions.presetNames {
            let options = try AlgorithmOptions.preset(named: name)
            #expect(try AlgorithmOptions().applying(overrides: options.json) == options)
            let data = try JSONEncoder().encode(options)
            #expect(try JSONDecoder().decode(AlgorithmOptions.self, from: data) == options)
        }
        // Decoding a partial object starts from the neutral defaults; bad keys still fail.
        let partial = try JSONDecoder().decode(AlgorithmOptions.self, from: Data(#"{"loss": {"kind": "topr"}}"#.utf8))
        #expect(partial.loss.kind == .topr && partial.advantage == AdvantageOptions())
        #expect(throws: AlgorithmError.self) { try JSONDecoder().decode(AlgorithmOptions.self, from: Data(#"{"loss": {"knd": "topr"}}"#.utf8)) }
        // Every key in the table appears in the JSON form, nulls included.
        guard case let .object(sections) = AlgorithmOptions().json else { Issue.record("not an object"); return }
        let keys = sections.flatMap { section, value -> [String] in
            guard case let .object(fields) = value else { return [] }
            return fields.keys.map { "\(section).\($0)" }
        }
        #expect(Set(keys) == Set(AlgorithmOptions.optionKeys))
    }

    @Test func resolveReadsPresetAndOverrides() throws {
        let options = try AlgorithmOptions.resolve(.object(["preset": .string("ttrl"), "loss": .object(["epsilon_high": .number(0.28)])]))
        #expect(options.reward.kind == .majority && options.loss.epsilonHigh == 0.28)
        #expect(try AlgorithmOptions.resolve(.object([:])) == AlgorithmOptions.make("grpo"))
        expectAlgorithmError(field: "preset") { _ = try AlgorithmOptions.resolve(.object(["preset": .number(1)])) }
    }

    @Test func trainingIndices() {
        #expect(AlgorithmOptions.make("ttrl").trainingIndices(groupSize: 64) == 0..<32)
        #expect(AlgorithmOptions.make("ttrl").trainingIndices(groupSize: 10) == 0..<10)
        #expect(AlgorithmOptions.make("grpo").trainingIndices(groupSize: 5) == 0..<5)
    }
}
