import Foundation
import TroupeActor
import TroupeJSON
import TroupeLearner
import TroupeModel
import TroupeMonitor
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTokenizer
import TroupeWeights
import TroupeWire

/// One decoder or handler that takes bytes from outside the process, with valid inputs to start from.
/// `run` must return for every input (refusing it is fine); a crash, hang or runaway allocation is a bug.
package struct FuzzTarget {
    package let name: String
    package let seeds: [[UInt8]]
    /// Tokens the mutator inserts whole.
    package let dictionary: [[UInt8]]
    package let run: ([UInt8]) -> Void

    /// Every target, in a fixed order.
    package static func all() throws -> [FuzzTarget] {
        let messages = try FuzzSeeds.messages()
        var targets = [envelope(messages)]
        for kind in MessageKind.allCases { targets.append(message(kind, seed: messages[kind]!)) }
        targets += [rawFrames(), try runLog(), try safetensors(), tokenizerJSON(), runConfig(), modelConfig(), welcomeConfig()]
        return targets
    }

    package static func named(_ name: String) throws -> FuzzTarget? { try all().first { $0.name == name } }

    /// The limits the receiving socket applies to a message of `kind` (weight payloads are larger).
    static func limits(for kind: MessageKind) -> WireLimits { [.chunk, .weightManifest].contains(kind) ? .weights : .control }

    /// The seeds their own decoders refuse, with why: each should be accepted, or its target fuzzes
    /// little beyond the first check.
    package static func seedRefusals() throws -> [String] {
        var problems: [String] = []
        func expect(_ what: String, _ body: () throws -> Void) {
            do { try body() } catch { problems.append("\(what): \(error)") }
        }
        for (kind, message) in try FuzzSeeds.messages() {
            expect(kind.rawValue) {
                let limits = limits(for: kind)
                let decoded = try WireMessage.decode(try message.encode(), limits: limits)
                if case .groupSubmit = decoded.body {
                    let group = RolloutGroup(submission: try GroupSubmission(validating: decoded), actor: "fuzz", promptTokens: [256, 49, 43, 50, 61])
                    if case .failure(let refusal) = Semantics.admission.review(group) { throw refusal }
                }
                if case .weightManifest(let manifest) = decoded.body { try manifest.validate() }
                if case .welcome(let welcome) = decoded.body { _ = try WelcomeConfig(decoding: welcome.configJson) }
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-fuzz-check-\(getpid()).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        expect("run_log") {
            try Data(FuzzSeeds.runLog()).write(to: URL(fileURLWithPath: path))
            _ = try RunHistory(records: try RunLog.read(path: path))
        }
        expect("safetensors") { _ = try SafetensorsFile(data: Data(try FuzzSeeds.safetensors())) }
        expect("tokenizer_json") { _ = try BPETokenizer(tokenizerJSON: Data(FuzzSeeds.tokenizerJSON.utf8)) }
        expect("run_config") { _ = try RunConfig.parse(json: Array(RunConfig().resolvedJSONData()), source: "seed") }
        expect("model_config") { _ = try ModelConfig.parse(json: Data(FuzzSeeds.modelConfigJSON.utf8)) }
        return problems
    }

    // MARK: wire messages

    /// Whole encoded messages of every kind, frames and checksum included: limits, envelope, checksum.
    static func envelope(_ messages: [MessageKind: WireMessage]) -> FuzzTarget {
        FuzzTarget(name: "envelope", seeds: MessageKind.allCases.map { FramedBytes.join(try! messages[$0]!.encode()) },
                   dictionary: FuzzSeeds.protobufTokens) { bytes in
            let frames = FramedBytes.split(bytes)
            for limits in [WireLimits.control, .weights] {
                if let message = try? WireMessage.decode(frames, limits: limits) { Semantics.check(message) }
            }
        }
    }

    /// One message kind with a valid checksum recomputed after each mutation, so mutations reach the
    /// protobuf decoder and the checks behind it (the checksum itself is the `envelope` target's).
    static func message(_ kind: MessageKind, seed: WireMessage) -> FuzzTarget {
        let frames = try! seed.encode()
        let unsealed = [Frame(WireMessage.unsealedHeader(frames))] + frames.dropFirst()
        return FuzzTarget(name: "message/\(kind.rawValue)", seeds: [FramedBytes.join(unsealed)], dictionary: FuzzSeeds.protobufTokens) { bytes in
            let parts = FramedBytes.split(bytes)
            guard let header = parts.first else { return }
            let sealed = WireMessage.seal(header: header.bytes, rawFrames: Array(parts.dropFirst()))
            let limits = limits(for: kind)
            if let message = try? WireMessage.decode(sealed, limits: limits) { Semantics.check(message) }
        }
    }

    /// Raw numeric frames: lengths, alignment and finiteness checks.
    static func rawFrames() -> FuzzTarget {
        let seed = Array(RawFrame.float32([0.5, -1, 3e38, 1e-38]).bytes) + Array(RawFrame.int32([0, 1, -1, .max]).bytes)
        return FuzzTarget(name: "raw_frames", seeds: [seed], dictionary: [[0, 0, 0xC0, 0x7F], [0, 0, 0x80, 0x7F]]) { bytes in
            let frame = Frame(bytes)
            _ = try? RawFrame.decodeInt32(frame, field: "tokens")
            _ = try? RawFrame.decodeFloat32(frame, field: "log-probs")
            _ = try? RawFrame.decodeFloat32(frame, field: "log-probs", expectedCount: bytes.count / 4)
        }
    }

    // MARK: files

    /// A run log read back for resume and replay: hash chain, records, typed bodies.
    static func runLog() throws -> FuzzTarget {
        let seed = try FuzzSeeds.runLog()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-fuzz-\(getpid()).log").path
        return FuzzTarget(name: "run_log", seeds: [seed], dictionary: FuzzSeeds.jsonTokens) { bytes in
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
            if let records = try? RunLog.read(path: path) { _ = try? RunHistory(records: records) }
        }
    }

    static func safetensors() throws -> FuzzTarget {
        let seed = try FuzzSeeds.safetensors()
        return FuzzTarget(name: "safetensors", seeds: [seed], dictionary: FuzzSeeds.jsonTokens) { bytes in
            guard let file = try? SafetensorsFile(data: Data(bytes)) else { return }
            for name in file.tensors.keys.sorted() { _ = try? file.floats(name) }
        }
    }

    static func tokenizerJSON() -> FuzzTarget {
        FuzzTarget(name: "tokenizer_json", seeds: [Array(FuzzSeeds.tokenizerJSON.utf8)], dictionary: FuzzSeeds.jsonTokens) { bytes in
            guard let tokenizer = try? BPETokenizer(tokenizerJSON: Data(bytes)) else { return }
            let ids = tokenizer.encode("fuzz 12 + 30 = 42\n", recognizingSpecialTokens: true)
            _ = try? tokenizer.decode(ids)
        }
    }

    static func runConfig() -> FuzzTarget {
        FuzzTarget(name: "run_config", seeds: [Array(RunConfig().resolvedJSONData())], dictionary: FuzzSeeds.jsonTokens) { bytes in
            _ = try? RunConfig.parse(json: bytes, source: "fuzz.json")
        }
    }

    static func modelConfig() -> FuzzTarget {
        FuzzTarget(name: "model_config", seeds: [Array(FuzzSeeds.modelConfigJSON.utf8)], dictionary: FuzzSeeds.jsonTokens) { bytes in
            _ = try? ModelConfig.parse(json: Data(bytes), path: "fuzz/config.json")
        }
    }

    /// What an actor makes of a learner's Welcome: the run configuration and model files.
    static func welcomeConfig() -> FuzzTarget {
        let seed = FuzzSeeds.welcomeJSON()
        return FuzzTarget(name: "welcome_config", seeds: [Array(seed.utf8)], dictionary: FuzzSeeds.jsonTokens) { bytes in
            _ = try? WelcomeConfig(decoding: String(decoding: bytes, as: UTF8.self))
        }
    }
}

/// Several frames in one byte string, so that mutations can move frame boundaries too: each frame is
/// a little-endian UInt32 length and its bytes; a length past the end takes what is left.
enum FramedBytes {
    static func join(_ frames: [Frame]) -> [UInt8] {
        var out: [UInt8] = []
        for f in frames {
            withUnsafeBytes(of: UInt32(f.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: f.bytes)
        }
        return out
    }

    static func split(_ bytes: [UInt8]) -> [Frame] {
        var frames: [Frame] = []
        var i = 0
        while i + 4 <= bytes.count && frames.count < 16 {
            let n = Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
            let end = min(bytes.count, i + 4 + n)
            frames.append(Frame(Array(bytes[(i + 4)..<end])))
            i = end
        }
        return frames
    }
}

/// The checks a decoded message meets next in the process that receives it.
enum Semantics {
    static let admission = GroupAdmission(
        limits: .init(vocabularySize: ByteTokenizer.size, contextLength: 512, maxNewTokens: 16, groupSize: 4, temperatures: [1],
                      entropiesRequired: false),
        scorer: GroupScorer(tokenizer: ByteTokenizer(), options: RunConfig().algorithm, stopTokens: [ByteTokenizer.eosId]),
        stopSequences: ["\n"])

    static func check(_ message: WireMessage) {
        switch message.body {
        case .groupSubmit:
            // The learner's path: semantic validation, the group, every admission check and the re-scoring.
            guard let submission = try? GroupSubmission(validating: message) else { return }
            let group = RolloutGroup(submission: submission, actor: "fuzz", promptTokens: [256, 49, 43, 50, 61])
            // As the learner does: only an admitted group becomes a run-log record.
            if case .success(let admitted) = admission.review(group) { _ = try? RecordEncoder.encode(try RunRecord.groupAccepted(admitted).body()) }
        case .weightManifest(let manifest):
            if (try? manifest.validate()) != nil { _ = manifest.chunkRanges() }
        case .logEvent(let event):
            var state = MonitorState()
            state.ingest(event, receivedAt: 0)
        case .welcome(let welcome):
            _ = try? WelcomeConfig(decoding: welcome.configJson)
        default:
            break
        }
    }
}
