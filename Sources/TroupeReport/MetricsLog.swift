import Foundation
import TroupeJSON

/// One line of a run's `metrics.jsonl`: `{"step": Int, "time_s": seconds since run start,
/// "kind": "train" | "eval" | "actor", "<metric key>": number, …}`.
public struct MetricRecord: Sendable, Hashable {
    public let step: Int
    public let timeSeconds: Double
    public let kind: String
    /// Numeric metric keys of the line; other value types are not metrics and are left out.
    public let values: [String: Double]

    public init(step: Int, timeSeconds: Double, kind: String, values: [String: Double]) {
        self.step = step
        self.timeSeconds = timeSeconds
        self.kind = kind
        self.values = values
    }
}

/// The parsed metrics of one run. Malformed lines are skipped and counted, never fatal: a report of a
/// run that crashed mid-line must still show everything before the crash.
public struct MetricsLog: Sendable, Hashable {
    public static let reservedKeys: Set<String> = ["step", "time_s", "kind"]

    public let records: [MetricRecord]
    /// 1-based numbers of the lines that were skipped (broken JSON, not an object, or `step` not an
    /// integer, `time_s` not a number, `kind` not a string).
    public let malformedLines: [Int]
    /// The learner's (`train`) lines of steps a resume voided and trained again, left out of `records`.
    public let voidedLines: Int

    public init(records: [MetricRecord], malformedLines: [Int] = [], voidedLines: Int = 0) {
        self.records = records
        self.malformedLines = malformedLines
        self.voidedLines = voidedLines
    }

    /// The run as it stands after its resumes: a resumed learner trains again the steps after its
    /// checkpoint (their first lines are dropped, counted in `voidedLines`), and its clock starts again
    /// (its lines' `time_s` go on from the last line before it, so the time axis leaves out the downtime).
    static func resumedTrajectory(_ records: [MetricRecord]) -> (records: [MetricRecord], voided: Int) {
        var kept: [MetricRecord] = []
        var voided = 0
        var lastStep = Int.min, lastRawTime = -Double.infinity, offset = 0.0
        for record in records {
            guard record.kind == "train" else { kept.append(record); continue }
            if record.timeSeconds < lastRawTime { offset += lastRawTime }  // a new learner process
            if record.step <= lastStep {
                let before = kept.count
                kept.removeAll { $0.kind == "train" && $0.step >= record.step }
                voided += before - kept.count
            }
            lastStep = record.step
            lastRawTime = record.timeSeconds
            kept.append(MetricRecord(step: record.step, timeSeconds: record.timeSeconds + offset, kind: record.kind, values: record.values))
        }
        return (kept, voided)
    }

    public static func parse(_ data: Data) -> MetricsLog {
        var records: [MetricRecord] = []
        var malformed: [Int] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            if let record = record(from: Data(line)) {
                records.append(record)
            } else {
                malformed.append(index + 1)
            }
        }
        let trajectory = resumedTrajectory(records)
        return MetricsLog(records: trajectory.records, malformedLines: malformed, voidedLines: trajectory.voided)
    }

    public static func parse(_ text: String) -> MetricsLog {
        parse(Data(text.utf8))
    }

    private static func record(from line: Data) -> MetricRecord? {
        guard case let .object(fields)? = try? JSONValue.parse(line),
              let step = fields["step"]?.int,
              let time = fields["time_s"]?.double,
              case let .string(kind)? = fields["kind"], !kind.isEmpty
        else { return nil }
        var values: [String: Double] = [:]
        for (key, value) in fields where !reservedKeys.contains(key) {
            if let number = value.double, number.isFinite { values[key] = number }
        }
        return MetricRecord(step: step, timeSeconds: time, kind: kind, values: values)
    }

    /// Every metric key that has at least one point, sorted.
    public var keys: [String] {
        Array(Set(records.flatMap(\.values.keys))).sorted()
    }
}
