/// One run as the report sees it: a name, its metrics, and the optional summary table from `summary.json`.
public struct ReportRun: Sendable, Hashable {
    public let name: String
    public let metrics: MetricsLog
    /// Flattened scalar entries of `summary.json` in key order; empty when there is none.
    public let summary: [SummaryEntry]
    /// Problems worth showing on the page and printing (malformed lines, unreadable summary).
    public let notes: [String]

    public init(name: String, metrics: MetricsLog, summary: [SummaryEntry] = [], notes: [String] = []) {
        self.name = name
        self.metrics = metrics
        self.summary = summary
        self.notes = notes
    }
}

public struct SummaryEntry: Sendable, Hashable {
    public let key: String
    public let value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}
