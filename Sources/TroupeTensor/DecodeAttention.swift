/// Attention of one decoding step's queries over the cached keys and values of their sequence, one
/// key/value head at a time. A step makes (rows × key/value heads × layers) of these, each over a
/// short span: OpenBLAS's sgemv (two calls per query head, on a cache laid out position-major) spent
/// more time per call on dispatch and strided reads than on the span's few thousand products, and a
/// dot product per position spent more on adding its lanes than on multiplying. Keys are cached
/// transposed instead, so a vector holds 8 positions' partial scores.
///
/// Every output is computed with the same arithmetic whatever the batch, the other sequences or the
/// thread that runs it (as `StreamingGEMM`), so a sequence's samples do not depend on its batch.
public enum DecodeAttention {
    typealias V = Vector.V

    /// The query heads that share one key/value head (grouped-query attention), so each cached key is
    /// read once for all of them. q: (heads, d); keys: (d, stride), transposed (dimension-major: one
    /// dimension's values over the positions, `stride` ≥ span floats apart); values: (span, d); scores:
    /// (heads, span) scratch; out: (heads, d), out_h = Σ_j softmax(scale · K q_h)_j V_j.
    public static func forward(queries q: UnsafePointer<Float>, heads: Int, keysTransposed keys: UnsafePointer<Float>,
                               stride: Int, values: UnsafePointer<Float>, span: Int, d: Int, scale: Float,
                               scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        precondition(span > 0 && d > 0 && heads > 0 && stride >= span, "DecodeAttention: empty span, head or group")
        var h = 0
        while h < heads {
            // Two query heads per pass over the keys (a lone last head is computed twice into one row).
            let second = min(h + 1, heads - 1)
            keyScores(q + h * d, q + second * d, keys: keys, stride: stride, span: span, d: d, scale: scale,
                      into: scores + h * span, scores + second * span)
            h += 2
        }
        for h in 0..<heads { weightedValues(scores + h * span, values: values, span: span, d: d, out: out + h * d) }
    }

    /// One stretch of a sequence's cached keys and values, in one cache region: keys (d, stride)
    /// transposed, values (span, d). A sequence that shares a prefix with others (a serial exit, a tree
    /// branch) reads the prefix's regions, then its own.
    public struct Segment {
        public var keys: UnsafePointer<Float>
        public var stride: Int
        public var values: UnsafePointer<Float>
        public var span: Int
        public init(keys: UnsafePointer<Float>, stride: Int, values: UnsafePointer<Float>, span: Int) {
            self.keys = keys
            self.stride = stride
            self.values = values
            self.span = span
        }
    }

    /// `forward` over positions held in `segments`, in order. Each position's score, the softmax and
    /// the weighted sum run the same operations in the same order as over one region holding them all,
    /// so the result is bit for bit the contiguous one. scores: (heads, Σ span) scratch.
    public static func forward(queries q: UnsafePointer<Float>, heads: Int, segments: [Segment], d: Int, scale: Float,
                               scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let span = segments.reduce(0) { $0 + $1.span }
        precondition(span > 0 && d > 0 && heads > 0 && segments.allSatisfy { $0.stride >= $0.span && $0.span >= 0 },
                     "DecodeAttention: empty span, head or group")
        var h = 0
        while h < heads {
            let second = min(h + 1, heads - 1)
            var offset = 0
            for segment in segments where segment.span > 0 {
                keyScores(q + h * d, q + second * d, keys: segment.keys, stride: segment.stride, span: segment.span, d: d, scale: scale,
                          into: scores + h * span + offset, scores + second * span + offset)
                offset += segment.span
            }
            h += 2
        }
        for h in 0..<heads { weightedValues(scores + h * span, segments: segments, span: span, d: d, out: out + h * d) }
    }

    /// `weightedValues` with the values in `segments`: the same sums in the same order.
    @inline(__always)
    private static func weightedValues(_ scores: UnsafeMutablePointer<Float>, segments: [Segment], span: Int,
                                       d: Int, out: UnsafeMutablePointer<Float>) {
        let inverse = exponentiate(scores, span: span)
        var c = 0
        while c + 64 <= d {
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var j0 = 0
            for segment in segments {
                for j in 0..<segment.span {
                    let p = V(repeating: scores[j0 + j]), v = segment.values + j * d + c
                    a0 += p * Vector.load(v); a1 += p * Vector.load(v + 16); a2 += p * Vector.load(v + 32); a3 += p * Vector.load(v + 48)
                }
                j0 += segment.span
            }
            Vector.store(a0 * inverse, out + c); Vector.store(a1 * inverse, out + c + 16)
            Vector.store(a2 * inverse, out + c + 32); Vector.store(a3 * inverse, out + c + 48)
            c += 64
        }
        while c + 16 <= d {
            var a = V(), j0 = 0
            for segment in segments {
                for j in 0..<segment.span { a += V(repeating: scores[j0 + j]) * Vector.load(segment.values + j * d + c) }
                j0 += segment.span
            }
            Vector.store(a * inverse, out + c)
            c += 16
        }
        while c < d {
            var a: Float = 0, j0 = 0
            for segment in segments {
                for j in 0..<segment.span { a += scores[j0 + j] * segment.values[j * d + c] }
                j0 += segment.span
            }
            out[c] = a * inverse
            c += 1
        }
    }

    typealias U = SIMD8<Float>

    /// s_j = scale · Σ_c q[c] K[c][j] for two queries, c in order: each lane (one position) and the
    /// scalar tail run the same sequence of rounded products and sums. 16 positions per pass, so one
    /// load of a key row feeds four multiply-adds.
    @inline(__always)
    private static func keyScores(_ q0: UnsafePointer<Float>, _ q1: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                                  stride: Int, span: Int, d: Int, scale: Float,
                                  into s0: UnsafeMutablePointer<Float>, _ s1: UnsafeMutablePointer<Float>) {
        var j = 0
        while j + 16 <= span {
            var a0 = U(), a1 = U(), b0 = U(), b1 = U()
            for c in 0..<d {
                let row = keys + c * stride + j
                let k0 = load8(row), k1 = load8(row + 8)
                let x = U(repeating: q0[c]), y = U(repeating: q1[c])
                a0 += x * k0; a1 += x * k1
                b0 += y * k0; b1 += y * k1
            }
            store8(a0 * scale, s0 + j); store8(a1 * scale, s0 + j + 8)
            store8(b0 * scale, s1 + j); store8(b1 * scale, s1 + j + 8)
            j += 16
        }
        while j < span {
            var a: Float = 0, b: Float = 0
            for c in 0..<d {
                let k = keys[c * stride + j]
                a += q0[c] * k
                b += q1[c] * k
            }
            s0[j] = a * scale
            s1[j] = b * scale
            j += 1
        }
    }

    @inline(__always)
    private static func load8(_ p: UnsafePointer<Float>) -> U { UnsafeRawPointer(p).loadUnaligned(as: U.self) }

    @inline(__always)
    private static func store8(_ v: U, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: U.self) }

    /// e_j = exp(s_j − max s) in place of the scores; returns 1 / Σ e_j, by which the output is divided once.
    @inline(__always)
    private static func exponentiate(_ scores: UnsafeMutablePointer<Float>, span: Int) -> Float {
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
        return 1 / total
    }

    /// out = Σ_j softmax(s)_j V_j for one head's scores s (overwritten with the unnormalised weights).
    @inline(__always)
    private static func weightedValues(_ scores: UnsafeMutablePointer<Float>, values: UnsafePointer<Float>, span: Int,
                                       d: Int, out: UnsafeMutablePointer<Float>) {
        let inverse = exponentiate(scores, span: span)

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
}
