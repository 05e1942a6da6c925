import Foundation
import Testing
import TroupeActor
import TroupeProto
import TroupeRuntime
import TroupeWire

/// An actor's relay over real sockets: it admits the actors' keys it was last given (the Welcome's, then
/// each RelayPeers'), and a key given no more is refused on the connection it already holds.
@Suite(.serialized) struct RelayAdmissionTests {
    @Test func aKeyNoLongerListedIsRefusedOnItsOpenConnectionAndAtItsNextHandshake() throws {
        let endpoints = try ZeroMQActorEndpoints()
        defer { endpoints.close() }
        let own = try CurveKeyPair.generate(), kept = try CurveKeyPair.generate(), withdrawn = try CurveKeyPair.generate()
        let (router, relay) = try endpoints.bindRelay(try ListenAddress(bind: "tcp://127.0.0.1:0"),
                                                      security: ClientSecurity(name: "relay", keyPair: own, learnerKey: try CurveKeyPair.generate().publicKey))
        func peers(_ list: [(String, CurveKeyPair)]) throws -> CurveAllowlist {
            try CurveAllowlist(list.map { .init(name: $0.0, role: .actor, publicKey: $0.1.publicKey) })
        }
        endpoints.admitRelayPeers(try peers([("kept", kept), ("withdrawn", withdrawn)]))

        let context = try ZMQContext()
        var clients: [ZMQSocket] = []
        defer { for c in clients { c.close() }; context.shutdown() }
        func client(_ keys: CurveKeyPair) throws -> ZMQSocket {
            let socket = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            try socket.set(CurveRole.client(serverKey: own.publicKey, own: keys).options + [.reconnectInterval(milliseconds: 50, maximumMilliseconds: 200)])
            try socket.connect(relay)
            clients.append(socket)
            return socket
        }
        var request = Troupe_V1_ChunkRequest()
        request.length = 1
        let ask = WireMessage(.chunkRequest(request))
        /// Who the relay heard within `milliseconds`: admitted users, and refusals.
        func heard(within milliseconds: Int) throws -> (admitted: [String], refused: Int) {
            var result: (admitted: [String], refused: Int) = ([], 0)
            let deadline = Deadline.afterMilliseconds(milliseconds)
            while !deadline.hasPassed {
                switch try router.receiveFromPeer(deadline: deadline, limits: .control) {
                case .timedOut: return result
                case .message(let peer, _): result.admitted.append(peer.authenticatedUser ?? "?")
                case .rejected: result.refused += 1
                }
            }
            return result
        }

        let open = try client(withdrawn)
        _ = try open.send(ask)
        #expect(try heard(within: 2000).admitted == ["withdrawn"], "a listed key is served")

        // The learner's RelayPeers no longer lists it: its open connection is refused from its next
        // message, and a new connection fails its handshake; the key still listed is served.
        endpoints.admitRelayPeers(try peers([("kept", kept)]))
        _ = try open.send(ask)
        let afterwards = try heard(within: 1000)
        #expect(afterwards.admitted.isEmpty && afterwards.refused == 1, "the withdrawn key's open connection: \(afterwards)")
        _ = try client(withdrawn).send(ask)
        _ = try client(kept).send(ask)
        let fresh = try heard(within: 1500)
        #expect(fresh.admitted == ["kept"] && fresh.refused == 0, "new connections: \(fresh)")
    }
}
