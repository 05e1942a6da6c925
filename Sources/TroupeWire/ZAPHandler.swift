import CZeroMQ
import Foundation

/// Who may connect to CURVE servers: each allowlisted public key with its name (the ZAP user id its
/// connections carry) and its role. Which roles a socket admits is decided per ZAP domain
/// (`ZAPHandler.Policy`).
public struct CurveAllowlist: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        /// A reward worker's key is what a learner checks its workers by; no learner socket admits it.
        case learner, actor, monitor, rewardWorker = "reward-worker"
    }

    public struct Member: Sendable, Hashable {
        public let name: String
        public let role: Role
        public let publicKey: CurveKey
        public init(name: String, role: Role, publicKey: CurveKey) {
            self.name = name
            self.role = role
            self.publicKey = publicKey
        }
    }

    public private(set) var members: [CurveKey: Member] = [:]
    /// The same members by name: every received message is checked against it.
    private var membersByName: [String: Member] = [:]

    public init() {}

    /// Refuses a key or a name listed twice: a user id must name one key.
    public init(_ list: [Member]) throws(CurveKeyError) {
        var names: Set<String> = []
        for member in list {
            guard !member.name.isEmpty else { throw CurveKeyError("an allowlisted key needs a name") }
            guard members[member.publicKey] == nil else {
                throw CurveKeyError("key \(member.publicKey) is allowlisted twice (\(members[member.publicKey]!.name) and \(member.name))")
            }
            guard names.insert(member.name).inserted else { throw CurveKeyError("two allowlisted keys are named \(member.name)") }
            members[member.publicKey] = member
            membersByName[member.name] = member
        }
    }

    public func member(named name: String) -> Member? { membersByName[name] }

    /// The list with `member` added (or replacing the entry of the same name).
    public func adding(_ member: Member) throws(CurveKeyError) -> CurveAllowlist {
        try CurveAllowlist(members.values.filter { $0.name != member.name } + [member])
    }
}

/// The ZAP handler (RFC 27) of one `ZMQContext`: every CURVE server socket of the context asks it,
/// at each handshake, whether the client's public key may connect to that socket's ZAP domain.
///
/// libzmq 4.3 fails open: a CURVE server whose context has no handler bound at
/// `inproc://zeromq.zap.01` accepts every client. So the handler binds that endpoint in `init`,
/// before any server socket may bind, and refuses to start if it is taken. If its thread stops
/// without `stop()` (an error), its socket stays bound and unanswered, so handshakes stall rather
/// than pass; `isServing` turns false and `probe()` fails, and the owner must then close its secure
/// sockets. Sockets also check each message's user id and key (`ZMQSocket.admitsUser`), so a message
/// that got past a missing handler is still refused.
public final class ZAPHandler: @unchecked Sendable {
    public static let endpoint = Endpoint.inproc(name: "zeromq.zap.01")
    /// The connection property (ZAP metadata) that carries the client's public key in Z85; libzmq
    /// attaches it to every message of the connection (`ZMQSocket.lastUserKey`).
    public static let keyProperty = "X-Curve-Key"
    /// The domain of `probe`'s canary requests; no policy admits anyone to it.
    static let canaryDomain = "troupe-canary"

    /// Which roles each ZAP domain admits.
    public struct Policy: Sendable {
        public var allowlist: CurveAllowlist
        public var rolesByDomain: [String: Set<CurveAllowlist.Role>]
        public init(allowlist: CurveAllowlist, rolesByDomain: [String: Set<CurveAllowlist.Role>]) {
            self.allowlist = allowlist
            self.rolesByDomain = rolesByDomain
        }

        /// The user id to give a client with `key` on `domain`; nil: refused.
        public func admit(key: CurveKey, domain: String) -> String? {
            guard let member = allowlist.members[key], rolesByDomain[domain]?.contains(member.role) == true else { return nil }
            return member.name
        }

        /// Whether a message from `user`, whose handshake proved `key` (Z85), may be heard on a socket of
        /// `domain` (the per-message re-check). The key must still be the one allowlisted under that name:
        /// a key replaced under the same name loses the connections it holds at their next message.
        public func admits(user: String, key: String?, domain: String) -> Bool {
            guard let member = allowlist.member(named: user), key == member.publicKey.z85 else { return false }
            return rolesByDomain[domain]?.contains(member.role) == true
        }
    }

    private let context: ZMQContext
    private let lock = NSLock()
    private var policy: Policy
    private var stopRequested = false
    private var serving = true
    private var failure: String?
    private var refusalCount = 0
    /// Testing only: make the loop exit as if it had failed (optionally closing its socket, which is
    /// what lets libzmq fail open).
    private var injectedFailureClosesSocket: Bool?
    private let socket: ZMQSocket
    private var thread: JoinableThread!

    /// Binds `inproc://zeromq.zap.01` in `context` and starts answering with `policy`. The handler runs
    /// until `stop()`, which its owner must call (after closing its secure sockets).
    public init(context: ZMQContext, policy: Policy) throws {
        self.context = context
        self.policy = policy
        let socket = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        do {
            try socket.bind(ZAPHandler.endpoint)
        } catch {
            throw ZMQError(code: error.code, operation: "binding the ZAP handler at \(ZAPHandler.endpoint) (another handler in this context?)")
        }
        self.socket = socket
        let handoff = UncheckedBox(self)
        thread = try JoinableThread(name: "zap-handler") { handoff.value.serve() }
    }

    /// False once the handler has stopped answering (after `stop()` or a failure).
    public var isServing: Bool { lock.withLock { serving } }
    /// Why the handler stopped, if it failed.
    public var failureReason: String? { lock.withLock { failure } }
    /// Handshakes refused so far.
    public var refusals: Int { lock.withLock { refusalCount } }

    /// Replaces who is admitted (an actor learns the run's actors from its Welcome).
    public func update(_ policy: Policy) { lock.withLock { self.policy = policy } }

    public var currentPolicy: Policy { lock.withLock { policy } }

    /// Stops the handler. Idempotent. Close the secure sockets first: without a handler they fail open.
    public func stop() {
        lock.withLock { stopRequested = true }
        thread?.join()
        socket.close()
    }

    package func failForTesting(closeSocket: Bool) {
        lock.withLock { injectedFailureClosesSocket = closeSocket }
    }

    /// Sends a canary request through the ZAP endpoint and waits for the handler's refusal: true when
    /// the handler answers within `timeoutMilliseconds`. A watchdog calls it periodically.
    public func probe(timeoutMilliseconds: Int32 = 500) -> Bool {
        guard isServing else { return false }
        do {
            let request = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            defer { request.close() }
            try request.connect(ZAPHandler.endpoint)
            let id = Array(String(UInt64.random(in: 0...UInt64.max), radix: 16).utf8)
            let frames = [Frame([]), Frame(Array("1.0".utf8)), Frame(id), Frame(Array(ZAPHandler.canaryDomain.utf8)),
                          Frame([]), Frame([]), Frame(Array("CURVE".utf8)), Frame([UInt8](repeating: 0, count: 32))]
            guard try request.send(frames, deadline: .afterMilliseconds(Int(timeoutMilliseconds))) == .sent else { return false }
            let deadline = Deadline.afterMilliseconds(Int(timeoutMilliseconds))
            while case .message(let reply) = try request.receive(deadline: deadline, maxFrames: 8, maxBytes: 4096) {
                if reply.count == 7, reply[2].bytes == id { return reply[3].bytes == Array("400".utf8) }
            }
            return false
        } catch {
            return false
        }
    }

    private func serve() {
        do {
            while true {
                let (stopping, injected) = lock.withLock { (stopRequested, injectedFailureClosesSocket) }
                if stopping { break }
                if let closesSocket = injected {
                    if closesSocket { socket.close() }
                    throw ZMQError(code: EINTR, operation: "injected ZAP handler failure")
                }
                guard case .message(let frames) = try socket.receive(deadline: .afterMilliseconds(50), maxFrames: 16, maxBytes: 4096) else {
                    continue
                }
                _ = try socket.send(reply(to: frames), deadline: .afterMilliseconds(100))
            }
        } catch {
            lock.withLock { failure = "\(error)" }
        }
        lock.withLock { serving = false }
    }

    /// RFC 27: request `[routing id, "", "1.0", request id, domain, address, identity, mechanism, key]`;
    /// reply `[routing id, "", "1.0", request id, status code, status text, user id, metadata]`.
    private func reply(to frames: [Frame]) -> [Frame] {
        func answer(_ code: String, _ text: String, user: String = "", metadata: [UInt8] = []) -> [Frame] {
            if code != "200" { lock.withLock { refusalCount += 1 } }
            let routing = Array(frames.prefix(2))
            let requestID = frames.count > 3 ? frames[3] : Frame([])
            return routing + [Frame(Array("1.0".utf8)), requestID, Frame(Array(code.utf8)), Frame(Array(text.utf8)),
                              Frame(Array(user.utf8)), Frame(metadata)]
        }
        let text = { (index: Int) in String(decoding: frames[index].bytes, as: UTF8.self) }
        guard frames.count == 9, frames[1].bytes.isEmpty, text(2) == "1.0" else { return answer("500", "malformed ZAP request") }
        guard text(7) == "CURVE", frames[8].count == 32 else { return answer("400", "CURVE only") }
        var z85 = [CChar](repeating: 0, count: 41)
        let encoded = frames[8].bytes.withUnsafeBufferPointer { zmq_z85_encode(&z85, $0.baseAddress, 32) }
        guard encoded != nil, let key = try? CurveKey(z85: String(cString: z85)) else { return answer("400", "bad key") }
        guard let user = currentPolicy.admit(key: key, domain: text(4)) else { return answer("400", "key not allowlisted for \(text(4))") }
        return answer("200", "OK", user: user, metadata: Self.property(Self.keyProperty, key.z85))
    }

    /// One ZMTP property: name length (1 byte), name, value length (4 bytes, big-endian), value.
    static func property(_ name: String, _ value: String) -> [UInt8] {
        let n = Array(name.utf8), v = Array(value.utf8)
        let length = UInt32(v.count)
        return [UInt8(n.count)] + n + [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + v
    }
}

/// Carries a non-Sendable reference into a thread that becomes its only user.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
