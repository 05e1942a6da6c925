/// Every way loading, saving or running a model can fail on bad input, each naming what was wrong.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case fileMissing(path: String)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case invalidConfig(field: String, reason: String)
    case safetensorsHeader(path: String, reason: String)
    case tensorMissing(name: String)
    case tensorShape(name: String, expected: [Int], got: [Int])
    case tensorDtype(name: String, dtype: String)
    case tensorData(name: String, reason: String)
    case unexpectedTensor(name: String)
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    case emptyInput(what: String)
    case sequenceTooLong(length: Int, maxPositions: Int)
    case invalidArgument(name: String, reason: String)
    /// A problem with no path of its own (a config field, a tensor), found in the model directory or file `path`.
    indirect case inModel(path: String, ModelError)

    public var description: String {
        switch self {
        case .inModel(let p, let e): return "\(p): \(e)"
        case .fileMissing(let p): return "missing file: \(p)"
        case .unreadable(let p, let r): return "cannot read \(p): \(r)"
        case .unwritable(let p, let r): return "cannot write \(p): \(r)"
        case .invalidConfig(let f, let r): return "config.json field \(f): \(r)"
        case .safetensorsHeader(let p, let r): return "\(p): bad safetensors header: \(r)"
        case .tensorMissing(let n): return "tensor \(n) is missing from the weights"
        case .tensorShape(let n, let e, let g): return "tensor \(n) has shape \(g), the config needs \(e)"
        case .tensorDtype(let n, let d): return "tensor \(n) has unsupported dtype \(d) (supported: F32, F16, BF16)"
        case .tensorData(let n, let r): return "tensor \(n): \(r)"
        case .unexpectedTensor(let n): return "tensor \(n) is not part of this model configuration"
        case .tokenOutOfRange(let id, let v): return "token id \(id) is out of range for vocabulary size \(v)"
        case .emptyInput(let w): return "empty input: \(w)"
        case .sequenceTooLong(let l, let m): return "sequence of \(l) tokens exceeds max_position_embeddings \(m)"
        case .invalidArgument(let n, let r): return "\(n): \(r)"
        }
    }
}
