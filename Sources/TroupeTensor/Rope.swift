import Foundation

/// Rotary position embeddings (Su et al. 2021) in the Hugging Face "rotate_half" convention: in each head,
/// dimension i pairs with i + d/2, and the pair rotates by pos · θ^(−2i/d).
public struct RopeTable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    /// The angle per position of each pair.
    public let inverseFrequencies: [Double]
    /// Positions held in `cos` and `sin`; later ones are computed when applied, to the same values.
    /// A table for every position of a long-context model would take memory and load time in every
    /// process (Llama 3's 131,072 positions at head_dim 128: 67 MB) for positions few runs reach.
    public let tabulatedPositions: Int
    /// (tabulatedPositions, headDim/2), computed in Double then rounded once.
    public let cos: [Float]
    public let sin: [Float]

    public static let defaultTabulatedPositions = 8192

    public init(headDim: Int, maxPositions: Int, theta: Double) {
        self.init(headDim: headDim, maxPositions: maxPositions, inverseFrequencies: Self.inverseFrequencies(headDim: headDim, theta: theta))
    }

    /// The table for pair i rotating by pos · inverseFrequencies[i] (headDim/2 of them; a scaled RoPE's).
    public init(headDim: Int, maxPositions: Int, inverseFrequencies: [Double], tabulating: Int = defaultTabulatedPositions) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        precondition(inverseFrequencies.count == headDim / 2, "one inverse frequency per pair of dimensions")
        self.headDim = headDim
        self.maxPositions = maxPositions
        self.inverseFrequencies = inverseFrequencies
        let positions = min(maxPositions, max(0, tabulating))
        tabulatedPositions = positions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: positions * half)
        var s = c
        c.withUnsafeMutableBufferPointer { cp in
            s.withUnsafeMutableBufferPointer { sp in
                for p in 0..<positions {
                    Self.angles(position: p, inverseFrequencies, cos: cp.baseAddress! + p * half, sin: sp.baseAddress! + p * half)
                }
            }
        }
        cos = c
        sin = s
    }

    /// cos and sin of each pair's angle at `position`, computed in Double then rounded once.
    @inline(__always)
    static func angles(position p: Int, _ inverseFrequencies: [Double], cos c: UnsafeMutablePointer<Float>,
                       sin s: UnsafeMutablePointer<Float>) {
        for (i, frequency) in inverseFrequencies.enumerated() {
            let angle = Double(p) * frequency
            c[i] = Float(Foundation.cos(angle))
            s[i] = Float(Foundation.sin(angle))
        }
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
        if position >= tabulatedPositions {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { buffer in
                let c = buffer.baseAddress!, s = c + half
                Self.angles(position: position, inverseFrequencies, cos: c, sin: s)
                rotate(v, heads: heads, cos: c, sin: s, inverse: inverse)
            }
            return
        }
        cos.withUnsafeBufferPointer { cp in
            sin.withUnsafeBufferPointer { sp in
                rotate(v, heads: heads, cos: cp.baseAddress! + position * half, sin: sp.baseAddress! + position * half, inverse: inverse)
            }
        }
    }

    @inline(__always)
    private func rotate(_ v: UnsafeMutablePointer<Float>, heads: Int, cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>,
                        inverse: Bool) {
        let half = headDim / 2
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
