import Foundation
import TroupeJSON
import TroupeLearner
import TroupeModel
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTokenizer
import TroupeWeights
import TroupeWire

/// Valid inputs the fuzz targets start from: one message of every kind, a run log, a safetensors
/// file, a byte-level BPE tokenizer, configurations. Built here, so the fuzzer needs no files.
enum FuzzSeeds {
    static let protobufTokens: [[UInt8]] = [[0x08, 0x01], [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], [0x1A, 0x7F],
                                            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], [0x7A, 0x08], [0x00]]
    static let jsonTokens: [[UInt8]] = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u0000", "\\ud800", "1e309", "-1e309", "-0",
                                        "0.0000001", "18446744073709551616", "-9223372036854775809", "null", "true", "false",
                                        "\"\":", "[[[[[[[[", "]]]]]]]]", "NaN", "Infinity"].map { Array($0.utf8) }

    static func version(_ step: UInt64 = 3) -> Troupe_V1_PolicyVersion { PolicyVersion(epoch: 0xE9, step: step).proto }

    /// One valid message of each kind.
    static func messages() throws -> [MessageKind: WireMessage] {
        var m: [MessageKind: WireMessage] = [:]
        var hello = Troupe_V1_Hello()
        hello.actorIdentity = "actor-1"
        hello.actorRunID = 0xA1
        hello.protocolMajor = WireProtocol.major
        hello.buildID = TroupeBuild.id
        hello.threadCount = 2
        m[.hello] = WireMessage(.hello(hello))

        var welcome = Troupe_V1_Welcome()
        welcome.learnerEpoch = 0xE9
        welcome.currentVersion = version()
        welcome.credit = 4
        welcome.leaseSize = 2
        welcome.weightsEndpoint = "tcp://127.0.0.1:5556"
        welcome.configJson = welcomeJSON()
        m[.welcome] = WireMessage(.welcome(welcome))

        var reject = Troupe_V1_Reject()
        reject.reason = .malformed
        reject.text = "malformed"
        m[.reject] = WireMessage(.reject(reject))

        var leaseRequest = Troupe_V1_LeaseRequest()
        leaseRequest.maxPrompts = 2
        m[.leaseRequest] = WireMessage(.leaseRequest(leaseRequest))

        var lease = Troupe_V1_Lease()
        lease.leaseID = 7
        lease.deadlineMs = 30_000
        var prompt = Troupe_V1_Prompt()
        prompt.promptID = 3
        prompt.tokenIds = [256, 49, 43, 50, 61]
        prompt.groupSize = 4
        prompt.sampling.temperature = 1
        prompt.sampling.maxTokens = 16
        prompt.sampling.stopSequences = ["\n"]
        lease.prompts = [prompt]
        lease.minVersion = version()
        m[.lease] = WireMessage(.lease(lease))

        m[.groupSubmit] = try groupSubmit()

        var ack = Troupe_V1_Ack()
        ack.sequence = 1
        ack.status = .accepted
        ack.creditGranted = 1
        ack.currentVersion = version()
        m[.ack] = WireMessage(.ack(ack))

        var heartbeat = Troupe_V1_Heartbeat()
        heartbeat.stats.groupsProduced = 12
        heartbeat.stats.tokensPerSecond = 900
        heartbeat.stats.weightsVersion = version()
        m[.heartbeat] = WireMessage(.heartbeat(heartbeat))

        var bye = Troupe_V1_Bye()
        bye.reason = "done"
        m[.bye] = WireMessage(.bye(bye))

        var manifestRequest = Troupe_V1_WeightManifestRequest()
        manifestRequest.version = version()
        m[.weightManifestRequest] = WireMessage(.weightManifestRequest(manifestRequest))

        let model = try LlamaModel.random(config: ModelShape.named("tiny")!.config, seed: 1)
        let snapshot = WeightSnapshot.make(model: model, version: PolicyVersion(epoch: 0xE9, step: 3), chunkSize: 4096).snapshot
        m[.weightManifest] = WireMessage(.weightManifest(snapshot.manifest))

        var chunkRequest = Troupe_V1_ChunkRequest()
        chunkRequest.version = version()
        chunkRequest.offset = 4096
        chunkRequest.length = 4096
        m[.chunkRequest] = WireMessage(.chunkRequest(chunkRequest))

        var chunk = Troupe_V1_Chunk()
        chunk.status = .ok
        chunk.version = version()
        chunk.offset = 0
        m[.chunk] = WireMessage(.chunk(chunk), frames: [Frame([UInt8](repeating: 0x3F, count: 64))])

        var announce = Troupe_V1_WeightAnnounce()
        announce.version = version()
        announce.manifestHash = snapshot.manifest.manifestHash
        announce.totalBytes = snapshot.manifest.totalBytes
        m[.weightAnnounce] = WireMessage(.weightAnnounce(announce))

        var event = Troupe_V1_LogEvent()
        event.source = "learner"
        event.sourceRunID = 9
        event.sequence = 1
        event.wallTimeUnixNs = 1_700_000_000_000_000_000
        event.kind = "step"
        event.step = 3
        event.metrics = ["reward/mean": 0.5, "loss/total": 0.1]
        event.fields = ["labels": "1=42,2=7", "weights_hash": "ab"]
        m[.logEvent] = WireMessage(.logEvent(event))

        var sourceRequest = Troupe_V1_WeightSourceRequest()
        sourceRequest.version = version()
        sourceRequest.relayEndpoint = "tcp://127.0.0.1:6001"
        sourceRequest.actorIdentity = "actor-1"
        m[.weightSourceRequest] = WireMessage(.weightSourceRequest(sourceRequest))

        var source = Troupe_V1_WeightSource()
        source.version = version()
        source.upstreamEndpoint = "tcp://127.0.0.1:6001"
        source.depth = 2
        m[.weightSource] = WireMessage(.weightSource(source))

        var relayPeers = Troupe_V1_RelayPeers()
        relayPeers.publicKeys = ["actor-1": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"]
        m[.relayPeers] = WireMessage(.relayPeers(relayPeers))
        return m
    }

    /// Four samples of "42\n<eos>"-style completions, as an honest actor of the built-in task sends them.
    static func groupSubmit() throws -> WireMessage {
        var header = Troupe_V1_GroupSubmit()
        header.leaseID = 7
        header.promptID = 3
        header.sequence = 1
        header.actorRunID = 0xA1
        header.version = version()
        var samples = try Semantics.admission.scorer!.honestSamples([[52, 50, 10], [52, 50, 10], [55, 10], [52, 50, 257]], finishReason: .stop,
                                                                    temperature: 1, logprob: -0.7, stopSequences: ["\n"], groundTruth: nil)
        for i in samples.indices { samples[i].entropies = samples[i].tokens.map { _ in 1.25 } }
        return GroupSubmission(header: header, samples: samples).wireMessage()
    }

    /// A short run log: a start, an accepted group, a batch and its step.
    static func runLog() throws -> [UInt8] {
        // A name of its own per call: tests build seeds concurrently in one process.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-fuzz-seed-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try? FileManager.default.removeItem(atPath: path)
        let log = try RunLog(path: path)
        try log.append("run_started", ["epoch": "e9", "base_model": "m", "base_weights_hash": "00", "prompts": 2, "threads": 1,
                                       "blas_kernel": "Haswell"])
        try log.append("epoch_started", ["epoch": "e9", "step": 0, "weights_hash": "00", "threads": 1, "blas_kernel": "Haswell"])
        let submission = try GroupSubmission(validating: try groupSubmit())
        let group = RolloutGroup(submission: submission, actor: "actor-1", promptTokens: [256, 49, 43, 50, 61])
        try log.append(.groupAccepted(group))
        try log.append("batch_formed", ["step": 1, "groups": .array([.string(group.key.description)])])
        try log.append("step_failed", ["step": 1, "error": "overflow"])
        try log.append("batch_formed", ["step": 1, "groups": .array([.string(group.key.description)])])
        try log.append("step_done", ["step": 1, "weights_hash": "11", "loss": 0.5, "skipped": false, "groups": 1])
        try log.append("resumed", ["from_step": 0, "voided_steps": [1], "pending": 1, "trained": 0])
        return Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    static func safetensors() throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-fuzz-seed-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [0.5, -0.5]
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try SafetensorsFile.write(tensors: [(name: "a", shape: [2, 3], values: pa), (name: "b", shape: [2], values: pb)],
                                          metadata: ["step": "1"], to: path)
            }
        }
        return Array(FileManager.default.contents(atPath: path) ?? Data())
    }

    static let modelConfigJSON = """
        {"architectures": ["LlamaForCausalLM"], "bos_token_id": 256, "eos_token_id": 257, "head_dim": 32, "hidden_act": "silu",
         "hidden_size": 128, "intermediate_size": 352, "max_position_embeddings": 512, "model_type": "llama",
         "num_attention_heads": 4, "num_hidden_layers": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
         "rope_theta": 10000, "tie_word_embeddings": true, "vocab_size": 259}
        """

    /// A byte-level BPE tokenizer.json: the 256 byte symbols (GPT-2's mapping), two merges, an EOS.
    static let tokenizerJSON = ByteLevelBPEFile.document(merges: [(Array("4".utf8), Array("2".utf8)), (Array(" ".utf8), Array("4".utf8))],
                                                         specialTokens: ["<eos>"]).serializedString(pretty: false)

    /// The `config_json` a learner's Welcome carries for the built-in model.
    static func welcomeJSON() -> String {
        let config = (try? JSONValue.parse(String(decoding: RunConfig().resolvedJSONData(), as: UTF8.self), source: "config")) ?? .object([:])
        return JSONValue.object(["config": config, "model_files": .object(["config.json": .string(modelConfigJSON)])])
            .serializedString(pretty: false)
    }
}
