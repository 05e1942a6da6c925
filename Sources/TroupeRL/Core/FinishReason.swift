/// Why an actor stopped generating a completion.
public enum FinishReason: String, CaseIterable, Codable, Sendable, Equatable {
    /// End of sequence or a stop string: the completion is whole.
    case stop
    /// The token budget ran out: the completion is truncated (DAPO masks or shapes it, DLER zeroes it).
    case length
}
