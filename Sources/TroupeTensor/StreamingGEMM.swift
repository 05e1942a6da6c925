import Dispatch

/// y = x Wᵀ streamed over W, for decoding (few rows per call). sgemm packs W on every call, which costs
/// more than the product when there are few rows; this kernel reads each row of W once per block of up
/// to 8 input rows held in L1, so it runs at memory bandwidth.
///
/// Every output element is computed with the same arithmetic whatever the number of rows, the blocking
/// or the thread split (16-lane partial sums over k in order, a lane sum, then the scalar tail), so a
/// sequence's logits do not depend on which other sequences share its batch.
public enum StreamingGEMM {
    /// x: (n, k), W: (out, k) → y: (n, out) (+ bias).
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, n: Int, inFeatures k: Int, outFeatures: Int) {
        if n == 0 || outFeatures == 0 { return }
        // Two halves of the output rows in parallel once the matrix is big enough to pay for the hand-off.
        let parts = outFeatures * k >= 1 << 16 ? 2 : 1
        let chunk = (outFeatures + parts - 1) / parts
        let xs = UInt(bitPattern: x), ws = UInt(bitPattern: weight), ys = UInt(bitPattern: y)
        let bs = bias.map { UInt(bitPattern: $0) }
        let body = { (part: Int) in
            let lo = part * chunk, hi = min(outFeatures, lo + chunk)
            guard lo < hi else { return }
            let x = UnsafePointer<Float>(bitPattern: xs)!, w = UnsafePointer<Float>(bitPattern: ws)!
            let y = UnsafeMutablePointer<Float>(bitPattern: ys)!, b = bs.flatMap { UnsafePointer<Float>(bitPattern: $0) }
            var r = 0
            while r < n {
                let rows = min(8, n - r)
                if rows == 1 {
                    singleRow(x: x + r * k, weight: w, bias: b, y: y + r * outFeatures, k: k, range: lo..<hi)
                } else {
                    block(x: x + r * k, weight: w, bias: b, y: y + r * outFeatures, rows: rows, k: k,
                          outFeatures: outFeatures, range: lo..<hi)
                }
                r += rows
            }
        }
        if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
    }

    typealias V = SIMD16<Float>

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    /// The one place an output element is finished: lane sum, bias, then the k % 16 tail in order.
    @inline(__always)
    private static func finish(_ acc: V, w: UnsafePointer<Float>, x: UnsafePointer<Float>, full: Int, k: Int, bias: Float) -> Float {
        var s = acc.sum() + bias
        var j = full
        while j < k { s += w[j] * x[j]; j += 1 }
        return s
    }

    /// 2…8 input rows against each W row: one pass over W serves them all.
    @inline(__always)
    private static func block(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, rows n: Int, k: Int, outFeatures: Int, range: Range<Int>) {
        let full = k & ~15
        for o in range {
            let w = weight + o * k
            var a0 = V(), a1 = V(), a2 = V(), a3 = V(), a4 = V(), a5 = V(), a6 = V(), a7 = V()
            var i = 0
            while i < full {
                let wv = load(w + i)
                a0 += wv * load(x + i)
                a1 += wv * load(x + k + i)
                if n > 2 { a2 += wv * load(x + 2 * k + i) }
                if n > 3 { a3 += wv * load(x + 3 * k + i) }
                if n > 4 { a4 += wv * load(x + 4 * k + i) }
                if n > 5 { a5 += wv * load(x + 5 * k + i) }
                if n > 6 { a6 += wv * load(x + 6 * k + i) }
                if n > 7 { a7 += wv * load(x + 7 * k + i) }
                i += 16
            }
            let b = bias?[o] ?? 0
            @inline(__always) func put(_ r: Int, _ a: V) {
                y[r * outFeatures + o] = finish(a, w: w, x: x + r * k, full: full, k: k, bias: b)
            }
            put(0, a0); put(1, a1)
            if n > 2 { put(2, a2) }
            if n > 3 { put(3, a3) }
            if n > 4 { put(4, a4) }
            if n > 5 { put(5, a5) }
            if n > 6 { put(6, a6) }
            if n > 7 { put(7, a7) }
        }
    }

    /// One input row: four W rows at a time for independent accumulation chains.
    @inline(__always)
    private static func singleRow(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                  y: UnsafeMutablePointer<Float>, k: Int, range: Range<Int>) {
        let full = k & ~15
        var o = range.lowerBound
        while o + 4 <= range.upperBound {
            let w0 = weight + o * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var i = 0
            while i < full {
                let xv = load(x + i)
                a0 += load(w0 + i) * xv
                a1 += load(w1 + i) * xv
                a2 += load(w2 + i) * xv
                a3 += load(w3 + i) * xv
                i += 16
            }
            y[o] = finish(a0, w: w0, x: x, full: full, k: k, bias: bias?[o] ?? 0)
            y[o + 1] = finish(a1, w: w1, x: x, full: full, k: k, bias: bias?[o + 1] ?? 0)
            y[o + 2] = finish(a2, w: w2, x: x, full: full, k: k, bias: bias?[o + 2] ?? 0)
            y[o + 3] = finish(a3, w: w3, x: x, full: full, k: k, bias: bias?[o + 3] ?? 0)
            o += 4
        }
        while o < range.upperBound {
            let w = weight + o * k
            var a = V(), i = 0
            while i < full { a += load(w + i) * load(x + i); i += 16 }
            y[o] = finish(a, w: w, x: x, full: full, k: k, bias: bias?[o] ?? 0)
            o += 1
        }
    }
}
