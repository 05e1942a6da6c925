/// SwiGLU (Shazeer 2020): h = silu(gate) ⊙ up, silu(a) = a·σ(a). Vectorised: 16 lanes with the
/// `Vector.exp` kernel, the tail through the same kernel, so every element sees the same arithmetic.
public enum SwiGLU {
    typealias V = SIMD16<Float>

    @inline(__always)
    static func sigmoid(_ a: V) -> V { 1 / (1 + Vector.exp(-a)) }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int, _ count: Int) -> V {
        if i + 16 <= count { return UnsafeRawPointer(p + i).loadUnaligned(as: V.self) }
        var v = V()
        for j in 0..<(count - i) { v[j] = p[i + j] }
        return v
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ count: Int) {
        if i + 16 <= count { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self); return }
        for j in 0..<(count - i) { p[i + j] = v[j] }
    }

    /// gate, up, h: (count) element-wise.
    public static func forward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                               count: Int) {
        var i = 0
        while i < count {
            let a = load(gate, i, count)
            store(a * sigmoid(a) * load(up, i, count), h, i, count)
            i += 16
        }
    }

    /// Overwrites dGate and dUp.
    public static func backward(dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let a = load(gate, i, count), u = load(up, i, count), d = load(dh, i, count)
            let sig = sigmoid(a)
            store(d * a * sig, dUp, i, count)
            store(d * u * sig * (1 + a * (1 - sig)), dGate, i, count)
            i += 16
        }
    }
}
