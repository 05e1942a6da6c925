import CZeroMQ

/// A CURVE key (zmq_curve(7)): 32 bytes, carried as its 40-character Z85 text, the form key files
/// and socket options use. Constructed only from text that decodes, so a key in hand is always valid.
public struct CurveKey: Sendable, Hashable, CustomStringConvertible {
    /// The 40 Z85 characters.
    public let z85: String

    public init(z85 text: String) throws(CurveKeyError) {
        guard text.utf8.count == 40 else {
            throw CurveKeyError("a CURVE key is 40 Z85 characters, got \(text.utf8.count)")
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&bytes, text) != nil else {
            throw CurveKeyError("\"\(text)\" is not Z85 (RFC 32) text")
        }
        z85 = text
    }

    /// Keys are public or secret; only the first 8 characters are shown, so a secret never reaches a log whole.
    public var description: String { String(z85.prefix(8)) + "…" }
}

/// A CURVE key pair: a socket's own long-term keys.
public struct CurveKeyPair: Sendable, Hashable {
    public let publicKey: CurveKey
    public let secretKey: CurveKey

    /// The pair whose secret is `secretKey` (the public key is derived from it).
    public init(secretKey: CurveKey) throws(CurveKeyError) {
        var publicText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicText, secretKey.z85) == 0 else {
            throw CurveKeyError("libzmq cannot derive a public key (built without CURVE?)")
        }
        self.secretKey = secretKey
        publicKey = try CurveKey(z85: String(cString: publicText))
    }

    /// A new random pair (libsodium through libzmq).
    public static func generate() throws(CurveKeyError) -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicText, &secretText) == 0 else {
            throw CurveKeyError("libzmq cannot make CURVE keys (built without CURVE?)")
        }
        return try CurveKeyPair(secretKey: CurveKey(z85: String(cString: secretText)))
    }

    /// True when libzmq was built with CURVE (Debian's libzmq5 is).
    public static var isSupported: Bool { zmq_has("curve") == 1 }
}

public struct CurveKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}

/// How one socket is secured. The learner's sockets and an actor's relay are CURVE servers that
/// authenticate every client through the ZAP handler (`ZAPHandler`) for `domain`; actors and monitors
/// are clients that pin the server's public key.
public enum CurveRole: Sendable, Hashable {
    case server(CurveKeyPair, domain: String)
    case client(serverKey: CurveKey, own: CurveKeyPair)

    /// The socket options for this role (set before bind or connect).
    public var options: [SocketOption] {
        switch self {
        case .server(let pair, let domain):
            return [.zapDomain(domain), .curveServer(secretKey: pair.secretKey)]
        case .client(let serverKey, let own):
            return [.curveClient(serverKey: serverKey, publicKey: own.publicKey, secretKey: own.secretKey)]
        }
    }
}
