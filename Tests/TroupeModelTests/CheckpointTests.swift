import Foundation
import Testing
import TroupeModel
import TroupeTensor

@Suite struct CheckpointTests {
    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "troupe-ckpt-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func saveAndLoadRoundTripBitForBit() throws {
        let model = try ModelDirectory.load(Fixtures.qwen2Tiny)
        let dir = Self.tempDir()
        try ModelDirectory.save(model, to: dir)
        let back = try ModelDirectory.load(dir)
        #expect(back.config == model.config)
        #expect(back.weightsHash() == model.weightsHash())
    }

    /// A safetensors file's length prefix and `header` (padded to 8 bytes), for the data to follow.
    static func safetensorsStart(header: String) -> Data {
        var header = header
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        return data
    }

    @Test func halfPrecisionWeightsAreWidenedOnLoad() throws {
        // 1.0, −2.0, 0.5 and a subnormal in F16; 1.0, −2.0, 0.5, 3.140625 in BF16.
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x0001]
        let bf16: [UInt16] = [0x3F80, 0xC000, 0x3F00, 0x4049]
        var data = Self.safetensorsStart(header: "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}")
        for v in f16 + bf16 { var le = v.littleEndian; withUnsafeBytes(of: &le) { data.append(contentsOf: $0) } }
        let file = try SafetensorsFile(data: data)
        #expect(try file.floats("a") == [1, -2, 0.5, Float(sign: .plus, exponent: -24, significand: 1)])
        #expect(try file.floats("b") == [1, -2, 0.5, 3.140625])
    }

    /// A shape whose byte count wraps around (2^62 × 128 × 4 bytes is 0 mod 2^64) must not pass as the
    /// empty range it claims: the file is refused naming the tensor.
    @Test func aShapeTooLargeToAddressIsRefused() throws {
        let data = Self.safetensorsStart(header: "{\"e\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,128],\"data_offsets\":[0,0]}}")
        #expect(throws: ModelError.tensorData(name: "e", reason: "shape [4611686018427387904, 128] is too large to address")) {
            try SafetensorsFile(data: data)
        }
    }

    /// Two tensors whose byte ranges overlap are refused naming both.
    @Test func tensorsThatShareBytesAreRefused() throws {
        var data = Self.safetensorsStart(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}")
        data.append(Data(count: 12))
        #expect(throws: ModelError.safetensorsHeader(path: "<memory>", reason: "tensors a [0, 8) and b [4, 12) share bytes")) {
            try SafetensorsFile(data: data)
        }
    }

    @Test func corruptFilesNameTheProblem() throws {
        let src = try ModelDirectory.load(Fixtures.llamaTiny)
        let dir = Self.tempDir()
        try ModelDirectory.save(src, to: dir)
        let weights = dir + "/model.safetensors"
        let full = try Data(contentsOf: URL(fileURLWithPath: weights))

        // Truncated: the last tensor's data runs past the end.
        try full.prefix(full.count - 100).write(to: URL(fileURLWithPath: weights))
        #expect(throws: (any Error).self) { try ModelDirectory.load(dir) }
        do { _ = try ModelDirectory.load(dir) } catch { #expect("\(error)".contains("truncated")) }

        // Garbage header length.
        try Data([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2]).write(to: URL(fileURLWithPath: weights))
        do { _ = try ModelDirectory.load(dir); Issue.record("loaded a garbage file") } catch {
            #expect("\(error)".contains("header"))
        }

        // Config and weights disagree: a config with more layers than the weights hold.
        try full.write(to: URL(fileURLWithPath: weights))
        var config = src.config
        config.layers = 5
        try config.jsonData().write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect(throws: ModelError.inModel(path: dir, .tensorMissing(name: "model.layers.4.input_layernorm.weight"))) { try ModelDirectory.load(dir) }

        // Fewer layers: the extra tensors are reported.
        config.layers = 3
        try config.jsonData().write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect(throws: ModelError.inModel(path: dir, .unexpectedTensor(name: "model.layers.3.input_layernorm.weight"))) { try ModelDirectory.load(dir) }

        // Wrong width.
        config.layers = 4
        config.intermediateSize = 100
        try config.jsonData().write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect(throws: ModelError.inModel(path: dir, .tensorShape(name: "model.layers.0.mlp.down_proj.weight", expected: [128, 100], got: [128, 352]))) {
            try ModelDirectory.load(dir)
        }
        // Bad config values.
        try "{\"vocab_size\": 10, \"hidden_size\": 8}".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: ModelError.inModel(path: dir, .invalidConfig(field: "num_attention_heads", reason: "missing"))) { try ModelDirectory.load(dir) }
        try "not json".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try ModelDirectory.load(dir) }
        #expect(throws: ModelError.fileMissing(path: dir + "/nope")) { try ModelDirectory.load(dir + "/nope") }
    }
}
