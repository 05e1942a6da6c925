import Foundation
import TroupeModel

/// Paths of the reference model directories saved by Hugging Face transformers (Tests/Fixtures).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static var llamaTiny: String { root + "/llama-tiny" }
    static var qwen2Tiny: String { root + "/qwen2-tiny" }
    /// Made by scripts/fixtures/make_llama3_rope_tiny.py.
    static var llama3RopeTiny: String { root + "/llama3-rope-tiny" }
    /// Made by scripts/fixtures/make_qwen3_tiny.py.
    static var qwen3Tiny: String { root + "/qwen3-tiny" }
    /// Made by scripts/fixtures/make_llama_bias_tiny.py.
    static var llamaBiasTiny: String { root + "/llama-bias-tiny" }
}

/// max |a − b|
func maxAbsDiff(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var m = 0.0
    for i in 0..<a.count { m = max(m, abs(Double(a[i]) - b[i])) }
    return m
}

/// max |a − b| / max |b|, the fixtures' gradient criterion.
func maxNormRelDiff(_ a: [Float], _ b: [Double]) -> Double {
    let scale = b.map(abs).max() ?? 0
    return maxAbsDiff(a, b) / max(scale, 1e-30)
}
