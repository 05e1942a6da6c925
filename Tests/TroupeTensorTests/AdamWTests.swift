import Foundation
import Testing
import TroupeTensor

@Suite struct AdamWTests {
    /// One step against the formula written out in Double.
    @Test func matchesReferenceUpdate() {
        let opts = AdamWOptions(learningRate: 0.1, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.01, maxGradNorm: nil)
        let p = FloatBuffer([1.0, -2.0, 0.5]), g = FloatBuffer([0.1, 0.2, -0.3])
        let opt = AdamW(parameterCount: 3, options: opts)
        for step in 1...3 {
            let before = p.array
            let report = opt.update(params: p, grad: g)
            #expect(!report.skipped)
            // After identical gradients every step, m̂ = g and v̂ = g², so the step is lr·g/(|g|+eps).
            for i in 0..<3 {
                let gi = Double(g[i])
                let expected = Double(before[i]) * (1 - 0.1 * 0.01) - 0.1 * gi / (abs(gi) + 1e-8)
                #expect(abs(Double(p[i]) - expected) < 1e-5, "step \(step) parameter \(i)")
            }
        }
        #expect(opt.step == 3)
    }

    @Test func clipsGlobalNormAndSkipsNonFiniteGradients() {
        let opts = AdamWOptions(learningRate: 0.1, weightDecay: 0, maxGradNorm: 1.0)
        let p = FloatBuffer([0, 0]), g = FloatBuffer([3, 4])
        let opt = AdamW(parameterCount: 2, options: opts)
        let r = opt.update(params: p, grad: g)
        #expect(r.clipped && abs(r.gradNorm - 5) < 1e-9)
        let before = p.array
        let bad = FloatBuffer([.nan, 1])
        let skipped = opt.update(params: p, grad: bad)
        #expect(skipped.skipped && opt.skippedSteps == 1 && opt.step == 1)
        #expect(p.array == before, "a non-finite gradient must not touch the weights")
        #expect(p.allFinite())
    }

    @Test func decayAppliesOnlyToGivenRanges() {
        let opts = AdamWOptions(learningRate: 0.5, weightDecay: 0.1, maxGradNorm: nil)
        let p = FloatBuffer([1, 1, 1, 1]), g = FloatBuffer([0, 0, 0, 0])
        let opt = AdamW(parameterCount: 4, options: opts, decayRanges: [1..<3])
        opt.update(params: p, grad: g)
        #expect(p.array == [1, 0.95, 0.95, 1])
    }

    @Test func invalidOptionsNameTheField() {
        #expect(throws: OptimizerError.invalidOption(field: "beta2", reason: "must be in [0, 1)")) {
            try AdamWOptions(beta2: 1.0).validate()
        }
    }
}
