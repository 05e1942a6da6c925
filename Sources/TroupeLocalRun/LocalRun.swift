import Foundation
import TroupeJSON
import TroupeLearner
import TroupeModel
import TroupeMonitor
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTasks
import TroupeTensor
import TroupeTokenizer
import TroupeWire

/// `troupe run`: one command on one machine. Evaluates the base model, starts a learner and N actors
/// as child processes on loopback, follows the log stream (computing label accuracy with the answer
/// key that only this process holds), evaluates periodically and at the end, and writes the summary
/// and the HTML report. Ctrl-C stops the children cleanly (the learner checkpoints); the exit status
/// is the learner's.
package final class LocalRun {
    package struct Options {
        package var executable: String
        package var actors: Int
        package var evaluate = true
        /// Authenticate the children (CURVE) with keys made for this run in RUN/keys; false: plaintext on loopback.
        package var authenticate = true
        /// Continue the run in `config.runDirectory` (`troupe run --resume`): its learner resumes from the
        /// latest checkpoint, with the run's keys when it has them.
        package var resume = false
        /// `--set` overrides a resumed learner takes on top of its frozen `config.json` (the resumable keys).
        package var resumeOverrides: [String] = []
        package init(executable: String, actors: Int) {
            self.executable = executable
            self.actors = actors
        }
    }

    package var config: RunConfig
    package let options: Options
    let console = Console(role: "run")
    private var children: [(name: String, process: Process)] = []
    /// This run's keys (`authenticate`): made in `prepareRunDirectory`.
    private var keys: RunKeys?
    /// How prompts become token ids, for the evaluations (the learner renders the training prompts the same way).
    private var promptFormat = PromptFormat.plain

    package init(config: RunConfig, options: Options) {
        self.config = config
        self.options = options
    }

    package struct EvalRow: Sendable {
        package var step: Int
        package var passAt1: Double
        package var passAt1CI: ClosedRange<Double>
        package var majority: Double
        package var majorityCI: ClosedRange<Double>
        package var samples: Int
        /// Mean completion length of the evaluation's samples, in tokens.
        package var meanCompletionTokens: Double
    }

    package struct Outcome: Sendable {
        package var exitStatus: Int32
        package var before: EvalRow?
        package var after: EvalRow?
        package var steps: Int
        package var wallSeconds: Double
        package var tokensPerSecond: Double
        /// Rollout tokens drawn, and what sampling every sample alone would draw (nil: no actor reported them).
        package var rolloutTokens: (generated: Double, drawnAlone: Double)?
        package var runDirectory: String
        /// The checkpoint's step a resumed run went on from (its learner's summary); nil for a run started here.
        package var resumedFromStep: Int?
        /// The learner stopped before it started or resumed the run: nothing was trained, and the run
        /// directory's summary and report stay as they were (a new run gets none).
        package var notStarted = false
        /// Why there is no evaluation before or after (nil: both were made).
        package var evaluationSkipped: String?
    }

    // MARK: run

    /// `renderer` is called after every receive (about 10 times a second) with the run's status and the
    /// monitor's view of the log stream, for a dashboard or status lines.
    package func run(renderer: ((LiveStatus, MonitorState) -> Void)? = nil) throws -> Outcome {
        let started = monotonicSeconds()
        let dir = config.runDirectory
        // Everything the run reads is checked before the run directory is written: the model (config
        // and safetensors headers), its tokenizer and chat template, every prompt rendered, and the CPU
        // a bf16 backward needs.
        let modelConfig = try ModelDirectory.check(config.model.path)
        _ = try config.backwardProducts(portableAllowed: false)
        // The answer key stays in this process: the learner and actors run label-free.
        let tokenizer = try RunSetup.tokenizer(forModelDirectory: config.model.path, model: modelConfig)
        let prompts = try RunSetup.prompts(config, tokenizer: tokenizer, contextLength: modelConfig.maxPositions)
        // The learner logs these too (logs/learner.log); the terminal should show them.
        prompts.report(to: console, taskFile: config.task.file)
        promptFormat = prompts.format
        if config.groupShape == .serial { _ = try RunSetup.serialExitPhrase(config, tokenizer: tokenizer, model: modelConfig, prompts: prompts) }
        let items = try evaluationItems()
        _ = try RewardWorkerKeys.resolve(config.rewardWorkers, learner: options.authenticate ? .madeForEachRun : .insecurePlaintext)
        _ = try config.welcomeJSON() // the model's files fit the Welcome an actor accepts
        // A resume that changes no eval.* key finds the base model's line in the files already.
        let baseEvaluated = options.resume && !options.resumeOverrides.contains { $0.hasPrefix("eval.") }
            && Self.metricsHoldEvaluation(atStep: 0, path: dir + "/metrics.jsonl")
        if options.resume { try prepareResume() } else { try prepareRunDirectory() }
        // Evaluation lines go to metrics.jsonl and, beside the learner's, a TensorBoard event file of their own.
        let exportFailed: (String) -> Void = { [console] in console.warn("metrics export failed; the run goes on", ["error": .string($0)]) }
        let events = LocalRunEvents([MetricsFileSink<Never>(MetricsWriter(path: dir + "/metrics.jsonl", onFailure: exportFailed)),
                                     TensorBoardSink<Never>(directory: dir + "/tensorboard", onFailure: exportFailed)])

        var before: EvalRow?
        var evaluationSkipped: String? = !options.evaluate ? "--no-eval"
            : items.isEmpty ? "no prompt of \(config.task.file ?? "the task") has an answer to evaluate against" : nil
        if options.evaluate, !items.isEmpty, let file = config.task.file, items.count < prompts.entries.count {
            console.info("evaluating the \(items.count) prompts of \(file) that have an answer, of \(prompts.entries.count)")
        }
        if options.evaluate && !items.isEmpty {
            console.info("evaluating the base model", ["prompts": .integer(items.count), "samples": .integer(config.eval.samples)])
            // A resumed run's base model gives the same figures (the same seed and settings).
            before = try evaluate(modelDirectory: config.model.path, items: items, step: 0, events: baseEvaluated ? nil : events)
        }
        let epochBefore = learnerEpoch()
        try spawnLearnerAndActors()
        var status = LiveStatus(maxSteps: config.run.maxSteps, started: started)
        status.before = before
        let followed = try follow(&status, answerKey: prompts.answerKey, items: items, events: events, renderer: renderer)
        let learnerStatus = followed.learnerStatus
        // A learner writes endpoints.json with its new epoch once it has restored the run and bound its
        // sockets, and a new run's run.log once it has started it.
        let notStarted = (learnerStatus != 0 || followed.actorsFailure != nil)
            && (options.resume ? learnerEpoch() == epochBefore : !FileManager.default.fileExists(atPath: dir + "/run.log"))
        if learnerStatus != 0 { reportLearnerFailure(status: learnerStatus, notStarted: notStarted) }
        if let failure = followed.actorsFailure {
            console.error("every actor exited, so the learner was stopped: \(failure); \(howToGoOn(notStarted: notStarted))")
        }
        let exitStatus = learnerStatus != 0 ? learnerStatus : (followed.actorsFailure != nil ? 1 : 0)
        if notStarted {
            // Nothing was trained: a resumed run's summary and report stay those of its last epoch.
            return Outcome(exitStatus: exitStatus, before: before, after: nil, steps: learnerSummarySteps() ?? 0,
                           wallSeconds: monotonicSeconds() - started, tokensPerSecond: 0, rolloutTokens: nil, runDirectory: dir,
                           resumedFromStep: nil, notStarted: true)
        }
        // The log stream dies with the learner and can lose its last steps' events; its summary file cannot.
        status.step = max(status.step, learnerSummarySteps() ?? 0)

        var after: EvalRow?
        if options.evaluate && !items.isEmpty && FileManager.default.fileExists(atPath: dir + "/model/config.json") {
            console.info("evaluating the trained model")
            // model/ is the latest checkpoint, behind the last step when the learner stopped between checkpoints.
            after = try evaluate(modelDirectory: dir + "/model", items: items, step: latestCheckpointStep() ?? status.step, events: events)
        } else if evaluationSkipped == nil {
            evaluationSkipped = "no checkpoint was written to evaluate"
        }
        let wall = monotonicSeconds() - started
        let outcome = Outcome(exitStatus: exitStatus, before: before, after: after, steps: status.step, wallSeconds: wall,
                              tokensPerSecond: status.tokensPerSecond,
                              rolloutTokens: status.tokensDrawnAlone > 0 ? (status.tokensGenerated, status.tokensDrawnAlone) : nil,
                              runDirectory: dir,
                              resumedFromStep: options.resume ? (try? LearnerSummary.read(runDirectory: dir))?.resumedFromStep : nil,
                              evaluationSkipped: evaluationSkipped)
        try writeSummary(outcome, status: status, prompts: prompts.entries.count)
        return outcome
    }

    /// A new run directory with free ports and the resolved configuration the learner will read.
    private func prepareRunDirectory() throws {
        let dir = config.runDirectory
        if FileManager.default.fileExists(atPath: dir + "/run.log") {
            throw RuntimeError.invalid("\(dir) already holds a run; choose another --set run.name=… or remove it")
        }
        // An earlier troupe run that stopped before its learner wrote anything leaves its keys and logs.
        if FileManager.default.fileExists(atPath: dir + "/run-config.json") || FileManager.default.fileExists(atPath: dir + "/keys") {
            throw RuntimeError.invalid("\(dir) is left from a troupe run that stopped before its learner started (it has run-config.json or keys/ but no run.log; its logs/ say why); remove it or choose another --set run.name=…")
        }
        // A new run writes config.json, model/ and more: never into a directory holding something else.
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw RuntimeError.invalid("run directory \(dir) is a file; choose another --set run.name=… or run.directory") }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? ["?"]
            guard entries.isEmpty else {
                throw RuntimeError.invalid("run directory \(dir) exists and holds other files (\(entries.sorted().prefix(3).joined(separator: ", "))\(entries.count > 3 ? ", …" : "")); a new run goes into a new or empty directory: choose another --set run.name=… or run.directory")
            }
        }
        try Directories.create(dir + "/logs", for: "the run directory's logs (run.directory)")
        try pickFreePorts()
        if options.authenticate { keys = try RunKeys.make(in: dir + "/keys", actors: options.actors) }
        try AtomicFile.write(config.resolvedJSONData(), to: dir + "/run-config.json")
        console.info("resolved configuration written to \(dir)/run-config.json")
        StandardStream.error.write(config.resolvedJSONData())
        StandardStream.error.write("\n")
    }

    /// A run directory of an earlier `troupe run`, to go on with: its keys (made now when it ran without),
    /// its logs appended to, and free ports (its own when they still are).
    private func prepareResume() throws {
        let dir = config.runDirectory
        guard FileManager.default.fileExists(atPath: dir + "/run.log"), FileManager.default.fileExists(atPath: dir + "/config.json") else {
            throw RuntimeError.invalid("--resume: \(dir) holds no run to resume (its learner wrote no run.log and config.json); start a new run")
        }
        // The learner goes on from its latest checkpoint: a lower max_steps would end the run at once, untrained.
        if let checkpoint = latestCheckpointStep(), config.run.maxSteps < checkpoint {
            throw RuntimeError.invalid("--resume: run.max_steps is \(config.run.maxSteps), below step \(checkpoint) of the run's latest checkpoint, where the resume goes on from: set it to \(checkpoint) or more")
        }
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        let keysDirectory = dir + "/keys"
        if FileManager.default.fileExists(atPath: keysDirectory + "/\(LearnerSecurity.learnerName).key_secret") {
            // Downgrading a run that authenticated would open its ports to anyone on the machine.
            guard options.authenticate else {
                throw RuntimeError.invalid("--resume: \(dir) authenticates its learner and actors with the keys in \(keysDirectory); resume it without --insecure-plaintext")
            }
            keys = try RunKeys.reuse(in: keysDirectory, actors: options.actors)
        } else if options.authenticate {
            if FileManager.default.fileExists(atPath: keysDirectory) {
                throw RuntimeError.invalid("--resume: \(keysDirectory) has no \(LearnerSecurity.learnerName).key_secret; put the run's keys back, or remove \(keysDirectory) to make new ones")
            }
            keys = try RunKeys.make(in: keysDirectory, actors: options.actors)
        }
        try pickFreePorts()
    }

    private func spawnLearnerAndActors() throws {
        // Without keys (`troupe run --insecure-plaintext`) each child must ask for plaintext TCP itself.
        let plaintext = ["--insecure-plaintext"]
        let e = config.endpoints
        let ports = ["endpoints.control_port=\(e.controlPort)", "endpoints.weights_port=\(e.weightsPort)", "endpoints.announce_port=\(e.announcePort)",
                     "endpoints.logs_port=\(e.logsPort)", "endpoints.logs_in_port=\(e.logsInPort)"]
        let learnerConfig = options.resume ? ["--resume", config.runDirectory] + (options.resumeOverrides + ports).flatMap { ["--set", $0] }
            : ["--config", config.runDirectory + "/run-config.json"]
        try spawn("learner", ["learner"] + learnerConfig + (keys?.learnerArguments ?? plaintext), environment: config.learnerEnvironment)
        let control = "tcp://127.0.0.1:\(config.endpoints.controlPort)"
        for i in 0..<options.actors {
            let name = RunKeys.actorName(i)
            try spawn(name, ["actor", "--learner", control, "--identity", name] + (keys?.clientArguments(name) ?? plaintext))
        }
    }

    /// Follows the log stream until the learner exits (forwarding a stop request, evaluating the latest
    /// checkpoint every `eval.every` steps, stopping the learner when every actor has failed), then makes
    /// sure no actor lingers. Returns the learner's status and, when every actor failed, how each ended.
    private func follow(_ status: inout LiveStatus, answerKey: [UInt64: String], items: [TaskItem], events: LocalRunEvents,
                        renderer: ((LiveStatus, MonitorState) -> Void)?) throws -> (learnerStatus: Int32, actorsFailure: String?) {
        let context = try ZMQContext(ioThreads: 1)
        let sub = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
        try sub.set([.subscribe([]), .receiveHighWaterMark(10_000), .maxMessageSize(WireLimits.headerOnly.socketMaxFrameBytes)]
                    + (keys?.monitorSecurity.toLearner ?? []))
        try sub.connect(Endpoint(parsing: "tcp://127.0.0.1:\(config.endpoints.logsPort)"))
        defer {
            sub.close()
            context.shutdown()
        }
        var monitor = MonitorState(answerKey: answerKey)
        var lastEvalStep = 0
        var nextEvalStep = config.eval.every
        var forwardedStop = false
        var learnerStatus: Int32?
        var actorsFailure: String?
        /// Takes the next event within `milliseconds`; false when none came.
        func ingestNext(within milliseconds: Int) throws -> Bool {
            guard case .message(let m) = try sub.receiveMessage(deadline: .afterMilliseconds(milliseconds), limits: .headerOnly) else {
                return false
            }
            if case .logEvent(let e) = m.body {
                status.ingest(e, answerKey: answerKey)
                monitor.ingest(e, receivedAt: Date().timeIntervalSince1970)
                if e.kind == "step", let la = status.labelAccuracy {
                    try events.emit(.labelAccuracy(step: Int(e.step), labels: la, rewards: status.rewardAccuracy))
                }
            }
            return true
        }
        while learnerStatus == nil {
            if Shutdown.requested && !forwardedStop {
                console.info("stopping: the learner finishes its step and writes a checkpoint")
                for c in children where c.process.isRunning { kill(c.process.processIdentifier, SIGTERM) }
                forwardedStop = true
            }
            _ = try ingestNext(within: 100)
            renderer?(status, monitor)
            // Periodic evaluation of the latest checkpoint (monitoring only): once each time the run passes a
            // multiple of eval.every, of the newest checkpoint by then (which may lag the step).
            if options.evaluate && config.eval.every > 0 && status.step >= nextEvalStep,
               let ckpt = latestCheckpointStep(), ckpt > lastEvalStep {
                lastEvalStep = ckpt
                nextEvalStep = (status.step / config.eval.every + 1) * config.eval.every
                status.lastEval = try? evaluate(modelDirectory: config.runDirectory + "/model", items: items, step: ckpt, events: events)
            }
            if let learner = children.first, !learner.process.isRunning {
                learnerStatus = Self.exitStatus(of: learner.process)
            }
            // Actors exit 0 only when the run is over (the learner's Bye) or on a stop; when all have
            // failed, nothing more can be trained, and the learner would wait for them for ever.
            let actors = children.dropFirst()
            if !forwardedStop, learnerStatus == nil, !actors.isEmpty,
               actors.allSatisfy({ !$0.process.isRunning && Self.exitStatus(of: $0.process) != 0 }) {
                actorsFailure = actors.map { actor in
                    let status = Self.exitStatus(of: actor.process)
                    return "\(actor.name) exited with status \(status): \(Self.cause(status: status, log: config.runDirectory + "/logs/\(actor.name).log"))"
                }.joined(separator: "; ")
                if let learner = children.first { kill(learner.process.processIdentifier, SIGTERM) }
                forwardedStop = true
            }
        }
        // Events that queued up while an evaluation held the loop are still here after the learner is gone.
        let drainDeadline = monotonicSeconds() + 2
        while monotonicSeconds() < drainDeadline, try ingestNext(within: 50) {}
        renderer?(status, monitor)
        // Actors leave on the learner's Bye; a learner that failed may have said none, so they are told to stop.
        if learnerStatus != 0 {
            for c in children.dropFirst() where c.process.isRunning { kill(c.process.processIdentifier, SIGTERM) }
        }
        let deadline = monotonicSeconds() + 10
        while children.dropFirst().contains(where: { $0.process.isRunning }) && monotonicSeconds() < deadline { usleep(100_000) }
        for c in children where c.process.isRunning { kill(c.process.processIdentifier, SIGKILL) }
        return (learnerStatus ?? 1, actorsFailure)
    }

    /// A child's exit status as a shell reports it (a signal's number is not one: SIGKILL is 137).
    private static func exitStatus(of process: Process) -> Int32 {
        process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// Why a child ended: the last error in its log, else the signal that killed it.
    private static func cause(status: Int32, log: String) -> String {
        lastError(inLog: log) ?? (status > 128 ? "killed by signal \(status - 128)" : "no error line in \(log)")
    }

    /// The last error line of a child's log (the child's own words, which this console did not show):
    /// a JSON line's message, or the line.
    private static func lastError(inLog log: String) -> String? {
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        guard let line = lines.last(where: { $0.hasPrefix("Error:") || $0.contains("\"level\":\"error\"") || $0.contains(" error ") }) else {
            return nil
        }
        if case .object(let fields)? = try? JSONValue.parse(String(line)), case .string(let message)? = fields["msg"] {
            return String(message.prefix(500))
        }
        return String(line.prefix(500))
    }

    /// The learner's own last error (its log holds it, not this console), and how to go on.
    private func reportLearnerFailure(status: Int32, notStarted: Bool) {
        let log = config.runDirectory + "/logs/learner.log"
        console.error("the learner exited with status \(status): \(Self.cause(status: status, log: log)); see \(log); \(howToGoOn(notStarted: notStarted))")
    }

    private func howToGoOn(notStarted: Bool) -> String {
        if !notStarted { return "`troupe run --resume \(config.runDirectory)` continues the run from its last checkpoint" }
        if options.resume {
            return "the learner stopped before resuming the run, which is as it was (summary.json and report.html untouched); resume again once the cause is mended"
        }
        return "the learner stopped before starting the run: nothing was trained, and \(config.runDirectory) holds only logs and keys; remove it (or choose another run.name) and start again once the cause is mended"
    }

    /// The epoch of the learner that last wrote the run's endpoints.json (nil: none did).
    private func learnerEpoch() -> UInt64? {
        guard case .found(let file) = LearnerEndpointsFile.read(config.runDirectory + "/" + LearnerEndpointsFile.fileName) else { return nil }
        return file.epoch
    }

    private func evaluationItems() throws -> [TaskItem] {
        if let file = config.task.file {
            let loaded = try TaskFile.load(contentsOf: URL(fileURLWithPath: file), policy: config.task.badLines == "skip" ? .skip : .refuse)
            return Array(loaded.items.prefix(config.task.count)).filter { $0.answer != nil }
        }
        let spec = try TaskSpec(parsing: config.task.spec ?? "")
        return try TaskSet.generate(spec, split: config.task.split == "train" ? .train : .test, count: config.task.count, seed: config.run.seed)
    }

    /// Whether `metrics.jsonl` at `path` has an evaluation line of `step` (a missing file has none).
    static func metricsHoldEvaluation(atStep step: Int, path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        return data.split(separator: UInt8(ascii: "\n")).contains { line in
            guard let value = try? JSONValue.parse(line) else { return false }
            return value["kind"] == .string("eval") && value["step"] == .integer(step)
        }
    }

    private func evaluate(modelDirectory: String, items: [TaskItem], step: Int, events: LocalRunEvents?) throws -> EvalRow {
        let model = try ModelDirectory.load(modelDirectory)
        let tokenizer = try loadTokenizer(modelDirectory: modelDirectory)
        let evaluator = try Evaluator(model: model, tokenizer: tokenizer, promptFormat: promptFormat)
        // The stop sequences the run samples with, so that the evaluation reads answers as training does.
        let settings = EvaluationSettings(samplesPerPrompt: config.eval.samples, temperature: Float(config.eval.temperature),
                                          temperatures: config.eval.temperatures.map { $0.map(Float.init) }, maxNewTokens: config.sampling.maxNewTokens, seed: config.run.seed &+ 7919,
                                          stopSequences: config.stopSequences)
        let e = try evaluator.evaluate(items, settings: settings)
        let r = e.result
        let k = config.eval.samples
        try events?.emit(.evaluated(step: step, samples: k, r, meanCompletionTokens: e.meanCompletionTokens))
        let row = EvalRow(step: step, passAt1: r.passAt1.value, passAt1CI: r.passAt1.interval, majority: r.majorityAtK.value,
                          majorityCI: r.majorityAtK.interval, samples: k, meanCompletionTokens: e.meanCompletionTokens)
        console.info("evaluation at step \(step)", ["pass@1": .string(String(format: "%.3f", row.passAt1)), "maj@\(k)": .string(String(format: "%.3f", row.majority))])
        return row
    }

    /// The steps the learner says it trained (`learner-summary.json`, written as it finishes), nil when it wrote none.
    private func learnerSummarySteps() -> Int? {
        (try? LearnerSummary.read(runDirectory: config.runDirectory))?.steps
    }

    private func latestCheckpointStep() -> Int? {
        let dir = Checkpoint.directory(config.runDirectory)
        guard let d = FileManager.default.contents(atPath: dir + "/latest"), let name = String(data: d, encoding: .utf8) else { return nil }
        return Int(name.dropFirst("step-".count).prefix(8))
    }

    /// Uses the configured ports when they are free, else a free block, so two runs on one machine coexist.
    private func pickFreePorts() throws {
        guard let moved = try FreePorts.block(for: config.endpoints, bindHost: "127.0.0.1") else { return }
        config.endpoints = moved
        console.info("configured ports are busy; using \(moved.controlPort)…\(moved.logsInPort)")
    }

    private func spawn(_ name: String, _ arguments: [String],
                       environment adapt: ([String: String]) -> [String: String] = { $0 }) throws {
        // A resumed run's children write after the earlier ones' lines; should this process die without
        // stopping them (SIGKILL), they stop on their own.
        let process = try Shutdown.launchChild(options.executable, arguments, log: config.runDirectory + "/logs/\(name).log",
                                               appending: options.resume, environment: adapt(ProcessInfo.processInfo.environment))
        children.append((name, process))
    }

    private func writeSummary(_ o: Outcome, status: LiveStatus, prompts: Int) throws {
        var s: [String: JSONValue] = ["steps": .integer(o.steps), "wall_time_s": .number(o.wallSeconds), "exit_status": .integer(Int(o.exitStatus)),
                                      "actors": .integer(options.actors), "prompts": .integer(prompts),
                                      "tokens_per_s": .number(o.tokensPerSecond), "label_free": .bool(config.task.labelFree)]
        func row(_ r: EvalRow?) -> JSONValue {
            guard let r else { return .null }
            return ["step": .integer(r.step), "pass@1": .number(r.passAt1), "pass@1_ci": [.number(r.passAt1CI.lowerBound), .number(r.passAt1CI.upperBound)],
                    "maj@\(r.samples)": .number(r.majority), "maj@\(r.samples)_ci": [.number(r.majorityCI.lowerBound), .number(r.majorityCI.upperBound)],
                    "mean_completion_tokens": .number(r.meanCompletionTokens)]
        }
        if let step = o.resumedFromStep { s["resumed_from_step"] = .integer(step) }
        s["before"] = row(o.before)
        s["after"] = row(o.after)
        if let b = o.before, let a = o.after {
            s["pass@1_gain"] = .number(a.passAt1 - b.passAt1)
            s["initial_gap"] = .number(b.majority - b.passAt1)
        }
        // The learner's own final count; the log stream's last one may be a step behind, or missing.
        let accounting = (try? LearnerSummary.read(runDirectory: config.runDirectory))?.accounting.mapValues(Double.init) ?? status.accounting
        s["accounting"] = .object(accounting.mapValues(JSONValue.number))
        if let r = o.rolloutTokens {
            s["rollout_tokens"] = ["generated": .number(r.generated), "drawn_alone": .number(r.drawnAlone),
                                   "generated_share": .number(r.generated / r.drawnAlone)]
        }
        try AtomicFile.write(try JSONValue.object(s).serialized(), to: config.runDirectory + "/summary.json")
    }
}

/// What `troupe run` knows while the run goes on, folded from the log stream.
package struct LiveStatus: Sendable {
    package var maxSteps: Int
    package var started: Double
    package var step = 0
    package var reward: Double?
    package var majorityRatio: Double?
    package var loss: Double?
    /// The last step's label and reward accuracy, nil when its prompts had no answer in the task (the
    /// status line keeps showing the last known label accuracy).
    package var labelAccuracy: Double?
    package var rewardAccuracy: Double?
    private var lastLabelAccuracy: Double?
    package var tokensPerSecond = 0.0
    /// Rollout tokens the actors drew and what sampling each sample alone would draw (the groups that reported it).
    package var tokensGenerated = 0.0
    package var tokensDrawnAlone = 0.0
    package var actors = 0
    package var accounting: [String: Double] = [:]
    package var before: LocalRun.EvalRow?
    package var lastEval: LocalRun.EvalRow?
    package var finished = false
    private var tokensSeen = 0.0
    private var trainSeconds = 0.0

    package init(maxSteps: Int, started: Double) {
        self.maxSteps = maxSteps
        self.started = started
    }

    package mutating func ingest(_ e: Troupe_V1_LogEvent, answerKey: [UInt64: String]) {
        switch e.kind {
        case "step":
            step = max(step, Int(e.step))
            reward = e.metrics["reward/mean"]
            majorityRatio = e.metrics["ttrl/majority_ratio"]
            loss = e.metrics["loss/total"]
            if let t = e.metrics["time/train_step"], let rate = e.metrics["tokens_per_s"] { tokensSeen += rate * t; trainSeconds += t }
            tokensPerSecond = tokensSeen / max(trainSeconds, 1e-9)
            tokensGenerated += e.metrics["rollout/tokens_generated"] ?? 0
            tokensDrawnAlone += e.metrics["rollout/tokens_drawn_alone"] ?? 0
            labelAccuracy = nil
            rewardAccuracy = nil
            // A malformed field (another process's data) gives no figure for the step.
            if let labels = e.fields["labels"], let entries = try? StepLabels.parse(labels) {
                var right = 0, total = 0
                for entry in entries {
                    guard let truth = answerKey[entry.promptId] else { continue }
                    total += 1
                    if AnswerEquivalence.equivalent(entry.label, truth) { right += 1 }
                }
                if total > 0 {
                    labelAccuracy = Double(right) / Double(total)
                    lastLabelAccuracy = labelAccuracy
                }
            }
            if let rewards = e.fields["rewards"], let entries = try? StepRewards.parse(rewards) {
                var agree = 0, total = 0
                for entry in entries {
                    guard let truth = answerKey[entry.promptId] else { continue }
                    for sample in entry.samples {
                        let correct = !sample.answer.isEmpty && AnswerEquivalence.equivalent(sample.answer, truth)
                        total += 1
                        if (sample.reward > 0) == correct { agree += 1 }
                    }
                }
                if total > 0 { rewardAccuracy = Double(agree) / Double(total) }
            }
        case "learner_stats":
            accounting = e.metrics.filter { ["produced", "trained", "rejected", "duplicates", "lost_uncommitted", "in_flight"].contains($0.key) || $0.key.hasPrefix("rejected/") }
            actors = Int(e.metrics["actors"] ?? 0)
        case "run_finished", "learner_stopped":
            finished = true
        default:
            break
        }
    }

    /// One status line: progress, rate, ETA and the headline metrics.
    package var line: String {
        let elapsed = monotonicSeconds() - started
        let rate = step > 0 ? Double(step) / elapsed : 0
        let eta = rate > 0 ? Double(maxSteps - step) / rate : .nan
        func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "–" }
        return "step \(step)/\(maxSteps)  \(String(format: "%.0f", elapsed))s  eta \(eta.isFinite ? String(format: "%.0fs", eta) : "–")  " +
            "reward \(f(reward))  majority \(f(majorityRatio))  label_acc \(f(lastLabelAccuracy))  loss \(f(loss))  " +
            "actors \(actors)  \(String(format: "%.0f", tokensPerSecond)) tok/s" +
            (lastEval.map { "  eval pass@1 \(String(format: "%.3f", $0.passAt1))" } ?? "")
    }
}

/// `troupe run`'s own events: metrics lines of its evaluations and of the monitor's label accuracy
/// (the learner's events reach it through the log stream).
package typealias LocalRunEvents = ProcessEvents<Never>

extension ProcessEvent where Record == Never {
    /// An evaluation of the checkpoint of `step` with `samples` samples per prompt.
    package static func evaluated(step: Int, samples k: Int, _ r: EvaluationResult, meanCompletionTokens: Double) -> Self {
        // With one sample per prompt pass@k is pass@1: one key (a dictionary literal with it twice traps).
        .metrics("eval", step: step, Dictionary([("eval/pass@1", r.passAt1.value), ("eval/maj@\(k)", r.majorityAtK.value),
                                                 ("eval/pass@\(k)", r.passAtK.value), ("eval/valid_fraction", r.validAnswerFraction),
                                                 ("eval/mean_completion_tokens", meanCompletionTokens)], uniquingKeysWith: { first, _ in first }))
    }

    /// How often one step's majority-vote labels (and its rewards) agree with the answer key.
    package static func labelAccuracy(step: Int, labels: Double, rewards: Double?) -> Self {
        .metrics("monitor", step: step, ["ttrl/label_accuracy": labels, "ttrl/reward_accuracy": rewards ?? .nan])
    }
}

/// The keys of one `troupe run`, made fresh in RUN/keys: the learner's pair, and in RUN/keys/clients a
/// pair for each actor and one for this process, which follows the log stream as a monitor. The
/// learner admits exactly the public files in RUN/keys/clients.
struct RunKeys {
    static let monitorName = "run-monitor"
    let directory: String
    let monitorSecurity: ClientSecurity

    static func actorName(_ index: Int) -> String { "actor-\(index + 1)" }

    static func make(in directory: String, actors: Int) throws -> RunKeys {
        let learner = try CurveKeyPair.generate()
        try CurveKeyFile.create(name: LearnerSecurity.learnerName, role: .learner, pair: learner, directory: directory)
        try addActorKeys(in: directory, actors: actors)
        let monitor = try CurveKeyPair.generate()
        try CurveKeyFile.create(name: monitorName, role: .monitor, pair: monitor, directory: directory + "/clients")
        return RunKeys(directory: directory, monitorSecurity: ClientSecurity(name: monitorName, keyPair: monitor, learnerKey: learner.publicKey))
    }

    /// The keys an earlier `troupe run` made in `directory`, for its resume; actors beyond the ones it made
    /// get keys of their own, which the learner admits since it reads `clients` as it starts.
    static func reuse(in directory: String, actors: Int) throws -> RunKeys {
        try addActorKeys(in: directory, actors: actors)
        let monitor = try ClientSecurity(secretKeyFile: directory + "/clients/\(monitorName).key_secret",
                                         learnerKeyFile: directory + "/\(LearnerSecurity.learnerName).key")
        return RunKeys(directory: directory, monitorSecurity: monitor)
    }

    /// A key pair in `directory/clients` for each of the first `actors` actors that has none.
    private static func addActorKeys(in directory: String, actors: Int) throws {
        for i in 0..<actors where !FileManager.default.fileExists(atPath: directory + "/clients/\(actorName(i)).key_secret") {
            try CurveKeyFile.create(name: actorName(i), role: .actor, pair: try .generate(), directory: directory + "/clients")
        }
    }

    var learnerArguments: [String] { ["--key", directory + "/learner.key_secret", "--allow", directory + "/clients"] }

    func clientArguments(_ name: String) -> [String] {
        ["--key", directory + "/clients/\(name).key_secret", "--learner-key", directory + "/learner.key"]
    }
}
