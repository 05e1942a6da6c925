import Foundation

/// Rotary position embeddings (Su et al. 2021) in the Hugging Face "rotate_half" convention: in each head,
/// dimension i pairs with i + d/2, and the pair rotates by pos · θ^(−2i/d).
public struct RopeTable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    /// (maxPositions, headDim/2), computed in Double then rounded once.
    public let cos: [Float]
    public let sin: [Float]

    public init(headDim: Int, maxPositions: Int, theta: Double) {
        self.init(headDim: headDim, maxPositions: maxPositions, inverseFrequencies: Self.inverseFrequencies(headDim: headDim, theta: theta))
    }

    /// The table for pair i rotating by pos · inverseFrequencies[i] (headDim/2 of them; a scaled RoPE's).
    public init(headDim: Int, maxPositions: Int, inverseFrequencies: [Double]) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        precondition(inverseFrequencies.count == headDim / 2, "one inverse frequency per pair of dimensions")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: maxPositions * half)
        var s = c
        for p in 0..<maxPositions {
            for i in 0..<half {
                let angle = Double(p) * inverseFrequencies[i]
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }

    /// θ^(−2i/d) for each pair i: unscaled RoPE.
    public static func inverseFrequencies(headDim: Int, theta: Double) -> [Double] {
        (0..<headDim / 2).map { 1.0 / Foundation.pow(theta, Double(2 * $0) / Double(headDim)) }
    }

    /// Rotates `heads` vectors of one token in place: v: (heads, headDim) with row stride headDim.
    /// `inverse` rotates by −angle, which is the backward pass (the rotation is orthogonal).
    @inline(__always)
    public func apply(_ v: UnsafeMutablePointer<Float>, heads: Int, position: Int, inverse: Bool = false) {
        let half = headDim / 2
        cos.withUnsafeBufferPointer { cp in
            sin.withUnsafeBufferPointer { sp in
                let c = cp.baseAddress! + position * half
                let s = sp.baseAddress! + position * half
                let sign: Float = inverse ? -1 : 1
                for h in 0..<heads {
                    let x = v + h * headDim
                    for i in 0..<half {
                        let x1 = x[i], x2 = x[i + half]
                        let si = sign * s[i]
                        x[i] = x1 * c[i] - x2 * si
                        x[i + half] = x2 * c[i] + x1 * si
                    }
                }
            }
        }
    }
}
