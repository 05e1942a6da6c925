import Foundation
import TroupeProto

/// The JSON shapes of `troupe monitor --json` (docs/monitor.md): one object per log event, and a
/// final summary of the stream. Objects for JSONSerialization; non-finite numbers become null.
extension Troupe_V1_LogEvent {
    /// `{"source", "source_run_id" (16 hex digits: a 64-bit id does not survive a JSON double),
    /// "sequence", "kind", "step", "metrics", "fields", "text", "time" (Unix seconds)}`.
    package var jsonObject: [String: Any] {
        [
            "source": source,
            "source_run_id": MonitorJSON.hex(sourceRunID),
            "sequence": sequence,
            "kind": kind,
            "step": step,
            "metrics": metrics.mapValues(MonitorJSON.number),
            "fields": fields,
            "text": text,
            "time": Double(wallTimeUnixNs) / 1e9,
        ]
    }
}

package enum MonitorJSON {
    static func hex(_ id: UInt64) -> String {
        let digits = String(id, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    static func number(_ value: Double) -> Any { value.isFinite ? value : NSNull() }

    /// `{"kind": "monitor_summary", "events", "missing_events" (gaps), "before_join" (published before
    /// the first event received from that process), "restarts", "out_of_order", "malformed_messages",
    /// "malformed_fields", "sources": {name: {"run_id", "received", "missing", "before_join", "restarts",
    /// "out_of_order", "last_sequence"}}, "learner_status", "step", "label_accuracy"?}`.
    package static func summary(_ state: MonitorState) -> [String: Any] {
        var sources: [String: Any] = [:]
        for (name, s) in state.sequences.sources {
            sources[name] = ["run_id": hex(s.runId), "received": s.received, "missing": s.missing,
                             "before_join": s.beforeJoin, "restarts": s.restarts,
                             "out_of_order": s.outOfOrder, "last_sequence": s.lastSequence]
        }
        var object: [String: Any] = [
            "kind": "monitor_summary",
            "events": state.eventCount,
            "missing_events": state.sequences.missingTotal,
            "before_join": state.sequences.beforeJoinTotal,
            "restarts": state.sequences.restartsTotal,
            "out_of_order": state.sequences.outOfOrderTotal,
            "malformed_messages": state.malformedMessages,
            "malformed_fields": state.malformedFields,
            "sources": sources,
            "learner_status": state.learnerStatus.rawValue,
            "step": state.step,
        ]
        if let a = state.labelAccuracy {
            object["label_accuracy"] = ["judged": a.judged, "correct": a.correct, "unknown_prompts": a.unknownPrompts,
                                        "fraction": a.fraction.map(number) ?? NSNull()]
        }
        return object
    }
}
