import Foundation
import Testing
import TroupeLearner
import TroupeRuntime

/// The run log's encoding, hash chain and group commit.
@Suite struct RunLogTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "troupe-runlog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    var path: String { directory + "/run.log" }

    @Test func valuesComeBackExactly() throws {
        let doubles: [Double] = [0.1, -1e-300, 1e300, 5e-324, 1.0 / 3.0, -0.0, 123456789.125]
        let body: [String: Any] = [
            "text": "quote \" backslash \\ newline \n tab \t bell \u{07} unicode é∑😀 slash /",
            "int": -42, "big": Int64(1) << 53, "unsigned": UInt64(9_007_199_254_740_993),
            "doubles": doubles, "float": Float(0.1), "flag": true, "off": false, "one": 1,
            "nested": ["z": [1, 2, 3], "a": ["deep": "x"]], "empty": [String: Any](), "list": [Any](),
        ]
        let log = try RunLog(path: path)
        try log.append("probe", body)
        let record = try #require(try RunLog.read(path: path).first)
        #expect(record.type == "probe" && record.seq == 1)
        let b = record.body
        #expect(b["text"] as? String == body["text"] as? String)
        #expect((b["int"] as? NSNumber)?.intValue == -42)
        #expect((b["big"] as? NSNumber)?.int64Value == Int64(1) << 53)
        #expect((b["unsigned"] as? NSNumber)?.uint64Value == 9_007_199_254_740_993)
        let read = try #require(b["doubles"] as? [NSNumber]).map(\.doubleValue)
        #expect(read.map(\.bitPattern) == doubles.map(\.bitPattern))
        #expect(Float((b["float"] as? NSNumber)?.doubleValue ?? 0) == Float(0.1))
        #expect(JSONNumberProbe.isBool(b["flag"]!) && (b["flag"] as? Bool) == true && (b["off"] as? Bool) == false)
        #expect(!JSONNumberProbe.isBool(b["one"]!))
        let nested = try #require(b["nested"] as? [String: Any])
        #expect((nested["z"] as? [NSNumber])?.map(\.intValue) == [1, 2, 3])
        #expect(((nested["a"] as? [String: Any])?["deep"] as? String) == "x")
    }

    @Test func recordsReadBackAreWrittenAgainUnchanged() throws {
        // Resume re-appends bodies read from a log: NSNumber booleans stay booleans, integers integers.
        let log = try RunLog(path: path)
        try log.append("first", ["flag": true, "one": 1, "half": 0.5])
        let first = try #require(try RunLog.read(path: path).first)
        var body = first.body
        for key in ["seq", "type", "prev", "hash"] { body.removeValue(forKey: key) }
        try log.append("second", body)
        let second = try RunLog.read(path: path)[1].body
        #expect(JSONNumberProbe.isBool(second["flag"]!))
        #expect(!JSONNumberProbe.isBool(second["one"]!) && (second["one"] as? NSNumber)?.intValue == 1)
        #expect((second["half"] as? NSNumber)?.doubleValue == 0.5)
    }

    // An accepted group's record is written by a typed writer (no dictionaries); a body read back
    // from the log goes through the generic encoder. Both must give the same line, byte for byte,
    // and the group must come back equal. (No integral doubles here: read back, 2.0 is the integer 2.)
    @Test func groupRecordsMatchTheGenericEncodingAndRoundTrip() throws {
        let samples = [
            RolloutSample(tokens: [1, -2, 49_151, 7], logprobs: [-0.25, -1e-7, -3.5, -0.0], entropies: [0.5, 1, 2, 1e-30],
                          finishReason: .stop, temperature: 0.7, answer: "quote \" back \\ nl \n é😀", reward: 1 / 3,
                          components: ["format": -0.75, "correct": 1e-300, "a": 5e-324]),
            RolloutSample(tokens: [5], logprobs: [-9.75], finishReason: .length, temperature: 1, answer: nil, reward: 0.125, components: [:]),
            RolloutSample(tokens: [], logprobs: [], finishReason: .stop, temperature: 1.25, answer: "", reward: -1e300,
                          components: ["z": 2.5]),
        ]
        let group = RolloutGroup(key: GroupKey(actor: "a\"1", actorRunId: 0xABC, sequence: 9), promptId: 12, leaseId: 3,
                                 version: PolicyVersion(epoch: 0xE, step: 4), promptTokens: [9, 8, 7, 6, 5], samples: samples,
                                 generationMs: 250)
        let typed = try RunLog(path: path)
        try typed.append("group_accepted", group.logBody)
        var body = try #require(try RunLog.read(path: path).first).body
        for key in ["seq", "type", "prev", "hash"] { body.removeValue(forKey: key) }
        #expect(try RolloutGroup(logBody: body) == group)
        let genericPath = directory + "/generic.log"
        try RunLog(path: genericPath).append("group_accepted", body)
        let lines = try [path, genericPath].map { try String(contentsOfFile: $0, encoding: .utf8) }
        #expect(lines[0] == lines[1])
    }

    @Test func nonFiniteNumbersAreRefusedNamingTheField() throws {
        let log = try RunLog(path: path)
        #expect { try log.append("bad", ["stats": ["reward": Double.nan]]) } throws: { error in
            "\(error)".contains("stats.reward") && "\(error)".contains("not a finite number")
        }
        #expect(log.count == 0)
        #expect(try RunLog.read(path: path).isEmpty)
    }

    @Test func unsyncedRecordsAreWrittenAndChainedAndSyncClearsTheFlag() throws {
        let log = try RunLog(path: path)
        for i in 0..<5 { try log.append("group_accepted", ["i": i], sync: false) }
        #expect(log.unsynced)
        #expect(try RunLog.read(path: path).count == 5)
        try log.sync()
        #expect(!log.unsynced)
        try log.append("step_done", ["step": 1])
        #expect(!log.unsynced)
        let reopened = try RunLog(path: path)
        #expect(reopened.count == 6 && reopened.lastHash == log.lastHash)
        #expect(reopened.opened.map(\.seq) == Array(1...6))
    }

    @Test func anEditedLineBreaksTheChainAtItsLineNumber() throws {
        let log = try RunLog(path: path)
        for i in 0..<3 { try log.append("x", ["value": i]) }
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"value\":1", with: "\"value\":7")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try RunLog.read(path: path) } throws: { "\($0)".contains("\(path):2: ") }
    }

    @Test func aDamagedCompleteLastLineIsAnErrorNotATornWrite() throws {
        let log = try RunLog(path: path)
        for i in 0..<3 { try log.append("x", ["value": i]) }
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"value\":2", with: "\"value\":9")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect { try RunLog(path: path) } throws: { "\($0)".contains("\(path):3: hash does not match") }
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == size, "the committed record is kept")
    }

    @Test func aTornLastLineIsCutOnOpen() throws {
        let log = try RunLog(path: path)
        try log.append("x", ["value": 1])
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"prev\":\"00".utf8))
        handle.closeFile()
        let reopened = try RunLog(path: path)
        #expect(reopened.count == 1 && reopened.truncatedBytes == 11)
        try reopened.append("y")
        #expect(try RunLog.read(path: path).map(\.type) == ["x", "y"])
    }
}

/// JSONSerialization's booleans are NSNumber too; only their class tells them apart.
enum JSONNumberProbe {
    static func isBool(_ v: Any) -> Bool { String(describing: type(of: v)).contains("Boolean") }
}

@Test func base64ArraysMatchFoundationAndRoundTrip() throws {
    for count in 0..<9 {
        let ints = (0..<count).map { Int32(truncatingIfNeeded: $0 &* 0x9E3779B9 &- 7) }
        let text = Base64Arrays.encode(ints)
        #expect(text == ints.withUnsafeBytes { Data($0).base64EncodedString() })
        #expect(Base64Arrays.int32s(text) == ints)
        let floats = ints.map { Float($0) / 3 }
        #expect(Base64Arrays.floats(Base64Arrays.encode(floats))?.map(\.bitPattern) == floats.map(\.bitPattern))
    }
}
