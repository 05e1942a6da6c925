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
        // Chunks of output rows (about 128 KB of W each, whole blocks of 4 rows for `singleRow`) that
        // this thread and the paired worker claim in turn, once the matrix is big enough to pay for it.
        var rowsPerChunk = outFeatures * k >= 1 << 16 ? max(4, (32_768 / max(k, 1)) & ~3) : outFeatures
        rowsPerChunk = max(rowsPerChunk, (outFeatures + PairedWorker.maxChunks - 1) / PairedWorker.maxChunks)
        let chunks = (outFeatures + rowsPerChunk - 1) / rowsPerChunk
        let xs = UInt(bitPattern: x), ws = UInt(bitPattern: weight), ys = UInt(bitPattern: y)
        let bs = bias.map { UInt(bitPattern: $0) }
        let body = { (chunk: Int) in
            let lo = chunk * rowsPerChunk, hi = min(outFeatures, lo + rowsPerChunk)
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
        if chunks == 1 { body(0) } else { PairedWorker.shared.run(chunks: chunks, body) }
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

    /// 2…8 input rows against each W row, in groups of at most 4 rows (one group's SIMD16 accumulators
    /// take 8 of the 16 AVX2 registers; 8 rows at once spilled to the stack). The W row stays in L1
    /// while the groups pass over it, so W is still read from memory once.
    @inline(__always)
    private static func block(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, rows n: Int, k: Int, outFeatures: Int, range: Range<Int>) {
        // Group sizes 2…4 (never 1: a lone row would run one latency-bound chain).
        let first = n == 5 || n == 6 ? 3 : min(n, 4)
        let second = n - first
        for o in range {
            let w = weight + o * k, b = bias?[o] ?? 0
            group(first, x: x, w: w, b: b, y: y + o, k: k, outFeatures: outFeatures)
            if second > 0 {
                group(second, x: x + first * k, w: w, b: b, y: y + first * outFeatures + o, k: k, outFeatures: outFeatures)
            }
        }
    }

    @inline(__always)
    private static func group(_ rows: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, b: Float,
                              y: UnsafeMutablePointer<Float>, k: Int, outFeatures: Int) {
        switch rows {
        case 4: rowGroup(4, x: x, w: w, b: b, y: y, k: k, outFeatures: outFeatures)
        case 3: rowGroup(3, x: x, w: w, b: b, y: y, k: k, outFeatures: outFeatures)
        default: rowGroup(2, x: x, w: w, b: b, y: y, k: k, outFeatures: outFeatures)
        }
    }

    /// `rows` (2…4, a constant after inlining) input rows against one W row; y points at row 0's output o.
    @inline(__always)
    private static func rowGroup(_ rows: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, b: Float,
                                 y: UnsafeMutablePointer<Float>, k: Int, outFeatures: Int) {
        let full = k & ~15
        let x1 = x + k, x2 = x1 + k, x3 = x2 + k
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var i = 0
        while i < full {
            let wv = load(w + i)
            a0 += wv * load(x + i)
            a1 += wv * load(x1 + i)
            if rows > 2 { a2 += wv * load(x2 + i) }
            if rows > 3 { a3 += wv * load(x3 + i) }
            i += 16
        }
        y[0] = finish(a0, w: w, x: x, full: full, k: k, bias: b)
        y[outFeatures] = finish(a1, w: w, x: x1, full: full, k: k, bias: b)
        if rows > 2 { y[2 * outFeatures] = finish(a2, w: w, x: x2, full: full, k: k, bias: b) }
        if rows > 3 { y[3 * outFeatures] = finish(a3, w: w, x: x3, full: full, k: k, bias: b) }
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
