import TroupeProto
import TroupeRuntime
import TroupeWire

/// What the learner does with one GroupSubmit message: validate it, let `LearnerCore` decide, write
/// the run-log record of the decision (unsynced: the caller syncs once per drained batch of messages,
/// then sends the acks), and build the Ack. `LearnerServer` and the ingestion benchmark both call it,
/// so the benchmark measures the learner's own path.
package enum GroupIntake {
    package enum Outcome {
        case accepted(RolloutGroup)
        case duplicate(RolloutGroup)
        /// Refused by `LearnerCore` (stale, old epoch, unknown lease…); a `group_rejected` record is written.
        case rejected(RolloutGroup, reason: LearnerCore.RejectReason, detail: String)
        /// Refused before it became a group: malformed on the wire, or for a prompt this learner never had.
        case refused(reason: String, detail: String)
    }

    /// `admission` is the run's check of every group (nil: shape only, as in tests of the core alone).
    package static func receive(_ message: WireMessage, from identity: String, core: LearnerCore, admission: GroupAdmission?,
                                events: RunEvents?, currentVersion: PolicyVersion, now: Double) throws -> (ack: Troupe_V1_Ack, outcome: Outcome) {
        switch decode(message, core: core, currentVersion: currentVersion, identity: identity) {
        case .failure(let refused): return (refused.ack, refused.outcome)
        case .success(let submitted):
            return try admit(submitted, from: identity, core: core, review: admission.map { a in { a.review($0) } },
                             events: events, currentVersion: currentVersion, now: now)
        }
    }

    /// A message refused before it became a group, with its Ack.
    package struct Refused: Error {
        package var ack: Troupe_V1_Ack
        package var outcome: Outcome
    }

    /// The group a GroupSubmit carries, or its refusal: malformed on the wire, an unknown prompt, a
    /// sequence number out of its window.
    package static func decode(_ message: WireMessage, core: LearnerCore, currentVersion: PolicyVersion,
                               identity: String) -> Result<RolloutGroup, Refused> {
        var ack = Troupe_V1_Ack()
        ack.currentVersion = currentVersion.proto
        func refuse(_ reason: Troupe_V1_GroupRejectReason, _ text: String, _ name: String, _ detail: String) -> Result<RolloutGroup, Refused> {
            rejectAck(&ack, reason, text)
            return .failure(Refused(ack: ack, outcome: .refused(reason: name, detail: detail)))
        }
        let submission: GroupSubmission
        do {
            submission = try GroupSubmission(validating: message)
        } catch {
            if case .groupSubmit(let header) = message.body { ack.sequence = header.sequence }
            return refuse(error.groupRejectReason, error.description, error.reason.rawValue, error.detail)
        }
        let header = submission.header
        ack.sequence = header.sequence
        guard let promptTokens = core.prompts[header.promptID]?.tokens else {
            return refuse(.malformed, "unknown prompt id \(header.promptID)", "unknown_prompt", "unknown prompt id \(header.promptID)")
        }
        let submitted = RolloutGroup(submission: submission, actor: identity, promptTokens: promptTokens)
        if let problem = core.sequenceProblem(submitted.key) {
            return refuse(.badSequence, problem, "bad_sequence", problem)
        }
        return .success(submitted)
    }

    /// Lets `LearnerCore` decide on a decoded group (`review`: the run's admission check), writes the
    /// record of the decision and builds the Ack.
    package static func admit(_ submitted: RolloutGroup, from identity: String, core: LearnerCore,
                              review: ((RolloutGroup) -> Result<RolloutGroup, GroupAdmission.Refusal>)?,
                              events: RunEvents?, currentVersion: PolicyVersion, now: Double) throws -> (ack: Troupe_V1_Ack, outcome: Outcome) {
        var ack = Troupe_V1_Ack()
        ack.currentVersion = currentVersion.proto
        ack.sequence = submitted.key.sequence
        let outcome = review.map { core.submit(submitted, from: identity, now: now, review: $0) }
            ?? core.submit(submitted, from: identity, now: now)
        switch outcome {
        case .accepted(let group, let credit):
            // On disk before the ack (the caller syncs, then acks): an acknowledged group is never lost.
            try events?.emit(.groupAccepted(group))
            ack.status = .accepted
            ack.creditGranted = UInt32(credit)
            return (ack, .accepted(group))
        case .duplicate:
            // A resend after a Welcome took a credit slot; the actor counts only the first ack of a
            // sequence, so granting it back cannot count twice (granting none shrank its window for good).
            ack.status = .duplicate
            ack.creditGranted = 1
            return (ack, .duplicate(submitted))
        case .rejected(let reason, let text):
            try events?.emit(.groupRejected(submitted, reason: reason.rawValue, detail: text))
            rejectAck(&ack, protoReason(reason), text)
            return (ack, .rejected(submitted, reason: reason, detail: text))
        }
    }

    /// A refused group still frees its credit slot.
    private static func rejectAck(_ ack: inout Troupe_V1_Ack, _ reason: Troupe_V1_GroupRejectReason, _ text: String) {
        ack.status = .rejected
        ack.rejectReason = reason
        ack.text = text
        ack.creditGranted = 1
    }

    package static func protoReason(_ r: LearnerCore.RejectReason) -> Troupe_V1_GroupRejectReason {
        switch r {
        case .stale: return .stale
        case .oldEpoch: return .oldEpoch
        case .nonFinite: return .nonFinite
        case .malformed: return .malformed
        case .unknownLease: return .unknownLease
        case .leaseExpired: return .leaseExpired
        case .unknownActor: return .unknownActor
        case .outOfRange: return .outOfRange
        case .futureVersion: return .futureVersion
        case .rewardMismatch: return .rewardMismatch
        case .quarantined: return .malformed
        case .rewardUnavailable: return .rewardUnavailable
        }
    }
}
