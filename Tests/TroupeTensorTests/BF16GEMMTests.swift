import Foundation
import Testing
import TroupeTensor

@Suite struct BF16GEMMTests {
    struct Product: CustomStringConvertible, Sendable {
        var transA: Bool, transB: Bool, m: Int, n: Int, k: Int
        var description: String { "\(m)×\(n)×\(k)\(transA ? " Aᵀ" : "")\(transB ? " Bᵀ" : "")" }
        var lda: Int { (transA ? m : k) + 3 }
        var ldb: Int { (transB ? k : n) + 5 }
        var ldc: Int { n + 7 }
        func a(_ i: Int, _ p: Int, _ data: [Float]) -> Float { transA ? data[p * lda + i] : data[i * lda + p] }
        func b(_ p: Int, _ j: Int, _ data: [Float]) -> Float { transB ? data[j * ldb + p] : data[p * ldb + j] }
    }

    /// Shapes off every tile and block edge: rows past the last 12-row tile and 96-row block, columns
    /// past the last 32-column sliver (by 1–16 and by 17–31), more columns than one 3072-wide block,
    /// odd k and k over one 384-deep block, each transposition.
    static let products = [
        Product(transA: false, transB: false, m: 37, n: 45, k: 19), Product(transA: true, transB: false, m: 100, n: 70, k: 801),
        Product(transA: false, transB: true, m: 13, n: 33, k: 1), Product(transA: true, transB: true, m: 97, n: 31, k: 390),
        Product(transA: false, transB: false, m: 5, n: 64, k: 768), Product(transA: true, transB: false, m: 14, n: 50, k: 9),
        Product(transA: false, transB: false, m: 13, n: 3100, k: 5),
    ]

    static func operands(_ p: Product, seed: UInt64) -> (a: [Float], b: [Float], c: [Float]) {
        var rng = Xoshiro256(seed: seed)
        // Magnitudes far apart, so that a bf16 rounding or a sum out of order shows in the bits.
        func value(_ i: Int) -> Float { Float(rng.nextGaussian()) * (i % 7 == 0 ? 1e-3 : i % 11 == 0 ? 300 : 1) }
        let a = (0..<(p.transA ? p.k : p.m) * p.lda).map(value), b = (0..<(p.transB ? p.n : p.k) * p.ldb).map(value)
        return (a, b, (0..<p.m * p.ldc).map(value))
    }

    static func run(_ p: Product, _ a: [Float], _ b: [Float], c: [Float], beta: Float, kernel: BF16GEMM.Kernel,
                    rows: Range<Int>? = nil) -> [Float] {
        var c = c
        let rows = rows ?? 0..<p.m
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    let first = a.baseAddress! + (p.transA ? rows.lowerBound : rows.lowerBound * p.lda)
                    BF16GEMM.gemm(transA: p.transA, transB: p.transB, m: rows.count, n: p.n, k: p.k, a: first, lda: p.lda,
                                  b: b.baseAddress!, ldb: p.ldb, beta: beta, c: c.baseAddress! + rows.lowerBound * p.ldc, ldc: p.ldc,
                                  kernel: kernel)
                }
            }
        }
        return c
    }

    static func bfloat16(_ x: Float) -> Float {
        if x.isNaN { return x }
        if x.isSubnormal { return x.sign == .minus ? -0.0 : 0 }
        let u = x.bitPattern
        return Float(bitPattern: (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000)
    }

    static func flushed(_ x: Float) -> Float { x.isSubnormal ? (x.sign == .minus ? -0.0 : 0) : x }

    /// The definition, one element at a time: operands rounded to bfloat16; per 384-deep block of k a
    /// float sum from zero over k in pairs, the odd k's product added before the even one's, each as one
    /// fused multiply-add (as VDPBF16PS does), every result below the normal range flushed; each block's
    /// sum added to C.
    static func reference(_ p: Product, _ a: [Float], _ b: [Float], c: [Float], beta: Float) -> [Float] {
        var c = c
        for i in 0..<p.m {
            for j in 0..<p.n {
                var total = beta == 0 ? 0 : beta == 1 ? c[i * p.ldc + j] : c[i * p.ldc + j] * beta
                for block in stride(from: 0, to: p.k, by: BF16GEMM.blockDepth) {
                    var acc: Float = 0
                    for even in stride(from: block, to: min(block + BF16GEMM.blockDepth, p.k), by: 2) {
                        if even + 1 < p.k && even + 1 < block + BF16GEMM.blockDepth {
                            acc = flushed(acc.addingProduct(bfloat16(p.a(i, even + 1, a)), bfloat16(p.b(even + 1, j, b))))
                        }
                        acc = flushed(acc.addingProduct(bfloat16(p.a(i, even, a)), bfloat16(p.b(even, j, b))))
                    }
                    total += acc
                }
                c[i * p.ldc + j] = total
            }
        }
        return c
    }

    static func sameBits(_ x: [Float], _ y: [Float]) -> Int? {
        zip(x, y).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }?.offset
    }

    @Test(arguments: products)
    func portableKernelComputesTheDefinitionBitForBit(_ p: Product) {
        let (a, b, c) = Self.operands(p, seed: 1)
        for beta: Float in [0, 1, 0.5] {
            let got = Self.run(p, a, b, c: c, beta: beta, kernel: .portable), want = Self.reference(p, a, b, c: c, beta: beta)
            #expect(Self.sameBits(got, want) == nil, "\(p), beta \(beta): first differing element \(Self.sameBits(got, want) ?? -1)")
        }
    }

    @Test(.enabled(if: BF16GEMM.hardwareAvailable, "this CPU has no AVX-512 BF16"), arguments: products)
    func hardwareKernelGivesThePortableKernelsBits(_ p: Product) {
        let (a, b, c) = Self.operands(p, seed: 2)
        for beta: Float in [0, 1] {
            let hardware = Self.run(p, a, b, c: c, beta: beta, kernel: .hardware), portable = Self.run(p, a, b, c: c, beta: beta, kernel: .portable)
            #expect(Self.sameBits(hardware, portable) == nil, "\(p), beta \(beta)")
        }
    }

    /// Operands whose products and sums leave float's normal range (below 2⁻¹²⁶, past FLT_MAX): where the
    /// two kernels would part if the portable one rounded a product before adding it.
    @Test(.enabled(if: BF16GEMM.hardwareAvailable, "this CPU has no AVX-512 BF16"), arguments: [(-80, -50), (-126, 127), (60, 64)])
    func hardwareAndPortableKernelsAgreeAtTheEdgesOfFloat(exponents: (Int, Int)) {
        let p = Product(transA: false, transB: false, m: 40, n: 70, k: 33)
        var rng = Xoshiro256(seed: 5)
        func value(_ i: Int) -> Float {
            let exponent = exponents.0 + Int(rng.next() % UInt64(exponents.1 - exponents.0 + 1))
            return Float(sign: rng.next() & 1 == 0 ? .plus : .minus, exponent: exponent, significand: 1 + Float(rng.nextUnit()))
        }
        let a = (0..<p.m * p.lda).map(value), b = (0..<p.k * p.ldb).map(value), c = [Float](repeating: 0, count: p.m * p.ldc)
        let hardware = Self.run(p, a, b, c: c, beta: 0, kernel: .hardware), portable = Self.run(p, a, b, c: c, beta: 0, kernel: .portable)
        #expect(Self.sameBits(hardware, portable) == nil, "exponents \(exponents): first differing element \(Self.sameBits(hardware, portable) ?? -1)")
    }

    /// A product big enough to be split over two threads gives the bits of its rows computed in two
    /// separate calls cut off any tile boundary: no sum depends on where or how rows are computed.
    @Test func resultsDoNotDependOnHowRowsAreSplit() {
        let kernel: BF16GEMM.Kernel = BF16GEMM.hardwareAvailable ? .hardware : .portable
        for p in [Product(transA: true, transB: false, m: 300, n: 200, k: 900), Product(transA: false, transB: false, m: 250, n: 130, k: 700)] {
            let (a, b, c) = Self.operands(p, seed: 3)
            let whole = Self.run(p, a, b, c: c, beta: 1, kernel: kernel)
            let top = Self.run(p, a, b, c: c, beta: 1, kernel: kernel, rows: 0..<137)
            let parts = Self.run(p, a, b, c: top, beta: 1, kernel: kernel, rows: 137..<p.m)
            #expect(Self.sameBits(whole, parts) == nil, "\(p)")
        }
    }

    /// Against float products, each element is off by at most bfloat16's rounding of both operands
    /// (2⁻⁸ relative each, so 2⁻⁷ relative to the sum of |a·b|, with room for the float sums): an indexing or packing slip
    /// would be off by whole terms.
    @Test(arguments: products)
    func errorAgainstFloatProductsIsBFloat16Rounding(_ p: Product) {
        let (a, b, _) = Self.operands(p, seed: 4)
        let zero = [Float](repeating: .nan, count: p.m * p.ldc)   // beta 0 must not read C
        let got = Self.run(p, a, b, c: zero, beta: 0, kernel: .portable)
        for i in 0..<p.m {
            for j in 0..<p.n {
                var exact = 0.0, magnitude = 0.0
                for q in 0..<p.k {
                    let term = Double(p.a(i, q, a)) * Double(p.b(q, j, b))
                    exact += term
                    magnitude += abs(term)
                }
                let error = abs(Double(got[i * p.ldc + j]) - exact), bound = magnitude * (0x1p-7 + Double(p.k) * 0x1p-24)
                #expect(error <= bound, "\(p) [\(i), \(j)]: \(got[i * p.ldc + j]) against \(exact)")
                if error > bound { return }
            }
        }
    }
}
