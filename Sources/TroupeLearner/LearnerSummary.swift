import Foundation
import TroupeJSON
import TroupeModel

/// What a learner writes to `learner-summary.json` as it finishes: the writer (`LearnerServer`) and
/// the reader (`troupe run`, `troupe bench rl-step`; the integration tests read the file on their own,
/// as an operator would).
package struct LearnerSummary: Codable, Sendable, Equatable {
    package static let fileName = "learner-summary.json"

    package var steps: Int
    /// True when the learner reached `run.max_steps`; false when it stopped early (signal, fatal error).
    package var finished: Bool
    package var wallTimeSeconds: Double
    package var tokensTrained: Int
    package var weightsHash: String
    /// The terms of `produced = trained + rejected + duplicates + lost_uncommitted + in_flight`, with
    /// `rejected/<reason>` and `pending` beside them.
    package var accounting: [String: Int]
    package var accountingIdentityHolds: Bool
    /// The whole run's trainer idle share, start-up included.
    package var trainerIdleRatio: Double
    /// The reward workers' counters (`calls`, `timeouts`, …, `groups_waiting`); nil when the run had none.
    package var rewardWorkers: [String: Double]?
    /// The checkpoint's step this learner resumed the run from (`--resume`); nil when it started the run.
    /// The other fields count this learner's process only, but `steps` and `accounting`, the run's.
    package var resumedFromStep: Int?

    enum CodingKeys: String, CodingKey {
        case steps, finished, accounting
        case wallTimeSeconds = "wall_time_s"
        case tokensTrained = "tokens_trained"
        case weightsHash = "weights_hash"
        case accountingIdentityHolds = "accounting_identity_holds"
        case trainerIdleRatio = "trainer_idle_ratio"
        case rewardWorkers = "reward_workers"
        case resumedFromStep = "resumed_from_step"
    }

    package init(steps: Int, finished: Bool, wallTimeSeconds: Double, tokensTrained: Int, weightsHash: String, accounting: [String: Int],
                 accountingIdentityHolds: Bool, trainerIdleRatio: Double, rewardWorkers: [String: Double]?,
                 resumedFromStep: Int? = nil) {
        self.steps = steps
        self.finished = finished
        self.wallTimeSeconds = wallTimeSeconds
        self.tokensTrained = tokensTrained
        self.weightsHash = weightsHash
        self.accounting = accounting
        self.accountingIdentityHolds = accountingIdentityHolds
        self.trainerIdleRatio = trainerIdleRatio
        self.rewardWorkers = rewardWorkers
        self.resumedFromStep = resumedFromStep
    }

    package static func path(runDirectory: String) -> String { runDirectory + "/" + fileName }

    package func write(runDirectory: String) throws {
        try AtomicFile.write(try JSONValueEncoder().encode(self).serialized(), to: Self.path(runDirectory: runDirectory))
    }

    /// The summary in `runDirectory`; throws naming the file when it is missing, not JSON, or lacks a field.
    package static func read(runDirectory: String) throws -> LearnerSummary {
        let path = path(runDirectory: runDirectory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JSONError(path: nil, problem: "cannot read it (the learner writes it as it finishes)", location: JSONLocation(source: path))
        }
        let document = try JSONDocument.parse(data, source: path)
        do {
            return try JSONValueDecoder(sourceMap: document.sourceMap, refusesUnknownKeys: false).decode(LearnerSummary.self, from: document.value)
        } catch var error as JSONError where error.location == nil {
            error.location = JSONLocation(source: path)
            throw error
        }
    }
}
