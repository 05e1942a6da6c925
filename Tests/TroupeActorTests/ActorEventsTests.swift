import Testing
import TroupeActor
import TroupeLearner
import TroupeProto
import TroupeRuntime

/// The actor's events reach every sink, and the log stream gets them in the form monitors read.
@Test func actorEventsReachTheLogStreamAndTheInMemorySink() throws {
    let stream = InMemoryLogStream(source: "actor/a")
    let kept = InMemoryProcessEvents<Never>()
    let events = ActorEvents([kept, LogStreamSink<Never>(stream)])
    try events.emit(.actorWelcomed(actor: "a"))
    try events.emit(.weightsApplied(actor: "a", step: 3, milliseconds: 12.5, via: "chunks", depth: 2))
    try events.emit(.weightsApplied(actor: "a", step: 4, milliseconds: 1, via: "shared_memory", depth: nil))
    try events.emit(.groupRejected(reason: "stale", detail: "too old"))
    #expect(kept.streamKinds == ["actor_welcomed", "weights_applied", "weights_applied", "group_rejected"])
    let applied = stream.events(kind: "weights_applied")
    #expect(applied.map(\.step) == [3, 4])
    #expect(applied.first?.metrics["weight_sync_ms"] == 12.5 && applied.first?.fields["depth"] == "2")
    #expect(applied.last?.fields["depth"] == nil && applied.last?.fields["via"] == "shared_memory")
    #expect(stream.events(kind: "group_rejected").first?.fields == ["reason": "stale", "detail": "too old"])

    // A sink taken away (the actor's log stream closing) hears nothing more.
    events.remove(kept)
    try events.emit(.actorStats(actor: "a", metrics: ["unacked": 1]))
    #expect(kept.events.count == 4 && stream.events(kind: "actor_stats").count == 1)
}

/// The actor's `group_rejected` names a reason as the learner's `rejection` event does
/// (`reward_unavailable`, not the Swift case `rewardUnavailable`).
@Test func rejectionReasonsAreSpelledAsTheLearnerSpellsThem() {
    for reason in LearnerCore.RejectReason.allCases where reason != .quarantined {
        #expect(GroupIntake.protoReason(reason).eventName == reason.rawValue, "\(reason)")
    }
    #expect(Troupe_V1_GroupRejectReason.badSequence.eventName == "bad_sequence")
    #expect(Troupe_V1_GroupRejectReason.UNRECOGNIZED(99).eventName == "unrecognized_99")
}
