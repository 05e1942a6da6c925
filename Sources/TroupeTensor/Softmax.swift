import Foundation

public enum Softmax {
    /// In-place softmax over the first `valid` entries of a row; entries beyond are set to 0 (masked).
    /// Returns log-sum-exp of the valid entries.
    @discardableResult @inline(__always)
    public static func rowInPlace(_ row: UnsafeMutablePointer<Float>, valid: Int, length: Int) -> Float {
        var m = -Float.infinity
        for j in 0..<valid where row[j] > m { m = row[j] }
        var sum: Float = 0
        for j in 0..<valid {
            let e = expf(row[j] - m)
            row[j] = e
            sum += e
        }
        let inv = 1 / sum
        for j in 0..<valid { row[j] *= inv }
        if valid < length { (row + valid).update(repeating: 0, count: length - valid) }
        return m + logf(sum)
    }

    /// log-sum-exp of a row, accumulated in Double for stability over large vocabularies.
    @inline(__always)
    public static func logSumExp(_ row: UnsafePointer<Float>, count: Int, scale: Float = 1) -> Float {
        var m = -Float.infinity
        for j in 0..<count where row[j] > m { m = row[j] }
        m *= scale
        var sum: Float = 0
        for j in 0..<count { sum += expf(row[j] * scale - m) }
        return m + logf(sum)
    }
}
