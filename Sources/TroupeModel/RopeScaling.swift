import Foundation
import TroupeJSON

/// RoPE frequency scaling as Hugging Face configurations declare it (`rope_scaling`, or `rope_parameters`
/// in transformers 5), for the two kinds that only change each pair's frequency:
/// - `linear` (position interpolation, Chen et al. 2023): every frequency divided by `factor`;
/// - `llama3` (Llama 3.1 and later): frequencies whose wavelength is longer than
///   `originalMaxPositions / lowFrequencyFactor` divided by `factor`, those shorter than
///   `originalMaxPositions / highFrequencyFactor` kept, and the ones between blended linearly in
///   `originalMaxPositions / wavelength` (transformers' `_compute_llama3_parameters`).
/// Neither changes the attention scale. Kinds that do, or that depend on the sequence length (`dynamic`,
/// `yarn`, `longrope`), are refused when the configuration is read.
public struct RopeScaling: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case linear, llama3
    }

    public var kind: Kind
    public var factor: Double
    /// llama3 only.
    public var lowFrequencyFactor: Double
    public var highFrequencyFactor: Double
    public var originalMaxPositions: Int

    public init(kind: Kind, factor: Double, lowFrequencyFactor: Double = 1, highFrequencyFactor: Double = 4, originalMaxPositions: Int = 8192) {
        self.kind = kind
        self.factor = factor
        self.lowFrequencyFactor = lowFrequencyFactor
        self.highFrequencyFactor = highFrequencyFactor
        self.originalMaxPositions = originalMaxPositions
    }

    /// The scaled inverse frequencies of `unscaled` (θ^(−2i/d) for each pair i).
    public func scale(_ unscaled: [Double]) -> [Double] {
        switch kind {
        case .linear:
            return unscaled.map { $0 / factor }
        case .llama3:
            let context = Double(originalMaxPositions)
            let longest = context / lowFrequencyFactor, shortest = context / highFrequencyFactor
            return unscaled.map { frequency in
                let wavelength = 2 * Double.pi / frequency
                if wavelength > longest { return frequency / factor }
                if wavelength < shortest { return frequency }
                let smooth = (context / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor)
                return (1 - smooth) * frequency / factor + smooth * frequency
            }
        }
    }

    /// Refuses values that would give no frequency or divide by zero, naming the key under `field`
    /// (`rope_scaling` or `rope_parameters`, where the configuration declared them).
    /// `originalMaxPositionsField` names where the pretraining context was read (the top level or
    /// `max_position_embeddings` may have supplied it).
    func validate(field: String = "rope_scaling", originalMaxPositionsField: String? = nil) throws {
        func need(_ ok: Bool, _ key: String, _ why: String) throws {
            if !ok { throw ModelError.invalidConfig(field: "\(field).\(key)", reason: why) }
        }
        try need(factor.isFinite && factor > 0, "factor", "must be > 0 (got \(factor))")
        guard kind == .llama3 else { return }
        try need(lowFrequencyFactor.isFinite && lowFrequencyFactor > 0, "low_freq_factor", "must be > 0 (got \(lowFrequencyFactor))")
        try need(highFrequencyFactor.isFinite && highFrequencyFactor > lowFrequencyFactor, "high_freq_factor",
                 "must be larger than low_freq_factor \(lowFrequencyFactor) (got \(highFrequencyFactor))")
        guard originalMaxPositions > 0 else {
            throw ModelError.invalidConfig(field: originalMaxPositionsField ?? "\(field).original_max_position_embeddings",
                                           reason: "must be > 0 (got \(originalMaxPositions))")
        }
    }

    var huggingFaceJSON: JSONValue {
        var d: [String: JSONValue] = ["rope_type": .string(kind.rawValue), "factor": .number(factor)]
        if kind == .llama3 {
            d["low_freq_factor"] = .number(lowFrequencyFactor)
            d["high_freq_factor"] = .number(highFrequencyFactor)
            d["original_max_position_embeddings"] = .integer(originalMaxPositions)
        }
        return .object(d)
    }
}
