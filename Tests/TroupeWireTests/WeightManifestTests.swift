#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
import TroupeProto
import TroupeWire

/// Two f32 tensors in a 40-byte blob: a (2, 3) matrix and a (4) vector.
private func sampleManifest() -> (Troupe_V1_WeightManifest, [UInt8]) {
    let blob = (0..<40).map { UInt8($0) }
    func tensor(_ name: String, _ shape: [UInt64], offset: Int, length: Int) -> Troupe_V1_TensorInfo {
        var info = Troupe_V1_TensorInfo()
        info.name = name
        info.shape = shape
        info.dtype = .f32
        info.offset = UInt64(offset)
        info.byteLength = UInt64(length)
        info.hash = blob[offset..<(offset + length)].withUnsafeBytes { Troupe_V1_TensorInfo.contentHash($0) }
        return info
    }
    var manifest = Troupe_V1_WeightManifest()
    manifest.status = .ok
    manifest.version = Troupe_V1_PolicyVersion(epoch: 1, step: 2)
    manifest.totalBytes = 40
    manifest.chunkSize = 16
    manifest.tensors = [tensor("w", [2, 3], offset: 0, length: 24), tensor("b", [4], offset: 24, length: 16)]
    manifest.seal()
    return (manifest, blob)
}

@Test func validManifestPassesAndTensorsVerify() throws {
    let (manifest, blob) = sampleManifest()
    try manifest.validate()
    #expect(manifest.manifestHash.count == 32)
    #expect(blob[0..<24].withUnsafeBytes { manifest.tensors[0].matches($0) })
    var corrupted = blob
    corrupted[5] ^= 1
    #expect(!corrupted[0..<24].withUnsafeBytes { manifest.tensors[0].matches($0) })
    #expect(manifest.chunkRanges().map(\.offset) == [0, 16, 32])
    #expect(manifest.chunkRanges().map(\.length) == [16, 16, 8])

    // The hash covers content, not the version.
    var nextVersion = manifest
    nextVersion.version.step += 1
    #expect(nextVersion.computeManifestHash() == manifest.manifestHash)
}

@Test func invalidManifestsAreRejectedWithTheField() {
    func problem(_ edit: (inout Troupe_V1_WeightManifest) -> Void, reseal: Bool = true) -> WireError? {
        var (manifest, _) = sampleManifest()
        edit(&manifest)
        if reseal { manifest.seal() }
        do {
            try manifest.validate()
            return nil
        } catch {
            return error
        }
    }
    #expect(problem({ $0.tensors[0].shape = [3, 3] })?.detail.contains("needs 36 bytes") == true)
    #expect(problem({ $0.tensors[1].offset = 20 })?.detail.contains("overlap") == true)
    #expect(problem({ $0.tensors[1].offset = 30 })?.detail.contains("outside") == true)
    #expect(problem({ $0.tensors[1].name = "w" })?.detail.contains("twice") == true)
    #expect(problem({ $0.tensors[1].dtype = .unspecified })?.detail.contains("unknown dtype") == true)
    #expect(problem({ $0.tensors[0].hash = Data([1]) })?.detail.contains("hash is 1 bytes") == true)
    #expect(problem({ $0.chunkSize = 0 })?.reason == .invalidField)
    #expect(problem({ $0.status = .versionGone })?.reason == .invalidField)
    #expect(problem({ $0.tensors = [] })?.reason == .invalidField)
    #expect(problem({ $0.tensors[0].shape = [UInt64.max, 2] })?.detail.contains("overflows") == true)
    #expect(problem({ $0.tensors[0].byteLength = 20 }, reseal: false)?.reason == .invalidField)
    #expect(problem({ $0.totalBytes = 41 }, reseal: false)?.reason == .checksumMismatch)
}

@Test func socketProfilesApplyToTheirSocketTypes() throws {
    let context = try ZMQContext()
    let router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
    try router.set(SocketProfile.learnerRouter(limits: .control))
    let dealer = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
    try dealer.set(SocketProfile.actorDealer(limits: .weights, routingID: Array("actor-7".utf8)))
    let publisher = try ZMQSocket(context, type: .publish, linger: .discardUnsent)
    try publisher.set(SocketProfile.announcePublisher())
    let subscriber = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
    try subscriber.set(SocketProfile.subscriber())
    let logs = try ZMQSocket(context, type: .publish, linger: .upTo(milliseconds: 500))
    try logs.set(SocketProfile.logPublisher())
    #expect(SocketProfile.highWaterMark(budgetBytes: 64 << 20, largestMessageBytes: 1 << 20) == 64)
    #expect(SocketProfile.highWaterMark(budgetBytes: 1, largestMessageBytes: 1 << 20) == 1)
    // An option the socket type does not support is an error, not silently ignored.
    #expect(throws: ZMQError.self) { try dealer.set(.subscribe([])) }
}

@Test func tensorHashesAreXXH64BigEndianAndMismatchesAreFoundOnAnyThreadCount() {
    var (manifest, blob) = sampleManifest()
    #expect(manifest.tensors[0].hash == Data((0..<8).map { UInt8(truncatingIfNeeded: blob[0..<24].withUnsafeBytes { XXH64.digest($0) } >> (56 - 8 * UInt64($0))) }))
    let expected = manifest.tensors.map(\.hash)
    for t in manifest.tensors.indices { manifest.tensors[t].hash = Data() }
    blob.withUnsafeBytes { manifest.computeTensorHashes(from: $0, threads: 3) }
    #expect(manifest.tensors.map(\.hash) == expected)
    for threads in [1, 2, 8] {
        #expect(blob.withUnsafeBytes { manifest.firstMismatch(in: $0, threads: threads) } == nil)
        var bad = blob
        bad[30] ^= 0x10
        #expect(bad.withUnsafeBytes { manifest.firstMismatch(in: $0, threads: threads) } == "b")
        bad[1] ^= 0x10
        #expect(bad.withUnsafeBytes { manifest.firstMismatch(in: $0, threads: threads) } == "w", "the first bad tensor in manifest order")
    }
    #expect(Array(blob.prefix(39)).withUnsafeBytes { manifest.firstMismatch(in: $0) } != nil, "a short blob never passes")
}
