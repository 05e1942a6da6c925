import Foundation
import Testing
import TroupeReport

@Suite struct MetricsLogTests {
    @Test func parsesRecordsAndSkipsMalformedLines() {
        let text = """
            {"step": 0, "time_s": 0.5, "kind": "train", "reward/mean": 0.25, "tokens_per_s": 100}
            {"step": 1, "time_s": 1, "kind": "eval", "eval/pass@1": 0.5, "flag": true, "name": "x", "nested": {"a": 1}}
            not json
            [1, 2]
            {"time_s": 1, "kind": "train"}
            {"step": 1.5, "time_s": 1, "kind": "train"}
            {"step": "2", "time_s": 1, "kind": "train"}
            {"step": 2, "kind": "train"}
            {"step": 2, "time_s": "1", "kind": "train"}
            {"step": 2, "time_s": 1}
            {"step": 2, "time_s": 1, "kind": ""}

            {"step": 3, "time_s": 2, "kind": "actor"}
            {"step": 4, "time_s": 3, "kind": "train", "loss/policy": -0.5
            """
        let log = MetricsLog.parse(text)
        #expect(log.records.count == 3)
        #expect(log.malformedLines == [3, 4, 5, 6, 7, 8, 9, 10, 11, 14])
        #expect(log.records[0] == MetricRecord(step: 0, timeSeconds: 0.5, kind: "train",
                                               values: ["reward/mean": 0.25, "tokens_per_s": 100]))
        // Booleans, strings and objects are not metrics.
        #expect(log.records[1].values == ["eval/pass@1": 0.5])
        #expect(log.records[2].values.isEmpty)
        #expect(log.keys == ["eval/pass@1", "reward/mean", "tokens_per_s"])
    }

    @Test func emptyInputHasNoRecords() {
        #expect(MetricsLog.parse("").records.isEmpty)
        #expect(MetricsLog.parse("\n  \n").malformedLines.isEmpty)
    }

    /// A learner killed after step 3 with its checkpoint at 1, resumed: steps 2 and 3 were voided and are
    /// trained again; the new learner's clock starts at 0, and the run's time goes on from 3.5 s.
    @Test func aResumesVoidedStepsAreLeftOutAndItsClockGoesOn() {
        let text = """
            {"step": 1, "time_s": 1.5, "kind": "train", "loss": 1}
            {"step": 2, "time_s": 2.5, "kind": "train", "loss": 2}
            {"step": 2, "time_s": 2.6, "kind": "eval", "eval/pass@1": 0.5}
            {"step": 3, "time_s": 3.5, "kind": "train", "loss": 3}
            {"step": 2, "time_s": 0.5, "kind": "train", "loss": 20}
            {"step": 3, "time_s": 1, "kind": "train", "loss": 30}
            {"step": 4, "time_s": 2, "kind": "train", "loss": 40}
            """
        let log = MetricsLog.parse(text)
        #expect(log.voidedLines == 2)
        let train = log.records.filter { $0.kind == "train" }
        #expect(train.map(\.step) == [1, 2, 3, 4])
        #expect(train.map { $0.values["loss"] ?? .nan } == [1, 20, 30, 40])
        #expect(train.map(\.timeSeconds) == [1.5, 4, 4.5, 5.5])
        #expect(log.records.contains { $0.kind == "eval" && $0.step == 2 }, "other kinds are kept")
    }
}

@Suite struct ChartTests {
    static let keysByGroup: [(String, String)] = [
        ("reward/mean", "reward"), ("reward/std", "reward"), ("eval/pass@1", "eval"), ("eval/maj@16", "eval"),
        ("ttrl/majority_ratio", "majority"), ("ttrl/label_accuracy", "accuracy"), ("ttrl/reward_accuracy", "accuracy"),
        ("entropy/mean", "entropy"), ("off_policy/staleness_mean", "staleness"), ("tokens_per_s", "throughput"),
        ("loss/policy", "loss"), ("grad_norm", "grad"), ("clip_fraction", "clipping"), ("mismatch_kl", "mismatch"),
        ("time/wait_for_batch", "other-time"), ("trainer/idle_ratio", "other-trainer"), ("lr", "other-lr"),
    ]

    @Test func everyKeyHasAGroup() {
        for (key, group) in Self.keysByGroup {
            #expect(ChartGroup.group(for: key).id == group, "\(key)")
        }
    }

    private func run(_ name: String, _ lines: [MetricRecord]) -> ReportRun {
        ReportRun(name: name, metrics: MetricsLog(records: lines))
    }

    @Test func chartsOnlyForGroupsWithDataInBuiltInOrder() {
        let records = [
            MetricRecord(step: 0, timeSeconds: 0, kind: "train", values: ["tokens_per_s": 5, "reward/mean": 1, "zeta": 1, "alpha/x": 2]),
            MetricRecord(step: 1, timeSeconds: 1, kind: "train", values: ["reward/mean": 2, "eval/pass@1": .nan]),
        ]
        let charts = ReportCharts.charts(for: [run("a", records)])
        // eval/pass@1 had only a non-finite value: no chart.
        #expect(charts.map(\.group.id) == ["reward", "throughput", "other-alpha", "other-zeta"])
        #expect(charts[0].pointCount == 2)
    }

    @Test func singleRunColoursSeriesAndComparisonColoursRuns() {
        let records = [MetricRecord(step: 0, timeSeconds: 0, kind: "eval", values: ["eval/pass@1": 0.1, "eval/maj@16": 0.2])]
        let single = ReportCharts.charts(for: [run("a", records)])[0]
        #expect(single.series.map(\.label) == ["eval/pass@1", "eval/maj@16"])
        #expect(Set(single.series.map(\.color)).count == 2)
        #expect(single.series.allSatisfy { $0.dash.isEmpty })

        let compared = ReportCharts.charts(for: [run("a", records), run("b", records)])[0]
        #expect(compared.series.map(\.label) == ["a · eval/pass@1", "a · eval/maj@16", "b · eval/pass@1", "b · eval/maj@16"])
        #expect(compared.series.map(\.color) == [ReportCharts.color(forRun: 0), ReportCharts.color(forRun: 0),
                                                 ReportCharts.color(forRun: 1), ReportCharts.color(forRun: 1)])
        #expect(compared.series[0].dash != compared.series[1].dash)
        #expect(compared.series[0].dash == compared.series[2].dash)
    }

    @Test func aKeyLoggedUnderSeveralKindsGetsOneSeriesPerKind() {
        let records = [
            MetricRecord(step: 0, timeSeconds: 0, kind: "train", values: ["tokens_per_s": 10]),
            MetricRecord(step: 0, timeSeconds: 0, kind: "actor", values: ["tokens_per_s": 4]),
            MetricRecord(step: 1, timeSeconds: 1, kind: "train", values: ["tokens_per_s": 11]),
        ]
        let chart = ReportCharts.charts(for: [run("a", records)])[0]
        #expect(chart.series.map(\.label) == ["tokens_per_s (train)", "tokens_per_s (actor)"])
        #expect(chart.series.map(\.points.count) == [2, 1])
    }
}
