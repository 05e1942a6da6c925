import Foundation
import Testing
import TroupeLearner
import TroupeRuntime
import TroupeTensor

/// Run-log lines pinned byte for byte as the learner wrote them before its records were typed, and
/// before the chain's hash became XXH64: old run directories must keep resuming and replaying, and a
/// record written today must read the same to `jq` (every byte but the chain's hashes).
@Suite struct RunRecordGoldenTests {
    static let group = RolloutGroup(
        key: GroupKey(actor: "actor-1", actorRunId: 0x1F, sequence: 3), promptId: 12, leaseId: 4,
        version: PolicyVersion(epoch: 0xBEEF, step: 2), promptTokens: [1, 2, 3],
        samples: [
            RolloutSample(tokens: [4, 5], logprobs: [-0.5, -1.25], entropies: [0.75, 1], finishReason: .stop, temperature: 1,
                          answer: "7 \"x\"\n", reward: 1, components: ["correct": 1, "format": 0.25]),
            RolloutSample(tokens: [6], logprobs: [-2], finishReason: .length, temperature: 0.5, answer: nil, reward: -0.125,
                          components: [:]),
        ], generationMs: 31)

    static var events: [RunEvent] {
        [
            .actorJoined(actor: "actor-1", actorRun: 0x1F, build: "b", threads: 2, rejoined: false),
            .groupAccepted(group),
            .groupRejected(group, reason: "stale", detail: "too old"),
            .staleAtBatch(group),
            .batchFormed(step: 3, groups: [group]),
            .stepDone(step: 3, weightsHash: "abc", loss: 1, skipped: false, groups: 1, metrics: ["loss": 1], fields: [:]),
            .stepDone(step: 4, weightsHash: "def", loss: -0.0625, skipped: true, groups: 0, metrics: [:], fields: [:]),
            .stepFailed(step: 5, error: "boom \\ \u{01}"),
            .published(step: 3, epoch: 0xBEEF),
            .checkpoint(step: 3, weightsHash: "abc"),
            .actorLeft(actor: "actor-1", reason: "evicted: silent", streamReason: "silent", leases: []),
            .resumed(fromStep: 2, voidedSteps: [3, 4], pending: 1, trained: 2),
            .runEnded(finished: true, step: 4, accounting: ["produced": 3, "trained": 2, "rate": 0.5]),
            .runEnded(finished: false, step: 4, accounting: [:]),
        ]
    }

    static func written(_ events: [RunEvent]) throws -> [String] {
        let path = NSTemporaryDirectory() + "troupe-golden-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sinks = RunEvents([RunLogSink(try RunLog(path: path))])
        for e in events { try sinks.emit(e) }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// A line without `prev` and `hash`: what the chain does not change.
    static func content(_ line: String) -> String {
        let unhashed = String(line[..<line.range(of: ",\"hash\":")!.lowerBound])
        return unhashed.replacing(#/"prev":"[0-9a-f]*"/#, with: "")
    }

    static func hashes(_ lines: [String]) -> [String] {
        lines.map { String($0[$0.range(of: ",\"hash\":\"")!.upperBound...].dropLast(2)) }
    }

    @Test func recordsAreWrittenByteForByteAsBeforeAndChainedWithXXH64() throws {
        let lines = try Self.written(Self.events)
        #expect(lines.map(Self.content) == Self.golden.map(Self.content))
        #expect(Self.hashes(lines) == Self.xxh64Hashes)
        #expect(lines.first?.contains(#""prev":"0000000000000000","#) == true)
    }

    /// A log written with the BLAKE2b-256 chain still opens, decodes, and takes new (XXH64) lines after
    /// its own: a run started before resumes.
    @Test func aLogChainedWithBLAKE2bStillReadsAndTakesNewLines() throws {
        let path = NSTemporaryDirectory() + "troupe-golden-old-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try (Self.golden.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let records = try RunLog.read(path: path)
        #expect(records.count == Self.golden.count)
        for record in records { _ = try RunRecord(record) }
        let log = try RunLog(path: path)
        try log.append("checkpoint", ["step": 5])
        let reread = try RunLog.read(path: path)
        #expect(reread.count == Self.golden.count + 1)
        #expect(reread.last?.body["prev"]?.string == Self.hashes(Self.golden).last)
        #expect(reread.last?.hash.count == 16)
        // An edited BLAKE2b line is refused, and so is a hash of any length but 16 or 64 digits.
        var edited = Self.golden
        edited[2] = edited[2].replacingOccurrences(of: "too old", with: "too new")
        try (edited.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try RunLog.read(path: path) } throws: { "\($0)".contains(":3: hash does not match") }
        edited = Self.golden
        edited[0] = edited[0].replacingOccurrences(of: #""hash":"072aa289"#, with: #""hash":""#)
        try (edited.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try RunLog.read(path: path) } throws: { "\($0)".contains(":1: malformed hash") }
    }

    /// The chain of the golden lines written today: the same values as the reference xxHash (Python
    /// `xxhash.xxh64`, seed 0) gave for those lines, each `prev` the hash before it, when pinned.
    static let xxh64Hashes = [
        "32b6d8997a1d3436", "3c45c7de51f38e2c",
        "1b352fcff515b5a8", "76c09a4836e09f25",
        "ebfe8da098ae24e9", "9764044dcb7a39f0",
        "f9956684f496c7c8", "529bd6e2df496f2e",
        "74f0e3fab230b9fa", "fb57d4f5be8e60af",
        "d098e73c90de5716", "90b9f8c0985d87de",
        "d45f44b5f958306c", "b5a184d860adcf4e",
    ]

    /// These two name the machine's BLAS threads and kernel, so their hash is the machine's: the
    /// bytes before it are pinned.
    @Test func runAndEpochStartsAreWrittenAsBefore() throws {
        let lines = try Self.written([.runStarted(epoch: 0xBEEF, baseModel: "models/m", baseWeightsHash: "h0", prompts: 40),
                                      .epochStarted(epoch: 0xBEEF, step: 0, weightsHash: "h0")])
        let unhashed = lines.map { String($0[..<$0.range(of: ",\"hash\":")!.lowerBound]) }
        let kernel = "\"blas_kernel\":\"\(BLASInfo.coreName)\""
        let zeros = String(repeating: "0", count: 16)
        #expect(unhashed.first == "{\"base_model\":\"models/m\",\"base_weights_hash\":\"h0\",\(kernel),\"epoch\":\"beef\",\"prev\":\"\(zeros)\",\"prompts\":40,\"seq\":1,\"threads\":\(BLASInfo.threads),\"type\":\"run_started\"")
        #expect(unhashed.last?.hasPrefix("{\(kernel),\"epoch\":\"beef\",\"prev\":\"") == true)
        #expect(unhashed.last?.hasSuffix("\",\"seq\":2,\"step\":0,\"threads\":\(BLASInfo.threads),\"type\":\"epoch_started\",\"weights_hash\":\"h0\"") == true)
    }

    /// The lines as written before the chain's hash became XXH64 (BLAKE2b-256, 64 hex digits).
    static let golden: [String] = [
        #"{"actor":"actor-1","actor_run":"1f","build":"b","prev":"0000000000000000000000000000000000000000000000000000000000000000","rejoined":false,"seq":1,"threads":2,"type":"actor_joined","hash":"072aa28915a36156292ec2916e16f8d0ca85c6b75b86ba34637b7786306ba030"}"#,
        #"{"actor_run":"1f","generation_ms":31,"group":"actor-1#1f#3","lease":4,"prev":"072aa28915a36156292ec2916e16f8d0ca85c6b75b86ba34637b7786306ba030","prompt":"AQAAAAIAAAADAAAA","prompt_id":12,"samples":[{"answer":"7 \"x\"\n","components":{"correct":1.0,"format":0.25},"entropies":"AABAPwAAgD8=","finish":"stop","logprobs":"AAAAvwAAoL8=","reward":1.0,"temperature":"AACAPw==","tokens":"BAAAAAUAAAA="},{"components":{},"finish":"length","logprobs":"AAAAwA==","reward":-0.125,"temperature":"AAAAPw==","tokens":"BgAAAA=="}],"seq":2,"type":"group_accepted","version":{"epoch":"beef","step":2},"hash":"cbb3b77b1b25af35c5d1483f5b0352a919d146c9d670b448038c95b1511575cb"}"#,
        #"{"detail":"too old","group":"actor-1#1f#3","prev":"cbb3b77b1b25af35c5d1483f5b0352a919d146c9d670b448038c95b1511575cb","reason":"stale","seq":3,"type":"group_rejected","version":2,"hash":"79a5d63f0dda06fcce25fdb7a737f5e807f9448d37b71a345be986aeddfa5f2e"}"#,
        #"{"detail":"too old when the batch formed","group":"actor-1#1f#3","prev":"79a5d63f0dda06fcce25fdb7a737f5e807f9448d37b71a345be986aeddfa5f2e","reason":"stale","seq":4,"type":"group_rejected","version":2,"hash":"1ca398001465f3b53f2fb895c074fb2023033a7dfade9ad97d8171f09069c0ee"}"#,
        #"{"groups":["actor-1#1f#3"],"prev":"1ca398001465f3b53f2fb895c074fb2023033a7dfade9ad97d8171f09069c0ee","seq":5,"step":3,"type":"batch_formed","hash":"7c3f3b825ae9f6a9a8fd7d0b64c69a848af81f16eee41b99ff51034e01115464"}"#,
        #"{"groups":1,"loss":1.0,"prev":"7c3f3b825ae9f6a9a8fd7d0b64c69a848af81f16eee41b99ff51034e01115464","seq":6,"skipped":false,"step":3,"type":"step_done","weights_hash":"abc","hash":"e87799765dcadc0302df7035232081e6a558a824567785c79eef738386d548f2"}"#,
        #"{"groups":0,"loss":-0.0625,"prev":"e87799765dcadc0302df7035232081e6a558a824567785c79eef738386d548f2","seq":7,"skipped":true,"step":4,"type":"step_done","weights_hash":"def","hash":"439bf45df657024c7451e8b1f266642da6c883bb09e56ae19220bf3dfe48f905"}"#,
        #"{"error":"boom \\ \u0001","prev":"439bf45df657024c7451e8b1f266642da6c883bb09e56ae19220bf3dfe48f905","seq":8,"step":5,"type":"step_failed","hash":"7b7b8df17743f4838f51eb5255c41f93cf8e9794aaf15e74feea422208839ec6"}"#,
        #"{"epoch":"beef","prev":"7b7b8df17743f4838f51eb5255c41f93cf8e9794aaf15e74feea422208839ec6","seq":9,"step":3,"type":"published","hash":"15d9e22b4241915207e639beb56e1650607e86f82f1daef06425b120e849107f"}"#,
        #"{"prev":"15d9e22b4241915207e639beb56e1650607e86f82f1daef06425b120e849107f","seq":10,"step":3,"type":"checkpoint","weights_hash":"abc","hash":"ad7c4335ca66225172fe1439ed356055471362aff4156595babbd578a0435f1d"}"#,
        #"{"actor":"actor-1","leases_returned":[],"prev":"ad7c4335ca66225172fe1439ed356055471362aff4156595babbd578a0435f1d","prompts_returned":[],"reason":"evicted: silent","seq":11,"type":"actor_left","hash":"7925f2dd0703e4b4cad52f978280eef224866eec72735d9dfa7f58d3436011a7"}"#,
        #"{"from_step":2,"pending":1,"prev":"7925f2dd0703e4b4cad52f978280eef224866eec72735d9dfa7f58d3436011a7","seq":12,"trained":2,"type":"resumed","voided_steps":[3,4],"hash":"c4ecee89c7885c7a98062b090acf00f93635a2b45c3159a127aaaa8ed15ef582"}"#,
        #"{"accounting":{"produced":3.0,"rate":0.5,"trained":2.0},"prev":"c4ecee89c7885c7a98062b090acf00f93635a2b45c3159a127aaaa8ed15ef582","seq":13,"step":4,"type":"run_finished","hash":"ffde6c303e78f1fb1d734e3e4bfabaf6809674621083f4b8ac58f18c4f04dea0"}"#,
        #"{"accounting":{},"prev":"ffde6c303e78f1fb1d734e3e4bfabaf6809674621083f4b8ac58f18c4f04dea0","seq":14,"step":4,"type":"learner_stopped","hash":"fbb188ddbc3e0eec555ea4624250c7e146d4ee22342c7a0dcb089f9fa067c84e"}"#,
    ]
}
