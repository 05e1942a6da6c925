import Foundation
import Testing
import TroupeJSON
import TroupeLearner
import TroupeRuntime
import TroupeTensor
import TroupeWire
import TroupeProto

/// The run log's encoding, hash chain and group commit.
@Suite struct RunLogTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "troupe-runlog-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    var path: String { directory + "/run.log" }

    @Test func valuesComeBackExactly() throws {
        let doubles: [Double] = [0.1, -1e-300, 1e300, .leastNonzeroMagnitude, 1.0 / 3.0, -0.0, 123456789.125]
        let body: [String: JSONValue] = [
            "text": "quote \" backslash \\ newline \n tab \t bell \u{07} unicode é∑😀 slash /",
            "int": -42, "big": .integer(1 << 53), "unsigned": .integer(9_007_199_254_740_993),
            "doubles": .array(doubles.map(JSONValue.number)), "float": .number(Double(Float(0.1))), "flag": true, "off": false, "one": 1,
            "nested": ["z": [1, 2, 3], "a": ["deep": "x"]], "empty": [:], "list": [],
        ]
        let log = try RunLog(path: path)
        try log.append("probe", body)
        let record = try #require(try RunLog.read(path: path).first)
        #expect(record.type == "probe" && record.seq == 1)
        let b = record.body
        for (key, value) in body where key != "doubles" { #expect(b[key] == value, "\(key)") }
        let read = try #require(b["doubles"]?.array).compactMap(\.double)
        #expect(read.map(\.bitPattern) == doubles.map(\.bitPattern))
        #expect(b["one"] == .integer(1) && b["flag"] == .bool(true))
    }

    @Test func recordsReadBackAreWrittenAgainUnchanged() throws {
        let log = try RunLog(path: path)
        try log.append("first", ["flag": true, "one": 1, "half": 0.5, "whole": 2.0])
        var body = try #require(try RunLog.read(path: path).first).body
        for key in ["seq", "type", "prev"] { body.removeValue(forKey: key) }
        try log.append("first", body)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let unchained = lines.map { $0.replacingOccurrences(of: #"\"prev\":\"[0-9a-f]{16}\",|\"seq\":\d+,|,\"hash\":.*"#, with: "",
                                                             options: .regularExpression) }
        #expect(unchained[0] == unchained[1])
        #expect(unchained[0] == #"{"flag":true,"half":0.5,"one":1,"type":"first","whole":2.0"#)
    }

    // An accepted group's samples are written by a typed writer (no JSON value built); a body read
    // back from the log goes through the generic encoder. Both must give the same line, byte for
    // byte, and the group must come back equal.
    @Test func groupRecordsMatchTheGenericEncodingAndRoundTrip() throws {
        let samples = [
            RolloutSample(tokens: [1, -2, 49_151, 7], logprobs: [-0.25, -1e-7, -3.5, -0.0], entropies: [0.5, 1, 2, 1e-30],
                          finishReason: .stop, temperature: 0.7, answer: "quote \" back \\ nl \n é😀", reward: 1 / 3,
                          components: ["format": -0.75, "correct": 1e-300, "a": .leastNonzeroMagnitude, "whole": 2]),
            RolloutSample(tokens: [5], logprobs: [-9.75], finishReason: .length, temperature: 1, answer: nil, reward: 0.125, components: [:]),
            // A serial exit: the phrase it was given (tokens 1 and 2) comes back as inserted.
            RolloutSample(tokens: [5, 90, 91, 6], logprobs: [-1, 0, 0, -2], finishReason: .stop, temperature: 1, answer: "6", reward: 1,
                          components: [:], inserted: 1..<3),
            RolloutSample(tokens: [], logprobs: [], finishReason: .stop, temperature: 1.25, answer: "", reward: -1e300,
                          components: ["z": 2.5]),
            // Longer than the typed writer's 3 KiB base64 chunks, and not a multiple of them.
            RolloutSample(tokens: (0..<2003).map { Int32($0 &* 7919 % 49_152) }, logprobs: (0..<2003).map { -Float($0) / 97 },
                          entropies: (0..<2003).map { Float($0 % 13) / 5 }, finishReason: .length, temperature: 0.9, answer: nil,
                          reward: 0, components: [:]),
        ]
        let group = RolloutGroup(key: GroupKey(actor: "a\"1", actorRunId: 0xABC, sequence: 9), promptId: 12, leaseId: 3,
                                 version: PolicyVersion(epoch: 0xE, step: 4), promptTokens: [9, 8, 7, 6, 5], samples: samples,
                                 generationMs: 250, tokensGenerated: 19)
        let typed = try RunLog(path: path)
        try typed.append(.groupAccepted(group))
        let record = try #require(try RunLog.read(path: path).first)
        guard case .groupAccepted(let back) = try RunRecord(record) else { Issue.record("not a group"); return }
        #expect(back == group)
        var body = record.body
        for key in ["seq", "type", "prev"] { body.removeValue(forKey: key) }
        let genericPath = directory + "/generic.log"
        try RunLog(path: genericPath).append("group_accepted", body)
        let lines = try [path, genericPath].map { try String(contentsOfFile: $0, encoding: .utf8) }
        #expect(lines[0] == lines[1])
    }

    @Test func aGroupWithANonFiniteRewardIsRefusedNamingTheSample() throws {
        let sample = RolloutSample(tokens: [1], logprobs: [-1], finishReason: .stop, temperature: 1, answer: nil, reward: .nan, components: [:])
        let group = RolloutGroup(key: GroupKey(actor: "a", actorRunId: 1, sequence: 1), promptId: 1, leaseId: 1,
                                 version: PolicyVersion(epoch: 1, step: 0), promptTokens: [1], samples: [sample], generationMs: 0)
        let log = try RunLog(path: path)
        #expect { try log.append(.groupAccepted(group)) } throws: { "\($0)".contains("samples[0].reward") }
        #expect(log.count == 0)
    }

    @Test func nonFiniteNumbersAreRefusedNamingTheField() throws {
        let log = try RunLog(path: path)
        #expect { try log.append("bad", ["stats": ["reward": .number(.nan)]]) } throws: { error in
            "\(error)".contains("stats.reward") && "\(error)".contains("not a finite number")
        }
        #expect(log.count == 0)
        #expect(try RunLog.read(path: path).isEmpty)
    }

    @Test func unsyncedRecordsAreWrittenAndChainedAndSyncClearsTheFlag() throws {
        let log = try RunLog(path: path)
        for i in 0..<5 { try log.append("group_accepted", ["i": .integer(i)], sync: false) }
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
        for i in 0..<3 { try log.append("x", ["value": .integer(i)]) }
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"value\":1", with: "\"value\":7")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try RunLog.read(path: path) } throws: { "\($0)".contains("\(path):2: ") }
    }

    @Test func aDamagedCompleteLastLineIsAnErrorNotATornWrite() throws {
        let log = try RunLog(path: path)
        for i in 0..<3 { try log.append("x", ["value": .integer(i)]) }
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
        let kept = try #require(reopened.tornTailPath)
        #expect(FileManager.default.contents(atPath: kept) == Data("{\"prev\":\"00".utf8), "the cut bytes are kept beside the log")
        try? FileManager.default.removeItem(atPath: kept)
        try reopened.append("y")
        #expect(try RunLog.read(path: path).map(\.type) == ["x", "y"])
    }
}

/// The learner's way of writing: a writer thread that group-commits, and acks held until their records are durable.
@Suite struct RunLogWriterThreadTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "troupe-runlog-thread-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func records(_ n: Int) -> [(String, [String: JSONValue], Bool)] {
        (0..<n).map { i in ("r\(i % 3)", ["i": .integer(i), "x": .number(Double(i) / 7), "s": .string("line \"\(i)\"")], i % 10 == 9) }
    }

    @Test func theThreadWritesTheSameLinesAsInlineAndNeverCallsARecordDurableBeforeItIsWritten() throws {
        let inlinePath = directory + "/inline.log", threadPath = directory + "/thread.log"
        let inline = try RunLog(path: inlinePath)
        for (type, members, sync) in records(400) { try inline.append(type, members, sync: sync) }
        try inline.sync()

        let log = try RunLog(path: threadPath, writing: .thread)
        #expect(log.wakeFileDescriptor != nil && inline.wakeFileDescriptor == nil)
        var seen = 0
        for (n, (type, members, sync)) in records(400).enumerated() {
            try log.append(type, members, sync: sync)
            if sync { #expect(try log.durableCount() >= n + 1, "a synced append returns once it is durable") }
            let durable = try log.durableCount()
            #expect(durable >= seen, "the durable count never goes back")
            if n % 50 == 0 { #expect(try RunLog.read(path: threadPath).count >= durable, "durable records are in the file") }
            seen = durable
        }
        let everything = try log.commit()
        #expect(everything == 400)
        let deadline = monotonicSeconds() + 10
        while try log.durableCount() < everything && monotonicSeconds() < deadline { usleep(1000) }
        #expect(try log.durableCount() == 400)
        #expect(!log.unsynced && log.lastHash == inline.lastHash && log.size == inline.size)
        #expect(try Data(contentsOf: URL(fileURLWithPath: threadPath)) == Data(contentsOf: URL(fileURLWithPath: inlinePath)))
    }

    @Test func syncWaitsForTheThreadAndClosingWritesWhatIsQueued() throws {
        let path = directory + "/run.log"
        do {
            let log = try RunLog(path: path, writing: .thread)
            for i in 0..<100 { try log.append("group_accepted", ["i": .integer(i)], sync: false) }
            try log.sync()
            #expect(try log.durableCount() == 100 && RunLog.read(path: path).count == 100)
            for i in 0..<50 { try log.append("group_accepted", ["i": .integer(i)], sync: false) }
        }
        #expect(try RunLog.read(path: path).count == 150, "the writer finishes its queue when the log closes")
    }

    @Test func recordsAppendedWithoutSyncOrCommitStillReachTheDisk() throws {
        let path = directory + "/run.log"
        let log = try RunLog(path: path, writing: .thread)
        // Fewer than wake the writer by their number, once it waits: its own timeout has to take them.
        usleep(100_000)
        for i in 0..<3 { try log.append("group_accepted", ["i": .integer(i)], sync: false) }
        let deadline = monotonicSeconds() + 5
        while try log.durableCount() < 3 && monotonicSeconds() < deadline { usleep(1000) }
        #expect(try log.durableCount() == 3 && RunLog.read(path: path).count == 3)
    }

    @Test func aRecordTheThreadCannotEncodeStopsTheLogAndKeepsWhatCameBefore() throws {
        let path = directory + "/run.log"
        let log = try RunLog(path: path, writing: .thread)
        try log.append("good", ["i": 1])
        try log.append("bad", ["stats": ["reward": .number(.nan)]], sync: false)
        let stopped: (any Error) -> Bool = { "\($0)".contains("stats.reward") && "\($0)".contains("not a finite number") }
        #expect(performing: { try log.sync() }, throws: stopped)
        #expect(performing: { try log.append("after", ["i": 2], sync: false) }, throws: stopped)
        #expect(performing: { try log.durableCount() }, throws: stopped)
        #expect(try RunLog.read(path: path).map(\.type) == ["good"])
    }

    @Test func acksLeaveOnlyOnceTheirRecordsAreDurableInTheOrderHeld() throws {
        func ack(_ sequence: UInt64) -> Troupe_V1_Ack {
            var a = Troupe_V1_Ack()
            a.sequence = sequence
            return a
        }
        let peer = PeerID(Array("a#1".utf8))
        var held = DurableAcks()
        held.hold([(peer, ack(1)), (peer, ack(2))], untilRecord: 5)
        held.hold([], untilRecord: 6)
        held.hold([(peer, ack(3))], untilRecord: 9)
        #expect(held.release(durable: 4).isEmpty)
        #expect(held.release(durable: 8).map(\.1.sequence) == [1, 2])
        #expect(!held.isEmpty)
        #expect(held.release(durable: 9).map(\.1.sequence) == [3])
        #expect(held.isEmpty && held.release(durable: 100).isEmpty)
    }
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

/// Every length's tail (0, 1 or 2 bytes left over, before and after the 6-byte steps) against Foundation.
@Test func base64OfAnyByteCountMatchesFoundation() {
    var state: UInt64 = 0x2545F491
    let bytes = (0..<64).map { _ -> UInt8 in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
    for count in 0...bytes.count {
        let out = LineBuffer(capacity: 4)
        out.append(0x22)
        bytes.prefix(count).withUnsafeBytes { Base64Arrays.append($0, to: out) }
        #expect(out.bytes == [0x22] + Array(Data(bytes.prefix(count)).base64EncodedString().utf8), "\(count) bytes")
    }
}

/// Inputs `troupe-fuzz` found that used to trap, kept as regressions.
@Suite struct RunLogFuzzRegressionTests {
    @Test func aLineWhoseHashKeyHasNoRoomForAValueIsAnErrorNotATrap() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("runlog-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let line = "{\"seq\":1,\"type\":\"x\",\"prev\":\"" + String(repeating: "0", count: 64) + "\",\"hash\":\"}\n"
        try line.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try RunLog.read(path: path) } throws: { "\($0)".contains("\(path):1: ") }
    }
}

@Suite struct LineBufferTests {
    @Test func piecesAppendedAcrossGrowthComeBackInOrder() {
        let buffer = LineBuffer(capacity: 16)
        var expected: [UInt8] = []
        for i in 0..<500 {
            let piece = (0..<(i % 37)).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            piece.withUnsafeBytes { buffer.append($0) }
            buffer.append(UInt8(i & 0xFF))
            buffer.append("·ab")
            expected += piece + [UInt8(i & 0xFF)] + Array("·ab".utf8)
        }
        #expect(buffer.bytes == expected)
        buffer.truncate(to: 10)
        buffer.appendInPlace(maxBytes: 8) { at in at[0] = 1; at[1] = 2; return 2 }
        #expect(buffer.bytes == Array(expected.prefix(10)) + [1, 2])
        #expect(buffer.withUnsafeBytes(from: 10) { Array($0) } == [1, 2])
        let grown = buffer.capacity
        buffer.removeAll()
        #expect(buffer.count == 0 && buffer.capacity == grown)
        buffer.removeAll(keepingAtMost: 64)
        #expect(buffer.count == 0 && buffer.bytes.isEmpty && buffer.capacity == 64)
        buffer.append("after")
        #expect(buffer.bytes == Array("after".utf8))
    }

    @Test func integersAreSpelledAsStringDoes() {
        for i in [0, 1, -1, 9, 10, -10, 99, 100, 1_234_567, Int.max, Int.min, Int.min + 1] {
            let buffer = LineBuffer(capacity: 1)
            RecordEncoder.writeInteger(i, into: buffer)
            #expect(String(decoding: buffer.bytes, as: UTF8.self) == String(i))
        }
    }
}
