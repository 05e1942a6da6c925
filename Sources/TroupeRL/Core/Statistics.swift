import Foundation

/// Small statistics over `[Double]`, in one place so every estimator uses the same conventions.
enum Statistics {
    static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    /// Standard deviation with `ddof` degrees of freedom removed (1 = unbiased/Bessel, 0 = population).
    /// Returns 0 when there are not enough values (a singleton has no spread).
    static func standardDeviation(_ values: [Double], mean: Double, ddof: Int) -> Double {
        let dof = values.count - ddof
        guard dof > 0 else { return 0 }
        var sum = 0.0
        for value in values { sum += (value - mean) * (value - mean) }
        return (sum / Double(dof)).squareRoot()
    }

    /// True when every value is identical. Used instead of `std == 0`, because the mean of equal
    /// values can differ from them in the last bit and turn `R − mean` into noise.
    static func allEqual(_ values: [Double]) -> Bool {
        guard let first = values.first else { return true }
        return values.allSatisfy { $0 == first }
    }

    /// Natural-log Shannon entropy of a count vector.
    static func entropy(counts: [Int]) -> Double {
        let total = Double(counts.reduce(0, +))
        guard total > 0 else { return 0 }
        var entropy = 0.0
        for count in counts where count > 0 {
            let p = Double(count) / total
            entropy -= p * log(p)
        }
        return entropy
    }
}
