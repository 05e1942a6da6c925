import Dispatch

/// y = x Wᵀ for a handful of rows (decoding a batch of sequences one token at a time). sgemm packs W
/// on every call, which costs more than the product when there are few rows; this kernel streams each
/// row of W once and reuses it for every input row held in L1, so it runs at memory bandwidth.
public enum SmallBatchGEMM {
    /// Largest row count the kernel handles; more rows go to sgemm.
    public static let maxRows = 8

    /// x: (n, k), W: (out, k) → y: (n, out) (+ bias). n ≤ maxRows.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, n: Int, inFeatures k: Int, outFeatures: Int) {
        precondition(n <= maxRows)
        // Two halves of the output rows in parallel once the matrix is big enough to pay for the hand-off.
        let parts = outFeatures * k >= 1 << 16 ? 2 : 1
        let chunk = (outFeatures + parts - 1) / parts
        let xs = UInt(bitPattern: x), ws = UInt(bitPattern: weight), ys = UInt(bitPattern: y)
        let bs = bias.map { UInt(bitPattern: $0) }
        let body = { (part: Int) in
            let lo = part * chunk, hi = min(outFeatures, lo + chunk)
            if lo < hi {
                rows(x: UnsafePointer(bitPattern: xs)!, weight: UnsafePointer(bitPattern: ws)!,
                     bias: bs.flatMap { UnsafePointer(bitPattern: $0) }, y: UnsafeMutablePointer(bitPattern: ys)!,
                     n: n, k: k, outFeatures: outFeatures, range: lo..<hi)
            }
        }
        if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
    }

    @inline(__always)
    private static func rows(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                             y: UnsafeMutablePointer<Float>, n: Int, k: Int, outFeatures: Int, range: Range<Int>) {
        typealias V = SIMD16<Float>
        let full = k & ~15
        for o in range {
            let w = weight + o * k
            var acc = (V(), V(), V(), V(), V(), V(), V(), V())
            var i = 0
            while i < full {
                let wv = UnsafeRawPointer(w + i).loadUnaligned(as: V.self)
                @inline(__always) func xv(_ r: Int) -> V { UnsafeRawPointer(x + r * k + i).loadUnaligned(as: V.self) }
                acc.0 += wv * xv(0)
                if n > 1 { acc.1 += wv * xv(1) }
                if n > 2 { acc.2 += wv * xv(2) }
                if n > 3 { acc.3 += wv * xv(3) }
                if n > 4 { acc.4 += wv * xv(4) }
                if n > 5 { acc.5 += wv * xv(5) }
                if n > 6 { acc.6 += wv * xv(6) }
                if n > 7 { acc.7 += wv * xv(7) }
                i += 16
            }
            let b = bias?[o] ?? 0
            @inline(__always) func put(_ r: Int, _ v: V) {
                var s = v.sum() + b
                if full < k { for j in full..<k { s += w[j] * x[r * k + j] } }
                y[r * outFeatures + o] = s
            }
            put(0, acc.0)
            if n > 1 { put(1, acc.1) }
            if n > 2 { put(2, acc.2) }
            if n > 3 { put(3, acc.3) }
            if n > 4 { put(4, acc.4) }
            if n > 5 { put(5, acc.5) }
            if n > 6 { put(6, acc.6) }
            if n > 7 { put(7, acc.7) }
        }
    }
}
