import Foundation
import TroupeJSON
import TroupeRuntime

/// The run log's records, typed for writing and for reading. `RunEvent` (RunEvents.swift) writes them;
/// resume and replay read back the ones they act on, and a record whose body is not what its type says
/// is an error naming the line and the field, never a record quietly skipped.
package enum RunRecord {
    /// A new run: what it trains, and the threads and BLAS kernel replay must use for the same bits.
    package struct RunStarted: Codable, Equatable {
        package var epoch: String
        package var baseModel: String
        package var baseWeightsHash: String
        package var prompts: Int
        package var threads: Int
        package var blasKernel: String
        /// BLAKE2b-256 (hex) of RUN/config.json as frozen at the start; absent in logs written before it was kept.
        package var configDigest: String?
        enum CodingKeys: String, CodingKey {
            case epoch, baseModel = "base_model", baseWeightsHash = "base_weights_hash", prompts, threads, blasKernel = "blas_kernel"
            case configDigest = "config_digest"
        }
    }

    package struct EpochStarted: Codable, Equatable {
        package var epoch: String
        package var step: Int
        package var weightsHash: String
        /// BLAS threads of the learner process (replay uses the same for bit-identical steps).
        package var threads: Int
        package var blasKernel: String
        enum CodingKeys: String, CodingKey { case epoch, step, weightsHash = "weights_hash", threads, blasKernel = "blas_kernel" }
    }

    package struct ActorJoined: Codable, Equatable {
        package var actor: String
        package var actorRun: String
        package var build: String
        package var threads: Int
        package var rejoined: Bool
        enum CodingKeys: String, CodingKey { case actor, actorRun = "actor_run", build, threads, rejoined }
    }

    package struct ActorLeft: Codable, Equatable {
        package var actor: String
        package var reason: String
        package var leasesReturned: [Int]
        package var promptsReturned: [Int]
        enum CodingKeys: String, CodingKey { case actor, reason, leasesReturned = "leases_returned", promptsReturned = "prompts_returned" }
    }

    package struct LeaseExpired: Codable, Equatable {
        package var lease: Int
        package var actor: String
        package var prompts: [Int]
    }

    package struct GroupRejected: Codable, Equatable {
        package var group: String
        package var reason: String
        package var detail: String
        /// The step of the weights the group was sampled with.
        package var version: Int
    }

    package struct BatchFormed: Codable, Equatable {
        package var step: Int
        package var groups: [String]
    }

    package struct StepFailed: Codable, Equatable {
        package var step: Int
        package var error: String
    }

    package struct StepDone: Codable, Equatable {
        package var step: Int
        package var weightsHash: String
        package var loss: Double
        package var skipped: Bool
        package var groups: Int
        enum CodingKeys: String, CodingKey { case step, weightsHash = "weights_hash", loss, skipped, groups }
    }

    package struct Published: Codable, Equatable {
        package var step: Int
        package var epoch: String
    }

    package struct CheckpointWritten: Codable, Equatable {
        package var step: Int
        package var weightsHash: String
        enum CodingKeys: String, CodingKey { case step, weightsHash = "weights_hash" }
    }

    package struct Resumed: Codable, Equatable {
        package var fromStep: Int
        package var voidedSteps: [Int]
        package var pending: Int
        package var trained: Int
        enum CodingKeys: String, CodingKey { case fromStep = "from_step", voidedSteps = "voided_steps", pending, trained }
    }

    /// `run_finished` or `learner_stopped`: where the run ended and its accounting.
    package struct RunEnded: Codable, Equatable {
        package var step: Int
        package var accounting: [String: Double]
    }

    case runStarted(RunStarted)
    case epochStarted(EpochStarted)
    case actorJoined(ActorJoined)
    case actorLeft(ActorLeft)
    case leaseExpired(LeaseExpired)
    case groupAccepted(RolloutGroup)
    case groupRejected(GroupRejected)
    case batchFormed(BatchFormed)
    case stepFailed(StepFailed)
    case stepDone(StepDone)
    case published(Published)
    case checkpoint(CheckpointWritten)
    case resumed(Resumed)
    case runFinished(RunEnded)
    case learnerStopped(RunEnded)
    /// Read back: a record no reader acts on (its body is not decoded, so logs written before a field
    /// was added to it still resume).
    case other(type: String)

    package var type: String {
        switch self {
        case .runStarted: return "run_started"
        case .epochStarted: return "epoch_started"
        case .actorJoined: return "actor_joined"
        case .actorLeft: return "actor_left"
        case .leaseExpired: return "lease_expired"
        case .groupAccepted: return "group_accepted"
        case .groupRejected: return "group_rejected"
        case .batchFormed: return "batch_formed"
        case .stepFailed: return "step_failed"
        case .stepDone: return "step_done"
        case .published: return "published"
        case .checkpoint: return "checkpoint"
        case .resumed: return "resumed"
        case .runFinished: return "run_finished"
        case .learnerStopped: return "learner_stopped"
        case let .other(type): return type
        }
    }

    /// The record's body as `RunLog.append` writes it. An accepted group's samples are written by a
    /// typed writer straight into the line (`RolloutGroup.writeSamplesJSON`), the learner's hot path.
    package func body() throws -> RecordBody {
        func members(_ value: some Encodable) throws -> RecordBody {
            guard case let .object(members) = try JSONValueEncoder().encode(value) else { return RecordBody() }
            return RecordBody(members: members)
        }
        switch self {
        case let .runStarted(b): return try members(b)
        case let .epochStarted(b): return try members(b)
        case let .actorJoined(b): return try members(b)
        case let .actorLeft(b): return try members(b)
        case let .leaseExpired(b): return try members(b)
        case let .groupAccepted(group):
            // The typed writer unless an id does not fit a JSON integer (the generic form names it); a
            // non-finite number fails at encoding either way, naming the field.
            if let body = group.recordBody() { return body }
            return try members(GroupAccepted(group))
        case let .groupRejected(b): return try members(b)
        case let .batchFormed(b): return try members(b)
        case let .stepFailed(b): return try members(b)
        case let .stepDone(b): return try members(b)
        case let .published(b): return try members(b)
        case let .checkpoint(b): return try members(b)
        case let .resumed(b): return try members(b)
        case let .runFinished(b), let .learnerStopped(b): return try members(b)
        case .other: return RecordBody()
        }
    }

    /// Decodes a record read back from the log (parsed once, by `RunLog`).
    package init(_ record: RunLog.Record) throws {
        func body<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                // The body holds the chain's keys (seq, type, prev) too: unknown keys are fine here.
                return try JSONValueDecoder(refusesUnknownKeys: false).decode(T.self, from: .object(record.body))
            } catch {
                throw RuntimeError.corruptLog("line \(record.seq) (\(record.type)): \(error)")
            }
        }
        switch record.type {
        case "run_started": self = .runStarted(try body(RunStarted.self))
        case "epoch_started": self = .epochStarted(try body(EpochStarted.self))
        case "group_accepted":
            let accepted = try body(GroupAccepted.self)
            do { self = .groupAccepted(try accepted.rolloutGroup()) } catch {
                throw RuntimeError.corruptLog("line \(record.seq) (group_accepted): \(error)")
            }
        case "group_rejected": self = .groupRejected(try body(GroupRejected.self))
        case "batch_formed": self = .batchFormed(try body(BatchFormed.self))
        case "step_done": self = .stepDone(try body(StepDone.self))
        case "step_failed": self = .stepFailed(try body(StepFailed.self))
        case "resumed": self = .resumed(try body(Resumed.self))
        default: self = .other(type: record.type)
        }
    }
}

/// A record's body: JSON members, and members already written as JSON text (`JSONFragment`).
package struct RecordBody {
    package var members: [String: JSONValue] = [:]
    package var fragments: [String: JSONFragment] = [:]

    package init(members: [String: JSONValue] = [:], fragments: [String: JSONFragment] = [:]) {
        self.members = members
        self.fragments = fragments
    }
}
