/// Raw frames of plain numbers, little-endian on the wire whatever the host.
///
/// Decoding checks that the frame is a whole number of elements, optionally that the count is the
/// expected one, and for floats that every value is finite, each failure naming `field`.
public enum RawFrame {
    public static func int32(_ values: [Int32]) -> Frame {
        Frame(littleEndianBytes(of: values))
    }

    public static func float32(_ values: [Float]) -> Frame {
        Frame(littleEndianBytes(of: values.map { $0.bitPattern }))
    }

    public static func decodeInt32(_ frame: Frame, field: String, expectedCount: Int? = nil) throws(WireError) -> [Int32] {
        let count = try elementCount(frame, elementSize: 4, field: field, expectedCount: expectedCount)
        return frame.withUnsafeBytes { bytes in
            [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
                // One copy; a byte swap only on big-endian hosts.
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
                #if !_endian(little)
                for index in 0..<count { buffer[index] = Int32(littleEndian: buffer[index]) }
                #endif
                initialized = count
            }
        }
    }

    /// - Parameter requireFinite: reject NaN and ±infinity (`WireError.Reason.nonFinite`).
    public static func decodeFloat32(_ frame: Frame, field: String, expectedCount: Int? = nil,
                                     requireFinite: Bool = true) throws(WireError) -> [Float] {
        let count = try elementCount(frame, elementSize: 4, field: field, expectedCount: expectedCount)
        let values: [Float] = frame.withUnsafeBytes { bytes in
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
                #if !_endian(little)
                for index in 0..<count { buffer[index] = Float(bitPattern: UInt32(littleEndian: buffer[index].bitPattern)) }
                #endif
                initialized = count
            }
        }
        if requireFinite, ScanFor.nonFinite(values), let index = values.firstIndex(where: { !$0.isFinite }) {
            throw WireError(.nonFinite, "\(field)[\(index)] is \(values[index])")
        }
        return values
    }

    private static func elementCount(_ frame: Frame, elementSize: Int, field: String, expectedCount: Int?) throws(WireError) -> Int {
        guard frame.count % elementSize == 0 else {
            throw WireError(.rawFrameLength, "\(field): \(frame.count) bytes is not a multiple of \(elementSize)")
        }
        let count = frame.count / elementSize
        if let expectedCount, count != expectedCount {
            throw WireError(.rawFrameLength, "\(field): \(count) elements, expected \(expectedCount)")
        }
        return count
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(of values: [T]) -> [UInt8] {
        #if _endian(little)
        return values.withUnsafeBytes { [UInt8]($0) }
        #else
        return values.map { $0.littleEndian }.withUnsafeBytes { [UInt8]($0) }
        #endif
    }
}
