import TroupeProto

/// Why a message was refused. `reason` is stable and low-cardinality, for counting rejects by
/// reason (`reason.rawValue` is a snake_case metric label); `detail` says which field or frame.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable, Hashable {
        /// No frames at all (or only a ROUTER identity).
        case emptyMessage = "empty_message"
        /// More raw frames than `WireLimits.maxRawFrames`.
        case tooManyFrames = "too_many_frames"
        /// The header frame is larger than `WireLimits.maxHeaderBytes`.
        case headerTooLarge = "header_too_large"
        /// A raw frame is larger than `WireLimits.maxFrameBytes`.
        case frameTooLarge = "frame_too_large"
        /// All frames together exceed `WireLimits.maxMessageBytes`.
        case messageTooLarge = "message_too_large"
        /// The header frame is not a valid Envelope (protobuf decoding failed).
        case malformedHeader = "malformed_header"
        /// `protocol_major` differs from `WireProtocol.major`.
        case unsupportedProtocol = "unsupported_protocol"
        /// `frame_count` differs from the number of raw frames received.
        case frameCountMismatch = "frame_count_mismatch"
        /// `frame_lengths` differs from the raw frames' byte lengths.
        case frameLengthMismatch = "frame_length_mismatch"
        /// The header does not end with the checksum field (truncated or not sealed).
        case checksumMissing = "checksum_missing"
        /// The checksum does not match the header and raw frames.
        case checksumMismatch = "checksum_mismatch"
        /// The Envelope has no body.
        case missingBody = "missing_body"
        /// The body is a message kind this build does not know (a newer protocol minor).
        case unknownKind = "unknown_kind"
        /// The number of raw frames is wrong for the message kind.
        case unexpectedFrameCount = "unexpected_frame_count"
        /// A raw frame's length is not a whole number of elements, or disagrees with the counts in the header.
        case rawFrameLength = "raw_frame_length"
        /// NaN or infinity where a finite number is required.
        case nonFinite = "non_finite"
        /// A field has a value outside its domain (negative token id, empty group, ...).
        case invalidField = "invalid_field"
        /// On an authenticated socket: the sender's connection carries no admitted ZAP user id.
        case unauthenticated = "unauthenticated"
        /// The message could not be serialized (a bug, not bad input).
        case encodingFailed = "encoding_failed"
    }

    public let reason: Reason
    public let detail: String

    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }

    /// The reason to put in a rejecting `Ack` for a group that failed this validation.
    public var groupRejectReason: Troupe_V1_GroupRejectReason {
        reason == .nonFinite ? .nonFinite : .malformed
    }
}

/// Caps checked before any decoding, so a hostile or buggy peer cannot make a process allocate
/// or parse without bound. Also the source of the socket's `.maxMessageSize`.
public struct WireLimits: Sendable, Hashable {
    /// Raw frames after the header.
    public var maxRawFrames: Int
    public var maxHeaderBytes: Int
    /// Per raw frame.
    public var maxFrameBytes: Int
    /// Header plus raw frames.
    public var maxMessageBytes: Int

    public init(maxRawFrames: Int, maxHeaderBytes: Int, maxFrameBytes: Int, maxMessageBytes: Int) {
        self.maxRawFrames = maxRawFrames
        self.maxHeaderBytes = maxHeaderBytes
        self.maxFrameBytes = maxFrameBytes
        self.maxMessageBytes = maxMessageBytes
    }

    static let mebibyte = 1 << 20

    /// Control channel: Hello/Welcome/leases (prompts in the header) and groups (three raw frames:
    /// 16 MiB per frame is 4 Mi tokens per group).
    public static let control = WireLimits(maxRawFrames: 3, maxHeaderBytes: 4 * mebibyte,
                                           maxFrameBytes: 16 * mebibyte, maxMessageBytes: 52 * mebibyte)
    /// What an actor's control DEALER accepts from its learner: replies without raw frames, the Welcome
    /// among them, whose `config_json` carries the model's tokenizer files (`tokenizer.json` is 7 MB for
    /// Qwen2.5 and 9 MB for Llama 3). The learner refuses to start with a larger Welcome.
    public static let controlReplies = WireLimits(maxRawFrames: 0, maxHeaderBytes: 64 * mebibyte,
                                                  maxFrameBytes: 0, maxMessageBytes: 64 * mebibyte)
    /// Weights channel: manifests (header only) and chunks (one raw frame of up to 64 MiB).
    public static let weights = WireLimits(maxRawFrames: 1, maxHeaderBytes: 4 * mebibyte,
                                           maxFrameBytes: 64 * mebibyte, maxMessageBytes: 68 * mebibyte)
    /// Announcements and log events: header only.
    public static let headerOnly = WireLimits(maxRawFrames: 0, maxHeaderBytes: 1 * mebibyte,
                                              maxFrameBytes: 0, maxMessageBytes: 1 * mebibyte)
    /// Everything any Troupe message may need; for tools that read every channel.
    public static let permissive = WireLimits(maxRawFrames: 3, maxHeaderBytes: 4 * mebibyte,
                                              maxFrameBytes: 64 * mebibyte, maxMessageBytes: 196 * mebibyte)

    /// The value for `SocketOption.maxMessageSize` (which libzmq applies per frame): the largest
    /// frame these limits allow, plus room for a ROUTER identity.
    public var socketMaxFrameBytes: Int64 {
        Int64(max(maxHeaderBytes, maxFrameBytes)) + 256
    }
}
