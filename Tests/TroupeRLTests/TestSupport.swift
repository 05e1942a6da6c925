import Testing
import TroupeJSON
import TroupeRL

/// Every test vector is compared at 1e-6 unless a test says otherwise (docs/algorithms.md).
func expectClose(_ actual: [Double], _ expected: [Double], tolerance: Double = 1e-6,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "got \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    for (index, (value, target)) in zip(actual, expected).enumerated() {
        #expect(abs(value - target) <= tolerance, "[\(index)] \(value) vs expected \(target)", sourceLocation: sourceLocation)
    }
}

func expectClose(_ actual: Double?, _ expected: Double, tolerance: Double = 1e-6, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else {
        Issue.record("got nil, expected \(expected)", sourceLocation: sourceLocation)
        return
    }
    #expect(abs(actual - expected) <= tolerance, "\(actual) vs expected \(expected)", sourceLocation: sourceLocation)
}

/// Runs `body` and returns the AlgorithmError it throws (recording an issue when it throws nothing or something else).
@discardableResult
func expectAlgorithmError(field: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> AlgorithmError? {
    do {
        try body()
        Issue.record("expected an error naming \(field), got none", sourceLocation: sourceLocation)
    } catch let error as AlgorithmError {
        #expect(error.field == field, "error names \(error.field) (\(error.problem)), expected \(field)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected AlgorithmError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// SplitMix64: a fixed-seed generator for the property tests (no package dependency).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension AlgorithmOptions {
    /// A preset with overrides, for tests (both are known-good).
    static func make(_ preset: String = "grpo", _ overrides: [String: JSONValue] = [:]) -> AlgorithmOptions {
        try! AlgorithmOptions.preset(named: preset).applying(overrides: .object(overrides))
    }
}
