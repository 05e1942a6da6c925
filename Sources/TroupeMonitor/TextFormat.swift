import Foundation

/// Small text helpers for the dashboard: sparklines, compact numbers, durations, fitting to a width.
/// Pure; every glyph used is one terminal column wide, so a `Character` count is a column count.
package enum Sparkline {
    package static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// The newest `width` values as bars scaled between their minimum and maximum (a flat series is
    /// drawn at mid height). Non-finite values are drawn as spaces.
    package static func render(_ values: [Double], width: Int) -> String {
        guard width > 0 else { return "" }
        let shown = values.suffix(width)
        let finite = shown.filter(\.isFinite)
        guard let low = finite.min(), let high = finite.max() else { return String(repeating: " ", count: shown.count) }
        let span = high - low
        return String(shown.map { v -> Character in
            guard v.isFinite else { return " " }
            guard span > 0 else { return levels[levels.count / 2 - 1] }
            // (v - low) / span is in [0, 1] unless the range overflows (±1e308): then draw mid height.
            let ratio = (v - low) / span
            let index = ratio.isFinite ? Int((ratio * Double(levels.count - 1)).rounded()) : levels.count / 2 - 1
            return levels[min(levels.count - 1, max(0, index))]
        })
    }
}

extension Double {
    /// The nearest Int when finite and within ±2^53 (where doubles hold whole numbers exactly); nil for
    /// NaN, infinities and absurd magnitudes, so a bad number in an event never traps.
    var monitorWholeNumber: Int? { isFinite && abs(self) <= 9_007_199_254_740_992 ? Int(rounded()) : nil }
}

enum TextFormat {
    /// A number in at most ~8 columns: 12.3k, 812.3, 0.531, 1.2e-05.
    static func compact(_ value: Double?) -> String {
        guard let value else { return "-" }
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        let a = abs(value)
        if a == 0 { return "0" }
        if a >= 1e9 { return fixed(value / 1e9, 2) + "G" }
        if a >= 1e6 { return fixed(value / 1e6, 2) + "M" }
        if a >= 1e4 { return fixed(value / 1e3, 1) + "k" }
        if a >= 100 { return fixed(value, 1) }
        if a >= 1e-3 { return fixed(value, a >= 10 ? 2 : 3) }
        return scientific(value)
    }

    static func percent(_ ratio: Double?) -> String {
        guard let ratio, ratio.isFinite else { return "-" }
        return fixed(ratio * 100, abs(ratio) < 0.1 ? 1 : 0) + "%"
    }

    static func integer(_ value: Int?) -> String { value.map(String.init) ?? "-" }
    static func integer(_ value: Double?) -> String { integer(value?.monitorWholeNumber) }

    /// 42s, 3m05s, 1h02m, 2d03h.
    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds >= 0, let s = seconds.monitorWholeNumber else { return "-" }
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + pad2(s % 60) + "s" }
        if s < 86_400 { return "\(s / 3600)h" + pad2(s / 60 % 60) + "m" }
        return "\(s / 86_400)d" + pad2(s / 3600 % 24) + "h"
    }

    /// `text` with control characters (ESC, newlines, tabs, …) replaced by "?", so text from the
    /// stream can neither move the cursor nor break the layout.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map {
            $0.properties.generalCategory == .control ? "?" : $0
        }))
    }

    /// Cuts `text` to `width` columns, marking a cut with "…".
    static func fit(_ text: String, _ width: Int) -> String {
        guard width > 0 else { return "" }
        guard text.count > width else { return text }
        return String(text.prefix(width - 1)) + "…"
    }

    static func padRight(_ text: String, _ width: Int) -> String {
        let t = fit(text, width)
        return t + String(repeating: " ", count: max(0, width - t.count))
    }

    static func padLeft(_ text: String, _ width: Int) -> String {
        let t = fit(text, width)
        return String(repeating: " ", count: max(0, width - t.count)) + t
    }

    static func fixed(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

    private static func scientific(_ value: Double) -> String { String(format: "%.1e", value) }

    private static func pad2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
