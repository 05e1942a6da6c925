/// Attention of one decoding step's queries over the cached keys and values of their sequence, one
/// key/value head at a time. A step makes (rows × key/value heads × layers) of these, each over a
/// short span: OpenBLAS's sgemv (two calls per query head, on a cache laid out position-major) spent
/// more time per call on dispatch and strided reads than on the span's few thousand products.
///
/// Every output is computed with the same arithmetic whatever the batch, the other sequences or the
/// thread that runs it (as `StreamingGEMM`), so a sequence's samples do not depend on its batch.
public enum DecodeAttention {
    typealias V = Vector.V

    /// The query heads that share one key/value head (grouped-query attention), so each cached row is
    /// read once for all of them. q: (heads, d); keys, values: (span, d), contiguous (the cache is kept
    /// head-major for this: one head's rows stream from memory in order); scores: (heads, span) scratch;
    /// out: (heads, d), out_h = Σ_j softmax(scale · K q_h)_j V_j.
    public static func forward(queries q: UnsafePointer<Float>, heads: Int, keys: UnsafePointer<Float>,
                               values: UnsafePointer<Float>, span: Int, d: Int, scale: Float,
                               scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        precondition(span > 0 && d > 0 && heads > 0, "DecodeAttention: empty span, head or group")
        for j in 0..<span {
            let key = keys + j * d
            for h in 0..<heads { scores[h * span + j] = dot(q + h * d, key, d) * scale }
        }
        for h in 0..<heads { weightedValues(scores + h * span, values: values, span: span, d: d, out: out + h * d) }
    }

    /// out = Σ_j softmax(s)_j V_j for one head's scores s (overwritten with the unnormalised weights).
    @inline(__always)
    private static func weightedValues(_ scores: UnsafeMutablePointer<Float>, values: UnsafePointer<Float>, span: Int,
                                       d: Int, out: UnsafeMutablePointer<Float>) {
        // e_j = exp(s_j − max s); the sum divides the output once.
        let peak = Vector.max(UnsafePointer(scores), count: span)
        var lanes = V(), i = 0
        while i + 16 <= span {
            let e = Vector.exp(Vector.load(scores + i) - V(repeating: peak))
            Vector.store(e, scores + i)
            lanes += e
            i += 16
        }
        var total = lanes.sum()
        while i < span { let e = Vector.exp(scores[i] - peak); scores[i] = e; total += e; i += 1 }
        let inverse = 1 / total

        // 64 output dims per pass over the span (4 accumulators), then 16, then one at a time.
        var c = 0
        while c + 64 <= d {
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            for j in 0..<span {
                let p = V(repeating: scores[j]), v = values + j * d + c
                a0 += p * Vector.load(v); a1 += p * Vector.load(v + 16); a2 += p * Vector.load(v + 32); a3 += p * Vector.load(v + 48)
            }
            Vector.store(a0 * inverse, out + c); Vector.store(a1 * inverse, out + c + 16)
            Vector.store(a2 * inverse, out + c + 32); Vector.store(a3 * inverse, out + c + 48)
            c += 64
        }
        while c + 16 <= d {
            var a = V()
            for j in 0..<span { a += V(repeating: scores[j]) * Vector.load(values + j * d + c) }
            Vector.store(a * inverse, out + c)
            c += 16
        }
        while c < d {
            var a: Float = 0
            for j in 0..<span { a += scores[j] * values[j * d + c] }
            out[c] = a * inverse
            c += 1
        }
    }

    /// Σ a_i b_i: 16-lane partial sums in order, a halving tree over the lanes (4 adds; a sequential
    /// fold of 16 lanes made the sum cost more than the products at head sizes of 64), then the tail.
    @inline(__always)
    private static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = V(), i = 0
        while i + 16 <= count { acc += Vector.load(a + i) * Vector.load(b + i); i += 16 }
        let half = acc.lowHalf + acc.highHalf, quarter = half.lowHalf + half.highHalf
        let pair = quarter.lowHalf + quarter.highHalf
        var s = pair[0] + pair[1]
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }
}
