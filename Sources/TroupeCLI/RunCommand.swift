import ArgumentParser
import Foundation
import TroupeJSON
import TroupeLocalRun
import TroupeMonitor
import TroupeReport
import TroupeRuntime

package struct RunCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "The main job: a learner and actors on this machine, test-time RL on the built-in task, evaluated before and after.",
        discussion: """
        With no arguments: the built-in base model (models/arith-base), the arith:add2 test split without its labels, \
        TTRL's majority-vote reward with CISPO, a learner and two actors on loopback. The held-back answers are used only \
        to evaluate (pass@1, maj@k) at the start, every eval.every steps and at the end. The run directory gets \
        config.json, run.log, metrics.jsonl, checkpoints, the trained model, summary.json and report.html. \
        --model DIR and --file JSONL run a Hugging Face model directory on your own prompts (docs/models.md): \
        with a chat template, each prompt is rendered as its user message (task.system_prompt sets the system message). \
        --resume RUN continues a run that stopped (its learner failed or was killed, Ctrl-C, a reboot) from its latest \
        checkpoint, as `troupe learner --resume` does, with actors started again, and evaluates and summarises it as at \
        the end of a run; its --set may change only the keys a resume may (docs/cli.md).
        """)

    @OptionGroup var runConfig: RunConfigOptions

    @Option(name: .long, help: ArgumentHelp("Model directory (the same as --set model.path=DIR).", valueName: "dir"))
    package var model: String?

    @Option(name: .long, help: ArgumentHelp("A JSONL task file of {\"prompt\", \"answer\"?} lines instead of the built-in task "
        + "(the same as --set task.file=JSONL --set task.spec=null).", valueName: "jsonl"))
    package var file: String?

    @Option(name: .long, help: "Actors to start (default: actors.count from the configuration).")
    package var actors: Int?

    @Option(name: .long, help: ArgumentHelp("Continue the troupe run in this directory from its latest checkpoint.", valueName: "run"))
    package var resume: String?

    @Flag(name: .long, help: "Skip the evaluations (faster; no before/after table).")
    package var noEval = false

    @Flag(name: .long, help: "Run the learner and actors in plaintext on loopback instead of authenticating them with keys made in RUN/keys.")
    package var insecurePlaintext = false

    package init() {}

    package func validate() throws {
        if let actors { try requireSettingRange("--actors", .integer(actors), shown: "\(actors)", as: "actors.count") }
        if resume != nil, let given = model != nil ? "--model" : file != nil ? "--file" : runConfig.config != nil ? "--config" : nil {
            throw ValidationError("\(given) cannot be given with --resume: the run goes on with its frozen configuration (RUN/config.json)")
        }
        if let resume { try validateRunDirectory(resume) }
    }

    package func run() throws {
        Shutdown.installHandlers()
        if let resume { return try continueRun(resume) }
        var configOptions = runConfig
        // The shortcuts come first, so that an explicit --set of the same key wins.
        configOptions.overrides = (model.map { ["model.path=\($0)"] } ?? []) + (file.map { ["task.file=\($0)", "task.spec=null"] } ?? [])
            + runConfig.overrides
        var config = try configOptions.load()
        if config.run.directory == nil && !runConfig.overrides.contains(where: { $0.hasPrefix("run.name=") }) && runConfig.config == nil {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMdd-HHmmss"
            config.run.name = "ttrl-" + f.string(from: Date())
        }
        guard FileManager.default.fileExists(atPath: config.model.path + "/config.json") else {
            throw CommandError("model \(config.model.path) not found; the built-in base model lives in models/arith-base of the repository (run from the repository root, or --set model.path=DIR)")
        }
        try perform(LocalRun(config: config, options: options(actors: actors ?? config.actors.count)))
    }

    /// `--resume RUN`: the frozen configuration with the resumable `--set` keys, as the learner will read it.
    private func continueRun(_ directory: String) throws {
        guard FileManager.default.fileExists(atPath: directory + "/config.json") else {
            throw CommandError("--resume: \(directory)/config.json is missing: no learner recorded a run there (a run directory of `troupe run` holds it once its learner started)")
        }
        var config = try RunConfig.loadForResume(frozen: directory + "/config.json", overrides: runConfig.overrides)
        config.run.directory = directory
        guard FileManager.default.fileExists(atPath: config.model.path + "/config.json") else {
            throw CommandError("--resume: the run's model \(config.model.path) (its model.path in \(directory)/config.json) not found; a relative path is read from the current directory: resume from the one the run started in")
        }
        var options = options(actors: actors ?? config.actors.count)
        options.resume = true
        options.resumeOverrides = runConfig.overrides
        try perform(LocalRun(config: config, options: options))
    }

    private func options(actors: Int) -> LocalRun.Options {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        var options = LocalRun.Options(executable: ProcessInfo.processInfo.arguments[0].hasPrefix("/") ? ProcessInfo.processInfo.arguments[0] : executable,
                                       actors: actors)
        options.evaluate = !noEval
        options.authenticate = !insecurePlaintext
        return options
    }

    /// Runs it with a live dashboard on a terminal (status lines otherwise), then the summary table and the report.
    private func perform(_ run: LocalRun) throws {
        let terminal = isatty(STDOUT_FILENO) != 0
        var lastLine = 0.0
        var drawn = false
        let outcome = try run.run { status, monitor in
            let now = Date().timeIntervalSince1970
            if terminal {
                // The live dashboard (troupe monitor's), redrawn four times a second.
                guard now - lastLine > 0.25, monitor.eventCount > 0 else { return }
                if !drawn { _ = StandardOutput.write(DashboardRenderer.clearScreen + DashboardRenderer.hideCursor); drawn = true }
                let size = StandardOutput.terminalSize()
                let renderer = DashboardRenderer(width: size.columns, height: max(10, size.rows - 1), title: "troupe run")
                _ = StandardOutput.write(renderer.frame(monitor, now: now))
                lastLine = now
            } else if now - lastLine > 5 {
                print(status.line); fflush(stdout); lastLine = now
            }
        }
        if drawn { _ = StandardOutput.write(DashboardRenderer.showCursor + "\n") }
        if !outcome.notStarted {
            RunSummaryTable.print(outcome, config: run.config)
            ReportWriter.writeIfPossible(runDirectory: outcome.runDirectory)
        }
        try finish(status: outcome.exitStatus)
    }
}

enum RunSummaryTable {
    static func print(_ o: LocalRun.Outcome, config: RunConfig) {
        let k = config.eval.samples
        func pct(_ x: Double) -> String { String(format: "%5.1f%%", 100 * x) }
        func ci(_ r: ClosedRange<Double>) -> String { String(format: "[%4.1f, %4.1f]", 100 * r.lowerBound, 100 * r.upperBound) }
        var lines: [String] = []
        lines.append("")
        lines.append("                   before                  after")
        if let b = o.before, let a = o.after {
            lines.append("pass@1      \(pct(b.passAt1)) \(ci(b.passAt1CI))   \(pct(a.passAt1)) \(ci(a.passAt1CI))")
            lines.append("maj@\(k)      \(pct(b.majority)) \(ci(b.majorityCI))   \(pct(a.majority)) \(ci(a.majorityCI))")
            lines.append(String(format: "mean tokens %6.1f                %6.1f   per completion", b.meanCompletionTokens, a.meanCompletionTokens))
            let gap = b.majority - b.passAt1
            lines.append(String(format: "pass@1 gain %+.1f points (initial maj@%d − pass@1 gap %.1f points)", 100 * (a.passAt1 - b.passAt1), k, 100 * gap))
        } else {
            lines.append("(evaluation skipped: \(o.evaluationSkipped ?? "no evaluation was made"))")
        }
        if let r = o.rolloutTokens, r.generated < r.drawnAlone {
            lines.append(String(format: "rollout tokens %.0f drawn, %.1f%% of the %.0f that independent samples would draw",
                                r.generated, 100 * r.generated / r.drawnAlone, r.drawnAlone))
        }
        if let step = o.resumedFromStep { lines.append("resumed from the checkpoint of step \(step)") }
        if o.steps < config.run.maxSteps {
            lines.append("stopped at step \(o.steps) of \(config.run.maxSteps): `troupe run --resume \(o.runDirectory)` goes on")
        }
        lines.append("steps \(o.steps)   wall time \(String(format: "%.0f", o.wallSeconds)) s   training \(String(format: "%.0f", o.tokensPerSecond)) tokens/s")
        lines.append("run directory \(o.runDirectory)   (report: \(o.runDirectory)/report.html)")
        Swift.print(lines.joined(separator: "\n"))
    }
}

/// Writes RUN/report.html at the end of `troupe run` (warnings only: the run itself succeeded).
enum ReportWriter {
    static func writeIfPossible(runDirectory: String) {
        do {
            try ReportFiles.writeReport(runDirectory: URL(fileURLWithPath: runDirectory))
        } catch {
            StandardStream.error.write("warning: could not write the report: \(error)\n")
        }
    }
}
