/// Whole-array checks with no early exit, so that the compiler vectorizes them: every accepted array
/// passes them, and only a refused one is scanned again for the first offending element to name
/// (`RawFrame.decodeFloat32`, the learner's `GroupAdmission`).
public enum ScanFor {
    /// Some element is NaN or infinite.
    public static func nonFinite(_ xs: [Float]) -> Bool {
        xs.withUnsafeBufferPointer { p in
            var found: UInt32 = 0
            for x in p { found |= x.bitPattern & 0x7F80_0000 == 0x7F80_0000 ? 1 : 0 }
            return found != 0
        }
    }

    /// Some element is below `lo` or above `hi` (NaN is neither: `nonFinite` is checked first).
    public static func outside(_ xs: [Float], _ lo: Float, _ hi: Float) -> Bool {
        xs.withUnsafeBufferPointer { p in
            var found: UInt32 = 0
            for x in p { found |= x < lo || x > hi ? 1 : 0 }
            return found != 0
        }
    }

    /// Some element is negative or at least `bound` (> 0).
    public static func outside(_ xs: [Int32], below bound: Int32) -> Bool {
        xs.withUnsafeBufferPointer { p in
            var found: UInt32 = 0
            for x in p { found |= UInt32(bitPattern: x) >= UInt32(clamping: bound) ? 1 : 0 }
            return found != 0
        }
    }
}
