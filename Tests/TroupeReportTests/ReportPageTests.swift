import Foundation
import Testing
import TroupeReport

@Suite struct ReportPageTests {
    @Test func pageIsSelfContainedAndHasOneSectionPerChart() throws {
        let run = ReportRun(name: "run-a", metrics: MetricsLog.parse(SyntheticRuns.metricsJSONL()))
        let html = ReportPage.html(for: [run])
        let charts = ReportCharts.charts(for: [run])
        #expect(charts.count == 12)
        #expect(html.components(separatedBy: "<section class=\"chart\"").count - 1 == charts.count)
        // Nothing is fetched: no external scripts, styles, images or fonts.
        for needle in ["src=", "href=", "http://", "https://", "@import", "url("] {
            let hits = html.components(separatedBy: needle).count - 1
            let allowed = needle == "http://" ? 1 : 0 // the SVG namespace string
            #expect(hits == allowed, "\(needle) appears \(hits) times")
        }
        #expect(html.contains("<td>0.3 → 0.5</td>") || html.contains("eval/pass@1"))
    }

    @Test func namesAndKeysAreEscapedEverywhere() {
        let evil = "</script><script>alert(1)</script>"
        let records = [MetricRecord(step: 0, timeSeconds: 0, kind: "train", values: ["x/<b>": 1, "reward/mean": 1])]
        let html = ReportPage.html(for: [ReportRun(name: evil, metrics: MetricsLog(records: records),
                                                   summary: [SummaryEntry(key: "<k>", value: "<v>")], notes: ["<n>"])],
                                   title: "<title>")
        #expect(!html.contains(evil))
        #expect(!html.contains("<b>"))
        #expect(!html.contains("<k>") && !html.contains("<v>") && !html.contains("<n>"))
        #expect(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"))
        // Exactly the two script elements of the page.
        #expect(html.components(separatedBy: "<script").count - 1 == 2)
        #expect(html.components(separatedBy: "</script>").count - 1 == 2)
    }

    @Test func summaryTablesShowFirstAndLastOfHeadlineMetricsAndSummaryEntries() throws {
        let records = [
            MetricRecord(step: 0, timeSeconds: 1, kind: "eval", values: ["eval/pass@1": 0.25, "eval/maj@16": 0.5, "eval/maj@4": 0.4]),
            MetricRecord(step: 5, timeSeconds: 30, kind: "train", values: ["reward/mean": 0.125]),
            MetricRecord(step: 10, timeSeconds: 583, kind: "eval", values: ["eval/pass@1": 0.375, "eval/maj@16": 0.625, "eval/maj@4": 0.5]),
        ]
        let summary = try ReportFiles.summaryEntries(fromJSON: Data(#"{"b": 1.23456, "a": {"y": true, "x": null}, "c": [1, 2]}"#.utf8))
        #expect(summary == [SummaryEntry(key: "a/x", value: "—"), SummaryEntry(key: "a/y", value: "yes"),
                            SummaryEntry(key: "b", value: "1.235"), SummaryEntry(key: "c", value: "[2 items]")])
        let html = ReportPage.html(for: [ReportRun(name: "r", metrics: MetricsLog(records: records, malformedLines: [4]),
                                                   summary: summary)])
        #expect(html.contains("<tr><th scope=\"row\">metric lines</th><td>3 (1 malformed skipped)</td></tr>"))
        #expect(html.contains("<tr><th scope=\"row\">last step</th><td>10</td></tr>"))
        #expect(html.contains("<tr><th scope=\"row\">wall time</th><td>9m 43s</td></tr>"))
        #expect(html.contains("<tr><th scope=\"row\">eval/pass@1</th><td>0.25 → 0.375</td></tr>"))
        #expect(html.contains("<tr><th scope=\"row\">reward/mean</th><td>0.125</td></tr>"))
        #expect(html.contains("<tr><th scope=\"row\">b</th><td>1.235</td></tr>"))
        // maj@4 sorts before maj@16, pass@1 first.
        let order = ["eval/pass@1", "eval/maj@4", "eval/maj@16"].map { html.range(of: ">\($0)</th>")!.lowerBound }
        #expect(order == order.sorted())
    }

    @Test func badSummaryIsAnError() {
        #expect(throws: ReportError.self) { try ReportFiles.summaryEntries(fromJSON: Data("[1]".utf8)) }
        #expect(throws: ReportError.self) { try ReportFiles.summaryEntries(fromJSON: Data("{".utf8)) }
    }

    @Test func emptyRunsStillMakeAPage() {
        let html = ReportPage.html(for: [ReportRun(name: "empty", metrics: MetricsLog(records: []))])
        #expect(html.contains("no metrics to plot yet"))
        #expect(!html.contains("<section class=\"chart\""))
    }
}

@Suite struct ReportFilesTests {
    @Test func loadRunReadsMetricsSummaryAndNotesProblems() throws {
        let parent = try SyntheticRuns.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let directory = try SyntheticRuns.writeRun(named: "run-a", under: parent, gain: 0.2, seed: 1)
        let run = try ReportFiles.loadRun(directory: directory)
        #expect(run.name == "run-a")
        #expect(run.metrics.malformedLines.count == 1)
        #expect(run.notes.count == 1 && run.notes[0].contains("skipped 1 malformed line(s)"))
        #expect(run.summary.contains(SummaryEntry(key: "pass@1/after", value: "0.45")))

        try Data("{broken".utf8).write(to: directory.appendingPathComponent("summary.json"))
        let withBadSummary = try ReportFiles.loadRun(directory: directory, name: "renamed")
        #expect(withBadSummary.name == "renamed")
        #expect(withBadSummary.summary.isEmpty)
        #expect(withBadSummary.notes.contains { $0.contains("ignored summary.json") })
    }

    @Test func loadRunNamesWhatIsMissing() throws {
        let parent = try SyntheticRuns.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let missing = parent.appendingPathComponent("nope")
        #expect(throws: ReportError.missingRunDirectory(missing.path)) { try ReportFiles.loadRun(directory: missing) }
        let file = parent.appendingPathComponent("file")
        try Data().write(to: file)
        #expect(throws: ReportError.notADirectory(file.path)) { try ReportFiles.loadRun(directory: file) }
        #expect(throws: ReportError.missingMetrics(parent.appendingPathComponent("metrics.jsonl").path)) {
            try ReportFiles.loadRun(directory: parent)
        }
        let target = parent.appendingPathComponent("no/such/dir/report.html")
        #expect {
            try ReportFiles.write("x", to: target)
        } throws: { error in
            "\(error)".contains("directory \(parent.path)/no/such/dir does not exist")
        }
        // A file that is not a report page (the run log, metrics.jsonl) is never replaced; a page is.
        let log = parent.appendingPathComponent("run.log")
        try Data("{\"seq\":1}\n".utf8).write(to: log)
        #expect(throws: ReportError.unwritable(path: log.path, reason: "it exists and is not a page troupe report wrote (only those are replaced)")) {
            try ReportFiles.write(ReportPage.html(for: []), to: log)
        }
        #expect(try String(contentsOf: log, encoding: .utf8) == "{\"seq\":1}\n")
        #expect(throws: ReportError.unwritable(path: parent.path, reason: "it is a directory")) { try ReportFiles.write("x", to: parent) }
        let page = parent.appendingPathComponent("report.html")
        try ReportFiles.write(ReportPage.html(for: []), to: page)
        try ReportFiles.write(ReportPage.html(for: []), to: page)
        #expect(ReportFiles.isReportPage(page))
    }

    @Test func distinctNamesTellEqualDirectoryNamesApart() {
        let urls = ["/runs/a/ttrl", "/runs/b/ttrl", "/runs/c", "/x/c", "/x/c"].map { URL(fileURLWithPath: $0) }
        #expect(ReportFiles.distinctNames(for: urls) == ["a/ttrl", "b/ttrl", "runs/c", "x/c", "x/c #2"])
    }
}
