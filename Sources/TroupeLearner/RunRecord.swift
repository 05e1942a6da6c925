import Foundation
import TroupeJSON
import TroupeRuntime

/// The run-log records that resume and replay act on, with typed bodies. They are written by
/// `RunEvent` (RunEvents.swift); a record whose body is not what its type says is an error naming the
/// line and the field, never a record quietly skipped.
package enum RunRecord {
    package struct RunStarted: Decodable {
        package let baseModel: String
        package let baseWeightsHash: String
        enum CodingKeys: String, CodingKey { case baseModel = "base_model", baseWeightsHash = "base_weights_hash" }
    }

    package struct EpochStarted: Decodable {
        package let step: Int
        /// BLAS threads of the learner process (replay uses the same for bit-identical steps).
        package let threads: Int
    }

    package struct GroupRejected: Decodable {
        package let group: String
        package let reason: String
    }

    package struct BatchFormed: Decodable {
        package let step: Int
        package let groups: [String]
    }

    package struct StepFailed: Decodable {
        package let step: Int
        package let error: String
    }

    package struct StepDone: Decodable {
        package let step: Int
        package let weightsHash: String
        enum CodingKeys: String, CodingKey { case step, weightsHash = "weights_hash" }
    }

    package struct Resumed: Decodable {
        package let fromStep: Int
        package let voidedSteps: [Int]
        enum CodingKeys: String, CodingKey { case fromStep = "from_step", voidedSteps = "voided_steps" }
    }

    case runStarted(RunStarted)
    case epochStarted(EpochStarted)
    case groupAccepted(RolloutGroup)
    case groupRejected(GroupRejected)
    case batchFormed(BatchFormed)
    case stepDone(StepDone)
    case stepFailed(StepFailed)
    case resumed(Resumed)
    /// A record no reader acts on (actor_joined, published, checkpoint…).
    case other(type: String)

    package init(_ record: RunLog.Record) throws {
        func body<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                // Records carry more than their readers need (loss, accounting…): unknown keys are fine here.
                return try JSONValueDecoder(refusesUnknownKeys: false).decode(T.self, from: JSONValue(any: record.body, field: record.type))
            } catch {
                throw RuntimeError.corruptLog("line \(record.seq) (\(record.type)): \(error)")
            }
        }
        switch record.type {
        case "run_started": self = .runStarted(try body(RunStarted.self))
        case "epoch_started": self = .epochStarted(try body(EpochStarted.self))
        case "group_accepted":
            do { self = .groupAccepted(try RolloutGroup(logBody: record.body)) } catch {
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
