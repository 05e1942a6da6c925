import Foundation

/// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay and bias correction,
/// over one flat parameter buffer. Global-norm gradient clipping happens before the update, and a
/// step whose gradient holds a NaN or ±Inf is skipped and counted instead of corrupting the weights.
public struct AdamWOptions: Codable, Equatable, Sendable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    /// Clip the global L2 norm of the gradient to this value; nil or ≤ 0 disables clipping.
    public var maxGradNorm: Double?

    public init(learningRate: Double = 1e-4, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0.0, maxGradNorm: Double? = 1.0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.maxGradNorm = maxGradNorm
    }

    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw OptimizerError.invalidOption(field: field, reason: why) }
        }
        try check(learningRate.isFinite && learningRate >= 0, "learning_rate", "must be finite and ≥ 0")
        try check(beta1 >= 0 && beta1 < 1, "beta1", "must be in [0, 1)")
        try check(beta2 >= 0 && beta2 < 1, "beta2", "must be in [0, 1)")
        try check(epsilon > 0 && epsilon.isFinite, "epsilon", "must be > 0")
        try check(weightDecay >= 0 && weightDecay.isFinite, "weight_decay", "must be ≥ 0")
        if let g = maxGradNorm { try check(g.isFinite, "max_grad_norm", "must be finite") }
    }
}

public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    case invalidOption(field: String, reason: String)
    case sizeMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .invalidOption(let f, let r): return "optimizer option \(f): \(r)"
        case .sizeMismatch(let e, let g): return "optimizer state has \(g) values, parameters have \(e)"
        }
    }
}

public struct StepReport: Sendable, Equatable {
    /// Global L2 norm of the gradient before clipping (NaN when non-finite).
    public var gradNorm: Double
    public var clipped: Bool
    /// True when the step was skipped because the gradient was not finite.
    public var skipped: Bool
}

public final class AdamW: @unchecked Sendable {
    public var options: AdamWOptions
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Number of updates applied (bias correction uses it); skipped steps do not count.
    public private(set) var step: Int = 0
    public private(set) var skippedSteps: Int = 0
    /// Ranges of the flat buffer where weight decay applies (Llama recipes exempt norms and biases);
    /// nil means everywhere.
    public let decayRanges: [Range<Int>]?

    public init(parameterCount: Int, options: AdamWOptions, decayRanges: [Range<Int>]? = nil) {
        self.options = options
        m = FloatBuffer(count: parameterCount)
        v = FloatBuffer(count: parameterCount)
        self.decayRanges = decayRanges
    }

    /// Restores state saved by a checkpoint.
    public func restore(step: Int, skippedSteps: Int, m: [Float], v: [Float]) throws {
        guard m.count == self.m.count else { throw OptimizerError.sizeMismatch(expected: self.m.count, got: m.count) }
        guard v.count == self.v.count else { throw OptimizerError.sizeMismatch(expected: self.v.count, got: v.count) }
        self.m.copy(from: FloatBuffer(m))
        self.v.copy(from: FloatBuffer(v))
        self.step = step
        self.skippedSteps = skippedSteps
    }

    public static func gradientNorm(_ g: FloatBuffer) -> Double {
        // Double accumulation in blocks: the norm decides clipping, so it must not depend on rounding luck.
        var total = 0.0
        var i = 0
        while i < g.count {
            let n = Swift.min(4096, g.count - i)
            total += Double(Vector.dot(g.pointer + i, g.pointer + i, count: n))
            i += n
        }
        return total.squareRoot()
    }

    /// Counts a step whose update was not applied because its loss could not be computed.
    public func skip() { skippedSteps += 1 }

    /// Applies one update from `grad` to `params` (both flat, same layout).
    @discardableResult
    public func update(params: FloatBuffer, grad: FloatBuffer) -> StepReport {
        precondition(params.count == grad.count && grad.count == m.count)
        let norm = AdamW.gradientNorm(grad)
        guard norm.isFinite else {
            skippedSteps += 1
            return StepReport(gradNorm: .nan, clipped: false, skipped: true)
        }
        var scale: Float = 1
        var clipped = false
        if let maxNorm = options.maxGradNorm, maxNorm > 0, norm > maxNorm {
            scale = Float(maxNorm / (norm + 1e-6))
            clipped = true
        }
        step += 1
        let b1 = Float(options.beta1), b2 = Float(options.beta2)
        let lr = Float(options.learningRate)
        let bc1 = Float(1 - Foundation.pow(options.beta1, Double(step)))
        let bc2 = Float(1 - Foundation.pow(options.beta2, Double(step)))
        let eps = Float(options.epsilon)
        let wd = Float(options.weightDecay)
        let p = params.pointer, g = grad.pointer, mp = m.pointer, vp = v.pointer
        let stepSize = lr / bc1
        let invSqrtBc2 = 1 / bc2.squareRoot()
        // Segments of the flat buffer with their decay factor, covering it exactly once.
        var segments: [(Range<Int>, Float)] = []
        if let ranges = decayRanges {
            var cursor = 0
            for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if r.lowerBound > cursor { segments.append((cursor..<r.lowerBound, 0)) }
                segments.append((r, wd))
                cursor = r.upperBound
            }
            if cursor < params.count { segments.append((cursor..<params.count, 0)) }
        } else {
            segments = [(0..<params.count, wd)]
        }
        for (range, decay) in segments {
            let shrink = 1 - lr * decay
            for i in range {
                let gi = g[i] * scale
                let mi = b1 * mp[i] + (1 - b1) * gi
                let vi = b2 * vp[i] + (1 - b2) * gi * gi
                mp[i] = mi
                vp[i] = vi
                p[i] = p[i] * shrink - stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
            }
        }
        return StepReport(gradNorm: norm, clipped: clipped, skipped: false)
    }
}
