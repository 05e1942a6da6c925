/// Explicitly vectorized loops. Swift keeps IEEE evaluation order, so a plain `for` reduction stays
/// scalar; these use SIMD16 lanes (AVX-512 or 2×AVX2 registers) with a scalar tail.
public enum Vector {
    public typealias V = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// e^x for 16 lanes: Cephes-style range reduction and degree-6 polynomial, ≤ 2 ulp on [−87, 88].
    /// The clamp is two lane-wise selects and n = round(x·log2 e) comes from the 1.5·2²³ trick, which
    /// leaves n in the low mantissa bits: no float-to-int conversion, which Swift does lane by lane.
    @inline(__always)
    public static func exp(_ input: V) -> V {
        var x = input
        x.replace(with: V(repeating: -87.33), where: x .< -87.33)
        x.replace(with: V(repeating: 88.37), where: x .> 88.37)
        let magic = V(repeating: 12_582_912) // 1.5 · 2²³
        let shifted = x * 1.44269504088896341 + magic
        let fx = shifted - magic
        x = x - fx * 0.693359375
        x = x + fx * 2.12194440e-4
        let z = x * x
        var y = V(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        let n = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127
        return y * unsafeBitCast(n &<< 23, to: V.self)
    }

    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        exp(V(repeating: x))[0]
    }

    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = V(), i = 0
        while i + 16 <= count { acc += load(a + i) * load(b + i); i += 16 }
        var s = acc.sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }

    public static func sum(_ a: UnsafePointer<Float>, count: Int) -> Float {
        var acc = V(), i = 0
        while i + 16 <= count { acc += load(a + i); i += 16 }
        var s = acc.sum()
        while i < count { s += a[i]; i += 1 }
        return s
    }

    /// The lane-wise maximum is a compare and a blend: Swift's `pointwiseMax` compiles to a scalar
    /// loop through the stack here (about 3 ns per element, a millisecond per decoding step at batch 8
    /// over a 49 152-token vocabulary). Per lane it makes `Float.maximum(acc, v)`'s choice: acc when
    /// acc > v or v is NaN, else v (so a ±0 tie keeps the later value).
    public static func max(_ a: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity, i = 0
        if count >= 16 {
            var acc = V(repeating: -.infinity)
            while i + 16 <= count {
                let v = load(a + i)
                acc.replace(with: v, where: .!((acc .> v) .| (v .!= v)))
                i += 16
            }
            m = acc.max()
        }
        while i < count { if a[i] > m { m = a[i] }; i += 1 }
        return m
    }

    /// out[i] = e^(scale·a[i] − shift); returns Σ out. `out` may alias `a`.
    public static func expShifted(_ a: UnsafePointer<Float>, scale: Float, shift: Float,
                                  out: UnsafeMutablePointer<Float>, count: Int) -> Float {
        var acc = V(), i = 0
        let s = V(repeating: scale), sh = V(repeating: shift)
        while i + 16 <= count {
            let e = exp(load(a + i) * s - sh)
            store(e, out + i)
            acc += e
            i += 16
        }
        var total = acc.sum()
        if i < count {
            var tail = V(repeating: -.infinity)
            for j in 0..<(count - i) { tail[j] = a[i + j] * scale - shift }
            let e = exp(tail)
            for j in 0..<(count - i) { out[i + j] = e[j]; total += e[j] }
        }
        return total
    }

    /// Σ e^(scale·a[i] − shift), without storing.
    public static func expShiftedSum(_ a: UnsafePointer<Float>, scale: Float, shift: Float, count: Int) -> Float {
        var acc = V(), i = 0
        let s = V(repeating: scale), sh = V(repeating: shift)
        while i + 16 <= count { acc += exp(load(a + i) * s - sh); i += 16 }
        var total = acc.sum()
        while i < count { total += exp(a[i] * scale - shift); i += 1 }
        return total
    }

    public static func scale(_ a: UnsafeMutablePointer<Float>, by k: Float, count: Int) {
        var i = 0
        let kv = V(repeating: k)
        while i + 16 <= count { store(load(a + i) * kv, a + i); i += 16 }
        while i < count { a[i] *= k; i += 1 }
    }

    /// y += a·x
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let av = V(repeating: a)
        while i + 16 <= count { store(load(y + i) + av * load(x + i), y + i); i += 16 }
        while i < count { y[i] += a * x[i]; i += 1 }
    }

    /// y += x
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count { store(load(y + i) + load(x + i), y + i); i += 16 }
        while i < count { y[i] += x[i]; i += 1 }
    }
}
