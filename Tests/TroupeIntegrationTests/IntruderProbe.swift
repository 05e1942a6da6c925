import Foundation
import TroupeProto
import TroupeWire

/// Would-be intruders' sockets, from the test's own process: for each way in (a key not on the
/// allowlist, plaintext, a pinned learner key that is not the learner's), a client of the weights
/// endpoint asking for the manifest and chunks over and over, and a subscriber of the announcements.
/// What "gets nothing" means is measured: every byte the learner sends any of them is counted.
final class IntruderProbe {
    private let context: ZMQContext
    private var sockets: [ZMQSocket] = []
    private var weightClients: [ZMQSocket] = []

    /// `ways`: the CURVE options of each way in ([] for plaintext).
    init(host: String, ports: PortBlock, ways: [[SocketOption]]) throws {
        context = try ZMQContext()
        for options in ways {
            let weights = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            try weights.set(options)
            try weights.connect(.tcp(host: host, port: UInt16(ports.weights)))
            let announce = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
            try announce.set([.subscribe([])] + options)
            try announce.connect(.tcp(host: host, port: UInt16(ports.announce)))
            weightClients.append(weights)
            sockets += [weights, announce]
        }
    }

    /// Keeps asking for weights for `seconds`; returns the bytes every socket received meanwhile.
    func bytesReceived(asking seconds: Double) throws -> Int {
        var chunk = Troupe_V1_ChunkRequest()
        chunk.length = 1 << 16
        var bytes = 0
        let until = Date().addingTimeInterval(seconds)
        while Date() < until {
            for socket in weightClients {
                _ = try socket.send(WireMessage(.weightManifestRequest(Troupe_V1_WeightManifestRequest())))
                _ = try socket.send(WireMessage(.chunkRequest(chunk)))
            }
            for socket in sockets {
                while case .message(let frames) = try socket.receive(deadline: .afterMilliseconds(50)) {
                    bytes += frames.reduce(0) { $0 + $1.count }
                }
            }
        }
        return bytes
    }

    func close() {
        for socket in sockets { socket.close() }
        context.shutdown()
    }
}
