import Testing
import TroupeTensor

/// `Vector.max` is the logits maximum of every decoding step and training row: its compare-and-blend
/// lanes must choose exactly what `Float.maximum` chooses (the documented `pointwiseMax`), lane by lane,
/// then fold the 16 lanes and the tail as before.
@Test func vectorMaxChoosesWhatFloatMaximumChooses() {
    func reference(_ a: [Float]) -> Float {
        var m = -Float.infinity, i = 0
        if a.count >= 16 {
            var lanes = [Float](repeating: -.infinity, count: 16)
            while i + 16 <= a.count {
                for l in 0..<16 { lanes[l] = Float.maximum(lanes[l], a[i + l]) }
                i += 16
            }
            m = SIMD16<Float>(lanes).max()
        }
        while i < a.count { if a[i] > m { m = a[i] }; i += 1 }
        return m
    }
    var rng = Xoshiro256(seed: 3)
    let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 1, 1, -1, .greatestFiniteMagnitude]
    for count in [0, 1, 15, 16, 17, 31, 32, 40, 100] {
        for trial in 0..<60 {
            var row = (0..<count).map { _ in Float.random(in: -4...4, using: &rng) }
            if trial % 2 == 1 {
                for j in row.indices where Double.random(in: 0..<1, using: &rng) < 0.3 { row[j] = specials[Int.random(in: 0..<specials.count, using: &rng)] }
            }
            let got = row.withUnsafeBufferPointer { Vector.max($0.baseAddress!, count: count) }
            let want = reference(row)
            #expect(got.bitPattern == want.bitPattern || (got.isNaN && want.isNaN), "count \(count), trial \(trial): \(got) vs \(want) for \(row)")
        }
    }
}
