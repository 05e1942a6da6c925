import TroupeProto
import TroupeRuntime

/// The actor's events. An actor keeps no run log and no metrics file: its events are log-stream
/// events, published once the Welcome names the stream (`ActorClient`), kept by an
/// `InMemoryProcessEvents` in tests.
package typealias ActorEvent = ProcessEvent<Never>
package typealias ActorEvents = ProcessEvents<Never>

extension ProcessEvent where Record == Never {
    package static func actorWelcomed(actor: String) -> Self {
        .stream("actor_welcomed", fields: ["actor": actor])
    }

    /// The learner refused one of this actor's groups (`reason` as the Ack names it).
    package static func groupRejected(reason: String, detail: String) -> Self {
        .stream("group_rejected", fields: ["reason": reason, "detail": detail])
    }

    package static func weightsRelayFallback(actor: String, upstream: String, reason: String) -> Self {
        .stream("weights_relay_fallback", fields: ["actor": actor, "upstream": upstream, "reason": reason])
    }

    /// Verified weights swapped in; `depth` is the actor's place in the relay tree (nil through shared memory).
    package static func weightsApplied(actor: String, step: Int, milliseconds: Double, via: String, depth: Int?) -> Self {
        var fields = ["actor": actor, "via": via]
        if let depth { fields["depth"] = String(depth) }
        return .stream("weights_applied", step: step, metrics: ["weight_sync_ms": milliseconds], fields: fields)
    }

    /// What the actor reports with every heartbeat.
    package static func actorStats(actor: String, metrics: [String: Double]) -> Self {
        .stream("actor_stats", metrics: metrics, fields: ["actor": actor])
    }
}

extension Troupe_V1_GroupRejectReason {
    /// The reason as events and run logs spell it: the proto name without its prefix, in lower case
    /// (`reward_unavailable`), as the learner's `rejection` event names it.
    package var eventName: String {
        switch self {
        case .unspecified: return "unspecified"
        case .stale: return "stale"
        case .oldEpoch: return "old_epoch"
        case .nonFinite: return "non_finite"
        case .malformed: return "malformed"
        case .unknownLease: return "unknown_lease"
        case .leaseExpired: return "lease_expired"
        case .unknownActor: return "unknown_actor"
        case .outOfRange: return "out_of_range"
        case .futureVersion: return "future_version"
        case .rewardMismatch: return "reward_mismatch"
        case .badSequence: return "bad_sequence"
        case .rewardUnavailable: return "reward_unavailable"
        case let .UNRECOGNIZED(value): return "unrecognized_\(value)"
        }
    }
}
