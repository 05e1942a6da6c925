/// RMSNorm (Zhang & Sennrich 2019) as in Llama: y = x / sqrt(mean(x²) + eps) · w.
public enum RMSNorm {
    /// x: (n, c) → y: (n, c); rstd: (n) saved for backward.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>?, n: Int, c: Int, eps: Float) {
        for r in 0..<n {
            let xr = x + r * c, yr = y + r * c
            var ss: Float = 0
            for i in 0..<c { ss += xr[i] * xr[i] }
            let s = 1 / (ss / Float(c) + eps).squareRoot()
            rstd?[r] = s
            for i in 0..<c { yr[i] = xr[i] * s * weight[i] }
        }
    }

    /// Backward: dx (+)= ∂L/∂x, dWeight += ∂L/∂w. Without `accumulate`, dx may be dy (each row reads
    /// all of dy before it writes dx).
    /// With g = w ⊙ dy: dx = rstd·g − rstd³·x·(g·x)/c.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                dWeight: UnsafeMutablePointer<Float>, n: Int, c: Int, accumulate: Bool) {
        for r in 0..<n {
            let xr = x + r * c, dyr = dy + r * c, dxr = dx + r * c
            let s = rstd[r]
            var dot: Float = 0
            for i in 0..<c {
                dot += weight[i] * dyr[i] * xr[i]
                dWeight[i] += dyr[i] * xr[i] * s
            }
            let k = s * s * s * dot / Float(c)
            if accumulate {
                for i in 0..<c { dxr[i] += s * weight[i] * dyr[i] - k * xr[i] }
            } else {
                for i in 0..<c { dxr[i] = s * weight[i] * dyr[i] - k * xr[i] }
            }
        }
    }
}
