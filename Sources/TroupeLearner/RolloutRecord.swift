import Foundation
import TroupeRL
import TroupeRuntime

/// A group as a run-log record: everything needed to recompute a training step from it.
extension RolloutGroup {
    /// Everything needed to recompute a training step from this group, for the run log. Arrays are
    /// base64 of their little-endian bytes, so floats come back bit for bit.
    package var logBody: [String: Any] {
        // The typed writer when it can; a non-finite number makes it throw, and the generic form
        // then fails at encoding, naming the field.
        let samplesValue: Any
        if let bytes = try? samplesJSON() { samplesValue = JSONFragment(bytes: bytes) } else { samplesValue = samplesDictionaries }
        return [
            "group": key.description, "actor_run": String(key.actorRunId, radix: 16), "prompt_id": Int(promptId), "lease": Int(leaseId),
            "version": ["epoch": String(version.epoch, radix: 16), "step": Int(version.step)],
            "prompt": Base64Arrays.encode(promptTokens), "generation_ms": Int(generationMs),
            "samples": samplesValue,
        ]
    }

    /// The samples as dictionaries, the form `RecordEncoder` encodes generically.
    var samplesDictionaries: [[String: Any]] {
        samples.map { s -> [String: Any] in
            var d: [String: Any] = ["tokens": Base64Arrays.encode(s.tokens), "logprobs": Base64Arrays.encode(s.logprobs),
                                    "finish": s.finishReason.rawValue, "temperature": Base64Arrays.encode([s.temperature]),
                                    "reward": s.reward, "components": s.components]
            if let a = s.answer { d["answer"] = a }
            if let e = s.entropies { d["entropies"] = Base64Arrays.encode(e) }
            return d
        }
    }

    /// The record's `samples`, byte for byte what `RecordEncoder` makes of `samplesDictionaries`
    /// (keys sorted, arrays as base64), written without building a dictionary per sample: with 16
    /// samples that took most of an accepted group's record time.
    func samplesJSON() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(tokenCount * 11 + samples.count * 160)
        func key(_ k: StaticString) {
            out.append(0x22)
            out.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
            out.append(contentsOf: [0x22, 0x3A])
        }
        func base64<T>(_ values: [T]) {
            out.append(0x22)
            values.withUnsafeBytes { Base64Arrays.append($0, to: &out) }
            out.append(0x22)
        }
        out.append(0x5B)
        for (n, s) in samples.enumerated() {
            if n > 0 { out.append(0x2C) }
            out.append(0x7B)
            if let a = s.answer {
                key("answer"); RecordEncoder.writeString(a, into: &out); out.append(0x2C)
            }
            key("components")
            out.append(0x7B)
            for (i, name) in s.components.keys.sorted().enumerated() {
                if i > 0 { out.append(0x2C) }
                RecordEncoder.writeString(name, into: &out)
                out.append(0x3A)
                try RecordEncoder.writeDouble(s.components[name]!, into: &out)
            }
            out.append(contentsOf: [0x7D, 0x2C])
            if let e = s.entropies { key("entropies"); base64(e); out.append(0x2C) }
            key("finish"); RecordEncoder.writeString(s.finishReason.rawValue, into: &out); out.append(0x2C)
            key("logprobs"); base64(s.logprobs); out.append(0x2C)
            key("reward"); try RecordEncoder.writeDouble(s.reward, into: &out); out.append(0x2C)
            key("temperature"); base64([s.temperature]); out.append(0x2C)
            key("tokens"); base64(s.tokens)
            out.append(0x7D)
        }
        out.append(0x5D)
        return out
    }

    package init(logBody b: [String: Any]) throws {
        func bad(_ field: String) -> RuntimeError { .corruptLog("group record field \(field)") }
        guard let keyText = b["group"] as? String, let key = GroupKey(parsing: keyText) else { throw bad("group") }
        guard let prompt = (b["prompt_id"] as? NSNumber)?.uint64Value, let lease = (b["lease"] as? NSNumber)?.uint64Value else { throw bad("prompt_id") }
        guard let v = b["version"] as? [String: Any], let e = (v["epoch"] as? String).flatMap({ UInt64($0, radix: 16) }),
              let st = (v["step"] as? NSNumber)?.uint64Value else { throw bad("version") }
        guard let tokens = (b["prompt"] as? String).flatMap(Base64Arrays.int32s) else { throw bad("prompt") }
        guard let list = b["samples"] as? [[String: Any]] else { throw bad("samples") }
        var samples: [RolloutSample] = []
        for s in list {
            guard let t = (s["tokens"] as? String).flatMap(Base64Arrays.int32s),
                  let lp = (s["logprobs"] as? String).flatMap(Base64Arrays.floats),
                  let finish = (s["finish"] as? String).flatMap(FinishReason.init(rawValue:)),
                  let temp = (s["temperature"] as? String).flatMap(Base64Arrays.floats)?.first,
                  let reward = (s["reward"] as? NSNumber)?.doubleValue else { throw bad("samples") }
            let components = (s["components"] as? [String: NSNumber])?.mapValues(\.doubleValue) ?? [:]
            samples.append(RolloutSample(tokens: t, logprobs: lp, entropies: (s["entropies"] as? String).flatMap(Base64Arrays.floats),
                                         finishReason: finish, temperature: temp, answer: s["answer"] as? String,
                                         reward: reward, components: components))
        }
        self.init(key: key, promptId: prompt, leaseId: lease, version: PolicyVersion(epoch: e, step: st), promptTokens: tokens,
                  samples: samples, generationMs: UInt32((b["generation_ms"] as? NSNumber)?.intValue ?? 0))
    }
}
