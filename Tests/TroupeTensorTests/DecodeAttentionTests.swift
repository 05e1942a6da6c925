import Foundation
import Testing
import TroupeTensor

@Suite struct DecodeAttentionTests {
    /// softmax(scale · K q_h) · V for each head, in double precision.
    static func reference(q: [Float], keys: [Float], values: [Float], heads: Int, span: Int, d: Int,
                          scale: Float) -> [Double] {
        var out = [Double](repeating: 0, count: heads * d)
        for h in 0..<heads {
            let scores = (0..<span).map { j in
                Double(scale) * (0..<d).reduce(0.0) { $0 + Double(q[h * d + $1]) * Double(keys[j * d + $1]) }
            }
            let peak = scores.max()!
            let weights = scores.map { Foundation.exp($0 - peak) }
            let total = weights.reduce(0, +)
            for c in 0..<d {
                out[h * d + c] = (0..<span).reduce(0.0) { $0 + weights[$1] * Double(values[$1 * d + c]) } / total
            }
        }
        return out
    }

    /// Runs the kernel on keys given position-major, (span, d), stored transposed with a row stride of
    /// `span + slack` (the cache's capacity) and NaN in the slack, which must never be read.
    static func run(q: [Float], keys: [Float], values: [Float], heads: Int, span: Int, d: Int, scale: Float,
                    slack: Int = 3) -> [Float] {
        let stride = span + slack
        var transposed = [Float](repeating: .nan, count: d * stride)
        for j in 0..<span { for c in 0..<d { transposed[c * stride + j] = keys[j * d + c] } }
        var out = [Float](repeating: .nan, count: heads * d)
        var scores = [Float](repeating: .nan, count: heads * span)
        q.withUnsafeBufferPointer { qp in
            transposed.withUnsafeBufferPointer { kp in
                values.withUnsafeBufferPointer { vp in
                    DecodeAttention.forward(queries: qp.baseAddress!, heads: heads, keysTransposed: kp.baseAddress!,
                                            stride: stride, values: vp.baseAddress!, span: span, d: d, scale: scale,
                                            scores: &scores, out: &out)
                }
            }
        }
        return out
    }

    /// Head sizes with and without 16- and 64-float blocks, spans from one position (the first decoded
    /// token after a one-token prompt) to past the 16-position blocks, groups of 1 to 4 query heads.
    @Test(arguments: [8, 24, 64, 80, 128])
    func matchesDoublePrecisionAttention(d: Int) {
        var rng = Xoshiro256(seed: UInt64(d))
        for heads in 1...4 {
            for span in [1, 2, 5, 16, 17, 33, 100] {
                let q = (0..<(heads * d)).map { _ in Float(rng.nextGaussian()) }
                let keys = (0..<(span * d)).map { _ in Float(rng.nextGaussian()) }
                let values = (0..<(span * d)).map { _ in Float(rng.nextGaussian()) }
                let scale = 1 / Float(d).squareRoot()
                let got = Self.run(q: q, keys: keys, values: values, heads: heads, span: span, d: d, scale: scale)
                let want = Self.reference(q: q, keys: keys, values: values, heads: heads, span: span, d: d, scale: scale)
                let worst = zip(got, want).map { abs(Double($0) - $1) }.max()!
                #expect(worst < 2e-6, "d=\(d) heads=\(heads) span=\(span): max error \(worst)")
            }
        }
    }

    /// A query head's output does not depend on the other heads of its group: the sampler runs groups,
    /// and a sequence's log-probs must not depend on how its heads were grouped.
    @Test func aHeadsOutputIsTheSameAloneOrInItsGroup() {
        var rng = Xoshiro256(seed: 3)
        let d = 64, span = 37, heads = 3, scale: Float = 0.125  // 37: two 16-position blocks and a tail
        let q = (0..<(heads * d)).map { _ in Float(rng.nextGaussian()) }
        let keys = (0..<(span * d)).map { _ in Float(rng.nextGaussian()) }
        let values = (0..<(span * d)).map { _ in Float(rng.nextGaussian()) }
        let grouped = Self.run(q: q, keys: keys, values: values, heads: heads, span: span, d: d, scale: scale)
        for h in 0..<heads {
            let alone = Self.run(q: Array(q[(h * d)..<((h + 1) * d)]), keys: keys, values: values, heads: 1, span: span,
                                 d: d, scale: scale)
            #expect(alone.map(\.bitPattern) == grouped[(h * d)..<((h + 1) * d)].map(\.bitPattern), "head \(h)")
        }
    }
}
