/// SwiGLU (Shazeer 2020): h = silu(gate) ⊙ up, silu(a) = a·σ(a).
///
/// σ uses `Vector.exp` on 16 lanes (libm's expf one element at a time was a few percent of a decoding
/// step). The tail goes through the same lane arithmetic, so every element gets the same result
/// wherever it sits in the buffer: decoding splits the buffer between two threads.
public enum SwiGLU {
    typealias V = Vector.V

    @inline(__always)
    static func sigmoid(_ a: V) -> V { 1 / (1 + Vector.exp(-a)) }

    /// gate, up, h: (count) element-wise.
    public static func forward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                               count: Int) {
        var i = 0
        while i + 16 <= count {
            let a = Vector.load(gate + i)
            Vector.store(a * sigmoid(a) * Vector.load(up + i), h + i)
            i += 16
        }
        while i < count {
            let a = gate[i]
            h[i] = a * sigmoid(V(repeating: a))[0] * up[i]
            i += 1
        }
    }

    /// Overwrites dGate and dUp.
    public static func backward(dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let a = Vector.load(gate + i), g = Vector.load(dh + i), sig = sigmoid(a)
            Vector.store(g * (a * sig), dUp + i)
            Vector.store(g * Vector.load(up + i) * sig * (1 + a * (1 - sig)), dGate + i)
            i += 16
        }
        while i < count {
            let a = gate[i], sig = sigmoid(V(repeating: a))[0]
            dUp[i] = dh[i] * (a * sig)
            dGate[i] = dh[i] * up[i] * sig * (1 + a * (1 - sig))
            i += 1
        }
    }
}
