import Foundation
import TroupeJSON
import TroupeModel
import TroupeRuntime

extension LearnerServer {
    /// Resume (docs/ARCHITECTURE.md §5): the latest checkpoint, then the run log's account of what came after it.
    /// Groups trained up to the checkpoint stay trained; groups of steps after it (whose weights died
    /// with the crash) go back to the pending buffer with every other accepted, untrained group, and a
    /// `resumed` record voids those steps, so no group is ever trained twice in the surviving history.
    ///
    /// A group that would fail a step is quarantined (a `group_rejected` record, reason `quarantined`)
    /// instead of going back to the pending buffer: one that fails today's `admission` (a log written
    /// by an older learner), and every group of a batch whose step failed, which would fail again.
    /// Returns the step of the checkpoint it resumed from (0: none yet, the base weights).
    static func restore(core: LearnerCore, trainer: Trainer, model: LlamaModel, log: RunLog, events: RunEvents,
                        admission: GroupAdmission, runDirectory: String, maxSteps: Int, console: Console) throws -> Int {
        let checkpoint = try Checkpoint.loadLatest(runDirectory: runDirectory, model: model, optimizer: trainer.optimizer,
                                                   warn: { console.warn($0) })
        let step = checkpoint?.step ?? 0
        // The run cannot end before a step it has trained: it would stop at once, saying it finished.
        if step > maxSteps {
            throw RuntimeError.invalid("--resume: run.max_steps is \(maxSteps), below step \(step) of the checkpoint the run goes on from: "
                                       + "set it to \(step) or more")
        }
        let history = try RunHistory(records: log.opened)
        // No checkpoint file, though the log records some: starting again from the base weights would void
        // the whole run and overwrite its model.
        if checkpoint == nil, let recorded = log.opened.last(where: { $0.type == "checkpoint" })?.body["step"]?.int, recorded > 0 {
            throw RuntimeError.corruptCheckpoint("\(Checkpoint.directory(runDirectory)) holds no checkpoint, but \(log.path) records checkpoints "
                + "up to step \(recorded): put the checkpoint files back (the newest, step-\(String(format: "%08d", recorded)).safetensors, "
                + "or any older one) to resume; resuming from the base weights would throw the run's training away")
        }
        // The frozen configuration is the run's numbers: an edited file would change them from the next step on.
        try history.checkFrozenConfiguration(runDirectory: runDirectory, for: "--resume")
        // The checkpoint's weights were trained on the batches the log records up to its step, and the log
        // is durable before a checkpoint is written: a log that ends earlier lost records (a crash tears at
        // most the line being written). Resuming would leave those batches out of the run's history.
        let loggedStep = history.effectiveSteps.map(\.step).max() ?? 0
        if step > loggedStep {
            throw RuntimeError.corruptLog("\(log.path) (\(log.opened.count) records) records steps up to \(loggedStep), but the checkpoint "
                + "to resume from (\(Checkpoint.directory(runDirectory))) is at step \(step): the log has lost records the checkpoint "
                + "was trained on. Put the whole run.log back, or move the checkpoint files after step \(loggedStep) and `latest` "
                + "out of the checkpoints directory to resume from the last step the log records")
        }
        var trained = Set<String>()
        for s in history.effectiveSteps where s.step <= step { trained.formUnion(s.groups) }
        var pending: [RolloutGroup] = []
        var voidedWeights: [RolloutGroup] = []
        for (key, group) in history.accepted where !trained.contains(key) && history.rejected[key] == nil {
            // Sampled with weights of a step the checkpoint does not cover: those weights no longer exist.
            if Int(group.version.step) > step { voidedWeights.append(group) } else { pending.append(group) }
        }
        for key in Set(history.accepted.map(\.0)).union(history.rejected.keys).sorted() {
            if let k = GroupKey(parsing: key) {
                core.markSeen(k)
                core.restoreReceived(key: k, rejectedReason: history.rejected[key])
            }
        }
        core.restore(step: step, trained: trained.count)
        for g in voidedWeights {
            try events.emit(.groupRejected(g, reason: "stale", detail: RunHistory.voidedDetailPrefix + "\(g.version.step)", sync: true))
            core.rejectRestored(reason: "stale")
        }
        var refused = voidedWeights
        var quarantined = 0
        for g in pending {
            let problem: String
            if let failure = history.failedGroups[g.key.description] {
                problem = "its batch's step \(failure.step) failed: \(failure.error)"
            } else {
                switch admission.review(g) {
                case .success(let checked):
                    core.restorePending(checked)
                    continue
                case .failure(let refusal):
                    problem = "\(refusal.reason.rawValue): \(refusal.detail)"
                }
            }
            try events.emit(.groupRejected(g, reason: LearnerCore.RejectReason.quarantined.rawValue, detail: problem, sync: true))
            core.rejectRestored(reason: LearnerCore.RejectReason.quarantined.rawValue)
            refused.append(g)
            console.warn("quarantined a group the run cannot train", ["group": .string(g.key.description), "problem": .string(problem)])
            quarantined += 1
        }
        // The queue as the log moved it, then the prompts of the groups refused here to the front (each
        // only if that group is its prompt's last acceptance: a later one sent the prompt to the back).
        core.restoreQueue(history.queueMoves + [.toFront(history.lastAcceptances(refused.map(\.key.description)))])
        let voided = history.effectiveSteps.map(\.step).filter { $0 > step }
        try events.emit(.resumed(fromStep: step, voidedSteps: voided, pending: pending.count - quarantined, trained: trained.count))
        console.info("resumed", ["step": .integer(step), "pending_groups": .integer(pending.count - quarantined),
                                 "voided_steps": .integer(voided.count), "quarantined": .integer(quarantined)])
        return step
    }
}

/// The run log read back: accepted groups in order, rejections, and the steps that still count after
/// every `resumed` record voided the steps its checkpoint did not cover.
package struct RunHistory {
    package struct Step {
        package let step: Int
        package let groups: [String]
        package var weightsHash: String?
    }
    package var accepted: [(String, RolloutGroup)] = []
    /// How the queue moved, in the log's order (`LearnerCore.restoreQueue`).
    package var queueMoves: [LearnerCore.QueueMove] = []
    /// The detail of the `stale` records a resume writes for groups sampled with weights it voided.
    package static let voidedDetailPrefix = "sampled with weights of voided step "
    /// Group keys a resume refused, until its `resumed` record.
    private var refusedByResume: [String] = []
    /// Rejected group keys with their reason (a group accepted and later rejected as stale appears here too).
    package var rejected: [String: String] = [:]
    package var effectiveSteps: [Step] = []
    /// Groups of batches whose step failed, with that step and its error.
    package var failedGroups: [String: (step: Int, error: String)] = [:]
    package var baseModel: String?
    package var baseWeightsHash: String?
    /// The frozen configuration's digest the run started with (`run_started.config_digest`).
    package var configDigest: String?
    /// The BLAS threads of the run's first learner process.
    package var threads: Int?
    private var acceptedIndex: [String: Int] = [:]

    /// Whether the run's `config.json` is the one it started with (`run_started.config_digest`; logs
    /// written before the digest was kept are not checked): what is wrong, or nil.
    package func frozenConfigurationProblem(runDirectory: String) -> String? {
        let path = runDirectory + "/config.json"
        guard let recorded = configDigest, let frozen = FileManager.default.contents(atPath: path) else { return nil }
        let actual = frozen.withUnsafeBytes { WeightsHash.hex(bytes: $0) }
        guard actual != recorded else { return nil }
        return "\(path) is not the configuration this run started with (BLAKE2b-256 \(actual.prefix(16))…, run_started recorded \(recorded.prefix(16))…): it was edited"
    }

    /// `frozenConfigurationProblem` as an error, for `purpose`.
    package func checkFrozenConfiguration(runDirectory: String, for purpose: String) throws {
        if let problem = frozenConfigurationProblem(runDirectory: runDirectory) {
            throw RuntimeError.invalid("\(purpose): \(problem). Put the original back; a resume changes only the keys --set may set")
        }
    }

    /// Reads every record; a record whose body does not match its type is an error naming its line.
    package init(records: [RunLog.Record]) throws {
        for r in records {
            switch try RunRecord(r) {
            case .runStarted(let started):
                baseModel = started.baseModel
                baseWeightsHash = started.baseWeightsHash
                configDigest = started.configDigest
            case .epochStarted(let epoch):
                if threads == nil { threads = epoch.threads }
            case .groupAccepted(let g):
                acceptedIndex[g.key.description] = accepted.count
                accepted.append((g.key.description, g))
                queueMoves.append(.toBack(g.promptId))
            case .groupRejected(let rejection):
                rejected[rejection.group] = rejection.reason
                if rejection.reason == LearnerCore.RejectReason.quarantined.rawValue || rejection.detail.hasPrefix(Self.voidedDetailPrefix) {
                    refusedByResume.append(rejection.group)
                }
            case .batchFormed(let batch):
                effectiveSteps.append(Step(step: batch.step, groups: batch.groups, weightsHash: nil))
            case .stepDone(let done):
                if let i = effectiveSteps.lastIndex(where: { $0.step == done.step }) { effectiveSteps[i].weightsHash = done.weightsHash }
            case .stepFailed(let failed):
                for key in effectiveSteps.last(where: { $0.step == failed.step })?.groups ?? [] {
                    failedGroups[key] = (failed.step, failed.error)
                }
            case .resumed(let resumed):
                effectiveSteps.removeAll { $0.step > resumed.fromStep }
                queueMoves.append(.toFront(lastAcceptances(refusedByResume)))
                refusedByResume = []
            default:
                break // nothing a resume or a replay acts on
            }
        }
    }

    package func group(_ key: String) -> RolloutGroup? { acceptedIndex[key].map { accepted[$0].1 } }

    /// The prompts of `keys`' groups, in order, each only if its group is the last accepted of its prompt
    /// so far: a prompt accepted again later went to the back with that acceptance.
    package func lastAcceptances(_ keys: [String]) -> [UInt64] {
        var lastOfPrompt: [UInt64: Int] = [:]
        for (i, (_, g)) in accepted.enumerated() { lastOfPrompt[g.promptId] = i }
        return keys.compactMap { key in
            guard let i = acceptedIndex[key] else { return nil }
            let prompt = accepted[i].1.promptId
            return lastOfPrompt[prompt] == i ? prompt : nil
        }
    }
}
