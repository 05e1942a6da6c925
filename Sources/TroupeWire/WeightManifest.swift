#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import TroupeProto

extension Troupe_V1_DType {
    /// Bytes per element; nil for an unspecified or unknown dtype.
    public var byteSize: Int? {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        default: return nil
        }
    }
}

extension Troupe_V1_TensorInfo {
    /// XXH64 of a tensor's bytes (8 bytes, big-endian), the value of `hash`.
    public static func contentHash(_ bytes: UnsafeRawBufferPointer) -> Data {
        let h = XXH64.digest(bytes)
        return Data((0..<8).map { UInt8(truncatingIfNeeded: h >> (56 - 8 * UInt64($0))) })
    }

    /// Bytes in `hash`.
    public static let hashLength = 8

    /// True if `bytes` (this tensor's slice of the blob) has this tensor's length and hash.
    public func matches(_ bytes: UnsafeRawBufferPointer) -> Bool {
        UInt64(bytes.count) == byteLength && Troupe_V1_TensorInfo.contentHash(bytes) == hash
    }
}

extension Troupe_V1_WeightManifest {
    /// The manifest hash: BLAKE2b-256 over, in this order, each integer as 8 bytes little-endian:
    /// total_bytes, the tensor count, then per tensor in manifest order: name length, name (UTF-8),
    /// dtype enum value, shape rank, each dimension, offset, byte_length, hash length, hash.
    /// Version and chunk size are excluded: equal weights have equal hashes.
    public func computeManifestHash() -> Data {
        var hasher = Blake2b()
        hasher.updateInteger(totalBytes)
        hasher.updateInteger(UInt64(tensors.count))
        for tensor in tensors {
            hasher.updateField(Array(tensor.name.utf8))
            hasher.updateInteger(UInt64(bitPattern: Int64(tensor.dtype.rawValue)))
            hasher.updateInteger(UInt64(tensor.shape.count))
            for dimension in tensor.shape { hasher.updateInteger(dimension) }
            hasher.updateInteger(tensor.offset)
            hasher.updateInteger(tensor.byteLength)
            hasher.updateField(Array(tensor.hash))
        }
        return Data(hasher.finalize())
    }

    /// Sets `manifest_hash` from the other fields.
    public mutating func seal() {
        manifestHash = computeManifestHash()
    }

    /// Checks a received manifest before any chunk is fetched: status OK, a positive chunk size,
    /// at least one tensor, unique non-empty names, known dtypes, byte_length = elements × dtype
    /// size, tensors inside the blob and not overlapping, 8-byte (XXH64) tensor hashes, and a manifest
    /// hash that matches. Throws `WireError` (`invalidField`, or `checksumMismatch` for the hash).
    public func validate() throws(WireError) {
        guard status == .ok else { throw WireError(.invalidField, "manifest status is \(status)") }
        guard chunkSize > 0 else { throw WireError(.invalidField, "manifest chunk_size is 0") }
        guard !tensors.isEmpty else { throw WireError(.invalidField, "manifest lists no tensors") }
        var names = Set<String>()
        for tensor in tensors {
            let label = "tensor \"\(tensor.name)\""
            guard !tensor.name.isEmpty else { throw WireError(.invalidField, "a tensor has an empty name") }
            guard names.insert(tensor.name).inserted else { throw WireError(.invalidField, "\(label) is listed twice") }
            guard let elementSize = tensor.dtype.byteSize else { throw WireError(.invalidField, "\(label): unknown dtype \(tensor.dtype)") }
            var elements: UInt64 = 1
            for dimension in tensor.shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw WireError(.invalidField, "\(label): shape \(tensor.shape) overflows") }
                elements = product
            }
            let (expectedBytes, overflow) = elements.multipliedReportingOverflow(by: UInt64(elementSize))
            guard !overflow, expectedBytes == tensor.byteLength else {
                throw WireError(.invalidField, "\(label): shape \(tensor.shape) of \(tensor.dtype) needs \(expectedBytes) bytes, byte_length is \(tensor.byteLength)")
            }
            let (end, endOverflow) = tensor.offset.addingReportingOverflow(tensor.byteLength)
            guard !endOverflow, end <= totalBytes else {
                throw WireError(.invalidField, "\(label): bytes \(tensor.offset)..<\(end) lie outside the \(totalBytes)-byte blob")
            }
            guard tensor.hash.count == Troupe_V1_TensorInfo.hashLength else {
                throw WireError(.invalidField, "\(label): hash is \(tensor.hash.count) bytes, expected \(Troupe_V1_TensorInfo.hashLength) (XXH64; an older learner sends 32-byte BLAKE2b)")
            }
        }
        let byOffset = tensors.sorted { $0.offset < $1.offset }
        for (previous, next) in zip(byOffset, byOffset.dropFirst()) where previous.offset + previous.byteLength > next.offset {
            throw WireError(.invalidField, "tensors \"\(previous.name)\" and \"\(next.name)\" overlap")
        }
        guard manifestHash == computeManifestHash() else {
            throw WireError(.checksumMismatch, "manifest_hash does not match the manifest's contents")
        }
    }

    /// The first tensor whose bytes in `blob` do not match its hash, or nil when all match. Hashes on
    /// `threads` threads (tensors split into runs of about equal bytes).
    public func firstMismatch(in blob: UnsafeRawBufferPointer, threads: Int = 2) -> String? {
        guard UInt64(blob.count) == totalBytes else { return tensors.first?.name ?? "blob" }
        let parts = Self.partition(tensors.map { Int($0.byteLength) }, into: threads)
        var failures = [Int?](repeating: nil, count: parts.count)
        failures.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out, blob = blob
            DispatchQueue.concurrentPerform(iterations: parts.count) { p in
                for i in parts[p] {
                    let t = tensors[i]
                    let slice = UnsafeRawBufferPointer(rebasing: blob[Int(t.offset)..<Int(t.offset + t.byteLength)])
                    if !t.matches(slice) { out[p] = i; return }
                }
            }
        }
        return failures.compactMap { $0 }.min().map { tensors[$0].name }
    }

    /// Sets every tensor's hash from `blob`, on `threads` threads.
    public mutating func computeTensorHashes(from blob: UnsafeRawBufferPointer, threads: Int = 2) {
        let parts = Self.partition(tensors.map { Int($0.byteLength) }, into: threads)
        var hashes = [Data](repeating: Data(), count: tensors.count)
        let ranges = tensors.map { Int($0.offset)..<Int($0.offset + $0.byteLength) }
        hashes.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out, blob = blob
            DispatchQueue.concurrentPerform(iterations: parts.count) { p in
                for i in parts[p] { out[i] = Troupe_V1_TensorInfo.contentHash(UnsafeRawBufferPointer(rebasing: blob[ranges[i]])) }
            }
        }
        for i in tensors.indices { tensors[i].hash = hashes[i] }
    }

    /// Consecutive runs of indices with about equal total size, at most `count` of them.
    static func partition(_ sizes: [Int], into count: Int) -> [Range<Int>] {
        let total = max(1, sizes.reduce(0, +))
        let parts = max(1, min(count, sizes.count))
        var result: [Range<Int>] = []
        var start = 0, sum = 0
        for (i, size) in sizes.enumerated() {
            sum += size
            if result.count < parts - 1 && sum * parts >= total * (result.count + 1) {
                result.append(start..<(i + 1))
                start = i + 1
            }
        }
        if start < sizes.count || result.isEmpty { result.append(start..<sizes.count) }
        return result
    }

    /// The chunk requests that cover the blob: (offset, length) pairs of at most `chunkSize` bytes.
    public func chunkRanges() -> [(offset: UInt64, length: UInt32)] {
        guard chunkSize > 0 else { return [] }
        return stride(from: UInt64(0), to: totalBytes, by: Int(chunkSize)).map { offset in
            (offset, UInt32(min(UInt64(chunkSize), totalBytes - offset)))
        }
    }
}
