/// Draws a `MonitorState` as a terminal dashboard of `width` × `height` characters: header with
/// progress and ETA, sparklines of the key series, the per-actor table, group accounting, stream
/// health and the latest notable events. Pure: the caller supplies the size and `now`, and writes the
/// string. Every line fits `width` and there are at most `height` lines: when the terminal is short,
/// series, actor rows and events get a few rows each and share the rest in that order. Control
/// characters from event text (an escape sequence in an actor's name) are drawn as "?".
package struct DashboardRenderer: Sendable {
    package var width: Int
    package var height: Int
    /// The first words of the header, e.g. "troupe monitor tcp://host:5558".
    package var title: String

    /// ANSI: erase the whole screen and move home. Print once before the first `frame`.
    package static let clearScreen = "\u{1B}[2J\u{1B}[H"
    package static let hideCursor = "\u{1B}[?25l"
    package static let showCursor = "\u{1B}[?25h"

    package init(width: Int, height: Int, title: String = "troupe monitor") {
        self.width = max(40, width)
        self.height = max(10, height)
        self.title = title
    }

    /// The dashboard as plain text lines (no escape codes), each at most `width` columns.
    package func lines(_ state: MonitorState, now: Double) -> [String] {
        let fullHeader = headerLines(state, now: now)
        let footer = accountingLines(state)
        let series = seriesLines(state)
        let actorTable = actorLines(state, now: now)
        let events = eventLines(state, now: now)

        // Header and accounting always. Then series, actors and events (each after a blank line):
        // first a few rows each, then the rest of the height in the same order.
        let sections = [series, actorTable, events]
        let minimums = [3, 3, 3]
        // On a very short terminal the header gives way first (the status and step stay).
        let header = Array(fullHeader.prefix(max(2, height - footer.count - 1)))
        var left = height - header.count - footer.count - 1
        var shown = [0, 0, 0]
        for pass in 0..<2 {
            for i in sections.indices where !sections[i].isEmpty {
                let separator = shown[i] == 0 ? 1 : 0
                let wanted = pass == 0 ? min(sections[i].count, minimums[i]) : sections[i].count
                let n = min(wanted - shown[i], left - separator)
                guard n > 0 else { continue }
                shown[i] += n
                left -= n + separator
            }
        }
        var shownActors = Array(actorTable.prefix(shown[1]))
        if shown[1] < actorTable.count, shown[1] >= 2 {
            shownActors[shown[1] - 1] = "… \(actorTable.count - shown[1] + 1) more actors"
        }

        var out = header
        if shown[0] > 0 { out += [""] + series.prefix(shown[0]) }
        if shown[1] > 0 { out += [""] + shownActors }
        out += [""] + footer
        if shown[2] > 0 { out += [""] + events.prefix(shown[2]) }
        return out.prefix(height).map { TextFormat.fit(TextFormat.printable($0), width) }
    }

    /// The lines joined with newlines.
    package func render(_ state: MonitorState, now: Double) -> String {
        lines(state, now: now).joined(separator: "\n")
    }

    /// One frame for a terminal: cursor home, each line followed by erase-to-end-of-line, and the rest
    /// of the screen erased (a full clear without the flicker of erasing first).
    package func frame(_ state: MonitorState, now: Double) -> String {
        "\u{1B}[H" + lines(state, now: now).map { $0 + "\u{1B}[K" }.joined(separator: "\n") + "\u{1B}[J"
    }

    // MARK: sections

    private func headerLines(_ s: MonitorState, now: Double) -> [String] {
        var status: String
        switch s.learnerStatus {
        case .unknown: status = s.eventCount == 0 ? "waiting for the log stream" : "waiting for the learner"
        case .running: status = "running"
        case .finished: status = "finished"
        case .stopped: status = "stopped"
        }
        if s.learnerStatus == .running, let last = s.lastLearnerEventTime, now - last >= 5 {
            status += " · learner silent \(TextFormat.duration(now - last))"
        }
        var first = "\(title) · \(status)"
        if let run = s.runDirectory { first += " · run \(run)" }

        var progress = "step \(s.step)" + (s.maxSteps.map { "/\($0)" } ?? "")
        var rest: [String] = []
        if let maxSteps = s.maxSteps { rest.append(TextFormat.percent(Double(s.step) / Double(maxSteps))) }
        if let elapsed = s.elapsedSeconds(now: now) {
            rest.append("elapsed \(TextFormat.duration(elapsed))")
        } else if let first = s.firstEventTime {
            rest.append("watching \(TextFormat.duration(max(0, now - first)))")
        }
        if !s.runEnded, let eta = s.etaSeconds { rest.append("ETA \(TextFormat.duration(eta))") }
        if let rate = s.stepRate { rest.append("\(TextFormat.compact(rate)) step/s") }
        if let maxSteps = s.maxSteps {
            // A bar that leaves room for the numbers on the same line, else a wider one above them.
            let room = width - progress.count - 3
            let numbers = rest.reduce(0) { $0 + 2 + $1.count }
            let barWidth = min(40, room - numbers >= 10 ? room - numbers : room)
            if barWidth >= 10 {
                let filled = Int((Double(min(s.step, maxSteps)) / Double(maxSteps) * Double(barWidth)).rounded(.down))
                progress += " [" + String(repeating: "█", count: filled) + String(repeating: "░", count: barWidth - filled) + "]"
            }
        }

        let st = s.learnerStats
        var stats: [String] = []
        if let v = st["actors"] { stats.append("actors \(TextFormat.integer(v))") }
        if let v = st["leases"] { stats.append("leases \(TextFormat.integer(v))") }
        if let v = st["queue"] { stats.append("queue \(TextFormat.integer(v))") }
        if let v = st["pending"] { stats.append("pending \(TextFormat.integer(v))") }
        if let v = st["trainer/idle_ratio"] { stats.append("learner idle \(TextFormat.percent(v))") }
        if let v = st["rss_mb"] { stats.append("rss \(TextFormat.integer(v)) MB") }
        let staleness = st.compactMap { key, value -> (Int, Int)? in
            guard key.hasPrefix("off_policy/staleness_hist/"), let lag = Int(key.dropFirst("off_policy/staleness_hist/".count)),
                  let groups = value.monitorWholeNumber else { return nil }
            return (lag, groups)
        }.sorted { $0.0 < $1.0 }
        if !staleness.isEmpty { stats.append("staleness " + staleness.map { "\($0.0):\($0.1)" }.joined(separator: " ")) }
        if stats.isEmpty { stats.append("no learner stats yet") }
        return [first] + wrap([progress] + rest, separator: "  ", indent: "  ") + wrap(stats, separator: "  ", indent: "  ")
    }

    /// `name  last  [min – max]  ▁▂▃…`: numbers first, so short histories still read as a table.
    private func seriesLines(_ s: MonitorState) -> [String] {
        let longest = s.seriesNames.filter { s.series[$0]?.points.isEmpty == false }.map(\.count).max() ?? 12
        let labelWidth = width >= 70 ? min(20, longest + 1) : 13
        let valueWidth = 8
        let rangeWidth = width >= 70 ? 22 : 0
        let sparkWidth = max(4, width - labelWidth - valueWidth - rangeWidth - 3)
        return s.seriesNames.compactMap { name in
            guard let series = s.series[name], !series.points.isEmpty else { return nil }
            let shown = Array(series.values.suffix(sparkWidth))
            var line = TextFormat.padRight(name, labelWidth) + TextFormat.padLeft(TextFormat.compact(series.last), valueWidth)
            if rangeWidth > 0, let low = shown.min(), let high = shown.max() {
                line += "  " + TextFormat.padRight("[\(TextFormat.compact(low)) – \(TextFormat.compact(high))]", rangeWidth)
            }
            return line + " " + Sparkline.render(shown, width: sparkWidth)
        }
    }

    private func actorLines(_ s: MonitorState, now: Double) -> [String] {
        let rows = s.actorRows
        guard !rows.isEmpty else { return [] }
        // Columns in display order with a priority (lower is kept longer when the terminal is narrow).
        typealias Column = (title: String, width: Int, priority: Int, cell: (ActorRow) -> String)
        var columns: [Column] = [
            ("tok/s", 8, 0, { TextFormat.compact($0.tokensPerSecond) }),
            ("idle", 6, 1, { TextFormat.percent($0.idleRatio) }),
            ("produced", 9, 2, { TextFormat.integer($0.groupsProduced) }),
            ("accepted", 9, 3, { TextFormat.integer($0.groupsAccepted) }),
            ("unacked", 8, 6, { TextFormat.integer($0.unacked) }),
            ("weights", 8, 4, { TextFormat.integer($0.weightsStep) }),
            ("sync ms", 8, 7, { TextFormat.compact($0.weightSyncMilliseconds) }),
            ("via", 9, 8, { $0.weightsVia ?? "-" }),
            ("seen", 7, 5, { a in a.lastSeen.map { TextFormat.duration(max(0, now - $0)) } ?? "-" }),
        ]
        let longestId = max(5, rows.map(\.identity.count).max() ?? 5)
        let minimumId = min(longestId, 12)
        while columns.count > 1 && minimumId + columns.reduce(0, { $0 + $1.width }) > width {
            columns.remove(at: columns.indices.max { columns[$0].priority < columns[$1].priority }!)
        }
        let idWidth = max(minimumId, min(longestId, 24, width - columns.reduce(0) { $0 + $1.width }))
        func line(_ id: String, _ cells: [String], _ status: String) -> String {
            var text = TextFormat.padRight(id, idWidth)
            for (cell, column) in zip(cells, columns) { text += TextFormat.padLeft(cell, column.width) }
            return status.isEmpty ? text : text + "  " + status
        }
        return [line("actor", columns.map(\.title), "")] + rows.map { a in
            line(a.identity, columns.map { $0.cell(a) }, a.connected ? "" : "left" + (a.leftReason.map { " (\($0))" } ?? ""))
        }
    }

    private func accountingLines(_ s: MonitorState) -> [String] {
        var lines: [String] = []
        if let a = s.accounting {
            var rejected = "rejected \(a.rejected)"
            let reasons = a.rejectedByReason.filter { $0.value > 0 }.sorted { $0.key < $1.key }
            if !reasons.isEmpty { rejected += " (" + reasons.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")" }
            lines += wrap(["groups  produced \(a.produced) =", "trained \(a.trained)", "+ \(rejected)",
                           "+ duplicates \(a.duplicates)", "+ lost \(a.lostUncommitted)",
                           "+ in flight \(a.inFlight) " + identity(a, runEnded: s.runEnded)],
                          indent: "          ")
        } else {
            lines.append("groups  no accounting yet")
        }
        let wire = s.learnerStats.filter { $0.key.hasPrefix("wire_rejected/") && $0.value > 0 }.sorted { $0.key < $1.key }
        var stream = "stream  \(s.eventCount) events · \(s.sequences.missingTotal) missed"
        let gappy = s.sequences.sources.values.filter { $0.missing > 0 }.sorted { $0.name < $1.name }
        if !gappy.isEmpty { stream += " (" + gappy.map { "\($0.name) \($0.missing)" }.joined(separator: ", ") + ")" }
        let restarts = s.sequences.restartsTotal
        stream += " · \(restarts) restart" + (restarts == 1 ? "" : "s")
        if s.sequences.beforeJoinTotal > 0 { stream += " · \(s.sequences.beforeJoinTotal) before join" }
        let malformed = s.malformedMessages.values.reduce(0, +) + s.malformedFields.values.reduce(0, +)
        if malformed > 0 { stream += " · \(malformed) malformed" }
        if !wire.isEmpty {
            stream += " · wire rejects " + wire.map { "\($0.key.dropFirst("wire_rejected/".count)) \(TextFormat.integer($0.value))" }.joined(separator: ", ")
        }
        lines.append(stream)
        if let l = s.labelAccuracy {
            var text = "labels  accuracy \(TextFormat.percent(l.fraction)) (\(l.correct)/\(l.judged) prompts)"
            if let last = l.lastStep { text += " · step \(last.step): \(last.correct)/\(last.judged)" }
            if l.unknownPrompts > 0 { text += " · \(l.unknownPrompts) not in the answer key" }
            lines.append(text)
        }
        return lines
    }

    /// While the run goes on, the learner's numbers may be off by the batch being trained (taken from
    /// the pending groups, not yet trained); only the final accounting must balance.
    private func identity(_ a: AccountingSnapshot, runEnded: Bool) -> String {
        if a.identityHolds { return "(identity holds)" }
        let off = a.produced - (a.trained + a.rejected + a.duplicates + a.lostUncommitted + a.inFlight)
        return runEnded ? "(IDENTITY BROKEN: off by \(off))" : "(off by \(off) now)"
    }

    /// Joins `pieces` with `separator` into lines of at most `width` columns, continuing with `indent`.
    private func wrap(_ pieces: [String], separator: String = " ", indent: String) -> [String] {
        var lines: [String] = []
        var current = ""
        for piece in pieces {
            if current.isEmpty {
                current = piece
            } else if current.count + separator.count + piece.count <= width {
                current += separator + piece
            } else {
                lines.append(current)
                current = indent + piece
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    private func eventLines(_ s: MonitorState, now: Double) -> [String] {
        guard !s.recentEvents.isEmpty else { return [] }
        // Newest first, so a short terminal keeps the latest.
        return ["events"] + s.recentEvents.reversed().map { e in
            TextFormat.padLeft(TextFormat.duration(max(0, now - e.time)), 6) + " ago  " + e.summary
        }
    }
}
