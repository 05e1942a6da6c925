import Foundation
import TroupeJSON

/// Reader and writer for the safetensors format (8-byte little-endian header length, a JSON header of
/// `{name: {dtype, shape, data_offsets}}`, then the raw data). F32 is stored as is; F16 and BF16 are
/// widened to F32 on load. Every structural problem is an error naming the tensor.
public struct SafetensorsFile {
    public struct TensorInfo: Equatable, Sendable {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        /// Byte range inside the data section.
        public let begin: Int
        public let end: Int
    }

    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.fileMissing(path: path) }
        if let problem = ReadableFile.problem(at: path) { throw ModelError.unreadable(path: path, reason: problem) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw ModelError.unreadable(path: path, reason: error.localizedDescription)
        }
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String = "<memory>") throws {
        self.path = path
        self.data = data
        guard data.count >= 8 else {
            throw ModelError.safetensorsHeader(path: path, reason: "file is \(data.count) bytes, shorter than the 8-byte length prefix")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw ModelError.safetensorsHeader(path: path, reason: "header length \(headerLength) exceeds the file size \(data.count) (truncated or not a safetensors file)")
        }
        let headerStart = data.startIndex + 8
        let header = data.subdata(in: headerStart..<(headerStart + Int(headerLength)))
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(header, source: "header") } catch {
            throw ModelError.safetensorsHeader(path: path, reason: "header is not valid JSON (\(error))")
        }
        guard case let .object(dict) = parsed else {
            throw ModelError.safetensorsHeader(path: path, reason: "header is not a JSON object")
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = data.count - dataStart
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        // In name order, so a damaged file names the same tensor on every load.
        for (name, value) in dict.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                if let m = value.object, m.values.allSatisfy({ $0.string != nil }) { metadata = m.compactMapValues(\.string) }
                continue
            }
            guard let dtype = value["dtype"]?.string,
                  let dims = value["shape"]?.array?.compactMap(\.int), dims.count == value["shape"]?.array?.count,
                  let offsets = value["data_offsets"]?.array?.compactMap(\.int), offsets.count == 2,
                  value["data_offsets"]?.array?.count == 2 else {
                throw ModelError.tensorData(name: name, reason: "header entry lacks dtype, shape or data_offsets")
            }
            guard dims.allSatisfy({ $0 >= 0 }) else { throw ModelError.tensorData(name: name, reason: "negative dimension in shape \(dims)") }
            let begin = offsets[0], end = offsets[1]
            guard begin >= 0, end >= begin else {
                throw ModelError.tensorData(name: name, reason: "data_offsets [\(begin), \(end)] are not an increasing range")
            }
            guard end <= dataSize else {
                throw ModelError.tensorData(name: name, reason: "data ends at byte \(end) but the file holds only \(dataSize) data bytes (truncated)")
            }
            if let width = SafetensorsFile.byteWidth(dtype) {
                // Checked: a crafted shape whose product wraps to the stored byte count must not pass.
                var expected = width
                for d in dims {
                    let (product, overflow) = expected.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw ModelError.tensorData(name: name, reason: "shape \(dims) is too large to address") }
                    expected = product
                }
                guard end - begin == expected else {
                    throw ModelError.tensorData(name: name, reason: "holds \(end - begin) bytes, shape \(dims) as \(dtype) needs \(expected)")
                }
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: dims, begin: begin, end: end)
        }
        // The spec's byte buffer holds each tensor once: two entries that share bytes are damage or a trick.
        let ordered = tensors.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.begin < a.end {
            throw ModelError.safetensorsHeader(path: path, reason: "tensors \(a.name) [\(a.begin), \(a.end)) and \(b.name) [\(b.begin), \(b.end)) share bytes")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    static func byteWidth(_ dtype: String) -> Int? {
        switch dtype {
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "F64", "I64", "U64": return 8
        case "I8", "U8", "BOOL": return 1
        default: return nil
        }
    }

    /// Copies tensor `name` into `destination` as Float32, converting F16/BF16.
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>, expectedShape: [Int]) throws {
        guard let info = tensors[name] else { throw ModelError.tensorMissing(name: name) }
        guard info.shape == expectedShape else { throw ModelError.tensorShape(name: name, expected: expectedShape, got: info.shape) }
        let count = expectedShape.reduce(1, *)
        let start = data.startIndex + dataStart + info.begin
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let src = raw.baseAddress! + (start - data.startIndex)
            switch info.dtype {
            case "F32":
                memcpy(destination, src, count * 4)
            case "BF16":
                for i in 0..<count {
                    let bits = UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16
                    destination[i] = Float(bitPattern: bits)
                }
            case "F16":
                for i in 0..<count {
                    destination[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                }
            default:
                throw ModelError.tensorDtype(name: name, dtype: info.dtype)
            }
        }
        for i in 0..<count where !destination[i].isFinite {
            throw ModelError.tensorData(name: name, reason: "holds a non-finite value at flat index \(i)")
        }
    }

    /// Reads a tensor as Float32 into a new array (tests and fixtures).
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw ModelError.tensorMissing(name: name) }
        if info.dtype == "F64" {
            let count = info.shape.reduce(1, *)
            return try doubles(name).prefix(count).map(Float.init)
        }
        var out = [Float](repeating: 0, count: info.shape.reduce(1, *))
        try out.withUnsafeMutableBufferPointer { try read(name, into: $0.baseAddress!, expectedShape: info.shape) }
        return out
    }

    public func doubles(_ name: String) throws -> [Double] {
        guard let info = tensors[name] else { throw ModelError.tensorMissing(name: name) }
        let count = info.shape.reduce(1, *)
        let start = dataStart + info.begin
        return data.withUnsafeBytes { raw -> [Double] in
            let src = raw.baseAddress! + start
            switch info.dtype {
            case "F64": return (0..<count).map { src.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
            case "F32": return (0..<count).map { Double(src.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self)) }
            case "I32": return (0..<count).map { Double(src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case "I64": return (0..<count).map { Double(src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            default: return []
            }
        }
    }

    /// Writes F32 tensors. The header is padded with spaces to a multiple of 8 bytes, as the reference does.
    public static func write(tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String] = [:], to path: String) throws {
        var header: [String: JSONValue] = [:]
        if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues(JSONValue.string)) }
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * 4
            header[t.name] = ["dtype": "F32", "shape": .array(t.shape.map(JSONValue.integer)),
                              "data_offsets": [.integer(offset), .integer(offset + bytes)]]
            offset += bytes
        }
        var json = try JSONValue.object(header).serialized(compact: true)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors { out.append(UnsafeBufferPointer(start: t.values.baseAddress, count: t.values.count)) }
        try AtomicFile.write(out, to: path)
    }
}

/// IEEE 754 half precision to single precision, including subnormals, infinities and NaN.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1f)
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        let value = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -value : value
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}

/// Writes a file atomically: a temporary file in the same directory, fsync, rename, fsync of the directory.
/// `durable: false` skips both fsyncs, for files that are only ever the latest view of something
/// (readers still never see a partial file; a crash may leave the previous one).
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, durable: Bool = true) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ModelError.unwritable(path: tmp, reason: "cannot create (\(String(cString: strerror(errno))))") }
        var ok = data.withUnsafeBytes { writeAll(fd, $0) }
        if ok, durable { ok = fsync(fd) == 0 }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ModelError.unwritable(path: path, reason: "write failed (\(String(cString: strerror(errno))))")
        }
        guard durable else { return }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Appends `bytes` to `fd` (opened O_APPEND) whole, or takes back what part of it got in (a full
    /// disk): the next record must not begin inside a torn one. False with errno set.
    /// `write` is write(2) but for tests, which cannot fill a disk.
    public static func appendWhole(_ fd: Int32, _ bytes: UnsafeRawBufferPointer,
                                   write: (Int32, UnsafeRawPointer, Int) -> Int = { Foundation.write($0, $1, $2) }) -> Bool {
        var before = stat()
        guard fstat(fd, &before) == 0 else { return false }
        if writeAll(fd, bytes, write: write) { return true }
        let error = errno
        var after = stat()
        if fstat(fd, &after) == 0, after.st_size > before.st_size { _ = ftruncate(fd, before.st_size) }
        errno = error
        return false
    }

    /// Writes all of `bytes` to `fd` (write(2) may take fewer, or be interrupted); false with errno set.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer,
                                write: (Int32, UnsafeRawPointer, Int) -> Int = { Foundation.write($0, $1, $2) }) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }
}
