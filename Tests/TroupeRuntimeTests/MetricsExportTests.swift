import Foundation
import Testing
import TroupeModel
import TroupeRuntime

/// The bytes of the exported metric formats, against known vectors: CRC-32C's published check values,
/// and TFRecord records produced by TensorBoard's own protobuf classes and `masked_crc32c`.
struct MetricsExportFormatTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func crc32cMatchesTheCastagnoliCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)   // RFC 3720 B.4
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.masked(CRC32C.checksum(Array("123456789".utf8))) == 0xC78A_B0E5)
    }

    @Test func theFileVersionRecordMatchesTensorBoardsBytes() {
        let record = TensorBoardEvents.record(TensorBoardEvents.fileVersionEvent(wallTime: 1.5))
        #expect(Self.hex(record) == "1800000000000000a37f4b2209000000000000f83f1a0d627261696e2e4576656e743a322a28646c")
    }

    @Test func aScalarsRecordMatchesTensorBoardsBytes() {
        let event = TensorBoardEvents.scalarsEvent(wallTime: 1_795_753_429.25, step: 300,
                                                   scalars: [(tag: "loss/total", value: 0.5), (tag: "reward/mean", value: 0.25)])
        #expect(Self.hex(TensorBoardEvents.record(event))
            == "3500000000000000d6c55de6090000507541c2da4110ac022a270a110a0a6c6f73732f746f74616c150000003f0a120a0b7265776172642f6d65616e150000803e8bd39232")
    }

    @Test func metricNamesFollowPrometheusRules() {
        #expect(PrometheusText.metricName("reward/mean") == "troupe_reward_mean")
        #expect(PrometheusText.metricName("eval/pass@1") == "troupe_eval_pass_at_1")
        #expect(PrometheusText.metricName("off_policy/staleness_hist/2") == "troupe_off_policy_staleness_hist_2")
        #expect(PrometheusText.metricName("a-b.c é") == "troupe_a_b_c__")
        let valid = try! Regex("[a-zA-Z_:][a-zA-Z0-9_:]*")
        for raw in ["reward/mean", "9lives", "ttrl/majority_ratio", "x y\"z"] {
            #expect(PrometheusText.metricName(raw).wholeMatch(of: valid) != nil, "\(raw)")
        }
    }

    @Test func theExpositionTextHasHelpTypeEscapedLabelsAndGoFloats() {
        let text = PrometheusText.render([
            .init(name: "troupe_step", type: .gauge, help: "Step.", samples: [.init(labels: [(name: "run", value: "r\"1\\\n")], value: 12)]),
            .init(name: "troupe_a", type: .counter, help: "back\\slash\nline", samples: [.init(labels: [], value: .nan),
                                                                                     .init(labels: [], value: -.infinity),
                                                                                     .init(labels: [], value: 0.125)]),
        ])
        #expect(text == """
            # HELP troupe_a back\\\\slash\\nline
            # TYPE troupe_a counter
            troupe_a NaN
            troupe_a -Inf
            troupe_a 0.125
            # HELP troupe_step Step.
            # TYPE troupe_step gauge
            troupe_step{run="r\\"1\\\\\\n"} 12

            """)
    }

    @Test func theTextfileSinkKeepsTheLatestValueOfEachMetricAndRewritesTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-prom-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var failures: [String] = []
        let sink = PrometheusTextfileSink<Never>(path: dir + "/metrics.prom", run: "run-a") { failures.append($0) }
        let events = ProcessEvents<Never>([sink])
        try events.emit(.metrics("train", step: 1, ["reward/mean": 0.25, "loss/total": 2, "step": 99, "a_b": 1, "a/b": 2]))
        try events.emit(.stream("step", step: 2, metrics: ["reward/mean": 7]))   // not a metrics line: ignored
        try events.emit(.metrics("train", step: 2, ["reward/mean": 0.5]))
        let text = try String(contentsOfFile: dir + "/metrics.prom", encoding: .utf8)
        #expect(text.contains("troupe_reward_mean{run=\"run-a\",kind=\"train\"} 0.5\n"))
        #expect(text.contains("troupe_loss_total{run=\"run-a\",kind=\"train\"} 2\n"))
        #expect(text.contains("troupe_step{run=\"run-a\",kind=\"train\"} 2\n"))
        #expect(text.contains("# TYPE troupe_metric_lines_total counter\ntroupe_metric_lines_total{run=\"run-a\",kind=\"train\"} 2\n"))
        // `a/b` and `a_b` both sanitise to troupe_a_b: the first in name order stays, once.
        #expect(text.components(separatedBy: "\ntroupe_a_b{").count == 2)
        #expect(text.contains("troupe_a_b{run=\"run-a\",kind=\"train\"} 2\n"))
        #expect(!text.contains(" 99\n"), "a metric named `step` must not shadow troupe_step")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["metrics.prom"], "a temporary file was left")
        #expect(failures.isEmpty)
    }

    @Test func chosenLogStreamKindsAreExportedAndTheExpositionMatchesTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-prom-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exposition = PrometheusExposition()
        let sink = PrometheusTextfileSink<Never>(path: dir + "/metrics.prom", run: "r", exposition: exposition,
                                                 streamKinds: ["learner_stats": "learner"]) { Issue.record("\($0)") }
        #expect(exposition.text.isEmpty)
        try sink.emit(.stream("learner_stats", step: 4, metrics: ["queue": 12, "actors": 3, "step": 4]))
        try sink.emit(.stream("step", step: 5, metrics: ["queue": 99]))   // a kind not chosen: ignored
        try sink.emit(.metrics("train", step: 5, ["reward/mean": 0.5]))
        let text = try String(contentsOfFile: dir + "/metrics.prom", encoding: .utf8)
        #expect(text.contains("troupe_queue{run=\"r\",kind=\"learner\"} 12\n"))
        #expect(text.contains("troupe_actors{run=\"r\",kind=\"learner\"} 3\n"))
        #expect(text.contains("troupe_step{run=\"r\",kind=\"learner\"} 4\n"))
        #expect(text.contains("troupe_reward_mean{run=\"r\",kind=\"train\"} 0.5\n"))
        #expect(!text.contains(" 99\n"))
        #expect(exposition.text == text)
    }

    @Test func aTextfileThatCannotBeWrittenIsReportedOnceNotThrown() throws {
        var failures: [String] = []
        let sink = PrometheusTextfileSink<Never>(path: "/nonexistent-troupe-dir/metrics.prom", run: "r") { failures.append($0) }
        try sink.emit(.metrics("train", step: 1, ["x": 1]))
        try sink.emit(.metrics("train", step: 2, ["x": 2]))
        #expect(failures.count == 1)
        #expect(failures.first?.contains("/nonexistent-troupe-dir/metrics.prom") == true)
    }

    @Test func aMetricsFileThatCannotBeOpenedOrWrittenIsReportedOnceNotThrown() throws {
        var failures: [String] = []
        let unopenable = MetricsFileSink<Never>(MetricsWriter(path: "/nonexistent-troupe-dir/metrics.jsonl") { failures.append($0) })
        try unopenable.emit(.metrics("train", step: 1, ["x": 1]))
        #expect(failures.count == 1 && failures.first?.contains("cannot open /nonexistent-troupe-dir/metrics.jsonl") == true)

        // /dev/full takes the open and refuses every write (ENOSPC): a full disk.
        failures = []
        let full = MetricsFileSink<Never>(MetricsWriter(path: "/dev/full") { failures.append($0) })
        try full.emit(.metrics("train", step: 1, ["x": 1]))
        try full.emit(.metrics("train", step: 2, ["x": 2]))
        #expect(failures.count == 1 && failures.first?.contains("cannot append to /dev/full") == true, "\(failures)")
    }

    @Test func theTensorBoardSinkWritesAVersionRecordThenOneRecordPerMetricsLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-tb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = TensorBoardSink<Never>(directory: dir + "/tensorboard", now: Date(timeIntervalSince1970: 1.5)) { Issue.record("\($0)") }
        try sink.emit(.metrics("train", step: 300, ["reward/mean": 0.25, "loss/total": 0.5, "ttrl/reward_accuracy": .nan]))
        try sink.emit(.metrics("train", step: 301, ["only/nan": .nan]))   // nothing finite: no record
        #expect(URL(fileURLWithPath: sink.path).lastPathComponent.hasPrefix("events.out.tfevents.1."))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sink.path)))
        let first = TensorBoardEvents.record(TensorBoardEvents.fileVersionEvent(wallTime: 1.5))
        #expect(Array(bytes.prefix(first.count)) == first)
        // The second record: the two finite scalars in tag order (wall time differs, so compare the rest).
        let rest = Array(bytes.dropFirst(first.count))
        let length = Int(rest[0]) | Int(rest[1]) << 8
        #expect(rest.count == 8 + 4 + length + 4)
        let tail = Self.hex(Array(rest[(12 + 9)..<(12 + length)]))
        #expect(tail == "10ac022a270a110a0a6c6f73732f746f74616c150000003f0a120a0b7265776172642f6d65616e150000803e")
    }

    /// A TensorBoard directory that cannot be made is reported once and the run goes on without it.
    @Test func aTensorBoardDirectoryThatCannotBeMadeIsReportedNotFatal() throws {
        var reports: [String] = []
        let sink = TensorBoardSink<Never>(directory: "/proc/troupe-cannot/tensorboard") { reports.append($0) }
        try sink.emit(.metrics("train", step: 1, ["loss": 1]))
        #expect(reports.count == 1 && reports[0].hasPrefix("cannot create the TensorBoard directory /proc/troupe-cannot/tensorboard"), "\(reports)")
    }

    /// A record cut short by a full disk is taken back, so later records frame correctly.
    @Test func aTornAppendIsTakenBack() throws {
        let path = NSTemporaryDirectory() + "troupe-append-\(UUID().uuidString)"
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        defer { close(fd) }
        #expect([UInt8]("first\n".utf8).withUnsafeBytes { AtomicFile.appendWhole(fd, $0) })
        // A disk that takes 4 bytes of the next record, then is full.
        var calls = 0
        let ok = [UInt8]("second line\n".utf8).withUnsafeBytes { bytes in
            AtomicFile.appendWhole(fd, bytes) { fd, pointer, count in
                calls += 1
                if calls == 1 { return Foundation.write(fd, pointer, min(count, 4)) }
                errno = ENOSPC
                return -1
            }
        }
        #expect(!ok && errno == ENOSPC)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\n", "the part that got in was taken back")
    }
}
