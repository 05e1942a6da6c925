#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TroupeProto
import TroupeWire

/// One populated message of every kind, with the raw frames it carries.
func sampleMessages() -> [WireMessage] {
    let version = Troupe_V1_PolicyVersion(epoch: 0xDEAD_BEEF_0000_0001, step: 42)

    var hello = Troupe_V1_Hello()
    hello.actorIdentity = "actor/node12-4711"
    hello.actorRunID = 0x0123_4567_89AB_CDEF
    hello.protocolMajor = WireProtocol.major
    hello.protocolMinor = WireProtocol.minor
    hello.buildID = "troupe 0.1.0 (abc1234)"
    hello.capabilities = ["entropy", "batched-sampling"]
    hello.threadCount = 2

    var welcome = Troupe_V1_Welcome()
    welcome.learnerEpoch = version.epoch
    welcome.currentVersion = version
    welcome.runID = "run-2026-11-27"
    welcome.configDigest = Data([1, 2, 3, 4])
    welcome.credit = 4
    welcome.heartbeatIntervalMs = 1000
    welcome.leaseSize = 8
    welcome.weightsEndpoint = "tcp://learner:5556"
    welcome.announceEndpoint = "tcp://learner:5557"
    welcome.logsEndpoint = "tcp://learner:5558"
    welcome.maxStaleness = 4
    welcome.configJson = "{\"model\":\"small\"}"

    var reject = Troupe_V1_Reject()
    reject.reason = .protocolMajor
    reject.text = "protocol major 2, learner speaks 1"

    var leaseRequest = Troupe_V1_LeaseRequest()
    leaseRequest.maxPrompts = 8

    var sampling = Troupe_V1_SamplingParams()
    sampling.temperature = 0.8
    sampling.topK = 50
    sampling.topP = 0.95
    sampling.maxTokens = 256
    sampling.stopSequences = ["\n\n", "</answer>"]
    sampling.seed = 1234
    var prompt = Troupe_V1_Prompt()
    prompt.promptID = 77
    prompt.text = "What is 12 × 13? Ünïcødé"
    prompt.tokenIds = [1, 2, 3, 50_000]
    prompt.groupSize = 4
    prompt.sampling = sampling
    prompt.referenceAnswer = "156"
    prompt.task = "arithmetic"
    var lease = Troupe_V1_Lease()
    lease.leaseID = 9
    lease.deadlineMs = 30_000
    lease.prompts = [prompt, prompt]
    lease.minVersion = Troupe_V1_PolicyVersion(epoch: version.epoch, step: 38)

    var ack = Troupe_V1_Ack()
    ack.sequence = 17
    ack.status = .rejected
    ack.rejectReason = .stale
    ack.text = "5 versions behind"
    ack.creditGranted = 1
    ack.currentVersion = version

    var stats = Troupe_V1_ActorStats()
    stats.groupsProduced = 100
    stats.tokensPerSecond = 1234.5
    stats.idleRatio = 0.05
    stats.unackedGroups = 2
    stats.weightsVersion = version
    var heartbeat = Troupe_V1_Heartbeat()
    heartbeat.stats = stats
    heartbeat.currentVersion = version

    var bye = Troupe_V1_Bye()
    bye.reason = "SIGTERM"

    var manifestRequest = Troupe_V1_WeightManifestRequest()
    manifestRequest.version = version

    var tensor = Troupe_V1_TensorInfo()
    tensor.name = "model.layers.0.self_attn.q_proj.weight"
    tensor.shape = [64, 64]
    tensor.dtype = .f32
    tensor.offset = 0
    tensor.byteLength = 64 * 64 * 4
    tensor.hash = Data(repeating: 7, count: 32)
    var manifest = Troupe_V1_WeightManifest()
    manifest.status = .ok
    manifest.version = version
    manifest.totalBytes = 64 * 64 * 4
    manifest.chunkSize = 4096
    manifest.tensors = [tensor]
    manifest.manifestHash = Data(repeating: 9, count: 32)

    var chunkRequest = Troupe_V1_ChunkRequest()
    chunkRequest.version = version
    chunkRequest.offset = 4096
    chunkRequest.length = 4096

    var chunk = Troupe_V1_Chunk()
    chunk.status = .ok
    chunk.version = version
    chunk.offset = 4096

    var announce = Troupe_V1_WeightAnnounce()
    announce.version = version
    announce.manifestHash = Data(repeating: 9, count: 32)
    announce.totalBytes = 16384

    var event = Troupe_V1_LogEvent()
    event.source = "learner"
    event.sourceRunID = 5
    event.sequence = 12
    event.wallTimeUnixNs = 1_790_000_000_000_000_000
    event.kind = "step"
    event.step = 42
    event.metrics = ["loss": 0.25, "mismatch_kl": 1e-6, "tokens_per_s": 5000]
    event.fields = ["preset": "cispo"]
    event.text = "step 42"

    var sourceRequest = Troupe_V1_WeightSourceRequest()
    sourceRequest.version = version
    sourceRequest.relayEndpoint = "tcp://10.0.0.7:40123"
    sourceRequest.actorIdentity = "node-7"
    sourceRequest.actorRunID = 77

    var source = Troupe_V1_WeightSource()
    source.version = version
    source.upstreamEndpoint = "tcp://10.0.0.3:40001"
    source.depth = 2

    var relayPeers = Troupe_V1_RelayPeers()
    relayPeers.publicKeys = ["node-7": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "node-8": "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"]

    return [
        WireMessage(.hello(hello)),
        WireMessage(.welcome(welcome)),
        WireMessage(.reject(reject)),
        WireMessage(.leaseRequest(leaseRequest)),
        WireMessage(.lease(lease)),
        sampleGroup(entropies: false).wireMessage(),
        sampleGroup(entropies: true).wireMessage(),
        WireMessage(.ack(ack)),
        WireMessage(.heartbeat(heartbeat)),
        WireMessage(.bye(bye)),
        WireMessage(.weightManifestRequest(manifestRequest)),
        WireMessage(.weightManifest(manifest)),
        WireMessage(.chunkRequest(chunkRequest)),
        WireMessage(.chunk(chunk), frames: [Frame((0..<4096).map { UInt8(truncatingIfNeeded: $0) })]),
        WireMessage(.weightAnnounce(announce)),
        WireMessage(.logEvent(event)),
        WireMessage(.weightSourceRequest(sourceRequest)),
        WireMessage(.weightSource(source)),
        WireMessage(.relayPeers(relayPeers)),
    ]
}

/// A group of 3 samples with 2, 0 and 3 tokens.
func sampleGroup(entropies: Bool) -> GroupSubmission {
    var header = Troupe_V1_GroupSubmit()
    header.leaseID = 9
    header.promptID = 77
    header.sequence = 3
    header.version = Troupe_V1_PolicyVersion(epoch: 0xDEAD_BEEF_0000_0001, step: 41)
    header.actorRunID = 0x0123_4567_89AB_CDEF
    header.generationMs = 850
    header.samples = [(2, Troupe_V1_FinishReason.stop, "156", 1.0), (0, .length, nil, 0.0), (3, .stop, "155", 0.0)].map { count, finish, answer, reward in
        var sample = Troupe_V1_SampleInfo()
        sample.tokenCount = UInt32(count)
        sample.finishReason = finish
        sample.temperature = 0.8
        if let answer { sample.extractedAnswer = answer }
        sample.reward = reward
        sample.rewardComponents = ["correct": reward, "format": 0.5]
        return sample
    }
    return GroupSubmission(header: header, tokenIDs: [10, 11, 20, 21, 22], logProbs: [-0.1, -2.5, -0.01, -0.7, -1.2],
                           entropies: entropies ? [0.5, 1.0, 0.1, 0.2, 0.3] : nil)
}

/// Seals a hand-built header the way envelope.proto specifies (for tests that need an Envelope
/// `WireMessage.encode` would never produce).
func sealed(_ envelope: Troupe_V1_Envelope, rawFrames: [Frame] = [], extraHeaderBytes: [UInt8] = []) throws -> [Frame] {
    var header: [UInt8] = try envelope.serializedBytes()
    header += extraHeaderBytes
    var hasher = XXH64()
    hasher.update(header)
    for frame in rawFrames { hasher.update(frame.bytes) }
    let digest = hasher.finalize()
    header += [0x7A, 0x08] + (0..<8).map { UInt8(truncatingIfNeeded: digest >> (56 - 8 * $0)) }
    return [Frame(header)] + rawFrames
}

func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
}
