import Foundation

/// SwiGLU (Shazeer 2020): h = silu(gate) ⊙ up, silu(a) = a·σ(a).
public enum SwiGLU {
    /// gate, up, h: (count) element-wise.
    public static func forward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>,
                               count: Int) {
        for i in 0..<count {
            let a = gate[i]
            let sig = 1 / (1 + expf(-a))
            h[i] = a * sig * up[i]
        }
    }

    /// Overwrites dGate and dUp.
    public static func backward(dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let a = gate[i]
            let sig = 1 / (1 + expf(-a))
            let silu = a * sig
            dUp[i] = dh[i] * silu
            dGate[i] = dh[i] * up[i] * sig * (1 + a * (1 - sig))
        }
    }
}
