import Foundation
import TroupeTensor
import CSodium

/// A Llama-family decoder (RMSNorm, RoPE, SwiGLU, grouped-query attention, optional q/k/v and o biases,
/// tied or untied embeddings) whose parameters live in one flat Float32 buffer laid out by
/// `ParameterLayout`. Sampling (`Sampler`) and training (`TrainingPass`) run this same code.
public final class LlamaModel: @unchecked Sendable {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let parameters: FloatBuffer
    public let rope: RopeTable

    public init(config: ModelConfig, parameters: FloatBuffer? = nil) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config: config)
        if let p = parameters {
            guard p.count == layout.totalCount else {
                throw ModelError.invalidArgument(name: "parameters", reason: "buffer holds \(p.count) values, the config needs \(layout.totalCount)")
            }
            self.parameters = p
        } else {
            // A shape too large for this machine is an error naming it, not a failed allocation.
            let bytes = layout.totalCount * MemoryLayout<Float>.size, memory = Int(clamping: ProcessInfo.processInfo.physicalMemory)
            guard bytes <= memory else {
                throw ModelError.invalidConfig(field: "(shape)", reason: "\(layout.totalCount) parameters take \(bytes) bytes as F32, more than this machine's \(memory) bytes of memory")
            }
            self.parameters = FloatBuffer(count: layout.totalCount)
        }
        rope = RopeTable(headDim: config.headDim, maxPositions: config.maxPositions, inverseFrequencies: config.ropeInverseFrequencies)
    }

    /// Random initialisation as Hugging Face does for Llama: N(0, std) matrices, unit norms, zero biases.
    public static func random(config: ModelConfig, seed: UInt64, std: Double = 0.02) throws -> LlamaModel {
        let model = try LlamaModel(config: config)
        var rng = Xoshiro256(seed: seed)
        let p = model.parameters.pointer
        for e in model.layout.entries {
            if e.name.hasSuffix("norm.weight") {
                for i in e.range { p[i] = 1 }
            } else if e.shape.count == 2 {
                for i in e.range { p[i] = Float(rng.nextGaussian() * std) }
            }
        }
        return model
    }

    /// A pointer to the tensor at `offset` in the flat buffer.
    @inline(__always)
    func w(_ offset: Int) -> UnsafeMutablePointer<Float> { parameters.pointer + offset }

    /// Checks token ids against the vocabulary and lengths against the position table.
    public func validate(sequence: [Int32], what: String = "sequence") throws {
        if sequence.isEmpty { throw ModelError.emptyInput(what: what) }
        if sequence.count > config.maxPositions {
            throw ModelError.sequenceTooLong(length: sequence.count, maxPositions: config.maxPositions)
        }
        for t in sequence where t < 0 || Int(t) >= config.vocabularySize {
            throw ModelError.tokenOutOfRange(id: Int(t), vocabularySize: config.vocabularySize)
        }
    }

    /// BLAKE2b-256 of the flat parameter bytes, hex: the identity of a set of weights in logs and replays.
    public func weightsHash() -> String { WeightsHash.hex(of: parameters) }
}

public enum WeightsHash {
    private static let initialised: Bool = sodium_init() >= 0

    public static func hex(of buffer: FloatBuffer) -> String {
        hex(bytes: UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * 4))
    }

    public static func hex(bytes: UnsafeRawBufferPointer) -> String {
        precondition(initialised)
        // The state struct is 64-byte aligned in C, which Swift imports as opaque: allocate it by size.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        defer { raw.deallocate() }
        let state = OpaquePointer(raw)
        crypto_generichash_init(state, nil, 0, 32)
        let chunk = 1 << 24
        var offset = 0
        while offset < bytes.count {
            let n = min(chunk, bytes.count - offset)
            crypto_generichash_update(state, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset, UInt64(n))
            offset += n
        }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_generichash_final(state, &out, 32)
        // String(format:) per byte cost more than hashing a 12 KB run-log line.
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 64) { text in
            for (i, byte) in out.enumerated() {
                text[2 * i] = digits[Int(byte >> 4)]
                text[2 * i + 1] = digits[Int(byte & 15)]
            }
            return 64
        }
    }
}
