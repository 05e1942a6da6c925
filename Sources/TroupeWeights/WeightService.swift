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

    /// The reply to a request on the weights socket; nil for a kind that does not belong there. A source
    /// request the caller does not vouch for (`placeable` false: not a live actor's) is served from here,
    /// outside the relay tree, and so is one whose relay endpoint is not a TCP address. `relayAdmits(parent)`:
    /// whether that actor's relay admits the requester (`RelayPlan.assign`).
    package mutating func reply(to body: WireBody, placeable: Bool = true, relayAdmits: (String) -> Bool = { _ in true }) -> WireMessage? {
        switch body {
        case .weightManifestRequest:
            return WireMessage(.weightManifest(snapshot.manifest))
        case .weightSourceRequest(let r):
            var source = Troupe_V1_WeightSource()
            source.version = r.version
            // Only the newest version gets a tree; an actor still after an older one takes it from here.
            let relay = r.relayEndpoint.isEmpty || (try? Endpoint(parsing: r.relayEndpoint)).map({ if case .tcp = $0 { true } else { false } }) == true
            if placeable && relay && PolicyVersion(r.version) == snapshot.version {
                let a = plan.assign(version: snapshot.version, identity: r.actorIdentity, runId: r.actorRunID, relayEndpoint: r.relayEndpoint,
                                    admits: relayAdmits)
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
