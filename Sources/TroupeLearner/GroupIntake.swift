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
        var ack = Troupe_V1_Ack()
        ack.currentVersion = currentVersion.proto
        // A refused group still frees its credit slot.
        func reject(_ reason: Troupe_V1_GroupRejectReason, _ text: String) {
            ack.status = .rejected
            ack.rejectReason = reason
            ack.text = text
            ack.creditGranted = 1
        }
        let submission: GroupSubmission
        do {
            submission = try GroupSubmission(validating: message)
        } catch {
            if case .groupSubmit(let header) = message.body { ack.sequence = header.sequence }
            reject(error.groupRejectReason, error.description)
            return (ack, .refused(reason: error.reason.rawValue, detail: error.detail))
        }
        let header = submission.header
        ack.sequence = header.sequence
        guard let promptTokens = core.prompts[header.promptID]?.tokens else {
            reject(.malformed, "unknown prompt id \(header.promptID)")
            return (ack, .refused(reason: "unknown_prompt", detail: ack.text))
        }
        let submitted = RolloutGroup(submission: submission, actor: identity, promptTokens: promptTokens)
        if let problem = core.sequenceProblem(submitted.key) {
            reject(.badSequence, problem)
            return (ack, .refused(reason: "bad_sequence", detail: problem))
        }
        let outcome = admission.map { a in core.submit(submitted, from: identity, now: now, review: a.review) }
            ?? core.submit(submitted, from: identity, now: now)
        switch outcome {
        case .accepted(let group, let credit):
            // On disk before the ack (the caller syncs, then acks): an acknowledged group is never lost.
            try events?.emit(.groupAccepted(group))
            ack.status = .accepted
            ack.creditGranted = UInt32(credit)
            return (ack, .accepted(group))
        case .duplicate:
            ack.status = .duplicate
            ack.creditGranted = 0
            return (ack, .duplicate(submitted))
        case .rejected(let reason, let text):
            try events?.emit(.groupRejected(submitted, reason: reason.rawValue, detail: text))
            reject(protoReason(reason), text)
            return (ack, .rejected(submitted, reason: reason, detail: text))
        }
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
        }
    }
}
