import Foundation
import Testing
import TroupeLocalRun
import TroupeRuntime

/// What the learner exports for dashboards, read back by the consumers' own parsers
/// (scripts/check_metrics_export.py: TensorBoard's EventAccumulator, prometheus_client's text parser)
/// from a virtualenv scripts/metrics-venv.sh makes. CI makes it (scripts/bootstrap.sh test) and sets
/// CI, so there a missing one fails; elsewhere the test is skipped with a message.
enum MetricsParsers {
    static let venv = ProcessInfo.processInfo.environment["TROUPE_METRICS_VENV"] ?? ClusterRecipes.repository + "/.build/venv-metrics"
    static let python = venv + "/bin/python"
    static let installed = FileManager.default.isExecutableFile(atPath: python)
        && (try? ClusterRecipes.run([python, "-c", "import tensorboard, prometheus_client"]).status) == 0
    static let checker = ClusterRecipes.repository + "/scripts/check_metrics_export.py"
}

extension RuntimeIntegrationTests {
    @Test(.enabled(if: MetricsParsers.installed || ClusterRecipes.required,
                   "tensorboard/prometheus_client not installed (bash scripts/metrics-venv.sh); metrics export check skipped"),
          .timeLimit(.minutes(3)))
    func tensorBoardAndPrometheusReadWhatTheLearnerExports() throws {
        try #require(MetricsParsers.installed, "CI is set but \(MetricsParsers.venv) lacks tensorboard/prometheus_client: run bash scripts/metrics-venv.sh")
        let run = try IntegrationRun("metrics-export")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 3)
        let actor = try run.startActor("a1")
        try run.require(run.expectExit(learner, .code(0), within: 90) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 10)

        let checked = try ClusterRecipes.run([MetricsParsers.python, MetricsParsers.checker, run.runDirectory])
        run.check(checked.status == 0, "the parsers refused the learner's exports:\n\(checked.output)")
        run.check(checked.output.contains("check_metrics_export: ok:") && checked.output.contains("latest step 3"), checked.output)
        let events = try FileManager.default.contentsOfDirectory(atPath: run.runDirectory + "/tensorboard")
        run.check(events.count == 1 && events[0].hasPrefix("events.out.tfevents."), "tensorboard/ holds \(events)")

        // The check can fail: a textfile with a wrong value, and an event file cut after its first record.
        let tampered = run.directory + "/tampered"
        try FileManager.default.copyItem(atPath: run.runDirectory, toPath: tampered)
        let prom = tampered + "/metrics.prom"
        let text = try String(contentsOfFile: prom, encoding: .utf8)
        try text.replacingOccurrences(of: "kind=\"train\"} 3\n", with: "kind=\"train\"} 4\n").write(toFile: prom, atomically: true, encoding: .utf8)
        let wrongStep = try ClusterRecipes.run([MetricsParsers.python, MetricsParsers.checker, tampered])
        run.check(wrongStep.status != 0 && wrongStep.output.contains("troupe_step"), "a wrong troupe_step passed: \(wrongStep.output)")
        try text.write(toFile: prom, atomically: true, encoding: .utf8)
        let eventFile = tampered + "/tensorboard/" + events[0]
        let bytes = try Data(contentsOf: URL(fileURLWithPath: eventFile))
        let firstRecord = 8 + 4 + Int(bytes[0]) + 4   // length, its CRC, the file-version event (under 256 bytes), its CRC
        try bytes.prefix(firstRecord).write(to: URL(fileURLWithPath: eventFile))
        let noScalars = try ClusterRecipes.run([MetricsParsers.python, MetricsParsers.checker, tampered])
        run.check(noScalars.status != 0 && noScalars.output.contains("TensorBoard"), "an event file without scalars passed: \(noScalars.output)")
    }
}

extension RuntimeIntegrationTests {
    /// The learner's HTTP `/metrics` (`endpoints.metrics_port`), scraped while the run goes on and read
    /// with prometheus_client's parser against metrics.jsonl at the step it shows.
    @Test(.enabled(if: MetricsParsers.installed || ClusterRecipes.required,
                   "prometheus_client not installed (bash scripts/metrics-venv.sh); /metrics check skipped"),
          .timeLimit(.minutes(3)))
    func prometheusScrapesTheLearnersMetricsEndpoint() throws {
        try #require(MetricsParsers.installed, "CI is set but \(MetricsParsers.venv) lacks prometheus_client: run bash scripts/metrics-venv.sh")
        let run = try IntegrationRun("metrics-http")
        defer { run.finish() }
        let port = try #require((0..<50).lazy.map { _ in Int.random(in: 10_000..<20_000) }.first(where: { FreePorts.isFree($0) }),
                                "no free loopback port for /metrics")
        let learner = try run.startLearner(maxSteps: 200, ["endpoints.metrics_port=\(port)"])
        let actor = try run.startActor("a1")
        let (status, scraped) = try Command.run([MetricsParsers.python, MetricsParsers.checker, "--scrape", "http://127.0.0.1:\(port)/metrics",
                                                 run.runDirectory], within: 90)
        run.check(status == 0 && scraped.contains("check_metrics_export: ok:"), "the scrape failed:\n\(scraped)")
        let (_, missing) = try Command.run([MetricsParsers.python, "-c", """
            import urllib.request, urllib.error
            try:
                urllib.request.urlopen("http://127.0.0.1:\(port)/other", timeout=5)
            except urllib.error.HTTPError as e:
                print(e.code)
            """], within: 30)
        run.check(missing.contains("404"), "another path answered \(missing)")
        learner.send(SIGTERM)
        run.expectExit(learner, .code(0), within: 60)
        actor.send(SIGTERM)   // a stopped (not finished) run's actor waits for the learner to return
        run.expectExit(actor, .code(0), within: 30)

        // A port already taken: the learner says which key and exits 1 before writing anything.
        let blocker = try #require(listenOnLoopback(port: port), "cannot hold port \(port)")
        defer { close(blocker) }
        let second = try IntegrationRun("metrics-http-taken")
        defer { second.finish() }
        let refused = try second.startLearner(maxSteps: 3, ["endpoints.metrics_port=\(port)"])
        run.check(second.expectExit(refused, .code(1), within: 60) == .code(1), "a learner on a taken /metrics port did not exit 1")
        run.check(refused.stderr.contains("endpoints.metrics_port"), "the refusal does not name the key: \(refused.tail())")
        run.check(!FileManager.default.fileExists(atPath: second.runDirectory + "/config.json"), "the refused learner wrote config.json")
    }
}
