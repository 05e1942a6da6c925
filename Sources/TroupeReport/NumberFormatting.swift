import Foundation

/// Compact, stable number text for tables: integers as integers, others with four significant digits.
enum NumberText {
    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        let magnitude = abs(value)
        if magnitude >= 1000 { return String(Int(value.rounded())) }
        if magnitude < 1e-4 { return String(format: "%.3e", value) }
        let decimals = max(0, min(8, 3 - Int(floor(log10(magnitude)))))
        var text = String(format: "%.\(decimals)f", value)
        // 0.5000 → 0.5: trailing zeros carry no information here.
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    /// `42.1s`, `9m 42s`, `1h 03m`.
    static func duration(seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "\(seconds)s" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let total = Int(seconds.rounded())
        if total < 3600 { return "\(total / 60)m \(String(format: "%02d", total % 60))s" }
        return "\(total / 3600)h \(String(format: "%02d", (total % 3600) / 60))m"
    }
}
