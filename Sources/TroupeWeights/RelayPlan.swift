import TroupeRuntime
import TroupeWire

/// Where each chunk-fetching actor fetches one version from (protocol 2.1, weights.proto): a tree
/// rooted at the learner in which every node serves at most `fanout` actors, filled breadth first
/// in the order actors ask. Pure bookkeeping; `WeightService` answers with it.
///
/// Why a tree: served from the learner alone, a version crosses the learner's link once per remote
/// actor, so 4 actors wait 4 transfers. With fanout 1 (a chain, the default) every link carries the
/// version once and the actors forward chunks as they arrive, so the last actor holds the weights
/// about one transfer plus one chunk per hop after the start. A chain is as fast as its slowest
/// member; a larger fanout trades bandwidth (each node sends `fanout` copies) for depth. An actor
/// whose upstream stalls or dies goes back to the learner for the rest (`WeightReceiver`), so a bad
/// node costs the ones below it a few seconds, never the version.
package struct RelayPlan: Sendable {
    package struct Node: Sendable, Equatable {
        package let identity: String
        package let runId: UInt64
        /// Where it serves chunks; empty: it does not relay, so nobody is placed below it.
        package let endpoint: String
        /// Hops from the learner: 1 for an actor the learner serves itself.
        package let depth: Int
        package fileprivate(set) var children = 0
    }

    package struct Assignment: Sendable, Equatable {
        /// Another actor's relay endpoint; empty: the learner.
        package let upstream: String
        package let depth: Int
        /// The actor whose relay `upstream` is (nil: the learner).
        package let upstreamIdentity: String?
        package init(upstream: String, depth: Int, upstreamIdentity: String? = nil) {
            self.upstream = upstream
            self.depth = depth
            self.upstreamIdentity = upstreamIdentity
        }
    }

    /// Actors each node serves; 0: everyone fetches from the learner.
    package let fanout: Int
    package private(set) var version: PolicyVersion?
    package private(set) var nodes: [Node] = []
    private var learnerChildren = 0
    /// Everyone placed in this version's tree, removed or not: an actor that asks again goes to the
    /// learner, never below a node that may still be fetching from it.
    private var placed: Set<String> = []

    package init(fanout: Int) {
        precondition(fanout >= 0, "relay fanout must be non-negative")
        self.fanout = fanout
    }

    /// The upstream for an actor about to fetch `version`. A newer version starts a new tree. An actor
    /// that asks again for the same version (its transfer failed and started over) fetches from the
    /// learner, keeping its place so the actors below it still find it. `admits(parent)`: whether that
    /// actor's relay lets this one in (an actor welcomed before this one's key was allowlisted does not).
    package mutating func assign(version: PolicyVersion, identity: String, runId: UInt64, relayEndpoint: String,
                                 admits: (String) -> Bool = { _ in true }) -> Assignment {
        if version != self.version {
            self.version = version
            nodes.removeAll()
            placed.removeAll()
            learnerChildren = 0
        }
        if fanout == 0 { return Assignment(upstream: "", depth: 1) }
        guard placed.insert(identity).inserted else { return Assignment(upstream: "", depth: 1) }
        // A loopback address reaches only its own host: it serves only actors that are on one host
        // with the learner too (they say so by relaying on loopback themselves).
        let local = RelayPlan.isLoopback(relayEndpoint)
        // Breadth first: the shallowest node with room, the learner first, then in arrival order.
        var parent: Int?
        var parentDepth = 0
        if learnerChildren >= fanout {
            for (i, n) in nodes.enumerated() where !n.endpoint.isEmpty && n.children < fanout && (local || !RelayPlan.isLoopback(n.endpoint))
                && admits(n.identity) {
                if parent == nil || n.depth < parentDepth { parent = i; parentDepth = n.depth }
            }
        }
        let assignment: Assignment
        if let p = parent {
            nodes[p].children += 1
            assignment = Assignment(upstream: nodes[p].endpoint, depth: nodes[p].depth + 1, upstreamIdentity: nodes[p].identity)
        } else {
            // The learner has room, or no actor can relay: the learner serves it.
            learnerChildren += 1
            assignment = Assignment(upstream: "", depth: 1)
        }
        nodes.append(Node(identity: identity, runId: runId, endpoint: relayEndpoint, depth: assignment.depth))
        return assignment
    }

    /// Drops an actor that left or was evicted: nobody new is placed below it. The actors already
    /// below it notice the silence and go to the learner.
    package mutating func remove(identity: String) {
        nodes.removeAll { $0.identity == identity }
    }

    static func isLoopback(_ endpoint: String) -> Bool { (try? Endpoint(parsing: endpoint))?.isLoopback ?? false }
}
