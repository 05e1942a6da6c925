import Foundation
import TroupeReport

/// Deterministic metrics for a made-up run that logs every metric the report knows, plus one it does not.
enum SyntheticRuns {
    static func metricsJSONL(steps: Int = 60, gain: Double = 0.2, seed: UInt64 = 1) -> String {
        var state = seed
        func noise() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53) - 0.5
        }
        var lines: [String] = []
        var time = 0.0
        for step in 0...steps {
            time += 4 + noise()
            let progress = 1 - exp(-Double(step) / 20)
            let train: [String: Any] = [
                "step": step, "time_s": time, "kind": "train",
                "reward/mean": 0.4 + gain * progress + 0.03 * noise(),
                "ttrl/majority_ratio": 0.5 + 0.4 * progress,
                "ttrl/label_accuracy": 0.55 + 0.2 * progress,
                "ttrl/reward_accuracy": 0.7 + 0.1 * progress,
                "entropy/mean": 1 - 0.7 * progress,
                "off_policy/staleness_mean": Double(step % 3),
                "tokens_per_s": 2400 + 200 * noise(),
                "loss/policy": 0.02 * noise(),
                "grad_norm": 0.5 + 0.1 * noise(),
                "clip_fraction": 0.02 + 0.005 * noise(),
                "mismatch_kl": 1e-6 * (1 + noise()),
                "time/wait_for_batch": 0.1 + 0.05 * noise(),
                "note": "strings are not metrics",
            ]
            lines.append(json(train))
            if step % 10 == 0 {
                lines.append(json(["step": step, "time_s": time + 0.5, "kind": "eval",
                                   "eval/pass@1": 0.3 + gain * progress, "eval/maj@16": 0.5 + gain * progress]))
            }
            if step % 15 == 0 {
                lines.append(json(["step": step, "time_s": time + 0.2, "kind": "actor", "tokens_per_s": 1200.0 + Double(step)]))
            }
        }
        lines.append(#"{"step": 61, "time_s": "#) // a run killed mid-line
        return lines.joined(separator: "\n") + "\n"
    }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Writes `name/metrics.jsonl` (and a summary.json) under `parent`; returns the run directory.
    static func writeRun(named name: String, under parent: URL, gain: Double, seed: UInt64) throws -> URL {
        let directory = parent.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(metricsJSONL(gain: gain, seed: seed).utf8).write(to: directory.appendingPathComponent("metrics.jsonl"))
        try Data(#"{"preset": "ttrl", "pass@1": {"before": 0.3, "after": 0.45}, "steps": 60}"#.utf8)
            .write(to: directory.appendingPathComponent("summary.json"))
        return directory
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-report-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
