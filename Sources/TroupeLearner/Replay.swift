import Foundation
import TroupeModel
import TroupeRuntime
import TroupeTensor

/// `troupe replay RUN --verify`: re-executes every training step that counts in the run log, from the
/// base weights, and checks each step's weights hash bit for bit. A bug report is a run directory.
package enum Replay {
    package struct StepCheck: Sendable {
        package let step: Int
        package let expected: String?
        package let actual: String
        package var matches: Bool { expected == nil || expected == actual }
    }

    package struct Report: Sendable {
        package let steps: [StepCheck]
        /// Bytes of a torn final record (a crash mid-write) that the replay left out; 0 for a clean log.
        package var tornTailBytes = 0
        /// Set when the run's config.json was edited since it started: the steps will not match, and this says why.
        package var configurationProblem: String?
        package var mismatches: [StepCheck] { steps.filter { !$0.matches } }
        package var ok: Bool { mismatches.isEmpty && !steps.isEmpty }
    }

    package static func verify(runDirectory: String, config overrideConfig: RunConfig? = nil,
                              progress: ((StepCheck) -> Void)? = nil) throws -> Report {
        let config = try overrideConfig ?? RunConfig.loadFrozen(path: runDirectory + "/config.json")
        let scan = try RunLog.scan(path: runDirectory + "/run.log")
        let history = try RunHistory(records: scan.records)
        let configurationProblem = overrideConfig == nil ? history.frozenConfigurationProblem(runDirectory: runDirectory) : nil
        // Bit-for-bit needs the thread count the run trained with.
        if let threads = history.threads, threads > 0 {
            BLASInfo.setThreads(threads)
        }
        let modelPath = history.baseModel ?? config.model.path
        if !modelPath.hasPrefix("/") && !FileManager.default.fileExists(atPath: modelPath) {
            throw RuntimeError.invalid("the run's base model \(modelPath) is a relative path, not found from \(FileManager.default.currentDirectoryPath): replay from the directory the run was started in")
        }
        let model = try ModelDirectory.load(modelPath)
        if let expected = history.baseWeightsHash, model.weightsHash() != expected {
            throw RuntimeError.invalid("base model \(modelPath) does not have the weights the run started from (hash \(model.weightsHash()), log says \(expected))")
        }
        let trainer = try Trainer(model: model, options: config.algorithm, optimizer: config.optimizer,
                                  microBatchTokens: config.learner.microBatchTokens,
                                  backwardProducts: config.backwardProducts(portableAllowed: true))
        trainer.learningRateForStep = { [schedule = config.schedule, peak = config.optimizer.learningRate, total = config.run.maxSteps] step in
            schedule.learningRate(peak: peak, step: step, total: total)
        }
        var checks: [StepCheck] = []
        for s in history.effectiveSteps {
            let groups = try s.groups.map { key -> RolloutGroup in
                guard let g = history.group(key) else { throw RuntimeError.corruptLog("step \(s.step) trains group \(key), which the log never accepted") }
                return g
            }
            let result = try trainer.step(groups, stepNumber: s.step)
            let check = StepCheck(step: s.step, expected: s.weightsHash, actual: result.weightsHash)
            checks.append(check)
            progress?(check)
        }
        return Report(steps: checks, tornTailBytes: scan.totalBytes - scan.validBytes, configurationProblem: configurationProblem)
    }
}
