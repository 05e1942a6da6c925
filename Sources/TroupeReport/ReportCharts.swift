import Foundation

/// The charts of a report: one per metric group that has data, each with one series per (run, key)
/// — per (run, key, kind) when a key is logged under several kinds.
public struct ReportChart: Sendable, Hashable {
    public let group: ChartGroup
    public let series: [ReportSeries]

    public var pointCount: Int { series.reduce(0) { $0 + $1.points.count } }
}

public struct ReportSeries: Sendable, Hashable {
    public struct Point: Sendable, Hashable {
        public let step: Int
        public let timeSeconds: Double
        public let value: Double
    }

    public let runIndex: Int
    public let key: String
    public let label: String
    /// CSS colour: one per run when several runs are compared, else one per series.
    public let color: String
    /// SVG stroke-dasharray ("" = solid): tells keys apart when colour tells runs apart.
    public let dash: String
    /// In log order (the page sorts by the chosen x axis).
    public let points: [Point]
}

public enum ReportCharts {
    /// Distinguishable on white, no yellow.
    public static let palette = ["#2563eb", "#dc2626", "#059669", "#9333ea", "#ea580c",
                                 "#0891b2", "#db2777", "#65a30d", "#4b5563", "#b45309"]
    static let dashes = ["", "7 4", "2 3", "10 3 2 3", "4 4"]

    public static func color(forRun index: Int) -> String { palette[index % palette.count] }

    public static func charts(for runs: [ReportRun]) -> [ReportChart] {
        let comparing = runs.count > 1
        // key → group, keeping the built-in order first and the rest by title.
        var groupsByID: [String: ChartGroup] = [:]
        var keysByGroup: [String: [String]] = [:]
        let allKeys = Set(runs.flatMap(\.metrics.keys)).sorted(by: metricKeyOrder)
        for key in allKeys {
            let group = ChartGroup.group(for: key)
            groupsByID[group.id] = group
            keysByGroup[group.id, default: []].append(key)
        }
        let builtInOrder = ChartGroup.builtIn.map(\.id)
        let orderedIDs = builtInOrder.filter { groupsByID[$0] != nil }
            + groupsByID.keys.filter { !builtInOrder.contains($0) }.sorted()

        return orderedIDs.map { id in
            var series: [ReportSeries] = []
            let keys = keysByGroup[id]!
            for (runIndex, run) in runs.enumerated() {
                for (keyIndex, key) in keys.enumerated() {
                    let records = run.metrics.records.filter { $0.values[key] != nil }
                    var kinds: [String] = []
                    for record in records where !kinds.contains(record.kind) { kinds.append(record.kind) }
                    for kind in kinds {
                        let points = records.filter { $0.kind == kind }.map {
                            ReportSeries.Point(step: $0.step, timeSeconds: $0.timeSeconds, value: $0.values[key]!)
                        }.filter { $0.value.isFinite && $0.timeSeconds.isFinite }
                        if points.isEmpty { continue }
                        var label = kinds.count > 1 ? "\(key) (\(kind))" : key
                        if comparing { label = "\(run.name) · \(label)" }
                        let color = comparing ? color(forRun: runIndex) : palette[series.count % palette.count]
                        let dash = comparing ? dashes[keyIndex % dashes.count] : ""
                        series.append(ReportSeries(runIndex: runIndex, key: key, label: label, color: color,
                                                   dash: dash, points: points))
                    }
                }
            }
            return ReportChart(group: groupsByID[id]!, series: series)
        }.filter { !$0.series.isEmpty }
    }

    /// Alphabetical, except that numbers inside keys compare by value (`maj@4` before `maj@16`) and
    /// `pass@1` / `mean` come first in their family.
    static func metricKeyOrder(_ a: String, _ b: String) -> Bool {
        func rank(_ key: String) -> Int {
            if key.hasSuffix("/pass@1") || key.hasSuffix("/mean") { return 0 }
            return 1
        }
        let (prefixA, prefixB) = (a.split(separator: "/").first ?? "", b.split(separator: "/").first ?? "")
        if prefixA != prefixB { return prefixA < prefixB }
        if rank(a) != rank(b) { return rank(a) < rank(b) }
        return a.compare(b, options: .numeric) == .orderedAscending
    }
}
