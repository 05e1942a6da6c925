import SwiftProtobuf
import TroupeProto

public typealias WireBody = Troupe_V1_Envelope.OneOf_Body

/// The kind of a message, for dispatch, counting and the raw-frame rule of each kind.
public enum MessageKind: String, Sendable, CaseIterable, Hashable {
    case hello, welcome, reject
    case leaseRequest = "lease_request", lease
    case groupSubmit = "group_submit", ack
    case heartbeat, bye
    case weightManifestRequest = "weight_manifest_request", weightManifest = "weight_manifest"
    case chunkRequest = "chunk_request", chunk
    case weightAnnounce = "weight_announce"
    case logEvent = "log_event"
    case weightSourceRequest = "weight_source_request", weightSource = "weight_source"
    case relayPeers = "relay_peers"

    public init(_ body: WireBody) {
        switch body {
        case .hello: self = .hello
        case .welcome: self = .welcome
        case .reject: self = .reject
        case .leaseRequest: self = .leaseRequest
        case .lease: self = .lease
        case .groupSubmit: self = .groupSubmit
        case .ack: self = .ack
        case .heartbeat: self = .heartbeat
        case .bye: self = .bye
        case .weightManifestRequest: self = .weightManifestRequest
        case .weightManifest: self = .weightManifest
        case .chunkRequest: self = .chunkRequest
        case .chunk: self = .chunk
        case .weightAnnounce: self = .weightAnnounce
        case .logEvent: self = .logEvent
        case .weightSourceRequest: self = .weightSourceRequest
        case .weightSource: self = .weightSource
        case .relayPeers: self = .relayPeers
        }
    }

    /// How many raw frames a message of this kind may carry: a GroupSubmit 2 (tokens, log-probs)
    /// or 3 (+ entropies), a Chunk 1 (or 0 when its status is not OK), everything else none.
    public var allowedRawFrames: ClosedRange<Int> {
        switch self {
        case .groupSubmit: return 2...3
        case .chunk: return 0...1
        default: return 0...0
        }
    }
}

/// A Troupe message: an Envelope body plus raw frames.
///
/// On the wire it is `[header, raw frames...]` where the header is the serialized Envelope with
/// protocol version, frame count, frame lengths and a sealing XXH64 checksum (envelope.proto has
/// the exact layout). `encode()` produces those frames; `decode(_:limits:)` checks everything in
/// this order and throws a `WireError` naming the first problem:
/// limits (frame count, header size, frame sizes, total) → protobuf → protocol major →
/// frame count → frame lengths → checksum → body present and known → raw frames allowed for the kind.
///
/// Semantic checks of a group (counts against frame lengths, finiteness) are a separate step,
/// `GroupSubmission(validating:)`, so a learner can still read the sequence number of a bad group
/// to reject it with an Ack.
public struct WireMessage: Sendable {
    public var body: WireBody
    public var frames: [Frame]
    /// Sent as-is by `encode` (override only to test version handling); set from the header by `decode`.
    public var protocolMajor: UInt32 = WireProtocol.major
    public var protocolMinor: UInt32 = WireProtocol.minor
    /// Set by `decode`: the header or body had fields this build does not know (a newer minor). Count these.
    public private(set) var hasUnknownFields = false

    public init(_ body: WireBody, frames: [Frame] = []) {
        self.body = body
        self.frames = frames
    }

    public var kind: MessageKind { MessageKind(body) }

    // Field 15 (checksum), wire type 2 (length-delimited), followed by the length byte 8.
    static let checksumTag: UInt8 = 0x7A
    static let checksumLength: UInt8 = 8
    static let trailerLength = 10

    /// The frames to send: header, then the raw frames unchanged (zero-copy frames stay zero-copy).
    public func encode() throws(WireError) -> [Frame] {
        var envelope = Troupe_V1_Envelope()
        envelope.protocolMajor = protocolMajor
        envelope.protocolMinor = protocolMinor
        envelope.frameCount = UInt32(frames.count)
        envelope.frameLengths = frames.map { UInt64($0.count) }
        envelope.body = body
        let header: [UInt8]
        do {
            header = try envelope.serializedBytes()
        } catch {
            throw WireError(.encodingFailed, "serializing the \(kind.rawValue) envelope: \(error)")
        }
        return WireMessage.seal(header: header, rawFrames: frames)
    }

    /// The frames of a message whose serialized Envelope (without its checksum) is `header`: the
    /// header with the XXH64 of header and raw frames appended, then the raw frames.
    package static func seal(header: [UInt8], rawFrames: [Frame]) -> [Frame] {
        var hasher = XXH64()
        hasher.update(header)
        for frame in rawFrames { frame.withUnsafeBytes { hasher.update($0) } }
        var sealed = header
        appendChecksum(hasher.finalize(), to: &sealed)
        return [Frame(sealed)] + rawFrames
    }

    /// The header of encoded `frames` without its checksum trailer (what `seal` takes).
    package static func unsealedHeader(_ frames: [Frame]) -> [UInt8] {
        Array(frames[0].bytes.dropLast(2 + Int(checksumLength)))
    }

    static func appendChecksum(_ digest: UInt64, to header: inout [UInt8]) {
        header.append(checksumTag)
        header.append(checksumLength)
        withUnsafeBytes(of: digest.bigEndian) { header.append(contentsOf: $0) }
    }

    /// Validates and decodes received frames (without a ROUTER identity).
    public static func decode(_ frames: [Frame], limits: WireLimits) throws(WireError) -> WireMessage {
        guard let headerFrame = frames.first else { throw WireError(.emptyMessage, "no frames") }
        let rawFrames = Array(frames.dropFirst())
        try checkLimits(header: headerFrame, rawFrames: rawFrames, limits: limits)
        let header = headerFrame.bytes
        let envelope = try parseEnvelope(header)
        try checkVersionAndFrames(envelope, rawFrames: rawFrames)
        try verifyChecksum(header: header, envelope: envelope, rawFrames: rawFrames)
        let body = try checkBody(envelope, rawFrames: rawFrames)

        var message = WireMessage(body, frames: rawFrames)
        message.protocolMajor = envelope.protocolMajor
        message.protocolMinor = envelope.protocolMinor
        message.hasUnknownFields = !envelope.unknownFields.data.isEmpty || body.hasUnknownFields
        return message
    }

    /// 1. Limits, before touching the bytes.
    private static func checkLimits(header headerFrame: Frame, rawFrames: [Frame], limits: WireLimits) throws(WireError) {
        if rawFrames.count > limits.maxRawFrames {
            throw WireError(.tooManyFrames, "\(rawFrames.count) raw frames, limit \(limits.maxRawFrames)")
        }
        if headerFrame.count > limits.maxHeaderBytes {
            throw WireError(.headerTooLarge, "header frame is \(headerFrame.count) bytes, limit \(limits.maxHeaderBytes)")
        }
        var total = headerFrame.count
        for (index, frame) in rawFrames.enumerated() {
            if frame.count > limits.maxFrameBytes {
                throw WireError(.frameTooLarge, "raw frame \(index) is \(frame.count) bytes, limit \(limits.maxFrameBytes)")
            }
            total += frame.count
        }
        if total > limits.maxMessageBytes {
            throw WireError(.messageTooLarge, "message is \(total) bytes, limit \(limits.maxMessageBytes)")
        }
    }

    /// 2. Protobuf.
    private static func parseEnvelope(_ header: [UInt8]) throws(WireError) -> Troupe_V1_Envelope {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 16  // our messages nest at most 4 deep
        do {
            return try Troupe_V1_Envelope(serializedBytes: header, options: options)
        } catch {
            throw WireError(.malformedHeader, "header is not a valid Envelope (\(header.count) bytes): \(error)")
        }
    }

    /// 3. Version, counts, lengths.
    private static func checkVersionAndFrames(_ envelope: Troupe_V1_Envelope, rawFrames: [Frame]) throws(WireError) {
        if envelope.protocolMajor != WireProtocol.major {
            throw WireError(.unsupportedProtocol, "protocol major \(envelope.protocolMajor) (minor \(envelope.protocolMinor)); this build speaks \(WireProtocol.major).\(WireProtocol.minor)")
        }
        if envelope.frameCount != rawFrames.count {
            throw WireError(.frameCountMismatch, "header announces \(envelope.frameCount) raw frames, \(rawFrames.count) arrived")
        }
        if envelope.frameLengths.count != rawFrames.count {
            throw WireError(.frameLengthMismatch, "header lists \(envelope.frameLengths.count) frame lengths for \(rawFrames.count) raw frames")
        }
        for (index, frame) in rawFrames.enumerated() where envelope.frameLengths[index] != UInt64(frame.count) {
            throw WireError(.frameLengthMismatch, "raw frame \(index) is \(frame.count) bytes, header says \(envelope.frameLengths[index])")
        }
    }

    /// 4. Checksum: the header must end with the checksum field, covering everything before it.
    private static func verifyChecksum(header: [UInt8], envelope: Troupe_V1_Envelope, rawFrames: [Frame]) throws(WireError) {
        let sealed = header.count >= trailerLength
            && header[header.count - trailerLength] == checksumTag
            && header[header.count - trailerLength + 1] == checksumLength
            && envelope.checksum.count == Int(checksumLength)
        guard sealed else {
            throw WireError(.checksumMissing, "header does not end with the 8-byte checksum field (truncated or unsealed)")
        }
        var hasher = XXH64()
        header.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0.dropLast(trailerLength))) }
        for frame in rawFrames { frame.withUnsafeBytes { hasher.update($0) } }
        let expected = hasher.finalize()
        let received = envelope.checksum.reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
        if expected != received {
            throw WireError(.checksumMismatch, "checksum \(hex(received)) does not match the content (\(hex(expected)))")
        }
    }

    /// 5. Body and frames allowed for its kind.
    private static func checkBody(_ envelope: Troupe_V1_Envelope, rawFrames: [Frame]) throws(WireError) -> WireBody {
        guard let body = envelope.body else {
            if envelope.unknownFields.data.isEmpty {
                throw WireError(.missingBody, "envelope has no body")
            }
            throw WireError(.unknownKind, "body is a message kind this build does not know (sender speaks \(envelope.protocolMajor).\(envelope.protocolMinor))")
        }
        let kind = MessageKind(body)
        var allowed = kind.allowedRawFrames
        switch body {
        case .groupSubmit(let group): allowed = group.withEntropies ? 3...3 : 2...2
        case .chunk(let chunk): allowed = chunk.status == .ok ? 1...1 : 0...0
        default: break
        }
        if !allowed.contains(rawFrames.count) {
            throw WireError(.unexpectedFrameCount, "\(kind.rawValue) with \(rawFrames.count) raw frames; expected \(allowed.lowerBound == allowed.upperBound ? "\(allowed.lowerBound)" : "\(allowed)")")
        }
        return body
    }
}

func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

extension Troupe_V1_Envelope.OneOf_Body {
    /// The body as a generic protobuf message.
    public var message: any SwiftProtobuf.Message {
        switch self {
        case .hello(let m): return m
        case .welcome(let m): return m
        case .reject(let m): return m
        case .leaseRequest(let m): return m
        case .lease(let m): return m
        case .groupSubmit(let m): return m
        case .ack(let m): return m
        case .heartbeat(let m): return m
        case .bye(let m): return m
        case .weightManifestRequest(let m): return m
        case .weightManifest(let m): return m
        case .chunkRequest(let m): return m
        case .chunk(let m): return m
        case .weightAnnounce(let m): return m
        case .logEvent(let m): return m
        case .weightSourceRequest(let m): return m
        case .weightSource(let m): return m
        case .relayPeers(let m): return m
        }
    }

    /// Unknown fields in the body message itself (not in its nested messages).
    var hasUnknownFields: Bool { !message.unknownFields.data.isEmpty }
}

extension Troupe_V1_PolicyVersion {
    public init(epoch: UInt64, step: UInt64) {
        self.init()
        self.epoch = epoch
        self.step = step
    }

    /// `epoch/step` with the epoch in hex, for logs.
    public var label: String { "\(String(epoch, radix: 16))/\(step)" }
}
