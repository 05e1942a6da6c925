import Foundation
import Testing
import TroupeTensor

/// Finite-difference checks of every layer's backward on tiny shapes: perturb each input, compare
/// (L(x+h) − L(x−h)) / 2h with the analytic gradient, where L = Σ forward(x) ⊙ R for a fixed random R.
@Suite struct GradientCheckTests {
    static func randoms(_ n: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        return (0..<n).map { _ in Float(rng.nextGaussian() * scale) }
    }

    /// Central differences in Double on a Float function: h = 1e-2 keeps truncation error and rounding
    /// both near 1e-4 relative for these smooth layers.
    static func check(_ name: String, inputs: inout [Float], analytic: [Float], h: Float = 1e-2,
                      loss: ([Float]) -> Double) {
        var worst = 0.0
        let scale = max(analytic.map { abs(Double($0)) }.max() ?? 0, 1e-3)
        for i in 0..<inputs.count {
            let saved = inputs[i]
            inputs[i] = saved + h
            let up = loss(inputs)
            inputs[i] = saved - h
            let down = loss(inputs)
            inputs[i] = saved
            let numeric = (up - down) / Double(2 * h)
            worst = max(worst, abs(numeric - Double(analytic[i])) / scale)
        }
        #expect(worst < 2e-3, "\(name): worst relative gradient error \(worst)")
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    @Test func linear() {
        let n = 3, inF = 5, outF = 4
        var x = Self.randoms(n * inF, seed: 1), w = Self.randoms(outF * inF, seed: 2), b = Self.randoms(outF, seed: 3)
        let r = Self.randoms(n * outF, seed: 4)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: n * outF)
            Linear.forward(x: x, weight: w, bias: b, y: &y, n: n, inFeatures: inF, outFeatures: outF)
            return y
        }
        var dx = [Float](repeating: 0, count: n * inF), dw = [Float](repeating: 0, count: outF * inF), db = [Float](repeating: 0, count: outF)
        Linear.backward(dy: r, x: x, weight: w, dx: &dx, dWeight: &dw, dBias: &db, n: n, inFeatures: inF, outFeatures: outF)
        Self.check("linear dx", inputs: &x, analytic: dx) { Self.dot(forward($0, w, b), r) }
        Self.check("linear dW", inputs: &w, analytic: dw) { Self.dot(forward(x, $0, b), r) }
        Self.check("linear db", inputs: &b, analytic: db) { Self.dot(forward(x, w, $0), r) }
        // n == 1 goes through sgemv.
        var x1 = Array(x[0..<inF])
        var dx1 = [Float](repeating: 0, count: inF), dw1 = [Float](repeating: 0, count: outF * inF)
        let r1 = Array(r[0..<outF])
        Linear.backward(dy: r1, x: x1, weight: w, dx: &dx1, dWeight: &dw1, dBias: nil, n: 1, inFeatures: inF, outFeatures: outF)
        Self.check("linear n=1 dx", inputs: &x1, analytic: dx1) { x in
            var y = [Float](repeating: 0, count: outF)
            Linear.forward(x: x, weight: w, bias: b, y: &y, n: 1, inFeatures: inF, outFeatures: outF)
            return Self.dot(y, r1)
        }
    }

    @Test func rmsNorm() {
        let n = 3, c = 7
        var x = Self.randoms(n * c, seed: 5), w = Self.randoms(c, seed: 6)
        let r = Self.randoms(n * c, seed: 7)
        func forward(_ x: [Float], _ w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: n * c)
            RMSNorm.forward(x: x, weight: w, y: &y, rstd: nil, n: n, c: c, eps: 1e-5)
            return y
        }
        var y = [Float](repeating: 0, count: n * c), rstd = [Float](repeating: 0, count: n)
        RMSNorm.forward(x: x, weight: w, y: &y, rstd: &rstd, n: n, c: c, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c)
        RMSNorm.backward(dy: r, x: x, weight: w, rstd: rstd, dx: &dx, dWeight: &dw, n: n, c: c, accumulate: false)
        Self.check("rmsnorm dx", inputs: &x, analytic: dx) { Self.dot(forward($0, w), r) }
        Self.check("rmsnorm dW", inputs: &w, analytic: dw) { Self.dot(forward(x, $0), r) }
    }

    @Test func swiGLU() {
        let count = 11
        var gate = Self.randoms(count, seed: 8, scale: 2), up = Self.randoms(count, seed: 9)
        let r = Self.randoms(count, seed: 10)
        func forward(_ g: [Float], _ u: [Float]) -> [Float] {
            var h = [Float](repeating: 0, count: count)
            SwiGLU.forward(gate: g, up: u, h: &h, count: count)
            return h
        }
        var dg = [Float](repeating: 0, count: count), du = [Float](repeating: 0, count: count)
        SwiGLU.backward(dh: r, gate: gate, up: up, dGate: &dg, dUp: &du, count: count)
        Self.check("swiglu dgate", inputs: &gate, analytic: dg) { Self.dot(forward($0, up), r) }
        Self.check("swiglu dup", inputs: &up, analytic: du) { Self.dot(forward(gate, $0), r) }
    }

    @Test func rope() {
        let heads = 2, d = 8
        let table = RopeTable(headDim: d, maxPositions: 16, theta: 10000)
        var x = Self.randoms(heads * d, seed: 11)
        let r = Self.randoms(heads * d, seed: 12)
        func forward(_ x: [Float]) -> [Float] {
            var y = x
            y.withUnsafeMutableBufferPointer { table.apply($0.baseAddress!, heads: heads, position: 13) }
            return y
        }
        // Backward of a rotation is the inverse rotation of the upstream gradient.
        var dx = r
        dx.withUnsafeMutableBufferPointer { table.apply($0.baseAddress!, heads: heads, position: 13, inverse: true) }
        Self.check("rope", inputs: &x, analytic: dx) { Self.dot(forward($0), r) }
        #expect(abs(Self.dot(forward(x), forward(x)) - Self.dot(x, x)) < 1e-4, "RoPE preserves norms")
    }

    /// Positions past the tabulated ones rotate by exactly what a table holding them would.
    @Test func ropePastItsTableRotatesAsTheTable() {
        let d = 8, frequencies = RopeTable.inverseFrequencies(headDim: d, theta: 10000)
        let full = RopeTable(headDim: d, maxPositions: 40, inverseFrequencies: frequencies, tabulating: 40)
        let short = RopeTable(headDim: d, maxPositions: 40, inverseFrequencies: frequencies, tabulating: 8)
        #expect(short.tabulatedPositions == 8 && short.cos.count == 8 * d / 2)
        let x = Self.randoms(3 * d, seed: 5)
        for position in [0, 7, 8, 31, 39] {
            for inverse in [false, true] {
                var a = x, b = x
                a.withUnsafeMutableBufferPointer { full.apply($0.baseAddress!, heads: 3, position: position, inverse: inverse) }
                b.withUnsafeMutableBufferPointer { short.apply($0.baseAddress!, heads: 3, position: position, inverse: inverse) }
                #expect(a == b, "position \(position), inverse \(inverse)")
            }
        }
    }

    @Test func vectorizedExpIsAccurate() {
        var worst: Float = 0
        var x: Float = -80
        while x < 80 {
            let ours = Vector.exp(x), ref = Float(Foundation.exp(Double(x)))
            worst = max(worst, abs(ours - ref) / ref)
            x += 0.0137
        }
        #expect(worst < 3e-7, "relative error \(worst)")
        var a: [Float] = (0..<37).map { Float($0) * 0.3 - 5 }
        let sum = a.withUnsafeMutableBufferPointer { p in Vector.expShifted(p.baseAddress!, scale: 1, shift: 0, out: p.baseAddress!, count: 37) }
        let ref = (0..<37).reduce(0.0) { $0 + Foundation.exp(Double($1) * 0.3 - 5) }
        #expect(abs(Double(sum) - ref) / ref < 1e-6)
        #expect(abs(Double(a[36]) - Foundation.exp(36 * 0.3 - 5)) < 1e-4)
    }
}
