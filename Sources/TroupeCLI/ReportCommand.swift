import ArgumentParser
import Foundation
import TroupeReport
import TroupeRuntime

/// `troupe report RUN [RUN...] [--out FILE] [--screenshot PNG]`: regenerate a run's HTML report, or
/// compare several runs on one page.
package struct ReportCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report with plots for a run, or compare several runs.",
        discussion: """
            Reads RUN/metrics.jsonl (and RUN/summary.json when present). With one run the page goes to \
            RUN/report.html; with several, to ./comparison.html. Prints the path of the page.
            """)

    @Argument(help: "Run directories, each holding metrics.jsonl.")
    package var runs: [String]

    @Option(name: .long, help: "Where to write the page (default: RUN/report.html, or ./comparison.html for several runs).")
    package var out: String?

    @Option(name: .long, help: "Page title (default: from the run names).")
    package var title: String?

    @Option(name: .long, help: "Also render the page to this PNG with headless Chromium.")
    package var screenshot: String?

    @Option(name: .customLong("screenshot-width"), help: "Screenshot width in CSS pixels (default: 1280).")
    package var screenshotWidthOption: Int?
    package var screenshotWidth: Int { screenshotWidthOption ?? 1280 }

    package init() {}

    package func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run directory") }
        for run in runs {
            try requirePath(run, directory: true, missing: "run directory \(run) does not exist",
                            wrongKind: "\(run) is not a directory; pass a run directory (it holds metrics.jsonl)")
            let metrics = URL(fileURLWithPath: run).appendingPathComponent(ReportFiles.metricsFileName).path
            guard FileManager.default.fileExists(atPath: metrics) else {
                throw ValidationError("\(metrics) does not exist; is \(run) a run directory?")
            }
        }
        var outIsDirectory: ObjCBool = false
        if let out, out.hasSuffix("/") || (FileManager.default.fileExists(atPath: out, isDirectory: &outIsDirectory) && outIsDirectory.boolValue) {
            throw ValidationError("--out must name a file, got the directory \(out)")
        }
        if let screenshot, !screenshot.lowercased().hasSuffix(".png") {
            throw ValidationError("--screenshot must name a .png file, got \(screenshot)")
        }
        if screenshotWidthOption != nil && screenshot == nil { throw ValidationError("--screenshot-width goes with --screenshot PNG") }
        guard (320...4000).contains(screenshotWidth) else {
            throw ValidationError("--screenshot-width must be in 320...4000, got \(screenshotWidth)")
        }
    }

    package func run() throws {
        let directories = runs.map { URL(fileURLWithPath: $0) }
        let names = ReportFiles.distinctNames(for: directories)
        let loaded = try zip(directories, names).map { try ReportFiles.loadRun(directory: $0, name: $1) }
        for run in loaded {
            for note in run.notes { StandardStream.error.write("warning: \(run.name): \(note)\n") }
            if run.metrics.records.isEmpty {
                StandardStream.error.write("warning: \(run.name): metrics.jsonl has no metrics yet\n")
            }
        }
        let destination = out.map { URL(fileURLWithPath: $0) }
            ?? (directories.count == 1
                ? directories[0].appendingPathComponent(ReportFiles.reportFileName)
                : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("comparison.html"))
        try ReportFiles.write(ReportPage.html(for: loaded, title: title), to: destination)
        print(destination.standardizedFileURL.path)

        if let screenshot {
            let chromium = try HeadlessChromium.require()
            let png = URL(fileURLWithPath: screenshot)
            try chromium.screenshot(of: destination.standardizedFileURL, to: png, width: screenshotWidth)
            print(png.standardizedFileURL.path)
        }
    }
}
