import Foundation
import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// An immutable copy of the weights at one version, served in chunks to actors and, when the learner
/// has a shared-memory directory, mapped by actors on the same host. The blob is the flat parameter
/// buffer byte for byte; the manifest lists each tensor with its XXH64 hash.
package struct WeightSnapshot: @unchecked Sendable {
    package let version: PolicyVersion
    package let blob: SharedBuffer
    package let manifest: Troupe_V1_WeightManifest

    package static let defaultChunkSize = 1 << 20

    /// Copies the parameters and hashes every tensor (run off the I/O thread: it reads every byte).
    /// With `sharedMemoryDirectory` the copy goes into a file there (see `SharedMemoryWeights`); if
    /// that fails (no such directory, no room) the snapshot lives in ordinary memory and
    /// `sharedMemoryProblem` says why.
    package static func make(model: LlamaModel, version: PolicyVersion, sharedMemoryDirectory: String? = nil,
                            chunkSize: Int = defaultChunkSize) -> (snapshot: WeightSnapshot, sharedMemoryProblem: String?) {
        let params = model.parameters
        let source = UnsafeRawBufferPointer(start: params.pointer, count: params.count * 4)
        var manifest = Troupe_V1_WeightManifest()
        manifest.status = .ok
        manifest.version = version.proto
        manifest.totalBytes = UInt64(source.count)
        manifest.chunkSize = UInt32(chunkSize)
        manifest.tensors = model.layout.entries.map { e in
            var t = Troupe_V1_TensorInfo()
            t.name = e.name
            t.shape = e.shape.map(UInt64.init)
            t.dtype = .f32
            t.offset = UInt64(e.offset * 4)
            t.byteLength = UInt64(e.count * 4)
            return t
        }
        var blob: SharedBuffer?
        var problem: String?
        if let directory = sharedMemoryDirectory, !directory.isEmpty {
            do {
                let (buffer, path) = try SharedMemoryWeights.create(directory: directory, epoch: version.epoch, step: version.step,
                                                                    bytes: source.count) { $0.copyMemory(from: source) }
                blob = buffer
                manifest.sharedMemoryPath = path
            } catch {
                problem = "\(error)"
            }
        }
        let filled = blob ?? SharedBuffer(copying: source)
        filled.withUnsafeBytes { manifest.computeTensorHashes(from: $0) }
        manifest.seal()
        return (WeightSnapshot(version: version, blob: filled, manifest: manifest), problem)
    }

    /// The reply to a chunk request: OK with a zero-copy view of the blob, or why not.
    package func chunk(offset: UInt64, length: UInt32) -> WireMessage {
        var c = Troupe_V1_Chunk()
        c.version = version.proto
        c.offset = offset
        // A request is untrusted: an offset near 2^64 must be refused, not overflow.
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard length > 0, length <= manifest.chunkSize, !overflow, end <= UInt64(blob.count) else {
            c.status = .outOfRange
            return WireMessage(.chunk(c))
        }
        c.status = .ok
        return WireMessage(.chunk(c), frames: [Frame(sharing: blob, range: Int(offset)..<Int(end))])
    }
}

/// The actor's side of a weight transfer: checks the manifest against the model it expects, then
/// either maps the learner's shared-memory file (same host) or pulls chunks with a window of requests
/// in flight; every tensor's hash is verified before the parameters are handed over. The socket I/O
/// is the caller's.
package final class WeightFetch {
    package enum Problem: Error, CustomStringConvertible {
        case manifest(String)
        case tensorHash(String)
        case versionGone
        package var description: String {
            switch self {
            case .manifest(let s): return "weight manifest: \(s)"
            case .tensorHash(let n): return "tensor \(n) failed its hash check"
            case .versionGone: return "the learner no longer serves that version"
            }
        }
    }

    package let version: PolicyVersion
    package let manifest: Troupe_V1_WeightManifest
    package let window: Int
    private let floats: Int
    private var staging: FloatBuffer?
    /// The staging buffer as zero-copy frames for the relay: each chunk's range is written once,
    /// before any frame over it exists, so the bytes a frame shares never change.
    private var servable: SharedBuffer?
    private var nextOffset: UInt64 = 0
    private var outstanding: Set<UInt64> = []
    private var received: UInt64 = 0
    package let startedAt = Date()
    /// Verified parameters, once complete: the mapped shared-memory file or the filled staging buffer.
    package private(set) var parameters: FloatBuffer?
    /// Why the shared-memory file offered by the manifest was not used (nil: used, or none offered).
    package private(set) var sharedMemoryProblem: String?

    package init(manifest: Troupe_V1_WeightManifest, layout: ParameterLayout, window: Int = 8) throws {
        guard manifest.status == .ok else { throw Problem.versionGone }
        do { try manifest.validate() } catch { throw Problem.manifest(error.detail) }
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
        self.manifest = manifest
        version = PolicyVersion(manifest.version)
        floats = layout.totalCount
        self.window = window
        do {
            parameters = try SharedMemoryWeights.map(manifest, floats: floats)
        } catch {
            sharedMemoryProblem = "\(error)"
        }
    }

    package var isComplete: Bool { parameters != nil }
    /// True when the weights came from the learner's shared memory, without chunks.
    package var mappedSharedMemory: Bool { parameters != nil && staging == nil }

    /// Chunk requests to send now so that `window` are in flight (none once complete).
    package func nextRequests() -> [Troupe_V1_ChunkRequest] {
        var out: [Troupe_V1_ChunkRequest] = []
        while parameters == nil && outstanding.count < window && nextOffset < manifest.totalBytes {
            let r = request(at: nextOffset)
            outstanding.insert(nextOffset)
            nextOffset += UInt64(r.length)
            out.append(r)
        }
        return out
    }

    /// Stores a chunk; ignores chunks of another version or offsets not asked for. After the last
    /// chunk it verifies every tensor (throwing `tensorHash` for the first bad one) and completes.
    package func accept(_ chunk: Troupe_V1_Chunk, payload: Frame?) throws {
        if chunk.status == .versionGone { throw Problem.versionGone }
        guard parameters == nil, chunk.status == .ok, PolicyVersion(chunk.version) == version, outstanding.contains(chunk.offset), let payload else { return }
        guard payload.count == expectedLength(at: chunk.offset) else { throw Problem.manifest("chunk at \(chunk.offset) is \(payload.count) bytes") }
        outstanding.remove(chunk.offset)
        let staging = self.staging ?? makeStaging()
        payload.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(staging.pointer).advanced(by: Int(chunk.offset)).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        }
        received += UInt64(payload.count)
        if received == manifest.totalBytes {
            lastChunkAt = monotonicSeconds()
            if let bad = manifest.firstMismatch(in: UnsafeRawBufferPointer(start: staging.pointer, count: floats * 4)) {
                throw Problem.tensorHash(bad)
            }
            parameters = staging
        }
    }

    /// When the last chunk arrived (monotonic seconds; nil for a mapped or unfinished transfer).
    package private(set) var lastChunkAt: Double?

    /// Requests for every chunk asked for and not yet here, to send to another source (the relay
    /// upstream went quiet); the window stays as it was.
    package func reissueOutstanding() -> [Troupe_V1_ChunkRequest] { outstanding.sorted().map(request(at:)) }

    private func request(at offset: UInt64) -> Troupe_V1_ChunkRequest {
        var r = Troupe_V1_ChunkRequest()
        r.version = manifest.version
        r.offset = offset
        r.length = UInt32(expectedLength(at: offset))
        return r
    }

    /// A zero-copy frame of a chunk this transfer holds, for actors fetching through this one;
    /// nil when it is not here (yet), or the request is not one of the manifest's chunks. Chunks are
    /// requested in order, so one is here once it was asked for and is no longer outstanding.
    package func heldChunk(offset: UInt64, length: UInt32) -> Frame? {
        guard let servable, isChunk(offset: offset, length: length), offset < nextOffset, !outstanding.contains(offset) else { return nil }
        return Frame(sharing: servable, range: Int(offset)..<Int(offset) + Int(length))
    }

    /// True when `offset`/`length` names one of the manifest's chunks.
    package func isChunk(offset: UInt64, length: UInt32) -> Bool {
        offset % UInt64(max(1, manifest.chunkSize)) == 0 && offset < manifest.totalBytes && Int(length) == expectedLength(at: offset)
    }

    private func expectedLength(at offset: UInt64) -> Int {
        Int(min(UInt64(manifest.chunkSize), manifest.totalBytes - min(offset, manifest.totalBytes)))
    }

    private func makeStaging() -> FloatBuffer {
        let buffer = FloatBuffer(count: floats, zeroed: false)
        staging = buffer
        // The closure holds the staging buffer, so a frame in flight keeps its memory alive.
        servable = SharedBuffer(adopting: UnsafeMutableRawPointer(buffer.pointer), count: floats * 4) { _, _ in _ = buffer }
        return buffer
    }
}
