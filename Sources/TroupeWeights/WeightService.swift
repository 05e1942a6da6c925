import TroupeProto
import TroupeRuntime
import TroupeWire

/// The learner's weights socket without the socket: answers manifest, source and chunk requests
/// from the newest snapshot and the one before it (an actor halfway through a transfer when a
/// version is published finishes it). `LearnerServer` and `troupe bench runtime` both serve
/// through it.
package struct WeightService: Sendable {
    package private(set) var snapshot: WeightSnapshot
    package private(set) var previous: WeightSnapshot?
    package private(set) var plan: RelayPlan
    /// In an authenticated run, each actor's CURVE public key (Z85) by name: an actor placed below
    /// another's relay is told that key, to pin it.
    package var relayPublicKeys: [String: String] = [:]

    package init(snapshot: WeightSnapshot, relayFanout: Int) {
        self.snapshot = snapshot
        plan = RelayPlan(fanout: relayFanout)
    }

    package mutating func publish(_ next: WeightSnapshot) {
        previous = snapshot
        snapshot = next
    }

    package mutating func remove(actor identity: String) { plan.remove(identity: identity) }

    /// The reply to a request on the weights socket; nil for a kind that does not belong there.
    package mutating func reply(to body: WireBody) -> WireMessage? {
        switch body {
        case .weightManifestRequest:
            return WireMessage(.weightManifest(snapshot.manifest))
        case .weightSourceRequest(let r):
            var source = Troupe_V1_WeightSource()
            source.version = r.version
            // Only the newest version gets a tree; an actor still after an older one takes it from here.
            if PolicyVersion(r.version) == snapshot.version {
                let a = plan.assign(version: snapshot.version, identity: r.actorIdentity, runId: r.actorRunID, relayEndpoint: r.relayEndpoint)
                source.upstreamEndpoint = a.upstream
                if let upstream = a.upstreamIdentity { source.upstreamPublicKey = relayPublicKeys[upstream] ?? "" }
                source.depth = UInt32(a.depth)
            } else {
                source.depth = 1
            }
            return WireMessage(.weightSource(source))
        case .chunkRequest(let r):
            let wanted = PolicyVersion(r.version)
            if let source = wanted == snapshot.version ? snapshot : (wanted == previous?.version ? previous : nil) {
                return source.chunk(offset: r.offset, length: r.length)
            }
            var c = Troupe_V1_Chunk()
            c.status = .versionGone
            c.version = r.version
            c.offset = r.offset
            return WireMessage(.chunk(c))
        default:
            return nil
        }
    }
}
