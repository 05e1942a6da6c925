import ArgumentParser
import Foundation
import TroupeLearner
import TroupeRuntime

package struct ReplayCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-run a run's training steps from its run log and check every weights hash.",
        discussion: "Bit-for-bit reproduction needs the same binary, CPU kernel and thread count as the run.")

    @Argument(help: "The run directory (holds run.log and config.json).")
    package var runDirectory: String

    @Flag(name: .long, help: "Compare each step's weights hash with the run log's (exit 1 on any mismatch).")
    package var verify = false

    package init() {}

    package func validate() throws {
        try requirePath(runDirectory, directory: true, missing: "run directory \(runDirectory) does not exist",
                        wrongKind: "\(runDirectory) is a file: give the run directory that holds run.log")
        guard FileManager.default.fileExists(atPath: runDirectory + "/run.log") else { throw ValidationError("\(runDirectory) has no run.log") }
        guard FileManager.default.fileExists(atPath: runDirectory + "/config.json") else { throw ValidationError("\(runDirectory) has no config.json") }
    }

    package func run() throws {
        let report = try Replay.verify(runDirectory: runDirectory) { check in
            print("step \(check.step): \(check.matches ? "ok" : "MISMATCH") \(check.actual.prefix(16))")
        }
        if let problem = report.configurationProblem { print("warning: \(problem); the steps replay under the edited settings") }
        if report.tornTailBytes > 0 {
            print("note: run.log ends in a torn record of \(report.tornTailBytes) bytes (a crash in the middle of a write), left out")
        }
        if report.steps.isEmpty {
            print("no training steps in the run log")
            if verify { throw ExitCode.failure }
            return
        }
        if report.ok { print("replay verified: \(report.steps.count) steps bit for bit"); return }
        print("replay FAILED: \(report.mismatches.count) of \(report.steps.count) steps differ (first: step \(report.mismatches[0].step))")
        if verify { throw ExitCode.failure }
    }
}
