import Foundation
import TroupeJSON
import TroupeRL
import TroupeRuntime

/// A `group_accepted` record's body: everything needed to recompute a training step from the group.
/// Arrays are base64 of their little-endian bytes, so floats come back bit for bit.
struct GroupAccepted: Codable {
    struct Version: Codable {
        var epoch: String
        var step: UInt64
    }

    struct Sample: Codable {
        var tokens: String
        var logprobs: String
        var entropies: String?
        var finish: String
        var temperature: String
        var answer: String?
        var reward: Double
        var components: [String: Double]?
        /// `[from, count]` of the tokens the sampler inserted; absent when none were.
        var inserted: [Int]?
    }

    var group: String
    var actorRun: String
    var promptId: UInt64
    var lease: UInt64
    var version: Version
    var prompt: String
    /// Absent in logs written before the actors timed their sampling.
    var generationMs: UInt32?
    /// Absent when the actor did not report it.
    var tokensGenerated: UInt32?
    var samples: [Sample]

    enum CodingKeys: String, CodingKey {
        case group, actorRun = "actor_run", promptId = "prompt_id", lease, version, prompt, generationMs = "generation_ms"
        case tokensGenerated = "tokens_generated", samples
    }

    init(_ g: RolloutGroup) {
        group = g.key.description
        actorRun = String(g.key.actorRunId, radix: 16)
        promptId = g.promptId
        lease = g.leaseId
        version = Version(epoch: String(g.version.epoch, radix: 16), step: g.version.step)
        prompt = Base64Arrays.encode(g.promptTokens)
        generationMs = g.generationMs
        tokensGenerated = g.tokensGenerated > 0 ? g.tokensGenerated : nil
        samples = g.samples.map { s in
            Sample(tokens: Base64Arrays.encode(s.tokens), logprobs: Base64Arrays.encode(s.logprobs),
                   entropies: s.entropies.map(Base64Arrays.encode), finish: s.finishReason.rawValue,
                   temperature: Base64Arrays.encode([s.temperature]), answer: s.answer, reward: s.reward, components: s.components,
                   inserted: s.inserted.map { [$0.lowerBound, $0.count] })
        }
    }

    /// The group again; a field that does not decode is named.
    func rolloutGroup() throws -> RolloutGroup {
        func bad(_ field: String) -> RuntimeError { .corruptLog("group record field \(field)") }
        guard let key = GroupKey(parsing: group) else { throw bad("group") }
        guard let epoch = UInt64(version.epoch, radix: 16) else { throw bad("version.epoch") }
        guard let tokens = Base64Arrays.int32s(prompt) else { throw bad("prompt") }
        let samples = try self.samples.enumerated().map { i, s -> RolloutSample in
            func field(_ name: String) -> RuntimeError { bad("samples[\(i)].\(name)") }
            guard let t = Base64Arrays.int32s(s.tokens) else { throw field("tokens") }
            guard let lp = Base64Arrays.floats(s.logprobs) else { throw field("logprobs") }
            guard let finish = FinishReason(rawValue: s.finish) else { throw field("finish") }
            guard let temperature = Base64Arrays.floats(s.temperature)?.first else { throw field("temperature") }
            var inserted: Range<Int>?
            if let span = s.inserted {
                guard span.count == 2, span[0] >= 0, span[1] > 0, span[0] + span[1] <= t.count else { throw field("inserted") }
                inserted = span[0]..<(span[0] + span[1])
            }
            var entropies: [Float]?
            if let e = s.entropies { guard let decoded = Base64Arrays.floats(e) else { throw field("entropies") }; entropies = decoded }
            return RolloutSample(tokens: t, logprobs: lp, entropies: entropies, finishReason: finish, temperature: temperature,
                                 answer: s.answer, reward: s.reward, components: s.components ?? [:], inserted: inserted)
        }
        return RolloutGroup(key: key, promptId: promptId, leaseId: lease, version: PolicyVersion(epoch: epoch, step: version.step),
                            promptTokens: tokens, samples: samples, generationMs: generationMs ?? 0,
                            tokensGenerated: tokensGenerated ?? 0)
    }
}

extension RolloutGroup {
    /// The whole `group_accepted` body, byte for byte what `RecordEncoder` makes of `GroupAccepted`
    /// (tested), built without `Codable`, which cost more than the rest of the record on the learner's
    /// hot path. Nil when an id does not fit a JSON integer (the generic form names it).
    func recordBody() -> RecordBody? {
        guard let prompt = Int(exactly: promptId), let lease = Int(exactly: leaseId), let step = Int(exactly: version.step) else { return nil }
        var members: [String: JSONValue] = [
            "group": .string(key.description), "actor_run": .string(String(key.actorRunId, radix: 16)), "prompt_id": .integer(prompt),
            "lease": .integer(lease), "version": .object(["epoch": .string(String(version.epoch, radix: 16)), "step": .integer(step)]),
            "prompt": .string(Base64Arrays.encode(promptTokens)), "generation_ms": .integer(Int(generationMs)),
        ]
        if tokensGenerated > 0 { members["tokens_generated"] = .integer(Int(tokensGenerated)) }
        return RecordBody(members: members, fragments: ["samples": JSONFragment(write: writeSamplesJSON)])
    }

    /// Appends the record's `samples`, byte for byte what `RecordEncoder` makes of `GroupAccepted.samples`
    /// (keys sorted, arrays as base64), with no allocation per sample: with 16 samples, building a
    /// dictionary each took most of an accepted group's record time, and small temporary arrays most of
    /// the rest (docs/benchmarks.md). A non-finite number throws, naming the field as the generic form does.
    func writeSamplesJSON(into out: LineBuffer) throws {
        func key(_ k: StaticString) {
            out.append(0x22)
            out.append(k)
            out.append(0x22)
            out.append(0x3A)
        }
        func base64(_ bytes: UnsafeRawBufferPointer) {
            out.append(0x22)
            Base64Arrays.append(bytes, to: out)
            out.append(0x22)
        }
        func number(_ value: Double, _ field: @autoclosure () -> String) throws {
            do { try RecordEncoder.writeDouble(value, into: out) } catch let e as RecordEncoder.Unencodable { throw e.inside(field()) }
        }
        out.append(0x5B)
        for (n, s) in samples.enumerated() {
            if n > 0 { out.append(0x2C) }
            out.append(0x7B)
            if let a = s.answer {
                key("answer"); RecordEncoder.writeString(a, into: out); out.append(0x2C)
            }
            key("components")
            out.append(0x7B)
            func component(_ name: String, _ value: Double) throws {
                RecordEncoder.writeString(name, into: out)
                out.append(0x3A)
                try number(value, "[\(n)].components.\(name)")
            }
            // Keys sorted; a sample's only component needs no sorted copy of the keys.
            if s.components.count == 1, let (name, value) = s.components.first {
                try component(name, value)
            } else {
                for (i, name) in s.components.keys.sorted().enumerated() {
                    if i > 0 { out.append(0x2C) }
                    try component(name, s.components[name]!)
                }
            }
            out.append(0x7D)
            out.append(0x2C)
            if let e = s.entropies { key("entropies"); e.withUnsafeBytes { base64($0) }; out.append(0x2C) }
            key("finish"); RecordEncoder.writeString(s.finishReason.rawValue, into: out); out.append(0x2C)
            if let inserted = s.inserted {
                key("inserted")
                out.append(0x5B)
                RecordEncoder.writeInteger(inserted.lowerBound, into: out)
                out.append(0x2C)
                RecordEncoder.writeInteger(inserted.count, into: out)
                out.append(0x5D)
                out.append(0x2C)
            }
            key("logprobs"); s.logprobs.withUnsafeBytes { base64($0) }; out.append(0x2C)
            key("reward"); try number(s.reward, "[\(n)].reward"); out.append(0x2C)
            key("temperature"); withUnsafeBytes(of: s.temperature) { base64($0) }; out.append(0x2C)
            key("tokens"); s.tokens.withUnsafeBytes { base64($0) }
            out.append(0x7D)
        }
        out.append(0x5D)
    }
}
