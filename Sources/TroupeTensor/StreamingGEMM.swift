import Foundation

/// y = x Wᵀ streamed over W, for decoding (few rows per call). sgemm packs W on every call, which costs
/// more than the product when there are few rows; this kernel reads each row of W once per block of up
/// to 8 input rows held in L1, so it runs at memory bandwidth.
///
/// Every output element is computed with the same arithmetic whatever the number of rows, the blocking
/// or the thread split (16-lane partial sums over k in order, a lane sum, then the scalar tail), so a
/// sequence's logits do not depend on which other sequences share its batch.
public enum StreamingGEMM {
    /// Fused multiply-add in the 16-lane sums and the tail (one rounding per step instead of two): a
    /// different arithmetic, so samples and log-probs change with it and no longer match runs made
    /// without it bit for bit. Off by default; `TROUPE_DECODE_FMA=1` in the environment turns it on
    /// at start, for measuring it (`troupe bench model`).
    nonisolated(unsafe) public static var fusedMultiplyAdd = ProcessInfo.processInfo.environment["TROUPE_DECODE_FMA"] == "1"

    /// x: (n, k), W: (out, k) → y: (n, out) (+ bias). `fused` picks the arithmetic (see `fusedMultiplyAdd`).
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, n: Int, inFeatures k: Int, outFeatures: Int,
                               fused: Bool = fusedMultiplyAdd) {
        if n == 0 || outFeatures == 0 { return }
        // Chunks of output rows (about 128 KB of W each, whole blocks of 4 rows for `singleRow`) that
        // this thread and the paired worker claim in turn, once the matrix is big enough to pay for it.
        var rowsPerChunk = outFeatures * k >= 1 << 16 ? max(4, (32_768 / max(k, 1)) & ~3) : outFeatures
        rowsPerChunk = max(rowsPerChunk, (outFeatures + PairedWorker.maxChunks - 1) / PairedWorker.maxChunks)
        let chunks = (outFeatures + rowsPerChunk - 1) / rowsPerChunk
        let xs = UInt(bitPattern: x), ws = UInt(bitPattern: weight), ys = UInt(bitPattern: y)
        let bs = bias.map { UInt(bitPattern: $0) }
        let body = { (chunk: Int, _: Int) in
            let lo = chunk * rowsPerChunk, hi = min(outFeatures, lo + rowsPerChunk)
            guard lo < hi else { return }
            let x = UnsafePointer<Float>(bitPattern: xs)!, w = UnsafePointer<Float>(bitPattern: ws)!
            let y = UnsafeMutablePointer<Float>(bitPattern: ys)!, b = bs.flatMap { UnsafePointer<Float>(bitPattern: $0) }
            let m = Matrix(x: x, weight: w, bias: b, y: y, k: k, outFeatures: outFeatures)
            if fused {
                allRows(m, n: n, range: lo..<hi, FusedRounding.self)
            } else {
                allRows(m, n: n, range: lo..<hi, SeparateRounding.self)
            }
        }
        if chunks == 1 { body(0, 0) } else { PairedWorker.shared.run(chunks: chunks, body) }
    }

    typealias V = SIMD16<Float>

    /// The arithmetic of one multiply-accumulate step. The kernels are generic over it (and over their
    /// row counts) so that each specialisation has it fixed at compile time: no test in the inner loops.
    protocol MultiplyAdd {
        static func accumulate(_ a: inout V, _ u: V, _ v: V)
        static func accumulate(_ s: inout Float, _ u: Float, _ v: Float)
    }

    /// Rounded product, then rounded sum: the decoding arithmetic the main job's results depend on.
    enum SeparateRounding: MultiplyAdd {
        @inline(__always) static func accumulate(_ a: inout V, _ u: V, _ v: V) { a += u * v }
        @inline(__always) static func accumulate(_ s: inout Float, _ u: Float, _ v: Float) { s += u * v }
    }

    /// One rounding per step (`fusedMultiplyAdd`).
    enum FusedRounding: MultiplyAdd {
        @inline(__always) static func accumulate(_ a: inout V, _ u: V, _ v: V) { a.addProduct(u, v) }
        @inline(__always) static func accumulate(_ s: inout Float, _ u: Float, _ v: Float) { s.addProduct(u, v) }
    }

    protocol RowCount { static var rows: Int { get } }
    enum NoRows: RowCount { static var rows: Int { 0 } }
    enum TwoRows: RowCount { static var rows: Int { 2 } }
    enum ThreeRows: RowCount { static var rows: Int { 3 } }
    enum FourRows: RowCount { static var rows: Int { 4 } }

    struct Matrix {
        let x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?
        let y: UnsafeMutablePointer<Float>
        let k: Int, outFeatures: Int
        var full: Int { k & ~15 }

        /// The rows from `row` on, as a matrix of their own.
        func dropping(rows row: Int) -> Matrix {
            Matrix(x: x + row * k, weight: weight, bias: bias, y: y + row * outFeatures, k: k, outFeatures: outFeatures)
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    /// An output element is finished with the lane sum, the bias, then the k % 16 tail in order.
    @inline(__always)
    private static func finish<A: MultiplyAdd>(_ acc: V, w: UnsafePointer<Float>, x: UnsafePointer<Float>, full: Int, k: Int,
                                               bias: Float, _ a: A.Type) -> Float {
        tail(acc.sum() + bias, w: w, x: x, full: full, k: k, a)
    }

    /// Four accumulators' lane sums side by side: lane r adds accumulator r's 16 lanes in order, one
    /// vector add per lane index, which is exactly `.sum()` (a sequential fold) for each of them.
    @inline(__always)
    private static func laneSums(_ a0: V, _ a1: V, _ a2: V, _ a3: V) -> SIMD4<Float> {
        var accumulators = (a0, a1, a2, a3)
        return withUnsafeBytes(of: &accumulators) { raw -> SIMD4<Float> in
            let f = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            var s = SIMD4<Float>(f[0], f[16], f[32], f[48])
            for l in 1..<16 { s += SIMD4<Float>(f[l], f[16 + l], f[32 + l], f[48 + l]) }
            return s
        }
    }

    @inline(__always)
    private static func tail<A: MultiplyAdd>(_ start: Float, w: UnsafePointer<Float>, x: UnsafePointer<Float>, full: Int, k: Int,
                                             _: A.Type) -> Float {
        var s = start
        var j = full
        while j < k { A.accumulate(&s, w[j], x[j]); j += 1 }
        return s
    }

    /// All n input rows against the W rows in `range`, in blocks of up to 8 input rows.
    private static func allRows<A: MultiplyAdd>(_ m: Matrix, n: Int, range: Range<Int>, _ a: A.Type) {
        var r = 0
        while r < n {
            let rows = min(8, n - r)
            let part = m.dropping(rows: r)
            switch rows {
            case 1: singleRow(part, range: range, a)
            // Groups of 2…4 rows (never 1: a lone row would run one latency-bound chain).
            case 2: block(part, range: range, TwoRows.self, NoRows.self, a)
            case 3: block(part, range: range, ThreeRows.self, NoRows.self, a)
            case 4: block(part, range: range, FourRows.self, NoRows.self, a)
            case 5: block(part, range: range, ThreeRows.self, TwoRows.self, a)
            case 6: block(part, range: range, ThreeRows.self, ThreeRows.self, a)
            case 7: block(part, range: range, FourRows.self, ThreeRows.self, a)
            default: block(part, range: range, FourRows.self, FourRows.self, a)
            }
            r += rows
        }
    }

    /// 2…8 input rows against each W row, in one or two groups (G2 may be `NoRows`) of at most 4 rows (one group's SIMD16
    /// accumulators take 8 of the 16 AVX2 registers; 8 rows at once spilled to the stack). The W row
    /// stays in L1 while the groups pass over it, so W is still read from memory once.
    private static func block<G1: RowCount, G2: RowCount, A: MultiplyAdd>(_ m: Matrix, range: Range<Int>, _ g1: G1.Type,
                                                                          _ g2: G2.Type, _ a: A.Type) {
        let second = m.dropping(rows: G1.rows)
        for o in range {
            rowGroup(m, o: o, g1, a)
            if G2.rows > 0 { rowGroup(second, o: o, g2, a) }
        }
    }

    /// G.rows input rows against W row o.
    @inline(__always)
    private static func rowGroup<G: RowCount, A: MultiplyAdd>(_ m: Matrix, o: Int, _: G.Type, _: A.Type) {
        let k = m.k, full = m.full, rows = G.rows
        let w = m.weight + o * k, b = m.bias?[o] ?? 0
        let x0 = m.x, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var i = 0
        while i < full {
            let wv = load(w + i)
            A.accumulate(&a0, wv, load(x0 + i))
            A.accumulate(&a1, wv, load(x1 + i))
            if rows > 2 { A.accumulate(&a2, wv, load(x2 + i)) }
            if rows > 3 { A.accumulate(&a3, wv, load(x3 + i)) }
            i += 16
        }
        let sums = laneSums(a0, a1, a2, a3)
        let y = m.y + o, stride = m.outFeatures
        y[0] = tail(sums[0] + b, w: w, x: x0, full: full, k: k, A.self)
        y[stride] = tail(sums[1] + b, w: w, x: x1, full: full, k: k, A.self)
        if rows > 2 { y[2 * stride] = tail(sums[2] + b, w: w, x: x2, full: full, k: k, A.self) }
        if rows > 3 { y[3 * stride] = tail(sums[3] + b, w: w, x: x3, full: full, k: k, A.self) }
    }

    /// One input row: four W rows at a time for independent accumulation chains.
    private static func singleRow<A: MultiplyAdd>(_ m: Matrix, range: Range<Int>, _: A.Type) {
        let k = m.k, full = m.full, x = m.x, y = m.y, bias = m.bias
        var o = range.lowerBound
        while o + 4 <= range.upperBound {
            let w0 = m.weight + o * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var i = 0
            while i < full {
                let xv = load(x + i)
                A.accumulate(&a0, load(w0 + i), xv)
                A.accumulate(&a1, load(w1 + i), xv)
                A.accumulate(&a2, load(w2 + i), xv)
                A.accumulate(&a3, load(w3 + i), xv)
                i += 16
            }
            y[o] = finish(a0, w: w0, x: x, full: full, k: k, bias: bias?[o] ?? 0, A.self)
            y[o + 1] = finish(a1, w: w1, x: x, full: full, k: k, bias: bias?[o + 1] ?? 0, A.self)
            y[o + 2] = finish(a2, w: w2, x: x, full: full, k: k, bias: bias?[o + 2] ?? 0, A.self)
            y[o + 3] = finish(a3, w: w3, x: x, full: full, k: k, bias: bias?[o + 3] ?? 0, A.self)
            o += 4
        }
        while o < range.upperBound {
            let w = m.weight + o * k
            var a = V(), i = 0
            while i < full { A.accumulate(&a, load(w + i), load(x + i)); i += 16 }
            y[o] = finish(a, w: w, x: x, full: full, k: k, bias: bias?[o] ?? 0, A.self)
            o += 1
        }
    }
}
