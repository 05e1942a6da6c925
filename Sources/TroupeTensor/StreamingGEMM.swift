import CDecodeGEMM
import CPrefetch
import Foundation

/// y = x Wᵀ streamed over W, for decoding (few rows per call). sgemm packs W on every call, which costs
/// more than the product when there are few rows; this kernel reads each row of W once per block of up
/// to 8 input rows held in L1, so it runs at memory bandwidth.
///
/// Two things decide its speed when W streams from memory (measured here: AMD EPYC, 2 threads, 8 input
/// rows, 128 MB of W):
/// - Prefetching W `prefetchRows` rows ahead. The hardware prefetcher alone does not run far enough
///   ahead of a loop that also computes: the time was the sum of the memory time and the compute time
///   (36 GMAC/s), not the larger of the two (66–72 GMAC/s with the hint; one input row 10.6 → 13.2).
///   3 to 4 rows ahead was best, 8 and more lost part of the gain.
/// - Loads per multiply-add. Each W vector is used by 4 input rows and each input vector by 2 W rows
///   (a 4 × 2 tile of 8-lane accumulators, 8 of the 16 AVX2 registers): 6 loads per 8 vector
///   multiply-adds where 1 W row at a time took 10 per 8. With the prefetch, 66 → 79 GMAC/s.
/// - Input rows that stay in L1. 8 rows of an MLP's down projection (k = 1408: 45 KB) do not, next to
///   the streaming W; there the two groups of 4 rows pass over a chunk of W one after the other (the
///   second reads it from L2): 64 → 77 GMAC/s.
///
/// Every output element is computed with the same arithmetic whatever the number of rows, the tiling
/// or the thread split (8-lane partial sums over k in order, `laneSum`, the bias, then the k % 8 tail
/// in order), so a sequence's logits do not depend on which other sequences share its batch.
public enum StreamingGEMM {
    /// Fused multiply-add in the 8-lane sums and the tail (one rounding per step instead of two): a
    /// different arithmetic, so samples and log-probs change with it and no longer match runs made
    /// without it bit for bit. Off by default; `TROUPE_DECODE_FMA=1` in the environment turns it on
    /// at start, for measuring it (`troupe bench model`).
    nonisolated(unsafe) public static var fusedMultiplyAdd = ProcessInfo.processInfo.environment["TROUPE_DECODE_FMA"] == "1"

    /// Which code computes the products: both give the same bits.
    public enum Kernel: String, Sendable, CaseIterable {
        /// Swift SIMD8 on 256-bit registers (AVX2 on x86-64), for any CPU.
        case portable
        /// C on 512-bit registers, two input rows per register (`CDecodeGEMM`), where the CPU has
        /// AVX-512F and DQ; the separately rounded arithmetic only (`fused` runs the portable kernel).
        case avx512

        public var isAvailable: Bool { self == .portable || Self.wideHardware }
        private static let wideHardware = troupe_decode_wide_hardware() == 1
    }

    /// The kernel `forward` uses: AVX-512 where the CPU has it, unless `TROUPE_DECODE_KERNEL=portable`
    /// is set at start (for measuring one against the other; `troupe bench model`).
    public static let kernel: Kernel =
        ProcessInfo.processInfo.environment["TROUPE_DECODE_KERNEL"] == Kernel.portable.rawValue || !Kernel.avx512.isAvailable
        ? .portable : .avx512

    /// x: (n, k), W: (out, k) → y: (n, out) (+ bias). `fused` picks the arithmetic (see `fusedMultiplyAdd`).
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, n: Int, inFeatures k: Int, outFeatures: Int,
                               fused: Bool = fusedMultiplyAdd, kernel: Kernel = kernel) {
        if n == 0 || outFeatures == 0 { return }
        // Chunks of output rows (about 128 KB of W each, whole blocks of 4 rows for `singleRow` and of 2
        // for the tiles) that this thread and the paired worker claim in turn, once the matrix is big
        // enough to pay for it.
        var rowsPerChunk = outFeatures * k >= 1 << 16 ? max(4, (32_768 / max(k, 1)) & ~3) : outFeatures
        rowsPerChunk = max(rowsPerChunk, (outFeatures + PairedWorker.maxChunks - 1) / PairedWorker.maxChunks)
        let chunks = (outFeatures + rowsPerChunk - 1) / rowsPerChunk
        let xs = UInt(bitPattern: x), ws = UInt(bitPattern: weight), ys = UInt(bitPattern: y)
        let bs = bias.map { UInt(bitPattern: $0) }
        // One input row streams W at memory speed in either kernel; the wide one pays from two rows.
        let wide = kernel == .avx512 && !fused && n >= 2 && kernel.isAvailable
        let ps = wide ? troupe_decode_pack(x, n, k).map { UInt(bitPattern: $0) } : nil
        let body = { (chunk: Int, _: Int) in
            let lo = chunk * rowsPerChunk, hi = min(outFeatures, lo + rowsPerChunk)
            guard lo < hi else { return }
            let x = UnsafePointer<Float>(bitPattern: xs)!, w = UnsafePointer<Float>(bitPattern: ws)!
            let y = UnsafeMutablePointer<Float>(bitPattern: ys)!, b = bs.flatMap { UnsafePointer<Float>(bitPattern: $0) }
            if let ps {
                troupe_decode_rows(UnsafePointer<Float>(bitPattern: ps), x, n, k, w, b, y, outFeatures, lo, hi, 1)
                return
            }
            let m = Matrix(x: x, weight: w, bias: b, y: y, k: k, outFeatures: outFeatures)
            if fused {
                allRows(m, n: n, range: lo..<hi, FusedRounding.self)
            } else {
                allRows(m, n: n, range: lo..<hi, SeparateRounding.self)
            }
        }
        if chunks == 1 { body(0, 0) } else { PairedWorker.shared.run(chunks: chunks, body) }
    }

    typealias V = SIMD8<Float>

    /// How far ahead of the W row being read the loops prefetch, in W rows.
    static let prefetchRows = 4

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
        var full: Int { k & ~7 }

        /// The rows from `row` on, as a matrix of their own.
        func dropping(rows row: Int) -> Matrix {
            Matrix(x: x + row * k, weight: weight, bias: bias, y: y + row * outFeatures, k: k, outFeatures: outFeatures)
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    /// The 8 lanes added as a halving tree: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
    @inline(__always)
    public static func laneSum(_ a: SIMD8<Float>) -> Float {
        let half = a.lowHalf + a.highHalf, quarter = half.lowHalf + half.highHalf
        return quarter[0] + quarter[1]
    }

    /// An output element is finished with the lane sum, the bias, then the k % 8 tail in order.
    @inline(__always)
    private static func finish<A: MultiplyAdd>(_ acc: V, w: UnsafePointer<Float>, x: UnsafePointer<Float>, full: Int, k: Int,
                                               bias: Float, _: A.Type) -> Float {
        var s = laneSum(acc) + bias
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

    /// 2…8 input rows in one or two groups (G2 may be `NoRows`) of at most 4, against the W rows in
    /// `range` two at a time. Both groups pass over a pair of W rows while it is in L1, so W is still
    /// read from memory once.
    private static func block<G1: RowCount, G2: RowCount, A: MultiplyAdd>(_ m: Matrix, range: Range<Int>, _ g1: G1.Type,
                                                                          _ g2: G2.Type, _ a: A.Type) {
        let second = m.dropping(rows: G1.rows), ahead = prefetchRows * m.k
        if G2.rows > 0 && (G1.rows + G2.rows) * m.k * MemoryLayout<Float>.size > inputBytesInL1 {
            // The input rows would not stay in L1 next to the streaming W (8 rows of an MLP's down
            // projection, k = 1408: 45 KB): each group passes over the whole range on its own, the
            // second reading W from L2 (a chunk is about 128 KB).
            pairs(m, range: range, prefetch: ahead, g1, a)
            pairs(second, range: range, prefetch: 0, g2, a)
            return
        }
        var o = range.lowerBound
        while o + 2 <= range.upperBound {
            // Only the first group prefetches: the second reads the same W rows, now in L1.
            tile(m, o: o, prefetch: ahead, g1, a)
            if G2.rows > 0 { tile(second, o: o, prefetch: 0, g2, a) }
            o += 2
        }
        if o < range.upperBound {
            lastRow(m, o: o, g1, a)
            if G2.rows > 0 { lastRow(second, o: o, g2, a) }
        }
    }

    /// Above this many bytes of input rows, `block` runs its two groups one after the other.
    static let inputBytesInL1 = 24 << 10

    /// One group of input rows against the W rows in `range`, two at a time.
    private static func pairs<G: RowCount, A: MultiplyAdd>(_ m: Matrix, range: Range<Int>, prefetch: Int, _ g: G.Type,
                                                           _ a: A.Type) {
        var o = range.lowerBound
        while o + 2 <= range.upperBound {
            tile(m, o: o, prefetch: prefetch, g, a)
            o += 2
        }
        if o < range.upperBound { lastRow(m, o: o, g, a) }
    }

    /// G.rows input rows against W rows o and o + 1, prefetching W `prefetch` floats ahead (0: none).
    @inline(__always)
    private static func tile<G: RowCount, A: MultiplyAdd>(_ m: Matrix, o: Int, prefetch: Int, _: G.Type, _: A.Type) {
        let k = m.k, full = m.full, rows = G.rows
        let w = m.weight + o * k, v = w + k
        let x0 = m.x, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var b0 = V(), b1 = V(), b2 = V(), b3 = V()
        var i = 0
        while i < full {
            // One hint per 64-byte line of each W row (every other 8-float step).
            if prefetch > 0 && i & 15 == 0 { troupe_prefetch(w + i + prefetch); troupe_prefetch(v + i + prefetch) }
            let wv = load(w + i), vv = load(v + i)
            var xv = load(x0 + i)
            A.accumulate(&a0, wv, xv); A.accumulate(&b0, vv, xv)
            xv = load(x1 + i)
            A.accumulate(&a1, wv, xv); A.accumulate(&b1, vv, xv)
            if rows > 2 { xv = load(x2 + i); A.accumulate(&a2, wv, xv); A.accumulate(&b2, vv, xv) }
            if rows > 3 { xv = load(x3 + i); A.accumulate(&a3, wv, xv); A.accumulate(&b3, vv, xv) }
            i += 8
        }
        let biasW = m.bias?[o] ?? 0, biasV = m.bias?[o + 1] ?? 0
        let y = m.y + o, stride = m.outFeatures
        y[0] = finish(a0, w: w, x: x0, full: full, k: k, bias: biasW, A.self)
        y[1] = finish(b0, w: v, x: x0, full: full, k: k, bias: biasV, A.self)
        y[stride] = finish(a1, w: w, x: x1, full: full, k: k, bias: biasW, A.self)
        y[stride + 1] = finish(b1, w: v, x: x1, full: full, k: k, bias: biasV, A.self)
        if rows > 2 {
            y[2 * stride] = finish(a2, w: w, x: x2, full: full, k: k, bias: biasW, A.self)
            y[2 * stride + 1] = finish(b2, w: v, x: x2, full: full, k: k, bias: biasV, A.self)
        }
        if rows > 3 {
            y[3 * stride] = finish(a3, w: w, x: x3, full: full, k: k, bias: biasW, A.self)
            y[3 * stride + 1] = finish(b3, w: v, x: x3, full: full, k: k, bias: biasV, A.self)
        }
    }

    /// G.rows input rows against the one W row o left over by the pairs.
    @inline(__always)
    private static func lastRow<G: RowCount, A: MultiplyAdd>(_ m: Matrix, o: Int, _: G.Type, _: A.Type) {
        let k = m.k, full = m.full, rows = G.rows
        let w = m.weight + o * k
        let x0 = m.x, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var i = 0
        while i < full {
            let wv = load(w + i)
            A.accumulate(&a0, wv, load(x0 + i))
            A.accumulate(&a1, wv, load(x1 + i))
            if rows > 2 { A.accumulate(&a2, wv, load(x2 + i)) }
            if rows > 3 { A.accumulate(&a3, wv, load(x3 + i)) }
            i += 8
        }
        let b = m.bias?[o] ?? 0, y = m.y + o, stride = m.outFeatures
        y[0] = finish(a0, w: w, x: x0, full: full, k: k, bias: b, A.self)
        y[stride] = finish(a1, w: w, x: x1, full: full, k: k, bias: b, A.self)
        if rows > 2 { y[2 * stride] = finish(a2, w: w, x: x2, full: full, k: k, bias: b, A.self) }
        if rows > 3 { y[3 * stride] = finish(a3, w: w, x: x3, full: full, k: k, bias: b, A.self) }
    }

    /// One input row: four W rows at a time for independent accumulation chains.
    private static func singleRow<A: MultiplyAdd>(_ m: Matrix, range: Range<Int>, _: A.Type) {
        let k = m.k, full = m.full, x = m.x, y = m.y, bias = m.bias, ahead = prefetchRows * k
        var o = range.lowerBound
        while o + 4 <= range.upperBound {
            let w0 = m.weight + o * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var i = 0
            while i < full {
                if i & 15 == 0 {
                    troupe_prefetch(w0 + i + ahead)
                    troupe_prefetch(w1 + i + ahead)
                    troupe_prefetch(w2 + i + ahead)
                    troupe_prefetch(w3 + i + ahead)
                }
                let xv = load(x + i)
                A.accumulate(&a0, load(w0 + i), xv)
                A.accumulate(&a1, load(w1 + i), xv)
                A.accumulate(&a2, load(w2 + i), xv)
                A.accumulate(&a3, load(w3 + i), xv)
                i += 8
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
            while i < full { A.accumulate(&a, load(w + i), load(x + i)); i += 8 }
            y[o] = finish(a, w: w, x: x, full: full, k: k, bias: bias?[o] ?? 0, A.self)
            o += 1
        }
    }
}
