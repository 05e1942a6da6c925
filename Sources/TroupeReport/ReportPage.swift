import Foundation
import TroupeJSON

/// Builds the self-contained report page: summary table, then one chart per metric group. The charts
/// are drawn in the browser by the inline script from the JSON embedded in the page, so the file needs
/// no network and a browser test can check that every chart really drew.
public enum ReportPage {
    public static func html(for runs: [ReportRun], title: String? = nil) -> String {
        let charts = ReportCharts.charts(for: runs)
        let pageTitle = title ?? defaultTitle(for: runs)
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="troupe report">
            <title>\(escape(pageTitle))</title>
            <style>\(ReportAssets.css)</style>
            </head>
            <body>
            <header>
            <h1>\(escape(pageTitle))</h1>
            \(runs.count > 1 ? "<p class=\"runs\">\(runLegend(runs))</p>" : "")
            </header>

            """
        html += summaryTables(for: runs)
        let notes = runs.flatMap { run in run.notes.map { "\(run.name): \($0)" } }
            + (charts.isEmpty ? ["no metrics to plot yet"] : [])
        if !notes.isEmpty {
            html += "<ul class=\"notes\">" + notes.map { "<li>\(escape($0))</li>" }.joined() + "</ul>\n"
        }
        if !charts.isEmpty {
            html += """
                <div class="controls" role="radiogroup" aria-label="x axis">x axis:
                <label><input type="radio" name="x-axis" value="step" checked> step</label>
                <label><input type="radio" name="x-axis" value="time"> wall time</label></div>

                """
        }
        html += "<main class=\"charts\">\n"
        for (index, chart) in charts.enumerated() {
            html += """
                <section class="chart" id="chart-\(escape(anchor(chart.group.id)))" data-chart-index="\(index)" \
                data-expected-points="\(chart.pointCount)">
                <h2>\(escape(chart.group.title))</h2><p class="sub">\(escape(chart.group.subtitle))</p>
                <div class="legend"></div><div class="plot"></div>
                </section>

                """
        }
        html += "</main>\n"
        html += "<footer>Written by <code>troupe report</code>. Self-contained: the data is embedded below "
            + "and drawn by the page's own script.</footer>\n"
        html += "<script type=\"application/json\" id=\"troupe-report-data\">\(dataJSON(runs: runs, charts: charts))</script>\n"
        html += "<script>\(ReportAssets.script)</script>\n</body>\n</html>\n"
        return html
    }

    static func defaultTitle(for runs: [ReportRun]) -> String {
        runs.count == 1 ? "Troupe run \(runs[0].name)" : "Troupe runs compared: " + runs.map(\.name).joined(separator: ", ")
    }

    private static func runLegend(_ runs: [ReportRun]) -> String {
        runs.enumerated().map { index, run in
            let dot = runs.count > 1 ? "<span class=\"dot\" style=\"background:\(ReportCharts.color(forRun: index))\"></span>" : ""
            return "<span class=\"run\">\(dot)\(escape(run.name))</span>"
        }.joined(separator: " ")
    }

    // MARK: summary table

    /// Rows derived from the metrics: how much was logged, steps and wall time, then first → last of
    /// the headline metrics. One column per run.
    static func metricsRows(for runs: [ReportRun]) -> [(label: String, cells: [String])] {
        var rows: [(String, [String])] = []
        rows.append(("metric lines", runs.map { run in
            let skipped = run.metrics.malformedLines.count
            return "\(run.metrics.records.count)" + (skipped > 0 ? " (\(skipped) malformed skipped)" : "")
        }))
        rows.append(("last step", runs.map { $0.metrics.records.map(\.step).max().map(String.init) ?? "—" }))
        rows.append(("wall time", runs.map { run in
            run.metrics.records.map(\.timeSeconds).max().map { NumberText.duration(seconds: $0) } ?? "—"
        }))
        let allKeys = Set(runs.flatMap(\.metrics.keys))
        let headline = allKeys.filter { $0.hasPrefix("eval/") }.sorted(by: ReportCharts.metricKeyOrder)
            + ["reward/mean", "ttrl/majority_ratio", "ttrl/label_accuracy", "tokens_per_s"].filter(allKeys.contains)
        for key in headline {
            rows.append((key, runs.map { run in
                let values = run.metrics.records.compactMap { $0.values[key] }
                guard let first = values.first, let last = values.last else { return "—" }
                return values.count == 1 ? NumberText.format(last) : "\(NumberText.format(first)) → \(NumberText.format(last))"
            }))
        }
        return rows
    }

    /// Every entry of the runs' summary.json files, one column per run.
    static func summaryRows(for runs: [ReportRun]) -> [(label: String, cells: [String])] {
        var keys: [String] = []
        for run in runs {
            for entry in run.summary where !keys.contains(entry.key) { keys.append(entry.key) }
        }
        return keys.map { key in (key, runs.map { run in run.summary.first { $0.key == key }?.value ?? "—" }) }
    }

    private static func summaryTables(for runs: [ReportRun]) -> String {
        var html = "<section class=\"summary\">\n"
        html += table(caption: "From metrics.jsonl", rows: metricsRows(for: runs), runs: runs)
        let summary = summaryRows(for: runs)
        if !summary.isEmpty { html += table(caption: "From summary.json", rows: summary, runs: runs) }
        return html + "</section>\n"
    }

    private static func table(caption: String, rows: [(label: String, cells: [String])], runs: [ReportRun]) -> String {
        var html = "<table>\n<thead><tr><th>\(escape(caption))</th>"
        for (index, run) in runs.enumerated() {
            let dot = runs.count > 1 ? "<span class=\"dot\" style=\"background:\(ReportCharts.color(forRun: index))\"></span>" : ""
            html += "<th>\(dot)\(escape(runs.count > 1 ? run.name : ""))</th>"
        }
        html += "</tr></thead>\n<tbody>\n"
        for row in rows {
            html += "<tr><th scope=\"row\">\(escape(row.label))</th>"
                + row.cells.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n"
        }
        return html + "</tbody></table>\n"
    }

    // MARK: embedded data

    /// `{"charts": [{"id", "title", "series": [{"label", "color", "dash", "points": [[step, time_s, value], …]}]}]}`
    static func dataJSON(runs: [ReportRun], charts: [ReportChart]) -> String {
        let object: JSONValue = [
            "runs": .array(runs.map { .string($0.name) }),
            "charts": .array(charts.map { chart in
                [
                    "id": .string(chart.group.id),
                    "title": .string(chart.group.title),
                    "series": .array(chart.series.map { series in
                        [
                            "label": .string(series.label),
                            "color": .string(series.color),
                            "dash": .string(series.dash),
                            "points": .array(series.points.map { [.integer($0.step), .number($0.timeSeconds), .number($0.value)] }),
                        ]
                    }),
                ]
            }),
        ]
        // Points are finite (ReportCharts drops the rest), so serialization does not fail; if it ever did,
        // the page shows the error instead of silently empty charts.
        let data = (try? object.serialized(compact: true)) ?? Data(#"{"charts":[],"error":"could not encode the chart data"}"#.utf8)
        // "<" only occurs inside JSON strings, where \u003c means the same; this keeps "</script>" in a
        // run name from ending the script element.
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "<", with: "\\u003c")
    }

    // MARK: escaping

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func anchor(_ id: String) -> String {
        String(id.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
    }
}
