import Foundation
import TroupeModel
import TroupeRL
import TroupeTensor

/// One configurable key: how to read it into a `RunConfig`, how to write it back out, and its range.
struct ConfigField {
    let key: String
    let read: (inout RunConfig, Any) throws -> Void
    let write: (RunConfig) -> Any

    static func int(_ key: String, _ path: WritableKeyPath<RunConfig, Int>, _ range: ClosedRange<Int>) -> ConfigField {
        ConfigField(key: key, read: { config, value in
            guard let n = JSONNumber.int(value) else { throw ConfigError(key: key, problem: "expected an integer, got \(describe(value))") }
            guard range.contains(n) else { throw ConfigError(key: key, problem: "\(n) is outside \(range.lowerBound)...\(range.upperBound)") }
            config[keyPath: path] = n
        }, write: { $0[keyPath: path] })
    }

    static func double(_ key: String, _ path: WritableKeyPath<RunConfig, Double>, _ range: ClosedRange<Double>) -> ConfigField {
        ConfigField(key: key, read: { config, value in
            guard let d = JSONNumber.double(value), d.isFinite else { throw ConfigError(key: key, problem: "expected a number, got \(describe(value))") }
            guard range.contains(d) else { throw ConfigError(key: key, problem: "\(d) is outside \(range.lowerBound)...\(range.upperBound)") }
            config[keyPath: path] = d
        }, write: { $0[keyPath: path] })
    }

    /// `emptyMeansOff`: the empty string is a value (it turns the feature off) rather than a mistake.
    static func string(_ key: String, _ path: WritableKeyPath<RunConfig, String>, allowed: [String]? = nil, emptyMeansOff: Bool = false) -> ConfigField {
        ConfigField(key: key, read: { config, value in
            guard let s = value as? String, !s.isEmpty || emptyMeansOff else {
                throw ConfigError(key: key, problem: "expected a non-empty string, got \(describe(value))")
            }
            if let allowed, !allowed.contains(s) {
                throw ConfigError(key: key, problem: "\"\(s)\" is not one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))")
            }
            config[keyPath: path] = s
        }, write: { $0[keyPath: path] })
    }

    static func optionalString(_ key: String, _ path: WritableKeyPath<RunConfig, String?>) -> ConfigField {
        ConfigField(key: key, read: { config, value in
            if value is NSNull { config[keyPath: path] = nil; return }
            guard let s = value as? String, !s.isEmpty else { throw ConfigError(key: key, problem: "expected a string or null, got \(describe(value))") }
            config[keyPath: path] = s
        }, write: { $0[keyPath: path].map { $0 as Any } ?? NSNull() })
    }

    static func bool(_ key: String, _ path: WritableKeyPath<RunConfig, Bool>) -> ConfigField {
        ConfigField(key: key, read: { config, value in
            guard let b = JSONNumber.bool(value) else { throw ConfigError(key: key, problem: "expected true or false, got \(describe(value))") }
            config[keyPath: path] = b
        }, write: { $0[keyPath: path] })
    }

    static func describe(_ value: Any) -> String {
        if value is NSNull { return "null" }
        if let s = value as? String { return "\"\(s)\"" }
        return "\(value)"
    }
}

extension RunConfig {
    static let fields: [ConfigField] = [
        .string("run.name", \.run.name),
        ConfigField(key: "run.seed", read: { c, v in
            guard let n = JSONNumber.int(v), n >= 0 else { throw ConfigError(key: "run.seed", problem: "expected a non-negative integer, got \(ConfigField.describe(v))") }
            c.run.seed = UInt64(n)
        }, write: { Int($0.run.seed) }),
        .int("run.max_steps", \.run.maxSteps, 1...10_000_000),
        .optionalString("run.directory", \.run.directory),
        .string("model.path", \.model.path),
        .optionalString("task.spec", \.task.spec),
        .optionalString("task.file", \.task.file),
        .string("task.split", \.task.split, allowed: ["train", "test"]),
        .int("task.count", \.task.count, 1...10_000_000),
        .string("task.bad_lines", \.task.badLines, allowed: ["refuse", "skip"]),
        .bool("task.label_free", \.task.labelFree),
        .double("optimizer.learning_rate", \.optimizer.learningRate, 0...1),
        .double("optimizer.beta1", \.optimizer.beta1, 0...0.999999),
        .double("optimizer.beta2", \.optimizer.beta2, 0...0.999999999),
        .double("optimizer.epsilon", \.optimizer.epsilon, 1e-30...1),
        .double("optimizer.weight_decay", \.optimizer.weightDecay, 0...10),
        ConfigField(key: "optimizer.max_grad_norm", read: { c, v in
            if v is NSNull { c.optimizer.maxGradNorm = nil; return }
            guard let d = JSONNumber.double(v), d.isFinite, d > 0 else {
                throw ConfigError(key: "optimizer.max_grad_norm", problem: "expected a positive number or null, got \(ConfigField.describe(v))")
            }
            c.optimizer.maxGradNorm = d
        }, write: { $0.optimizer.maxGradNorm.map { $0 as Any } ?? NSNull() }),
        .string("optimizer.schedule", \.schedule.kind, allowed: ["constant", "cosine"]),
        .int("optimizer.warmup_steps", \.schedule.warmupSteps, 0...1_000_000),
        .double("sampling.temperature", \.sampling.temperature, 0.01...10),
        .int("sampling.top_k", \.sampling.topK, 0...1_000_000),
        .double("sampling.top_p", \.sampling.topP, 0.001...1),
        .int("sampling.max_new_tokens", \.sampling.maxNewTokens, 1...65536),
        .int("sampling.group_size", \.sampling.groupSize, 1...4096),
        .int("learner.batch_groups", \.learner.batchGroups, 1...100_000),
        .int("learner.max_staleness", \.learner.maxStaleness, 0...1000),
        .int("learner.publish_every", \.learner.publishEvery, 1...1_000_000),
        .int("learner.checkpoint_every", \.learner.checkpointEvery, 1...1_000_000),
        .int("learner.micro_batch_tokens", \.learner.microBatchTokens, 16...10_000_000),
        .int("learner.lease_size", \.learner.leaseSize, 1...1024),
        .double("learner.lease_timeout_s", \.learner.leaseTimeoutSeconds, 0.1...86400),
        .double("learner.heartbeat_timeout_s", \.learner.heartbeatTimeoutSeconds, 0.5...86400),
        .int("learner.credit", \.learner.credit, 1...1024),
        .int("learner.threads", \.learner.threads, 1...256),
        .string("learner.shared_memory_dir", \.learner.sharedMemoryDirectory, emptyMeansOff: true),
        .int("learner.relay_fanout", \.learner.relayFanout, 0...64),
        .string("endpoints.bind_host", \.endpoints.bindHost),
        .string("endpoints.advertise_host", \.endpoints.advertiseHost),
        .int("endpoints.control_port", \.endpoints.controlPort, 0...65535),
        .int("endpoints.weights_port", \.endpoints.weightsPort, 0...65535),
        .int("endpoints.announce_port", \.endpoints.announcePort, 0...65535),
        .int("endpoints.logs_port", \.endpoints.logsPort, 0...65535),
        .int("endpoints.logs_in_port", \.endpoints.logsInPort, 0...65535),
        .int("actors.count", \.actors.count, 0...1024),
        .int("actors.threads", \.actors.threads, 1...256),
        .int("eval.every", \.eval.every, 0...1_000_000),
        .int("eval.samples", \.eval.samples, 1...4096),
        .double("eval.temperature", \.eval.temperature, 0.01...10),
    ]

    /// Reads a configuration object (sections of keys, as in the file) and then `overrides`
    /// (`section.key=value`, the value parsed as JSON when it parses, else taken as a string).
    public static func parse(_ object: [String: Any], overrides: [String] = []) throws -> RunConfig {
        var config = RunConfig()
        var algorithm: [String: Any] = RunConfig.defaultAlgorithm
        if overrides.contains(where: { $0.hasPrefix("algorithm.preset=") }) { algorithm = [:] }
        for (section, value) in object {
            if section == "algorithm" {
                guard let a = value as? [String: Any] else { throw ConfigError(key: "algorithm", problem: "expected an object") }
                algorithm = a
                continue
            }
            guard let keys = value as? [String: Any] else {
                if fields.contains(where: { $0.key.hasPrefix(section + ".") }) {
                    throw ConfigError(key: section, problem: "expected an object of keys")
                }
                throw ConfigError(key: section, problem: "unknown section (known: \(sectionNames.joined(separator: ", ")), algorithm)")
            }
            for (key, v) in keys { try config.set("\(section).\(key)", v) }
        }
        for item in overrides {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ConfigError(key: item, problem: "an override must look like section.key=value")
            }
            let key = String(item[..<eq]), text = String(item[item.index(after: eq)...])
            let value: Any = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
            if key.hasPrefix("algorithm.") {
                algorithm[String(key.dropFirst("algorithm.".count))] = value
            } else {
                try config.set(key, value)
            }
        }
        do {
            config.algorithmJSON = try JSONValue(any: algorithm, field: "algorithm")
            config.algorithm = try AlgorithmOptions.resolve(config.algorithmJSON)
        } catch let error as AlgorithmError {
            throw ConfigError(key: "algorithm.\(error.field)", problem: error.problem)
        }
        try config.validate()
        return config
    }

    static var sectionNames: [String] {
        var seen: [String] = []
        for f in fields { let s = String(f.key.split(separator: ".")[0]); if !seen.contains(s) { seen.append(s) } }
        return seen
    }

    mutating func set(_ key: String, _ value: Any) throws {
        guard let field = Self.fields.first(where: { $0.key == key }) else {
            let section = key.split(separator: ".").first.map(String.init) ?? key
            let known = Self.fields.filter { $0.key.hasPrefix(section + ".") }.map(\.key)
            throw ConfigError(key: key, problem: known.isEmpty ? "unknown key" : "unknown key (known in \(section): \(known.joined(separator: ", ")))")
        }
        try field.read(&self, value)
    }

    /// Checks that keys agree with each other.
    public func validate() throws {
        if task.spec == nil && task.file == nil { throw ConfigError(key: "task.spec", problem: "set task.spec or task.file") }
        if task.spec != nil && task.file != nil { throw ConfigError(key: "task.file", problem: "set only one of task.spec and task.file") }
        if endpoints.advertiseHost == "0.0.0.0" || endpoints.advertiseHost == "*" {
            throw ConfigError(key: "endpoints.advertise_host", problem: "must be an address others can connect to, not \(endpoints.advertiseHost)")
        }
        // The actors sample sampling.group_size completions per prompt; an algorithm that asks for another
        // count (a preset's recommendation, or a user's override) would otherwise be silently ignored.
        if let samples = algorithm.sampling.samplesPerPrompt, samples != sampling.groupSize {
            throw ConfigError(key: "algorithm.sampling.samples_per_prompt",
                              problem: "is \(samples) (from the preset or an override) but the actors sample sampling.group_size = \(sampling.groupSize) completions per prompt: set sampling.group_size=\(samples) to follow it, or this key to null to keep \(sampling.groupSize)")
        }
        if let train = algorithm.sampling.trainSamples, train > sampling.groupSize {
            throw ConfigError(key: "algorithm.sampling.train_samples", problem: "\(train) exceeds sampling.group_size \(sampling.groupSize)")
        }
        do { try optimizer.validate() } catch let e as OptimizerError {
            throw ConfigError(key: "optimizer", problem: e.description)
        }
    }

    /// The resolved configuration as a JSON object (every key, defaults included).
    public func resolvedJSON() -> [String: Any] {
        var out: [String: [String: Any]] = [:]
        for f in Self.fields {
            let parts = f.key.split(separator: ".", maxSplits: 1).map(String.init)
            out[parts[0], default: [:]][parts[1]] = f.write(self)
        }
        var result: [String: Any] = out
        if let data = try? algorithmJSON.serialized(compact: true), let a = try? JSONSerialization.jsonObject(with: data) {
            result["algorithm"] = a
        }
        return result
    }

    public func resolvedJSONData() -> Data {
        (try? JSONSerialization.data(withJSONObject: resolvedJSON(), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    public static func load(path: String?, overrides: [String]) throws -> RunConfig {
        guard let path else { return try parse([:], overrides: overrides) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: "--config", problem: "cannot read \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) else {
            throw ConfigError(key: "--config", problem: "\(path) is not valid JSON")
        }
        guard let dict = object as? [String: Any] else { throw ConfigError(key: "--config", problem: "\(path): top level must be an object") }
        return try parse(dict, overrides: overrides)
    }
}
