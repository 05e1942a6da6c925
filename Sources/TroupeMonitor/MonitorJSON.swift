import Foundation
import TroupeJSON
import TroupeProto

/// The JSON shapes of `troupe monitor --json` (docs/monitor.md): one object per log event, and a
/// final summary of the stream, as JSON values; non-finite numbers become null.
extension Troupe_V1_LogEvent {
    /// `{"source", "source_run_id" (hexadecimal: a 64-bit id does not survive a JSON double),
    /// "sequence", "kind", "step", "metrics", "fields", "text", "time" (Unix seconds)}`.
    package var json: JSONValue {
        [
            "source": .string(source),
            "source_run_id": .string(MonitorJSON.hex(sourceRunID)),
            "sequence": .integer(Int(clamping: sequence)),
            "kind": .string(kind),
            "step": .integer(Int(clamping: step)),
            "metrics": .object(metrics.mapValues(MonitorJSON.number)),
            "fields": .object(fields.mapValues(JSONValue.string)),
            "text": .string(text),
            "time": .number(Double(wallTimeUnixNs) / 1e9),
        ]
    }
}

package enum MonitorJSON {
    /// Lower-case hexadecimal without leading zeros, as the run log, `endpoints.json` and the learner's
    /// lines write its epoch (the learner's `source_run_id`), so the two can be matched as text.
    static func hex(_ id: UInt64) -> String { String(id, radix: 16) }

    static func number(_ value: Double) -> JSONValue { value.isFinite ? .number(value) : .null }

    /// `{"kind": "monitor_summary", "events", "missing_events" (gaps), "before_join" (published before
    /// the first event received from that process), "restarts", "out_of_order", "malformed_messages",
    /// "malformed_fields", "sources": {name: {"run_id", "received", "missing", "before_join", "restarts",
    /// "out_of_order", "last_sequence"}}, "learner_status", "step", "label_accuracy"?}`.
    package static func summary(_ state: MonitorState) -> JSONValue {
        var sources: [String: JSONValue] = [:]
        for (name, s) in state.sequences.sources {
            sources[name] = ["run_id": .string(hex(s.runId)), "received": .integer(s.received), "missing": .integer(s.missing),
                             "before_join": .integer(s.beforeJoin), "restarts": .integer(s.restarts),
                             "out_of_order": .integer(s.outOfOrder), "last_sequence": .integer(Int(clamping: s.lastSequence))]
        }
        var object: [String: JSONValue] = [
            "kind": "monitor_summary",
            "events": .integer(state.eventCount),
            "missing_events": .integer(state.sequences.missingTotal),
            "before_join": .integer(state.sequences.beforeJoinTotal),
            "restarts": .integer(state.sequences.restartsTotal),
            "out_of_order": .integer(state.sequences.outOfOrderTotal),
            "malformed_messages": .object(state.malformedMessages.mapValues(JSONValue.integer)),
            "malformed_fields": .object(state.malformedFields.mapValues(JSONValue.integer)),
            "sources": .object(sources),
            "learner_status": .string(state.learnerStatus.rawValue),
            "step": .integer(state.step),
        ]
        if let a = state.labelAccuracy {
            object["label_accuracy"] = ["judged": .integer(a.judged), "correct": .integer(a.correct),
                                        "unknown_prompts": .integer(a.unknownPrompts), "fraction": a.fraction.map(number) ?? .null]
        }
        return .object(object)
    }
}
