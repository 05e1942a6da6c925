import Foundation
import TroupeProto

/// The golden messages of the wire conformance check (docs/PROTOCOL.md §11): every body kind of the
/// Envelope, with typical and edge values (empty messages, the largest and smallest integers, negative
/// packed ints, infinities, signed zero and subnormals, multi-byte UTF-8, long strings, repeated
/// fields, maps, nested messages, an enum value the .proto does not name). No NaN (it is not equal to
/// itself, so "decoded equal" could not be checked) and no U+0000 in strings (protobuf-c holds strings
/// as C strings, so a NUL ends them there).
enum Goldens {
    static func version(_ epoch: UInt64, _ step: UInt64) -> Troupe_V1_PolicyVersion {
        var v = Troupe_V1_PolicyVersion()
        v.epoch = epoch
        v.step = step
        return v
    }

    static func envelope(_ body: Troupe_V1_Envelope.OneOf_Body?, major: UInt32 = 2, minor: UInt32 = 2) -> Troupe_V1_Envelope {
        var e = Troupe_V1_Envelope()
        e.protocolMajor = major
        e.protocolMinor = minor
        e.body = body
        return e
    }

    static let unicode = "ü 日本語 🚀 e\u{301} \u{7F} Ω\tnew\nline \"quoted\" \\back"

    /// Name → message, in a fixed order; the names are the files' stems.
    static let all: [(String, Troupe_V1_Envelope)] = {
        var list: [(String, Troupe_V1_Envelope)] = []

        list.append(("empty-envelope", Troupe_V1_Envelope()))

        var hello = Troupe_V1_Hello()
        hello.actorIdentity = "py-actor-1"
        hello.actorRunID = 0x0123_4567_89AB_CDEF
        hello.protocolMajor = 2
        hello.protocolMinor = 2
        hello.buildID = "troupe 0.1 (abc1234)"
        hello.capabilities = ["entropies", "relay"]
        hello.threadCount = 4
        list.append(("hello", envelope(.hello(hello))))

        var helloMax = Troupe_V1_Hello()
        helloMax.actorIdentity = "actor-" + unicode
        helloMax.actorRunID = .max
        helloMax.protocolMajor = .max
        helloMax.protocolMinor = .max
        helloMax.capabilities = ["", "x", unicode, String(repeating: "long ", count: 40)]
        helloMax.threadCount = .max
        var maxEnvelope = envelope(.hello(helloMax), major: .max, minor: .max)
        maxEnvelope.frameCount = .max
        maxEnvelope.frameLengths = [0, 1, 127, 128, 16_384, .max]
        maxEnvelope.checksum = Data([0xFF, 0x00, 0x7A, 0x08, 0x80, 0x7F, 0x01, 0xFE])
        list.append(("hello-max", maxEnvelope))

        var welcome = Troupe_V1_Welcome()
        welcome.learnerEpoch = 0xFEDC_BA98_7654_3210
        welcome.currentVersion = version(0xFEDC_BA98_7654_3210, 0)
        welcome.runID = "run-" + unicode
        welcome.configDigest = Data((0..<32).map { UInt8($0 * 8 + 7) })
        welcome.credit = 16
        welcome.heartbeatIntervalMs = 2000
        welcome.leaseSize = 1
        welcome.weightsEndpoint = "tcp://127.0.0.1:5556"
        welcome.announceEndpoint = "tcp://127.0.0.1:5557"
        welcome.logsEndpoint = "tcp://[::1]:5559"
        welcome.maxStaleness = 0
        welcome.configJson = #"{"config":{"run":{"name":"ü"}},"model_files":{"config.json":"{}"},"text":""# + String(repeating: "x", count: 20_000) + #""}"#
        list.append(("welcome", envelope(.welcome(welcome))))

        var reject = Troupe_V1_Reject()
        reject.reason = .configMismatch
        reject.text = "identity \"a1\" is in use by a live actor: " + unicode
        list.append(("reject", envelope(.reject(reject))))
        var rejectUnknown = Troupe_V1_Reject()
        rejectUnknown.reason = .UNRECOGNIZED(99)
        list.append(("reject-unnamed-reason", envelope(.reject(rejectUnknown), major: 3, minor: 0)))

        list.append(("lease-request-empty", envelope(.leaseRequest(Troupe_V1_LeaseRequest()))))
        var leaseRequest = Troupe_V1_LeaseRequest()
        leaseRequest.maxPrompts = .max
        list.append(("lease-request", envelope(.leaseRequest(leaseRequest))))

        var sampling = Troupe_V1_SamplingParams()
        sampling.temperature = 0.7
        sampling.topK = 40
        sampling.topP = 0.95
        sampling.maxTokens = 8
        sampling.stopSequences = ["\n", "🚀", "</answer>"]
        sampling.seed = .max
        var p1 = Troupe_V1_Prompt()
        p1.promptID = 0
        p1.text = "12+34="
        p1.tokenIds = [49, 50, 43, 51, 52, 61]
        p1.groupSize = 16
        p1.sampling = sampling
        p1.referenceAnswer = "46"
        p1.task = "arith:add2"
        var p2 = Troupe_V1_Prompt()
        p2.promptID = .max
        p2.text = unicode
        p2.tokenIds = [0, -1, .min, .max, 127, 128, -128]
        p2.groupSize = .max
        var edgeSampling = Troupe_V1_SamplingParams()
        edgeSampling.temperature = .greatestFiniteMagnitude
        edgeSampling.topP = .leastNonzeroMagnitude
        p2.sampling = edgeSampling
        p2.task = "file"
        var lease = Troupe_V1_Lease()
        lease.leaseID = 7
        lease.deadlineMs = 60_000
        lease.prompts = [p1, p2, Troupe_V1_Prompt()]
        lease.minVersion = version(1, 41)
        list.append(("lease", envelope(.lease(lease))))
        list.append(("lease-empty", envelope(.lease(Troupe_V1_Lease()))))

        var s1 = Troupe_V1_SampleInfo()
        s1.tokenCount = 3
        s1.finishReason = .stop
        s1.temperature = 1
        s1.extractedAnswer = "46"
        s1.reward = 1
        s1.rewardComponents = ["base": 1, "format": -0.5, "overlong": -0.0, unicode: .leastNonzeroMagnitude]
        var s2 = Troupe_V1_SampleInfo()
        s2.tokenCount = .max
        s2.finishReason = .length
        s2.temperature = -.infinity
        s2.reward = .greatestFiniteMagnitude
        var s3 = Troupe_V1_SampleInfo()
        s3.finishReason = .UNRECOGNIZED(7)
        s3.temperature = -0.0
        s3.extractedAnswer = unicode
        s3.reward = -.infinity
        s3.rewardComponents = ["": .infinity]
        var group = Troupe_V1_GroupSubmit()
        group.leaseID = 7
        group.promptID = 3
        group.sequence = 1
        group.version = version(0xFEDC_BA98_7654_3210, 12)
        var s4 = Troupe_V1_SampleInfo()
        s4.extractedAnswer = ""  // present but empty: protobuf-c 1.4 cannot tell it from absent
        group.samples = [s1, s2, s3, Troupe_V1_SampleInfo(), s4]
        group.withEntropies = true
        group.actorRunID = .max
        group.generationMs = 1234
        group.tokensGenerated = .max
        var groupEnvelope = envelope(.groupSubmit(group))
        groupEnvelope.frameCount = 3
        groupEnvelope.frameLengths = [12, 12, 12]
        list.append(("group-submit", groupEnvelope))

        var ack = Troupe_V1_Ack()
        ack.sequence = .max
        ack.status = .rejected
        ack.rejectReason = .rewardMismatch
        ack.text = "sample 2: answer \"46\" differs from the learner's \"47\""
        ack.creditGranted = 1
        ack.currentVersion = version(5, 6)
        list.append(("ack-rejected", envelope(.ack(ack))))
        var duplicate = Troupe_V1_Ack()
        duplicate.sequence = 1
        duplicate.status = .duplicate
        list.append(("ack-duplicate", envelope(.ack(duplicate))))

        var stats = Troupe_V1_ActorStats()
        stats.groupsProduced = 1_000_000_007
        stats.tokensPerSecond = 5123.25
        stats.idleRatio = 1.0 / 3.0
        stats.unackedGroups = 16
        stats.weightsVersion = version(.max, .max)
        var heartbeat = Troupe_V1_Heartbeat()
        heartbeat.stats = stats
        list.append(("heartbeat-actor", envelope(.heartbeat(heartbeat))))
        var heartbeatReply = Troupe_V1_Heartbeat()
        heartbeatReply.currentVersion = Troupe_V1_PolicyVersion()
        list.append(("heartbeat-learner", envelope(.heartbeat(heartbeatReply))))

        var bye = Troupe_V1_Bye()
        bye.reason = "run finished"
        list.append(("bye", envelope(.bye(bye))))
        list.append(("bye-empty", envelope(.bye(Troupe_V1_Bye()))))

        var manifestRequest = Troupe_V1_WeightManifestRequest()
        manifestRequest.version = version(0, 0)
        list.append(("weight-manifest-request", envelope(.weightManifestRequest(manifestRequest))))
        list.append(("weight-manifest-request-empty", envelope(.weightManifestRequest(Troupe_V1_WeightManifestRequest()))))

        var t1 = Troupe_V1_TensorInfo()
        t1.name = "model.embed_tokens.weight"
        t1.shape = [259, 128]
        t1.dtype = .f32
        t1.offset = 0
        t1.byteLength = 259 * 128 * 4
        t1.hash = Data([0xEF, 0x46, 0xDB, 0x37, 0x51, 0xD8, 0xE9, 0x99])
        var t2 = Troupe_V1_TensorInfo()
        t2.name = "scalar." + unicode
        t2.dtype = .bf16
        t2.offset = .max
        t2.byteLength = 2
        var t3 = Troupe_V1_TensorInfo()
        t3.dtype = .UNRECOGNIZED(1000)
        t3.shape = [0, 1, .max]
        var manifest = Troupe_V1_WeightManifest()
        manifest.status = .ok
        manifest.version = version(9, 10)
        manifest.totalBytes = 3_090_360
        manifest.chunkSize = 1 << 20
        manifest.tensors = [t1, t2, t3]
        manifest.manifestHash = Data((0..<32).map { UInt8(255 - $0) })
        manifest.sharedMemoryPath = "/dev/shm/troupe-weights-9-10"
        list.append(("weight-manifest", envelope(.weightManifest(manifest))))

        var chunkRequest = Troupe_V1_ChunkRequest()
        chunkRequest.version = version(9, 10)
        chunkRequest.offset = 3 << 20
        chunkRequest.length = 1 << 20
        list.append(("chunk-request", envelope(.chunkRequest(chunkRequest))))
        var chunk = Troupe_V1_Chunk()
        chunk.status = .versionGone
        chunk.version = version(9, 8)
        chunk.offset = .max
        list.append(("chunk", envelope(.chunk(chunk))))

        var announce = Troupe_V1_WeightAnnounce()
        announce.version = version(9, 10)
        announce.manifestHash = Data((0..<32).map { UInt8($0) })
        announce.totalBytes = .max
        list.append(("weight-announce", envelope(.weightAnnounce(announce))))

        var event = Troupe_V1_LogEvent()
        event.source = "actor/py-actor-1"
        event.sourceRunID = 42
        event.sequence = 1
        event.wallTimeUnixNs = .min
        event.kind = "actor_stats"
        event.step = 17
        event.metrics = ["tokens_per_s": 5123.25, "actor/idle_ratio": 0.125, "unacked": 0, "tiny": 2.2250738585072014e-308,
                         "negative": -1e300]
        event.fields = ["via": "chunks", unicode: unicode, "empty": ""]
        event.text = String(repeating: "log line é\n", count: 500)
        list.append(("log-event", envelope(.logEvent(event))))
        var negativeTime = Troupe_V1_LogEvent()
        negativeTime.wallTimeUnixNs = -1
        list.append(("log-event-negative-time", envelope(.logEvent(negativeTime))))

        var sourceRequest = Troupe_V1_WeightSourceRequest()
        sourceRequest.version = version(9, 10)
        sourceRequest.relayEndpoint = "tcp://10.0.0.7:41234"
        sourceRequest.actorIdentity = "a1"
        sourceRequest.actorRunID = .max
        list.append(("weight-source-request", envelope(.weightSourceRequest(sourceRequest))))
        var source = Troupe_V1_WeightSource()
        source.version = version(9, 10)
        source.upstreamEndpoint = "tcp://10.0.0.8:41234"
        source.depth = 2
        source.upstreamPublicKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
        list.append(("weight-source", envelope(.weightSource(source))))

        var relayPeers = Troupe_V1_RelayPeers()
        relayPeers.publicKeys = ["a1": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "actor-日本": "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", "": ""]
        list.append(("relay-peers", envelope(.relayPeers(relayPeers), minor: 5)))
        return list
    }()
}
