import Foundation
import TroupeJSON

/// Reading run directories and writing report files: the only file I/O of this module besides the browser.
public enum ReportFiles {
    public static let metricsFileName = "metrics.jsonl"
    public static let summaryFileName = "summary.json"
    public static let reportFileName = "report.html"

    /// Reads `directory/metrics.jsonl` (required) and `directory/summary.json` (optional). Malformed metric
    /// lines and an unreadable summary become notes, not errors: a report should show what there is.
    public static func loadRun(directory: URL, name: String? = nil) throws -> ReportRun {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw ReportError.missingRunDirectory(directory.path)
        }
        guard isDirectory.boolValue else { throw ReportError.notADirectory(directory.path) }
        let metricsURL = directory.appendingPathComponent(metricsFileName)
        guard FileManager.default.fileExists(atPath: metricsURL.path) else {
            throw ReportError.missingMetrics(metricsURL.path)
        }
        let metricsData: Data
        if let problem = ReadableFile.problem(at: metricsURL.path) { throw ReportError.unreadable(path: metricsURL.path, reason: problem) }
        do {
            metricsData = try Data(contentsOf: metricsURL)
        } catch {
            throw ReportError.unreadable(path: metricsURL.path, reason: (error as NSError).localizedDescription)
        }
        let metrics = MetricsLog.parse(metricsData)
        var notes: [String] = []
        if metrics.voidedLines > 0 {
            notes.append("left out \(metrics.voidedLines) line(s) of \(metricsFileName) for steps a resume voided and trained again")
        }
        if !metrics.malformedLines.isEmpty {
            let shown = metrics.malformedLines.prefix(10).map(String.init).joined(separator: ", ")
            let more = metrics.malformedLines.count > 10 ? ", …" : ""
            notes.append("skipped \(metrics.malformedLines.count) malformed line(s) of \(metricsFileName) (line \(shown)\(more))")
        }
        var summary: [SummaryEntry] = []
        let summaryURL = directory.appendingPathComponent(summaryFileName)
        if FileManager.default.fileExists(atPath: summaryURL.path) {
            if let problem = ReadableFile.problem(at: summaryURL.path) {
                notes.append("ignored \(summaryFileName): \(problem)")
            } else {
                do { summary = try summaryEntries(fromJSON: Data(contentsOf: summaryURL)) } catch { notes.append("ignored \(summaryFileName): \(error)") }
            }
        }
        let runName = name ?? directory.standardizedFileURL.lastPathComponent
        return ReportRun(name: runName, metrics: metrics, summary: summary, notes: notes)
    }

    /// Flattens a JSON object into `a/b` keys with scalar values; arrays are shown by their length.
    public static func summaryEntries(fromJSON data: Data) throws -> [SummaryEntry] {
        guard case let .object(root)? = try? JSONValue.parse(data) else {
            throw ReportError.badSummary("expected a JSON object")
        }
        var entries: [SummaryEntry] = []
        func visit(_ value: JSONValue, key: String) {
            switch value {
            case .null: entries.append(SummaryEntry(key: key, value: "—"))
            case let .bool(flag): entries.append(SummaryEntry(key: key, value: flag ? "yes" : "no"))
            case let .integer(number): entries.append(SummaryEntry(key: key, value: String(number)))
            case let .number(number): entries.append(SummaryEntry(key: key, value: NumberText.format(number)))
            case let .string(text): entries.append(SummaryEntry(key: key, value: text))
            case let .array(items): entries.append(SummaryEntry(key: key, value: "[\(items.count) items]"))
            case let .object(fields):
                for child in fields.keys.sorted() { visit(fields[child]!, key: key + "/" + child) }
            }
        }
        for key in root.keys.sorted() { visit(root[key]!, key: key) }
        return entries
    }

    /// Run names must tell runs apart on a comparison page: equal directory names get their parent
    /// directory prepended (`a/run`, `b/run`), and any remaining clash a `#2` suffix.
    public static func distinctNames(for directories: [URL]) -> [String] {
        let base = directories.map { $0.standardizedFileURL.lastPathComponent }
        var names = base.enumerated().map { index, name -> String in
            guard base.filter({ $0 == name }).count > 1 else { return name }
            let parent = directories[index].standardizedFileURL.deletingLastPathComponent().lastPathComponent
            return parent.isEmpty ? name : parent + "/" + name
        }
        var seen: [String: Int] = [:]
        for index in names.indices {
            seen[names[index], default: 0] += 1
            if seen[names[index]]! > 1 { names[index] += " #\(seen[names[index]]!)" }
        }
        return names
    }

    /// Writes atomically (temp file + rename), so a browser never sees half a page.
    public static func write(_ html: String, to url: URL) throws {
        let parent = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError.unwritable(path: url.path, reason: "directory \(parent.path) does not exist")
        }
        // Only a page this writer made is replaced: `--out RUN/run.log` must not destroy the run log.
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw ReportError.unwritable(path: url.path, reason: "it is a directory") }
            guard isReportPage(url) else {
                throw ReportError.unwritable(path: url.path, reason: "it exists and is not a page troupe report wrote (only those are replaced)")
            }
        }
        do {
            try Data(html.utf8).write(to: url, options: .atomic)
        } catch {
            throw ReportError.unwritable(path: url.path, reason: (error as NSError).localizedDescription)
        }
    }

    /// The generator tag every page carries near its start (`ReportPage`).
    static let generatorTag = Data(#"<meta name="generator" content="troupe report">"#.utf8)

    package static func isReportPage(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        let start = (try? handle.read(upToCount: 4096)) ?? Data()
        return start.range(of: generatorTag) != nil
    }

    /// Writes the report of the run in `directory` as its report.html, named after the directory.
    public static func writeReport(runDirectory directory: URL) throws {
        let run = try loadRun(directory: directory, name: directory.lastPathComponent)
        try write(ReportPage.html(for: [run], title: nil), to: directory.appendingPathComponent(reportFileName))
    }
}

public enum ReportError: Error, Equatable, CustomStringConvertible {
    case missingRunDirectory(String)
    case notADirectory(String)
    case missingMetrics(String)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case badSummary(String)

    public var description: String {
        switch self {
        case let .missingRunDirectory(path): return "run directory \(path) does not exist"
        case let .notADirectory(path): return "\(path) is not a directory; pass a run directory (it holds metrics.jsonl)"
        case let .missingMetrics(path): return "\(path) does not exist; is this a run directory? (troupe run writes metrics.jsonl there)"
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .unwritable(path, reason): return "cannot write \(path): \(reason)"
        case let .badSummary(reason): return reason
        }
    }
}
