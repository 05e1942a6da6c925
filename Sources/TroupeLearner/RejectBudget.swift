import TroupeWire

/// How many Reject messages the learner sends one peer (docs/PROTOCOL.md, "Rejects"): a burst of
/// `burst`, then `perSecond`. A peer that floods a socket with bad messages gets a few answers, not
/// one per message, so bad input never costs the learner more to answer than it cost to send; every
/// bad message is still counted. Pure: the caller passes the time.
package struct RejectBudget {
    package let burst: Double
    package let perSecond: Double
    /// Peers remembered at most: past it the oldest state is dropped (a peer then starts a new burst).
    package let maxPeers: Int
    private var buckets: [PeerID: (tokens: Double, at: Double)] = [:]

    package init(burst: Int = 8, perSecond: Double = 2, maxPeers: Int = 4096) {
        self.burst = Double(burst)
        self.perSecond = perSecond
        self.maxPeers = maxPeers
    }

    /// Whether a Reject may go to `peer` now; takes one from its budget when it may.
    package mutating func allows(_ peer: PeerID, now: Double) -> Bool {
        if buckets[peer] == nil && buckets.count >= maxPeers {
            // Peers whose budget has refilled are indistinguishable from new ones: forget them first.
            buckets = buckets.filter { $0.value.tokens + (now - $0.value.at) * perSecond < burst }
            if buckets.count >= maxPeers { buckets.removeAll(keepingCapacity: true) }
        }
        let previous = buckets[peer] ?? (burst, now)
        let tokens = min(burst, previous.tokens + max(0, now - previous.at) * perSecond)
        guard tokens >= 1 else {
            buckets[peer] = (tokens, now)
            return false
        }
        buckets[peer] = (tokens - 1, now)
        return true
    }
}
