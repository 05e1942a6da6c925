import Foundation
import Testing

/// The main job end to end on a tiny budget (issue: "a test with a tiny budget checks the whole path end
/// to end and asserts that the metric moved in the right direction on a fixed seed"): `troupe run` with
/// the built-in base model, label-free, evaluated before and after with the held-back answers.
extension RuntimeIntegrationTests {
    @Test func mainJobRaisesPassAtOneWithoutLabels() throws {
        let run = try IntegrationRun("main-job")
        defer { run.finish() }
        let model = TroupeBinary.repository.appendingPathComponent("models/arith-base").path
        try run.require(FileManager.default.fileExists(atPath: model + "/config.json"), "the built-in base model is missing at \(model)")
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(model)", "run.max_steps=100", "eval.every=0",
                        "run.seed=1"] + run.ports.overrides
        let (status, child) = try run.runToCompletion("run", ["run"] + settings.flatMap { ["--set", $0] }, within: 600)
        try run.require(status == .code(0), "troupe run ended with \(status?.description ?? "a timeout")")
        let data = try #require(FileManager.default.contents(atPath: run.runDirectory + "/summary.json"))
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let before = try #require(summary["before"] as? [String: Any]), after = try #require(summary["after"] as? [String: Any])
        let p0 = try #require(before["pass@1"] as? Double), p1 = try #require(after["pass@1"] as? Double)
        print("[main-job] pass@1 \(p0) → \(p1) after 100 label-free steps")
        run.check(p1 > p0, "pass@1 did not rise: \(p0) → \(p1)")
        // The base model answers in a handful of tokens (" 132\n" and EOS), within max_new_tokens (8).
        for (name, row) in [("before", before), ("after", after)] {
            let tokens: Double = row["mean_completion_tokens"] as? Double ?? -1
            run.check(tokens >= 2 && tokens <= 8, "\(name): mean_completion_tokens \(tokens) (-1: missing)")
        }
        run.check(child.stdout.contains("mean tokens"), "no mean completion length in the summary table")
        run.check((summary["label_free"] as? Bool) == true, "the run was not label-free")
        run.check(summary["steps"] as? Int == 100, "steps \(summary["steps"] ?? "nil")")
        run.check(FileManager.default.fileExists(atPath: run.runDirectory + "/report.html"), "no report.html")
        run.check(child.stdout.contains("pass@1"), "no summary table on stdout")
        // Label-free: the learner's frozen configuration says so, and no prompt it leased carried an answer.
        let frozen = try String(contentsOfFile: run.runDirectory + "/config.json", encoding: .utf8)
        run.check(frozen.contains("\"label_free\" : true"), "the learner's configuration is not label-free")
        Self.expectAccountingIdentity(run)
        // The evaluations reach TensorBoard beside the learner's steps, read by TensorBoard's own parser.
        let metrics = try String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8)
        run.check(metrics.contains("\"kind\":\"eval\"") || metrics.contains("\"kind\" : \"eval\""), "no eval line in metrics.jsonl")
        if MetricsParsers.installed {
            let (code, output) = try Command.run([MetricsParsers.python, MetricsParsers.checker, run.runDirectory], within: 120)
            run.check(code == 0 && output.contains("check_metrics_export: ok:"), "the exports of troupe run do not read back:\n\(output)")
        }
    }

    /// `troupe run | head`: once the reader of its output has gone, the run goes on to its end instead of
    /// stopping on a write to the closed pipe (which once left its learner and actors running). With one
    /// evaluation sample per prompt, whose pass@k is pass@1.
    @Test func aRunGoesOnWhenItsOutputPipeCloses() throws {
        let run = try IntegrationRun("closed-pipe")
        defer { run.finish() }
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(TroupeBinary.repository.path)/models/arith-base", "run.max_steps=6",
                        "eval.every=3", "eval.samples=1", "task.count=16"] + run.ports.overrides
        let status = run.directory + "/status"
        let script = #"( "$@"; echo $? > ""# + status + #"" ) 2>&1 | head -c 64 > /dev/null"#
        let child = try run.startProgram("run", ["/bin/sh", "-c", script, "sh", run.binary, "run"] + settings.flatMap { ["--set", $0] })
        run.check(child.waitForExit(within: 300) == .code(0), "the pipeline did not finish")
        let code = (try? String(contentsOfFile: status, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        run.check(code == "0", "troupe run ended with status \(code ?? "none")")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.runDirectory + "/summary.json")))
            as? [String: Any])
        run.check(summary["steps"] as? Int == 6, "steps \(summary["steps"] ?? "nil")")
        let metrics = try String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8)
        run.check(metrics.contains("\"eval/pass@1\"") && metrics.contains("\"eval/maj@1\""), "no eval line with one sample in metrics.jsonl")
    }

    /// When every actor has died (here SIGKILLed, as the kernel's OOM killer would), `troupe run` does
    /// not wait for them for ever: it stops the learner (a checkpoint) and exits 1 naming how each ended.
    @Test func aRunWhoseActorsAllDieStopsNamingThem() throws {
        let run = try IntegrationRun("dead-actors")
        defer { run.finish() }
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(TroupeBinary.repository.path)/models/arith-base", "run.max_steps=100000",
                        "task.count=8", "eval.every=0"] + run.ports.overrides
        let child = try run.start("run", ["run", "--no-eval"] + settings.flatMap { ["--set", $0] })
        run.waitUntil("step 2 trained", within: 120) { run.records.of("step_done").count >= 2 }
        let actors = Self.learnerAndActors(of: run, port: run.ports.control).filter { $0.line.contains(" actor ") }
        try run.require(actors.count == 2, "expected two actor processes, found \(actors.count)")
        for actor in actors { kill(actor.pid, SIGKILL) }
        run.expectExit(child, .code(1), within: 60)
        run.check(child.stderr.contains("every actor exited") && child.stderr.contains("actor-2 exited with status 137: killed by signal 9"),
                  "the error does not say how the actors ended: \(child.stderr.suffix(600))")
        run.check(child.stderr.contains("troupe run --resume \(run.runDirectory)"), "the error does not say how to go on")
        run.check(Self.learnerAndActors(of: run, port: run.ports.control).isEmpty, "the learner was left running")
    }

    /// `troupe run` killed outright (SIGKILL: no chance to stop its children) leaves nothing running: its
    /// learner and actors notice their parent is gone and stop as on SIGTERM (the learner checkpoints),
    /// and `troupe run --resume` goes on from that checkpoint (here to 3 steps more).
    @Test func theLearnerAndActorsOfAKilledRunStop() throws {
        let run = try IntegrationRun("killed-run")
        defer { run.finish() }
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(TroupeBinary.repository.path)/models/arith-base",
                        "run.max_steps=100000", "eval.every=0", "task.count=16"] + run.ports.overrides
        let parent = try run.start("run", ["run", "--no-eval", "--insecure-plaintext"] + settings.flatMap { ["--set", $0] })
        func children() -> [Int32] { Self.learnerAndActors(of: run, port: run.ports.control).filter { $0.pid != parent.pid }.map(\.pid) }
        run.waitUntil("a learner and two actors running, and a step trained", within: 60) {
            children().count == 3 && run.records.of("step_done").count >= 2
        }
        parent.killHard()
        run.waitUntil("every child of the killed run stopped", within: 20) { children().isEmpty }
        run.check(run.records.of("learner_stopped").count == 1, "the learner did not stop cleanly (no learner_stopped record)")

        let stopped = run.records.stepsDone.last ?? 0
        run.check(run.records.latestCheckpointStep == stopped, "checkpoint \(run.records.latestCheckpointStep ?? -1), stopped at step \(stopped)")
        let (status, _) = try run.runToCompletion("resume", ["run", "--resume", run.runDirectory, "--no-eval", "--insecure-plaintext",
                                                            "--set", "run.max_steps=\(stopped + 3)"], within: 120)
        run.check(status == .code(0), "troupe run --resume ended with \(status?.description ?? "a timeout")")
        let resumed = run.records.of("resumed").last
        run.check(resumed?.int("from_step") == stopped && resumed?.ints("voided_steps").isEmpty == true,
                  "resumed from \(resumed?.int("from_step") ?? -1) voiding \(resumed?.ints("voided_steps") ?? []), stopped at \(stopped)")
        run.check(run.records.stepsDone.last == stopped + 3, "the resumed run ended at step \(run.records.stepsDone.last ?? -1)")
        Self.expectAccountingIdentity(run)
    }

    /// A `troupe run` whose learner dies (`kill -9`) says how to go on, and `troupe run --resume RUN` does:
    /// the learner resumes from its latest checkpoint with the run's own keys, new actors join, and the
    /// run ends at `max_steps` evaluated before and after, its accounting whole, its base model's
    /// evaluation line written once, its children's logs kept. A resume its learner refuses leaves the
    /// run's summary and report alone; a new run refuses a directory that holds other files.
    @Test func aRunWhoseLearnerDiedGoesOnWithResume() throws {
        let run = try IntegrationRun("resumed-run")
        defer { run.finish() }
        let settings = ["run.directory=\(run.runDirectory)", "model.path=\(TroupeBinary.repository.path)/models/arith-base", "run.max_steps=30",
                        "eval.every=0", "eval.samples=2", "task.count=16", "learner.checkpoint_every=4"] + run.ports.overrides
        let first = try run.start("run", ["run"] + settings.flatMap { ["--set", $0] })
        run.waitUntil("step 9 trained", within: 120) { run.records.of("step_done").count >= 9 }
        let learners = Self.learnerAndActors(of: run, port: run.ports.control).filter { $0.line.contains(" learner ") }
        try run.require(learners.count == 1, "expected one learner process, found \(learners.count)")
        kill(learners[0].pid, SIGKILL)
        run.expectExit(first, .code(137), within: 60)
        run.check(first.stderr.contains("troupe run --resume \(run.runDirectory)"), "the failed run does not say how to resume it")
        run.check(first.stdout.contains("of 30: `troupe run --resume \(run.runDirectory)` goes on"),
                  "the summary table does not say the run stopped early: \(first.stdout.suffix(600))")
        let checkpoint = try #require(Int(String(contentsOfFile: run.runDirectory + "/checkpoints/latest", encoding: .utf8).dropFirst(5).prefix(8)))

        // Only the keys a resume may change: a frozen one is refused, naming it, before anything starts.
        let (refused, refusal) = try run.runToCompletion("resume-refused", ["run", "--resume", run.runDirectory, "--set", "optimizer.learning_rate=1e-3"], within: 60)
        run.check(refused != .code(0) && refusal.stderr.contains("optimizer.learning_rate"), "a frozen key was not refused by name: \(refusal.stderr.suffix(400))")
        // A run that authenticated is not resumed in plaintext.
        let (downgraded, downgrade) = try run.runToCompletion("resume-plaintext", ["run", "--resume", run.runDirectory, "--insecure-plaintext"], within: 60)
        run.check(downgraded != .code(0) && downgrade.stderr.contains("resume it without --insecure-plaintext"),
                  "a plaintext resume of an authenticated run was not refused: \(downgrade.stderr.suffix(400))")

        let learnerKey = FileManager.default.contents(atPath: run.runDirectory + "/keys/learner.key")
        // One actor more than the run had keys for: the resume makes its key, which the learner admits.
        let (status, resumed) = try run.runToCompletion("resume", ["run", "--resume", run.runDirectory, "--actors", "3"], within: 300)
        try run.require(status == .code(0), "troupe run --resume ended with \(status?.description ?? "a timeout")")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.runDirectory + "/summary.json")))
            as? [String: Any])
        run.check(summary["steps"] as? Int == 30, "steps \(summary["steps"] ?? "nil")")
        run.check(summary["resumed_from_step"] as? Int == checkpoint, "resumed_from_step \(summary["resumed_from_step"] ?? "nil"), latest checkpoint \(checkpoint)")
        run.check(summary["before"] is [String: Any] && summary["after"] is [String: Any], "no evaluation before or after in the summary")
        run.check(resumed.stdout.contains("resumed from the checkpoint of step \(checkpoint)"), "the summary table does not say where the run resumed")
        run.check(learnerKey != nil && FileManager.default.contents(atPath: run.runDirectory + "/keys/learner.key") == learnerKey,
                  "the resume did not keep the run's learner key")
        run.check(run.records.of("actor_joined").contains { $0.string("actor") == "actor-3" }, "the third actor did not join the resumed run")
        run.check(run.records.of("resumed").count == 1, "\(run.records.of("resumed").count) resumed records")
        Self.expectAccountingIdentity(run)
        // Synchronous training resumes exactly: the killed, resumed run (steps voided, one actor more) ends
        // with the weights of the same run left alone, because the resumed learner leases the prompts the
        // killed one had leased next.
        let alone = run.directory + "/uninterrupted"
        let (aloneStatus, aloneRun) = try run.runToCompletion("uninterrupted", ["run", "--no-eval"] + settings.flatMap { ["--set", $0] }
            + ["--set", "run.directory=\(alone)"], within: 300)
        run.check(aloneStatus == .code(0), "the uninterrupted run ended with \(aloneStatus?.description ?? "a timeout")")
        run.check(aloneRun.stdout.contains("(evaluation skipped: --no-eval)") && !aloneRun.stdout.contains("goes on"),
                  "the finished run's summary: \(aloneRun.stdout.suffix(400))")
        func weightsHash(_ directory: String) -> String? {
            let data = FileManager.default.contents(atPath: directory + "/learner-summary.json") ?? Data()
            return (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["weights_hash"] as? String
        }
        run.check(weightsHash(run.runDirectory) != nil && weightsHash(run.runDirectory) == weightsHash(alone),
                  "the resumed run ended with weights \(weightsHash(run.runDirectory) ?? "nil"), the uninterrupted one with \(weightsHash(alone) ?? "nil")")
        let metrics = try String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8)
        let baseLines = metrics.split(separator: "\n").filter { $0.contains("\"kind\":\"eval\"") && $0.contains("\"step\":0,") }
        run.check(baseLines.count == 1, "\(baseLines.count) evaluation lines of the base model in metrics.jsonl")
        let learnerLog = try String(contentsOfFile: run.runDirectory + "/logs/learner.log", encoding: .utf8)
        run.check(learnerLog.components(separatedBy: "\"msg\":\"listening\"").count == 3, "logs/learner.log does not hold both learners' lines")

        // A resume its learner refuses (a line of garbage at the end of run.log) leaves the finished run's
        // summary and report as they were, and does not send the user round to the same resume.
        let kept = ["summary.json", "report.html"].map { FileManager.default.contents(atPath: run.runDirectory + "/" + $0) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: run.runDirectory + "/run.log"))
        try log.seekToEnd()
        try log.write(contentsOf: Data("garbage\n".utf8))
        try log.close()
        let (failed, failure) = try run.runToCompletion("resume-of-a-damaged-log", ["run", "--resume", run.runDirectory, "--no-eval"], within: 120)
        run.check(failed == .code(1) && failure.stderr.contains("stopped before resuming the run"),
                  "a resume refused by its learner: \(failed?.description ?? "timeout"), \(failure.stderr.suffix(600))")
        run.check(kept[0] != nil && kept[1] != nil
                  && kept == ["summary.json", "report.html"].map { FileManager.default.contents(atPath: run.runDirectory + "/" + $0) },
                  "a refused resume changed summary.json or report.html")

        // A new run goes only into a new or empty directory: it would overwrite config.json and model/.
        let occupied = run.directory + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: URL(fileURLWithPath: occupied + "/config.json"))
        let (intoFull, into) = try run.runToCompletion("run-into-an-occupied-directory",
                                                       ["run", "--no-eval", "--set", "run.directory=\(occupied)", "--set", "run.max_steps=1",
                                                        "--set", "model.path=\(TroupeBinary.repository.path)/models/arith-base"], within: 60)
        run.check(intoFull == .code(1) && into.stderr.contains("exists and holds other files (config.json)"),
                  "a run into an occupied directory: \(intoFull?.description ?? "timeout"), \(into.stderr.suffix(400))")
        run.check(FileManager.default.contents(atPath: occupied + "/config.json") == Data("mine\n".utf8)
                  && (try? FileManager.default.contentsOfDirectory(atPath: occupied)) == ["config.json"], "the occupied directory was written to")
    }

    /// The processes whose command line names this test's run directory or control `port`: its learner and
    /// actors (and the `troupe run` that started them), with their command lines.
    static func learnerAndActors(of run: IntegrationRun, port: Int) -> [(pid: Int32, line: String)] {
        let marks = [run.runDirectory, "127.0.0.1:\(port)"]
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return (line.contains(" learner ") || line.contains(" actor ")) && marks.contains { line.contains($0) } ? (pid, line) : nil
        }
    }
}
