import TroupeProto

/// A ROUTER peer's routing id (the first frame of every message a ROUTER receives).
/// On an authenticated socket a peer is also the user its ZAP handler admitted (`authenticatedUser`):
/// two connections with one routing id but different keys are different peers.
public struct PeerID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]
    /// The ZAP user id of the connection (the allowlisted name of its CURVE key); nil on a plaintext socket.
    public let authenticatedUser: String?

    public init(_ bytes: [UInt8], authenticatedUser: String? = nil) {
        self.bytes = bytes
        self.authenticatedUser = authenticatedUser
    }

    /// Hex, for logs (libzmq's generated ids are binary).
    public var description: String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// Outcome of receiving a Troupe message on a DEALER, SUB or PAIR socket.
public enum WireReceive: Sendable {
    case message(WireMessage)
    case timedOut
    /// A message arrived and was refused; count it by `error.reason`.
    case rejected(WireError)
}

/// Outcome of receiving a Troupe message on a ROUTER socket.
public enum RouterReceive: Sendable {
    case message(from: PeerID, WireMessage)
    case timedOut
    /// A message arrived from `peer` and was refused (peer is nil only if even the routing id was missing).
    case rejected(from: PeerID?, WireError)
}

extension ZMQSocket {
    /// Encodes and sends a message (no routing frame). Throws `WireError` if it cannot be encoded,
    /// `ZMQError` if the socket fails.
    public func send(_ message: WireMessage, deadline: Deadline = .now) throws -> SendResult {
        try send(message.encode(), deadline: deadline)
    }

    /// ROUTER: sends a message to one peer. `.peerUnreachable` means the peer is gone (needs
    /// `.routerMandatory(true)`; without it libzmq drops the message silently and says `.sent`).
    public func send(_ message: WireMessage, to peer: PeerID, deadline: Deadline = .now) throws -> SendResult {
        try send([Frame(peer.bytes)] + message.encode(), deadline: deadline)
    }

    /// Receives and decodes one message, waiting until `deadline`. Messages over `limits` are
    /// dropped while being read and reported as `.rejected`.
    public func receiveMessage(deadline: Deadline, limits: WireLimits) throws(ZMQError) -> WireReceive {
        switch try receive(deadline: deadline, maxFrames: limits.maxRawFrames + 1, maxBytes: limits.maxMessageBytes) {
        case .timedOut:
            return .timedOut
        case .overLimit(let frameCount, let byteCount, _):
            return .rejected(overLimitError(frameCount: frameCount - 1, byteCount: byteCount, limits: limits))
        case .message(let frames):
            if let refusal = unauthenticatedSender() { return .rejected(refusal) }
            do {
                return .message(try WireMessage.decode(frames, limits: limits))
            } catch {
                return .rejected(error)
            }
        }
    }

    /// ROUTER: receives and decodes one message with the sender's routing id.
    public func receiveFromPeer(deadline: Deadline, limits: WireLimits) throws(ZMQError) -> RouterReceive {
        // One extra frame and 256 bytes for the routing id (at most 255 bytes).
        switch try receive(deadline: deadline, maxFrames: limits.maxRawFrames + 2, maxBytes: limits.maxMessageBytes + 256) {
        case .timedOut:
            return .timedOut
        case .overLimit(let frameCount, let byteCount, let routingID):
            return .rejected(from: routingID.map { PeerID($0.bytes) }, overLimitError(frameCount: frameCount - 2, byteCount: byteCount, limits: limits))
        case .message(let frames):
            guard let identity = frames.first else {
                return .rejected(from: nil, WireError(.emptyMessage, "no frames"))
            }
            let peer = PeerID(identity.bytes, authenticatedUser: lastUserID)
            if let refusal = unauthenticatedSender() { return .rejected(from: peer, refusal) }
            do {
                return .message(from: peer, try WireMessage.decode(Array(frames.dropFirst()), limits: limits))
            } catch {
                return .rejected(from: peer, error)
            }
        }
    }

    /// With `admitsUser` set, the reason to refuse the message just received, if its user is not admitted.
    private func unauthenticatedSender() -> WireError? {
        guard let admitsUser else { return nil }
        guard let user = lastUserID, !user.isEmpty else {
            return WireError(.unauthenticated, "no authenticated user (is the ZAP handler answering?)")
        }
        return admitsUser(user, lastUserKey) ? nil : WireError(.unauthenticated, "user \(user) is not admitted here")
    }

    private func overLimitError(frameCount: Int, byteCount: Int, limits: WireLimits) -> WireError {
        if frameCount > limits.maxRawFrames {
            return WireError(.tooManyFrames, "\(frameCount) raw frames, limit \(limits.maxRawFrames) (dropped while reading)")
        }
        return WireError(.messageTooLarge, "message of at least \(byteCount) bytes, limit \(limits.maxMessageBytes) (dropped while reading)")
    }
}
