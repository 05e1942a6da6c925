import Foundation
import Testing
import TroupeReport

/// Renders reports in a real headless Chromium and checks, from the DOM after the page's script ran,
/// that every chart drew its data. CI installs Chromium and sets CI, so there a missing browser fails;
/// elsewhere the test is skipped with a message.
@Suite(.serialized) struct BrowserTests {
    static let chromium = HeadlessChromium.locate()
    static let required = ProcessInfo.processInfo.environment["CI"] != nil
    static let enabled = chromium != nil || required
    /// A hang guard, not a speed target: in CI Chromium starts beside hundreds of tests on two cores,
    /// and one render there took over 20 s.
    static let renderTimeout: TimeInterval = 120

    struct RenderedChart {
        let id: String
        let drawnPoints: Int?
        let expectedPoints: Int?
        let body: String
    }

    /// Splits the rendered DOM into chart sections.
    static func charts(in dom: String) -> [RenderedChart] {
        dom.components(separatedBy: "<section ").dropFirst().compactMap { chunk in
            let openTag = String(chunk.prefix { $0 != ">" })
            guard openTag.contains("class=\"chart\"") else { return nil }
            let body = chunk.components(separatedBy: "</section>").first ?? ""
            return RenderedChart(id: attribute("id", openTag) ?? "?",
                                 drawnPoints: attribute("data-drawn-points", openTag).flatMap { Int($0) },
                                 expectedPoints: attribute("data-expected-points", openTag).flatMap { Int($0) },
                                 body: body)
        }
    }

    static func attribute(_ name: String, _ tag: String) -> String? {
        guard let start = tag.range(of: " \(name)=\"") else { return nil }
        return String(tag[start.upperBound...].prefix { $0 != "\"" })
    }

    static func bodyTag(_ dom: String) -> String {
        guard let start = dom.range(of: "<body") else { return "" }
        return String(dom[start.lowerBound...].prefix { $0 != ">" })
    }

    func requireChromium() throws -> HeadlessChromium {
        try #require(Self.chromium, "CI is set but no Chromium was found: \(ChromiumError.notInstalled)")
    }

    @Test(.enabled(if: enabled, "Chromium not installed (apt-get install chromium); browser test skipped"),
          .timeLimit(.minutes(8)))
    func everyChartDrawsInARealBrowser() throws {
        let chromium = try requireChromium()
        let parent = try SyntheticRuns.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let runs = try [("cispo", 0.25, UInt64(1)), ("grpo", 0.1, UInt64(2))].map { name, gain, seed in
            try ReportFiles.loadRun(directory: SyntheticRuns.writeRun(named: name, under: parent, gain: gain, seed: seed))
        }
        let expectedCharts = ReportCharts.charts(for: runs)
        #expect(Set(expectedCharts.map(\.group.id)).isSuperset(of:
            ["reward", "eval", "majority", "accuracy", "entropy", "staleness", "throughput", "loss"]))

        for (label, page, fragment) in [("single run", [runs[0]], ""), ("comparison", runs, ""), ("time axis", runs, "#x=time")] {
            let file = parent.appendingPathComponent("report-\(label.replacingOccurrences(of: " ", with: "-")).html")
            try ReportFiles.write(ReportPage.html(for: page), to: file)
            let url = URL(string: file.absoluteString + fragment)!
            let dom = try chromium.renderedDOM(of: url, virtualTimeMilliseconds: 3000, timeout: Self.renderTimeout)
            let body = Self.bodyTag(dom)
            #expect(Self.attribute("data-report-error", body) == nil, "\(label): \(body)")
            let rendered = Self.charts(in: dom)
            #expect(rendered.count == ReportCharts.charts(for: page).count, "\(label)")
            #expect(Self.attribute("data-charts-drawn", body) == String(rendered.count), "\(label)")
            for chart in rendered {
                let drawn = try #require(chart.drawnPoints, "\(label): \(chart.id) has no data-drawn-points")
                #expect(drawn > 0 && drawn == chart.expectedPoints, "\(label): \(chart.id) drew \(drawn) of \(chart.expectedPoints ?? -1)")
                #expect(chart.body.contains("<svg") && chart.body.contains("<path d=\"M"), "\(label): \(chart.id) has no line")
                #expect(chart.body.contains("<text"), "\(label): \(chart.id) has no tick labels")
                if page.count > 1 {
                    #expect(chart.body.contains("class=\"legend\"><span>"), "\(label): \(chart.id) has no legend")
                }
            }
            if fragment.isEmpty {
                #expect(dom.contains(">step</text>"))
            } else {
                #expect(dom.contains(">wall time (s)</text>") || dom.contains(">wall time (min)</text>"))
            }
        }
    }

    @Test(.enabled(if: enabled, "Chromium not installed (apt-get install chromium); browser test skipped"),
          .timeLimit(.minutes(8)))
    func brokenChartDataIsVisibleNotSilent() throws {
        let chromium = try requireChromium()
        let parent = try SyntheticRuns.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let run = ReportRun(name: "r", metrics: MetricsLog.parse(SyntheticRuns.metricsJSONL(steps: 5)))
        let html = ReportPage.html(for: [run]).replacingOccurrences(of: "{\"charts\":[", with: "{\"charts\":[oops")
        let file = parent.appendingPathComponent("broken.html")
        try ReportFiles.write(html, to: file)
        let dom = try chromium.renderedDOM(of: file, virtualTimeMilliseconds: 2000, timeout: Self.renderTimeout)
        #expect(Self.attribute("data-report-error", Self.bodyTag(dom)) != nil)
        #expect(dom.contains("The report could not draw its charts"))
        #expect(Self.charts(in: dom).allSatisfy { $0.drawnPoints == nil })
    }

    @Test(.enabled(if: enabled, "Chromium not installed (apt-get install chromium); browser test skipped"),
          .timeLimit(.minutes(8)))
    func screenshotWritesAPNG() throws {
        let chromium = try requireChromium()
        let parent = try SyntheticRuns.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let run = ReportRun(name: "r", metrics: MetricsLog.parse(SyntheticRuns.metricsJSONL(steps: 20)))
        let file = parent.appendingPathComponent("report.html")
        try ReportFiles.write(ReportPage.html(for: [run]), to: file)
        let png = parent.appendingPathComponent("report.png")
        try chromium.screenshot(of: file, to: png, width: 900, timeout: Self.renderTimeout)
        let data = try Data(contentsOf: png)
        #expect(data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        // IHDR width and height (big-endian) at bytes 16..<24: full width, and taller than one screen.
        let width = data[16..<20].reduce(0) { $0 << 8 | Int($1) }
        let height = data[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 900)
        #expect(height > 1500, "height \(height)")
    }

    @Test func locateHonoursTroupeChromium() throws {
        #expect(HeadlessChromium.locate(environment: ["TROUPE_CHROMIUM": "/nonexistent/chrome", "PATH": "/usr/bin"]) == nil)
        #expect(throws: ChromiumError.notExecutable(path: "/nonexistent/chrome")) {
            try HeadlessChromium.require(environment: ["TROUPE_CHROMIUM": "/nonexistent/chrome"])
        }
        #expect(throws: ChromiumError.notInstalled) { try HeadlessChromium.require(environment: ["PATH": "/nonexistent"]) }
    }
}
