import Foundation
import Testing
import TroupeProto
import TroupeWire

/// CURVE keys, key files, and the authentication cases on real sockets (loopback TCP, each case
/// bounded to about a second): an allowlisted key gets through; an unlisted key, a plaintext client
/// and a client pinning the wrong server key get nothing; a dead ZAP handler never opens the gate.
@Suite(.serialized) struct CurveTests {
    static let domain = "test-domain"

    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: keys and files

    @Test func keysAreZ85AndThePublicKeyIsDerivedFromTheSecret() throws {
        #expect(CurveKeyPair.isSupported)
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.z85.count == 40 && pair.secretKey.z85.count == 40)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        // zmq_curve(7)'s published test pair.
        let client = try CurveKeyPair(secretKey: CurveKey(z85: "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"))
        #expect(client.publicKey.z85 == "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID")
        #expect(throws: CurveKeyError.self) { try CurveKey(z85: "short") }
        #expect(throws: CurveKeyError.self) { try CurveKey(z85: String(repeating: "\"", count: 40)) }
        #expect(!pair.secretKey.description.contains(pair.secretKey.z85), "a key's description never shows it whole")
    }

    @Test func keyFilesRoundTripAndASecretReadableByOthersIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pair = try CurveKeyPair.generate()
        let paths = try CurveKeyFile.create(name: "actor-1", role: .actor, pair: pair, directory: dir)
        let secret = try CurveKeyFile.readSecret(paths.secret)
        #expect(secret.name == "actor-1" && secret.pair == pair)
        #expect(try CurveKeyFile.readPublic(paths.public) == pair.publicKey)
        var info = stat()
        stat(paths.secret, &info)
        #expect(info.st_mode & 0o777 == 0o600)

        // Never overwritten, and never half made: a public file alone under the name stops both.
        #expect(throws: KeyFileError.self) { try CurveKeyFile.create(name: "actor-1", role: .actor, pair: pair, directory: dir) }
        try FileManager.default.copyItem(atPath: paths.public, toPath: dir + "/lone.key")
        #expect(throws: KeyFileError.self) { try CurveKeyFile.create(name: "lone", role: .actor, pair: try .generate(), directory: dir) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/lone.key_secret"), "a secret was written beside a public key it does not match")
        try FileManager.default.removeItem(atPath: dir + "/lone.key")
        #expect(throws: KeyFileError.self) { try CurveKeyFile.create(name: "x", role: .actor, pair: pair, directory: paths.public) }
        // A public file where a secret one is needed, and a secret readable by others: errors naming the file.
        do { _ = try CurveKeyFile.readSecret(paths.public); Issue.record("a public file gave a secret") } catch let e as KeyFileError {
            #expect(e.path == paths.public && e.problem.contains("no secret-key"))
        }
        chmod(paths.secret, 0o644)
        do { _ = try CurveKeyFile.readSecret(paths.secret); Issue.record("a world-readable secret was read") } catch let e as KeyFileError {
            #expect(e.path == paths.secret && e.problem.contains("chmod 600"))
        }
        // Damaged keys.
        let bad = dir + "/bad.key"
        try "curve\n    public-key = \"tooShort\"\n".write(toFile: bad, atomically: true, encoding: .utf8)
        do { _ = try CurveKeyFile.readPublic(bad); Issue.record("a short key was read") } catch let e as KeyFileError {
            #expect(e.path == bad && e.problem.contains("40 Z85 characters"))
        }
        try "metadata\n    name = \"x\"\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(throws: KeyFileError.self) { try CurveKeyFile.readPublic(bad) }
        try FileManager.default.removeItem(atPath: bad)

        // The allowlist: every public file of a directory, by metadata name.
        try CurveKeyFile.create(name: "watcher", role: .monitor, pair: try .generate(), directory: dir)
        let list = try CurveKeyFile.allowlist(directory: dir)
        #expect(Set(list.members.values.map(\.name)) == ["actor-1", "watcher"])
        #expect(list.member(named: "watcher")?.role == .monitor)
        #expect(throws: KeyFileError.self) { try CurveKeyFile.allowlist(directory: dir + "/missing") }
    }

    @Test func anAllowlistRefusesAKeyOrANameTwice() throws {
        let a = try CurveKeyPair.generate().publicKey
        let b = try CurveKeyPair.generate().publicKey
        #expect(throws: CurveKeyError.self) { try CurveAllowlist([.init(name: "x", role: .actor, publicKey: a), .init(name: "y", role: .actor, publicKey: a)]) }
        #expect(throws: CurveKeyError.self) { try CurveAllowlist([.init(name: "x", role: .actor, publicKey: a), .init(name: "x", role: .actor, publicKey: b)]) }
    }

    /// A secret never goes where a public key is asked for (whoever holds it could pose as its owner),
    /// a key is used only in the role its metadata names, and two files of one name are both named.
    @Test func secretsRolesAndDuplicateNamesInKeyFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-keyroles-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let actor = try CurveKeyFile.create(name: "a1", role: .actor, pair: try .generate(), directory: dir + "/keys")
        let learner = try CurveKeyFile.create(name: "learner", role: .learner, pair: try .generate(), directory: dir + "/learner")
        func problem(_ body: () throws -> Void) -> String {
            do { try body(); return "accepted" } catch { return "\(error)" }
        }
        #expect(problem { _ = try CurveKeyFile.readPublic(learner.secret) }.contains("holds a secret key: give the public .key file"))
        #expect(try CurveKeyFile.readPublic(learner.public) == CurveKeyFile.readSecret(learner.secret).pair.publicKey)
        #expect(problem { _ = try CurveKeyFile.readSecret(actor.secret, as: .learner) }.contains("is a key of role actor (its metadata), not learner"))
        #expect(problem { _ = try CurveKeyFile.readSecret(learner.secret, as: .learner) } == "accepted")

        try FileManager.default.createDirectory(atPath: dir + "/allow", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: actor.secret, toPath: dir + "/allow/a1.key")
        #expect(problem { _ = try CurveKeyFile.allowlist(directory: dir + "/allow") }.contains("holds a secret key: an allowlist holds public keys only"))
        try FileManager.default.removeItem(atPath: dir + "/allow/a1.key")
        try FileManager.default.copyItem(atPath: actor.public, toPath: dir + "/allow/a1.key")
        try FileManager.default.copyItem(atPath: actor.public, toPath: dir + "/allow/copy.key")
        #expect(problem { _ = try CurveKeyFile.allowlist(directory: dir + "/allow") }.contains("a1.key and copy.key both name the key \"a1\""))
    }

    // MARK: sockets

    /// A CURVE ROUTER on loopback behind a ZAP handler admitting `good` (an actor) to `domain`.
    final class Server {
        let context: ZMQContext
        let zap: ZAPHandler
        let keys: CurveKeyPair
        let router: ZMQSocket
        let endpoint: Endpoint
        let good: CurveKeyPair

        init() throws {
            context = try ZMQContext()
            keys = try .generate()
            good = try .generate()
            let policy = ZAPHandler.Policy(allowlist: try CurveAllowlist([.init(name: "good", role: .actor, publicKey: good.publicKey)]),
                                           rolesByDomain: [CurveTests.domain: [.actor]])
            let handler = try ZAPHandler(context: context, policy: policy)
            zap = handler
            router = try ZMQSocket(context, type: .router, linger: .discardUnsent)
            try router.set(CurveRole.server(keys, domain: CurveTests.domain).options + [.handshakeInterval(milliseconds: 1000)])
            router.admitsUser = { handler.currentPolicy.admits(user: $0, key: $1, domain: CurveTests.domain) }
            endpoint = try router.bind(.tcp(host: "127.0.0.1", port: 0))
        }

        /// A client DEALER that says hello with `options`.
        func client(_ options: [SocketOption]) throws -> ZMQSocket {
            let socket = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            try socket.set(options + [.reconnectInterval(milliseconds: 50, maximumMilliseconds: 200)])
            try socket.connect(endpoint)
            _ = try socket.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())))
            return socket
        }

        /// What reaches the router within `milliseconds`.
        func heard(within milliseconds: Int) throws -> [RouterReceive] {
            var got: [RouterReceive] = []
            let deadline = Deadline.afterMilliseconds(milliseconds)
            while !deadline.hasPassed {
                let r = try router.receiveFromPeer(deadline: deadline, limits: .control)
                if case .timedOut = r { break }
                got.append(r)
            }
            return got
        }

        func stop() {
            router.close()
            zap.stop()
            context.shutdown()
        }
    }

    @Test func anAllowlistedKeyIsHeardAsItsName() throws {
        let server = try Server()
        defer { server.stop() }
        let client = try server.client(CurveRole.client(serverKey: server.keys.publicKey, own: server.good).options)
        defer { client.close() }
        let heard = try server.router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: .control)
        guard case .message(let peer, let message) = heard else { Issue.record("not heard: \(heard)"); return }
        #expect(peer.authenticatedUser == "good")
        #expect(message.kind == .heartbeat)
    }

    @Test func aConnectionIsRefusedOnceItsKeyIsReplacedUnderTheSameName() throws {
        let server = try Server()
        defer { server.stop() }
        let client = try server.client(CurveRole.client(serverKey: server.keys.publicKey, own: server.good).options)
        defer { client.close() }
        guard case .message(let peer, _) = try server.router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: .control) else {
            Issue.record("the allowlisted key was not heard"); return
        }
        #expect(peer.authenticatedUser == "good" && server.router.lastUserKey == server.good.publicKey.z85)

        // The name "good" now stands for another key: the connection the old key holds is not closed,
        // but what it sends from now on is refused.
        let replacement = try CurveKeyPair.generate()
        server.zap.update(ZAPHandler.Policy(allowlist: try CurveAllowlist([.init(name: "good", role: .actor, publicKey: replacement.publicKey)]),
                                            rolesByDomain: [CurveTests.domain: [.actor]]))
        _ = try client.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())))
        let heard = try server.router.receiveFromPeer(deadline: .afterMilliseconds(2000), limits: .control)
        guard case .rejected(_, let error) = heard else { Issue.record("the replaced key was heard: \(heard)"); return }
        #expect(error.reason == .unauthenticated)
    }

    @Test func anUnlistedKeyAPlaintextClientAndAWrongServerKeyGetNothing() throws {
        let server = try Server()
        defer { server.stop() }
        let stranger = try server.client(CurveRole.client(serverKey: server.keys.publicKey, own: try .generate()).options)
        let plaintext = try server.client([])
        let impostor = try CurveKeyPair.generate()
        let wrongServer = try server.client(CurveRole.client(serverKey: impostor.publicKey, own: server.good).options)
        defer { stranger.close(); plaintext.close(); wrongServer.close() }
        #expect(try server.heard(within: 800).isEmpty)
        #expect(server.zap.refusals >= 1, "the unlisted key was refused by the handler")
        for client in [stranger, plaintext, wrongServer] {
            guard case .timedOut = try client.receive(deadline: .now) else { Issue.record("a refused client got bytes"); continue }
        }
    }

    @Test func weightsPublishedOnACurveServerReachOnlyAllowlistedSubscribers() throws {
        let server = try Server()
        defer { server.stop() }
        let publisher = try ZMQSocket(server.context, type: .publish, linger: .discardUnsent)
        defer { publisher.close() }
        try publisher.set(CurveRole.server(server.keys, domain: CurveTests.domain).options)
        let endpoint = try publisher.bind(.tcp(host: "127.0.0.1", port: 0))
        func subscriber(_ options: [SocketOption]) throws -> ZMQSocket {
            let s = try ZMQSocket(server.context, type: .subscribe, linger: .discardUnsent)
            try s.set([.subscribe([])] + options)
            try s.connect(endpoint)
            return s
        }
        let good = try subscriber(CurveRole.client(serverKey: server.keys.publicKey, own: server.good).options)
        let stranger = try subscriber(CurveRole.client(serverKey: server.keys.publicKey, own: try .generate()).options)
        let plaintext = try subscriber([])
        defer { good.close(); stranger.close(); plaintext.close() }
        var received: [Int] = [0, 0, 0]
        let deadline = Deadline.afterMilliseconds(1000)
        while !deadline.hasPassed {
            _ = try publisher.send([Frame([UInt8](repeating: 7, count: 1024))])
            for (i, s) in [good, stranger, plaintext].enumerated() {
                while case .message = try s.receive(deadline: .afterMilliseconds(10)) { received[i] += 1 }
            }
        }
        #expect(received[0] > 0)
        #expect(received[1] == 0 && received[2] == 0, "bytes reached an unauthenticated subscriber: \(received)")
    }

    /// A key taken off the allowlist keeps a subscription it holds until the publishing side drops
    /// every subscriber: the announcements' `ServerPublisher` and the log stream's checked proxy. After
    /// the drop, the allowlisted subscriber is served again and the withdrawn one gets nothing.
    @Test func droppingSubscribersCutsAWithdrawnKeyOffAndKeepsTheOthers() throws {
        let server = try Server()
        defer { server.stop() }
        let withdrawn = try CurveKeyPair.generate()
        let both = try CurveAllowlist([.init(name: "good", role: .actor, publicKey: server.good.publicKey),
                                       .init(name: "gone", role: .actor, publicKey: withdrawn.publicKey)])
        let serverOptions = CurveRole.server(server.keys, domain: CurveTests.domain).options
        let announcements = try ServerPublisher(context: server.context, side: ZMQProxy.Side(
            type: .publish, bind: .tcp(host: "127.0.0.1", port: 0), linger: .discardUnsent, options: serverOptions))
        defer { announcements.close() }
        let proxy = try ZMQProxy.startPubSubForwarder(
            context: server.context, publishersBind: .inproc(name: "curve-test-logs-in-\(UUID().uuidString)"),
            subscribersBind: .tcp(host: "127.0.0.1", port: 0), subscribersSecurity: serverOptions,
            admitPublisher: { _, _, _ in true })
        defer { proxy.stop() }
        let logPublisher = try ZMQSocket(server.context, type: .publish, linger: .discardUnsent)
        defer { logPublisher.close() }
        try logPublisher.connect(proxy.frontendEndpoint)

        func subscriber(_ pair: CurveKeyPair, to endpoint: Endpoint) throws -> ZMQSocket {
            let s = try ZMQSocket(server.context, type: .subscribe, linger: .discardUnsent)
            try s.set([.subscribe([]), .reconnectInterval(milliseconds: 50, maximumMilliseconds: 200)]
                      + CurveRole.client(serverKey: server.keys.publicKey, own: pair).options)
            try s.connect(endpoint)
            return s
        }
        let sources: [(name: String, publish: () throws -> Void, endpoint: Endpoint)] = [
            ("announcements", { _ = try announcements.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())), deadline: .now) }, announcements.endpoint),
            ("log stream", { _ = try logPublisher.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat()))) }, proxy.backendEndpoint),
        ]
        for source in sources {
            server.zap.update(ZAPHandler.Policy(allowlist: both, rolesByDomain: [CurveTests.domain: [.actor]]))
            let good = try subscriber(server.good, to: source.endpoint), gone = try subscriber(withdrawn, to: source.endpoint)
            defer { good.close(); gone.close() }
            /// Messages each subscriber got while publishing for `milliseconds`.
            func received(within milliseconds: Int) throws -> (good: Int, gone: Int) {
                var counts = (good: 0, gone: 0)
                let deadline = Deadline.afterMilliseconds(milliseconds)
                while !deadline.hasPassed {
                    try source.publish()
                    while case .message = try good.receive(deadline: .afterMilliseconds(10)) { counts.good += 1 }
                    while case .message = try gone.receive(deadline: .now) { counts.gone += 1 }
                }
                return counts
            }
            let before = try received(within: 1000)
            #expect(before.good > 0 && before.gone > 0, "\(source.name): both subscribed while allowlisted: \(before)")

            server.zap.update(ZAPHandler.Policy(allowlist: try CurveAllowlist([.init(name: "good", role: .actor, publicKey: server.good.publicKey)]),
                                                rolesByDomain: [CurveTests.domain: [.actor]]))
            let undropped = try received(within: 500)
            #expect(undropped.gone > 0, "\(source.name): a connection keeps its subscription after its key is withdrawn, until the drop: \(undropped)")
            if source.name == "announcements" { try announcements.dropSubscribers() } else { try proxy.dropSubscribers() }
            _ = try received(within: 300)  // what was already queued at the subscribers
            let after = try received(within: 1500)
            #expect(after.good > 0, "\(source.name): the allowlisted subscriber came back: \(after)")
            #expect(after.gone == 0, "\(source.name): the withdrawn key still receives: \(after)")
        }
    }

    @Test func aDeadZAPHandlerNeverOpensTheGate() throws {
        // The handler stops answering but keeps its endpoint: handshakes stall, nobody gets in.
        let stalled = try Server()
        defer { stalled.stop() }
        #expect(stalled.zap.probe())
        stalled.zap.failForTesting(closeSocket: false)
        try waitUntil { !stalled.zap.isServing }
        #expect(!stalled.zap.probe())
        let stranger = try stalled.client(CurveRole.client(serverKey: stalled.keys.publicKey, own: try .generate()).options)
        defer { stranger.close() }
        #expect(try stalled.heard(within: 800).isEmpty)

        // The handler dies and its endpoint goes: libzmq then lets any CURVE client finish its handshake
        // (fail open), and the per-message user check refuses everything such a connection sends.
        let open = try Server()
        defer { open.stop() }
        open.zap.failForTesting(closeSocket: true)
        try waitUntil { !open.zap.isServing }
        #expect(!open.zap.probe())
        let intruder = try open.client(CurveRole.client(serverKey: open.keys.publicKey, own: try .generate()).options)
        defer { intruder.close() }
        let heard = try open.heard(within: 800)
        #expect(!heard.isEmpty, "libzmq no longer fails open here: the connection did not even complete")
        for r in heard {
            switch r {
            case .message: Issue.record("a message passed a dead ZAP handler")
            case .rejected(_, let e): #expect(e.reason == .unauthenticated)
            case .timedOut: break
            }
        }
    }

    func waitUntil(_ condition: () -> Bool) throws {
        let deadline = Deadline.afterMilliseconds(2000)
        while !condition() {
            if deadline.hasPassed { Issue.record("condition not met within 2 s"); return }
            usleep(5000)
        }
    }
}
