/// Everything that can go wrong building, loading or using a tokenizer. Every case names the
/// offending id, file, field or feature.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// An id outside `0..<vocabularySize`.
    case idOutOfRange(id: Int32, vocabularySize: Int)
    /// An id inside the range that no token has (a gap in the vocabulary).
    case unassignedId(Int32)
    case fileNotFound(path: String)
    case unreadableFile(path: String, reason: String)
    /// The text is not JSON, or not the JSON object expected.
    case malformedJSON(reason: String)
    /// A field holds something unusable. `field` is a JSON path such as `model.merges[12]`.
    case invalidField(field: String, problem: String)
    /// A tokenizer feature this implementation does not support, e.g. `normalizer NFKC`.
    case unsupported(feature: String)
    /// A model directory whose files disagree with each other.
    case inconsistentModelDirectory(path: String, problem: String)
    /// An error inside a file, with the file's path.
    indirect case inFile(path: String, TokenizerError)

    public var description: String {
        switch self {
        case let .idOutOfRange(id, size):
            return "token id \(id) is out of range: the vocabulary has ids 0..<\(size)"
        case let .unassignedId(id):
            return "token id \(id) is not assigned to any token"
        case let .fileNotFound(path):
            return "\(path): no such file"
        case let .unreadableFile(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .malformedJSON(reason):
            return "malformed JSON: \(reason)"
        case let .invalidField(field, problem):
            return "field \(field): \(problem)"
        case let .unsupported(feature):
            return "\(feature) is not supported"
        case let .inconsistentModelDirectory(path, problem):
            return "model directory \(path): \(problem)"
        case let .inFile(path, error):
            return "\(path): \(error)"
        }
    }
}
