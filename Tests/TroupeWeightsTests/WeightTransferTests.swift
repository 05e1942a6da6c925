import Foundation
import Testing
import TroupeModel
import TroupeProto
import TroupeWeights
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// Weight snapshots and their two ways to an actor: the learner's shared-memory file (same host) and
/// ZeroMQ chunks (every tensor's hash verified either way).
@Suite struct WeightTransferTests {
    let directory: String
    let model: LlamaModel
    let version = PolicyVersion(epoch: 0xABC, step: 7)

    init() throws {
        directory = NSTemporaryDirectory() + "troupe-weights-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = ModelConfig(vocabularySize: 64, hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2)
        model = try LlamaModel.random(config: config, seed: 5)
    }

    var parameterBytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: model.parameters.pointer, count: model.parameters.count * 4))
    }

    func bytes(_ buffer: FloatBuffer) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * 4))
    }

    /// Feeds every requested chunk of `snapshot` to `fetch` (what the learner's weights socket does).
    func pullChunks(_ fetch: WeightFetch, from snapshot: WeightSnapshot, corruptingByte: Int? = nil) throws {
        var requests = fetch.nextRequests()
        while !requests.isEmpty {
            for r in requests {
                let reply = snapshot.chunk(offset: r.offset, length: r.length)
                guard case .chunk(let header) = reply.body else { Issue.record("not a chunk"); return }
                var payload = reply.frames.first!
                if let at = corruptingByte, (Int(r.offset)..<Int(r.offset) + Int(r.length)).contains(at) {
                    var raw = payload.withUnsafeBytes { Array($0) }
                    raw[at - Int(r.offset)] ^= 0x40
                    payload = Frame(raw)
                }
                try fetch.accept(header, payload: payload)
            }
            requests = fetch.nextRequests()
        }
    }

    @Test func chunksArriveVerifiedAndByteExact() throws {
        let (snapshot, problem) = WeightSnapshot.make(model: model, version: version, chunkSize: 1000)
        #expect(problem == nil && snapshot.manifest.sharedMemoryPath.isEmpty)
        let fetch = try WeightFetch(manifest: snapshot.manifest, layout: model.layout, window: 3)
        #expect(!fetch.isComplete && !fetch.mappedSharedMemory && fetch.sharedMemoryProblem == nil)
        try pullChunks(fetch, from: snapshot)
        let parameters = try #require(fetch.parameters)
        #expect(bytes(parameters) == parameterBytes)
        #expect(!fetch.mappedSharedMemory && fetch.lastChunkAt != nil)
    }

    @Test func aCorruptChunkFailsTheHashOfItsTensor() throws {
        let (snapshot, _) = WeightSnapshot.make(model: model, version: version, chunkSize: 1000)
        let target = try #require(model.layout.entries.first { $0.name.hasSuffix("layers.1.mlp.up_proj.weight") })
        let fetch = try WeightFetch(manifest: snapshot.manifest, layout: model.layout)
        #expect { try pullChunks(fetch, from: snapshot, corruptingByte: target.offset * 4 + 9) } throws: { error in
            "\(error)" == "tensor \(target.name) failed its hash check"
        }
        #expect(fetch.parameters == nil)
    }

    @Test func actorsOnTheSameHostMapTheSnapshotWithoutChunks() throws {
        var made: (snapshot: WeightSnapshot, sharedMemoryProblem: String?)? = WeightSnapshot.make(model: model, version: version, sharedMemoryDirectory: directory)
        let path = made!.snapshot.manifest.sharedMemoryPath
        #expect(made!.sharedMemoryProblem == nil)
        #expect(path.hasPrefix(directory + "/" + SharedMemoryWeights.prefix + "\(getpid())-abc-7-"))
        #expect(FileManager.default.fileExists(atPath: path))
        let fetch = try WeightFetch(manifest: made!.snapshot.manifest, layout: model.layout)
        #expect(fetch.isComplete && fetch.mappedSharedMemory && fetch.nextRequests().isEmpty)
        let parameters = try #require(fetch.parameters)
        // The learner drops the version: the name goes, the actor's mapping stays valid.
        made = nil
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(bytes(parameters) == parameterBytes)
        let sampled = try LlamaModel(config: model.config, parameters: parameters)
        #expect(sampled.weightsHash() == model.weightsHash())
    }

    @Test func aDamagedSharedFileIsRefusedNamingTheTensorAndChunksAreFetchedInstead() throws {
        let (snapshot, _) = WeightSnapshot.make(model: model, version: version, sharedMemoryDirectory: directory, chunkSize: 4096)
        let path = snapshot.manifest.sharedMemoryPath
        let target = model.layout.entries[3]
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        handle.seek(toFileOffset: UInt64(target.offset * 4 + 2))
        handle.write(Data([0xFF, 0xEE]))
        handle.closeFile()
        let fetch = try WeightFetch(manifest: snapshot.manifest, layout: model.layout)
        #expect(!fetch.isComplete)
        #expect(fetch.sharedMemoryProblem?.contains("tensor \(target.name)") == true)
        #expect(!fetch.nextRequests().isEmpty)
    }

    @Test func anActorOnAnotherHostIgnoresTheFileAndFetchesChunks() throws {
        let (snapshot, _) = WeightSnapshot.make(model: model, version: version, sharedMemoryDirectory: directory)
        var manifest = snapshot.manifest
        manifest.sharedMemoryPath = "/dev/shm/" + SharedMemoryWeights.prefix + "of-a-learner-on-another-host"
        let fetch = try WeightFetch(manifest: manifest, layout: model.layout)
        #expect(!fetch.isComplete && fetch.sharedMemoryProblem == nil)
        try pullChunks(fetch, from: snapshot)
        #expect(fetch.parameters.map { bytes($0) } == parameterBytes)
    }

    @Test func onlyARegularWeightFileOfTheRightSizeIsMapped() throws {
        let (snapshot, _) = WeightSnapshot.make(model: model, version: version, sharedMemoryDirectory: directory)
        let fifo = directory + "/" + SharedMemoryWeights.prefix + "fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let short = directory + "/" + SharedMemoryWeights.prefix + "short"
        #expect(FileManager.default.createFile(atPath: short, contents: Data([1, 2, 3])))
        let cases = [(fifo, "not a regular file"), (short, "is 3 bytes"), ("/etc/hostname", "not a learner's weight file")]
        for (path, problem) in cases {
            var manifest = snapshot.manifest
            manifest.sharedMemoryPath = path
            let fetch = try WeightFetch(manifest: manifest, layout: model.layout)
            #expect(!fetch.isComplete && fetch.sharedMemoryProblem?.contains(problem) == true, "\(path): \(fetch.sharedMemoryProblem ?? "no problem")")
        }
    }

    @Test func aMissingDirectoryLeavesTheSnapshotInMemoryWithAReason() throws {
        let (snapshot, problem) = WeightSnapshot.make(model: model, version: version, sharedMemoryDirectory: directory + "/absent")
        #expect(problem?.contains("cannot create") == true)
        #expect(snapshot.manifest.sharedMemoryPath.isEmpty)
        #expect(snapshot.blob.withUnsafeBytes { Array($0) } == parameterBytes)
    }

    @Test func sweepingRemovesOnlyFilesOfLearnersThatAreGone() throws {
        // pid 2^22 + 1 is above Linux's pid_max default range: no such process.
        let dead = directory + "/" + SharedMemoryWeights.prefix + "4194305-1-2-ab"
        let mine = directory + "/" + SharedMemoryWeights.prefix + "\(getpid())-1-2-cd"
        let other = directory + "/unrelated-file"
        for p in [dead, mine, other] { #expect(FileManager.default.createFile(atPath: p, contents: Data([1]))) }
        #expect(SharedMemoryWeights.sweep(directory: directory) == 1)
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: mine) && FileManager.default.fileExists(atPath: other))
    }

    @Test func aManifestOfAnotherModelIsRefusedBeforeAnyTransfer() throws {
        let (snapshot, _) = WeightSnapshot.make(model: model, version: version)
        let other = try LlamaModel.random(config: ModelConfig(vocabularySize: 64, hiddenSize: 32, intermediateSize: 48, layers: 3,
                                                                heads: 4, kvHeads: 2), seed: 1)
        #expect { try WeightFetch(manifest: snapshot.manifest, layout: other.layout) } throws: { "\($0)".contains("weight manifest") }
        var tampered = snapshot.manifest
        tampered.tensors[0].hash = Data(repeating: 0, count: 32)
        #expect { try WeightFetch(manifest: tampered, layout: model.layout) } throws: { "\($0)".contains("expected 8") }
    }
}
