import Foundation
import TroupeModel
import TroupeProto
import TroupeTensor
import TroupeWire

/// An immutable copy of the weights at one version, served in chunks to actors. The blob is the
/// flat parameter buffer byte for byte; the manifest lists each tensor with its BLAKE2b-256 hash.
public struct WeightSnapshot: @unchecked Sendable {
    public let version: PolicyVersion
    public let blob: SharedBuffer
    public let manifest: Troupe_V1_WeightManifest

    public static let defaultChunkSize = 1 << 20

    /// Copies the parameters and hashes every tensor (run off the I/O thread: it reads every byte).
    public static func make(model: LlamaModel, version: PolicyVersion, chunkSize: Int = defaultChunkSize) -> WeightSnapshot {
        let params = model.parameters
        let blob = SharedBuffer(copying: UnsafeRawBufferPointer(start: params.pointer, count: params.count * 4))
        var manifest = Troupe_V1_WeightManifest()
        manifest.status = .ok
        manifest.version = version.proto
        manifest.totalBytes = UInt64(blob.count)
        manifest.chunkSize = UInt32(chunkSize)
        blob.withUnsafeBytes { raw in
            for e in model.layout.entries {
                var t = Troupe_V1_TensorInfo()
                t.name = e.name
                t.shape = e.shape.map(UInt64.init)
                t.dtype = .f32
                t.offset = UInt64(e.offset * 4)
                t.byteLength = UInt64(e.count * 4)
                t.hash = Data(Blake2b.hash(UnsafeRawBufferPointer(rebasing: raw[(e.offset * 4)..<((e.offset + e.count) * 4)])))
                manifest.tensors.append(t)
            }
        }
        manifest.manifestHash = Data(manifestHash(manifest.tensors))
        return WeightSnapshot(version: version, blob: blob, manifest: manifest)
    }

    public static func manifestHash(_ tensors: [Troupe_V1_TensorInfo]) -> [UInt8] {
        var h = Blake2b()
        for t in tensors {
            h.updateField(Array(t.name.utf8))
            h.updateInteger(UInt64(t.shape.count))
            for d in t.shape { h.updateInteger(d) }
            h.updateInteger(UInt64(t.dtype.rawValue))
            h.updateInteger(t.offset)
            h.updateInteger(t.byteLength)
            h.updateField(Array(t.hash))
        }
        return h.finalize()
    }

    /// The reply to a chunk request: OK with a zero-copy view of the blob, or why not.
    public func chunk(offset: UInt64, length: UInt32) -> WireMessage {
        var c = Troupe_V1_Chunk()
        c.version = version.proto
        c.offset = offset
        let end = offset + UInt64(length)
        guard length > 0, length <= manifest.chunkSize, end <= UInt64(blob.count) else {
            c.status = .outOfRange
            return WireMessage(.chunk(c))
        }
        c.status = .ok
        return WireMessage(.chunk(c), frames: [Frame(sharing: blob, range: Int(offset)..<Int(end))])
    }
}

extension PolicyVersion {
    public var proto: Troupe_V1_PolicyVersion {
        var v = Troupe_V1_PolicyVersion()
        v.epoch = epoch
        v.step = step
        return v
    }
    public init(_ p: Troupe_V1_PolicyVersion) { self.init(epoch: p.epoch, step: p.step) }
}

/// The actor's side of a weight transfer: checks the manifest against the model it expects, pulls
/// chunks with a window of requests in flight, verifies every tensor's hash, then hands over a
/// complete parameter buffer. Pure state machine: the caller does the socket I/O.
public final class WeightFetch {
    public enum Problem: Error, CustomStringConvertible {
        case manifest(String)
        case tensorHash(String)
        case versionGone
        public var description: String {
            switch self {
            case .manifest(let s): return "weight manifest: \(s)"
            case .tensorHash(let n): return "tensor \(n) failed its hash check"
            case .versionGone: return "the learner no longer serves that version"
            }
        }
    }

    public let version: PolicyVersion
    public let manifest: Troupe_V1_WeightManifest
    public let staging: FloatBuffer
    public let window: Int
    private var nextOffset: UInt64 = 0
    private var outstanding: Set<UInt64> = []
    private var received: UInt64 = 0
    public let startedAt = Date()

    public init(manifest: Troupe_V1_WeightManifest, layout: ParameterLayout, window: Int = 8) throws {
        guard manifest.status == .ok else { throw Problem.versionGone }
        guard manifest.chunkSize > 0 else { throw Problem.manifest("chunk size 0") }
        guard manifest.totalBytes == UInt64(layout.totalCount * 4) else {
            throw Problem.manifest("\(manifest.totalBytes) bytes, this model needs \(layout.totalCount * 4)")
        }
        guard manifest.tensors.count == layout.entries.count else {
            throw Problem.manifest("\(manifest.tensors.count) tensors, this model has \(layout.entries.count)")
        }
        for (t, e) in zip(manifest.tensors, layout.entries) {
            guard t.name == e.name, t.shape == e.shape.map(UInt64.init), t.offset == UInt64(e.offset * 4),
                  t.byteLength == UInt64(e.count * 4), t.dtype == .f32 else {
                throw Problem.manifest("tensor \(t.name) \(t.shape) does not match \(e.name) \(e.shape)")
            }
        }
        guard Array(manifest.manifestHash) == WeightSnapshot.manifestHash(manifest.tensors) else {
            throw Problem.manifest("manifest hash does not match its tensor list")
        }
        self.manifest = manifest
        version = PolicyVersion(manifest.version)
        staging = FloatBuffer(count: layout.totalCount, zeroed: false)
        self.window = window
    }

    public var isComplete: Bool { received == manifest.totalBytes }

    /// Chunk requests to send now so that `window` are in flight.
    public func nextRequests() -> [Troupe_V1_ChunkRequest] {
        var out: [Troupe_V1_ChunkRequest] = []
        while outstanding.count < window && nextOffset < manifest.totalBytes {
            var r = Troupe_V1_ChunkRequest()
            r.version = manifest.version
            r.offset = nextOffset
            r.length = UInt32(min(UInt64(manifest.chunkSize), manifest.totalBytes - nextOffset))
            outstanding.insert(nextOffset)
            nextOffset += UInt64(r.length)
            out.append(r)
        }
        return out
    }

    /// Stores a chunk; ignores chunks of another version or offsets not asked for.
    public func accept(_ chunk: Troupe_V1_Chunk, payload: Frame?) throws {
        if chunk.status == .versionGone { throw Problem.versionGone }
        guard chunk.status == .ok, PolicyVersion(chunk.version) == version, outstanding.contains(chunk.offset), let payload else { return }
        guard chunk.offset + UInt64(payload.count) <= manifest.totalBytes else { throw Problem.manifest("chunk past the end") }
        outstanding.remove(chunk.offset)
        payload.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(staging.pointer).advanced(by: Int(chunk.offset)).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        }
        received += UInt64(payload.count)
    }

    /// Verifies every tensor against its manifest hash.
    public func verify() throws {
        let raw = UnsafeRawBufferPointer(start: staging.pointer, count: staging.count * 4)
        for t in manifest.tensors {
            let slice = UnsafeRawBufferPointer(rebasing: raw[Int(t.offset)..<Int(t.offset + t.byteLength)])
            guard Blake2b.hash(slice) == Array(t.hash) else { throw Problem.tensorHash(t.name) }
        }
    }
}
