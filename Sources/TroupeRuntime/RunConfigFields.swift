import Foundation
import TroupeJSON
import TroupeModel
import TroupeRL
import TroupeTasks
import TroupeTensor
import TroupeTokenizer
import TroupeWire

/// One key of the run configuration, declared once: its name, the `RunConfig` field it sets (whose
/// initial value is the default), its type, range or allowed values, and a one-line doc. Decoding,
/// range checks, `troupe config` and the table in docs/configuration.md all come from `RunConfig.settings`.
///
/// A table of key paths rather than a property wrapper per field: the keys' sections are not the
/// struct nesting (`optimizer.*` lands in `AdamWOptions` and `Schedule`, types of other modules), and
/// the fields stay plain stored properties that the rest of the code reads and the structs stay Equatable.
struct Setting {
    let key: String
    /// "integer", "number", "string", "string or null", …
    let type: String
    /// The range or the allowed values, as the doc table prints them ("" when any value of the type is fine).
    let range: String
    let doc: String
    /// Sets the field from a JSON value, or returns what is wrong with the value.
    let read: (inout RunConfig, JSONValue) -> String?
    let write: (RunConfig) -> JSONValue

    var section: String { String(key.prefix(while: { $0 != "." })) }
    var name: String { String(key.drop(while: { $0 != "." }).dropFirst()) }

    static func int(_ key: String, _ path: WritableKeyPath<RunConfig, Int>, _ range: ClosedRange<Int>, _ doc: String) -> Setting {
        Setting(key: key, type: "integer", range: "\(range.lowerBound) … \(range.upperBound)", doc: doc, read: { config, value in
            guard let n = value.int else { return "expected an integer, got \(describe(value))" }
            guard range.contains(n) else { return "\(n) is outside \(range.lowerBound)...\(range.upperBound)" }
            config[keyPath: path] = n
            return nil
        }, write: { .integer($0[keyPath: path]) })
    }

    /// A list of sampling temperatures (0.01 … 10 each) or null; `single` names the key used when null.
    static func temperatures(_ key: String, _ path: WritableKeyPath<RunConfig, [Double]?>, count: String, single: String, _ doc: String) -> Setting {
        Setting(key: key, type: "array of numbers or null", range: "0.01 … 10 each, \(count) of them", doc: doc, read: { config, value in
            if value.isNull { config[keyPath: path] = nil; return nil }
            guard case let .array(items) = value else { return "expected an array of numbers or null, got \(describe(value))" }
            guard !items.isEmpty else { return "an empty list of temperatures cannot produce a sample: give at least one, or null to sample at \(single)" }
            var temperatures: [Double] = []
            for (i, item) in items.enumerated() {
                guard let t = item.double, t.isFinite, (0.01...10).contains(t) else { return "entry \(i) is \(describe(item)); expected a number in 0.01...10" }
                temperatures.append(t)
            }
            config[keyPath: path] = temperatures
            return nil
        }, write: { $0[keyPath: path].map { .array($0.map(JSONValue.number)) } ?? .null })
    }

    static func double(_ key: String, _ path: WritableKeyPath<RunConfig, Double>, _ range: ClosedRange<Double>, _ doc: String) -> Setting {
        Setting(key: key, type: "number", range: "\(format(range.lowerBound)) … \(format(range.upperBound))", doc: doc, read: { config, value in
            guard let d = value.double, d.isFinite else { return "expected a number, got \(describe(value))" }
            guard range.contains(d) else { return "\(d) is outside \(range.lowerBound)...\(range.upperBound)" }
            config[keyPath: path] = d
            return nil
        }, write: { .number($0[keyPath: path]) })
    }

    /// `emptyMeansOff`: the empty string is a value (it turns the feature off) rather than a mistake.
    static func string(_ key: String, _ path: WritableKeyPath<RunConfig, String>, allowed: [String]? = nil,
                       emptyMeansOff: Bool = false, _ doc: String) -> Setting {
        let range = allowed.map { $0.map { "`\($0)`" }.joined(separator: ", ") } ?? (emptyMeansOff ? "" : "non-empty")
        return Setting(key: key, type: "string", range: range, doc: doc, read: { config, value in
            guard case let .string(s) = value, !s.isEmpty || emptyMeansOff else {
                return "expected a non-empty string, got \(describe(value))\(quotingHint(key, value))"
            }
            if let allowed, !allowed.contains(s) {
                return "\"\(s)\" is not one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))"
            }
            config[keyPath: path] = s
            return nil
        }, write: { .string($0[keyPath: path]) })
    }

    static func optionalString(_ key: String, _ path: WritableKeyPath<RunConfig, String?>, _ doc: String) -> Setting {
        Setting(key: key, type: "string or null", range: "non-empty", doc: doc, read: { config, value in
            if value.isNull { config[keyPath: path] = nil; return nil }
            guard case let .string(s) = value, !s.isEmpty else { return "expected a string or null, got \(describe(value))\(quotingHint(key, value))" }
            config[keyPath: path] = s
            return nil
        }, write: { $0[keyPath: path].map(JSONValue.string) ?? .null })
    }

    static func bool(_ key: String, _ path: WritableKeyPath<RunConfig, Bool>, _ doc: String) -> Setting {
        Setting(key: key, type: "boolean", range: "", doc: doc, read: { config, value in
            guard case let .bool(b) = value else { return "expected true or false, got \(describe(value))" }
            config[keyPath: path] = b
            return nil
        }, write: { .bool($0[keyPath: path]) })
    }

    static func describe(_ value: JSONValue) -> String { value.description }

    /// `--set run.name=123` reads 123 as JSON, a number: say how to write it as a string.
    static func quotingHint(_ key: String, _ value: JSONValue) -> String {
        switch value {
        case .integer, .number, .bool: return " (a --set value is read as JSON first: write --set '\(key)=\"\(value)\"' for the string)"
        default: return ""
        }
    }

    static func format(_ value: Double) -> String {
        let text = value.description
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }
}

extension RunConfig {
    static let settings: [Setting] = [
        .string("run.name", \.run.name, "names the run directory `runs/<name>` (`troupe run` without a file or `run.name`: `ttrl-<date>-<time>`)"),
        Setting(key: "run.seed", type: "integer", range: "0 … 9e15", doc: "seeds task generation and every sample's random stream", read: { config, value in
            // Below 2^53, so that every JSON reader holds it exactly.
            guard let n = value.int, (0...9_000_000_000_000_000).contains(n) else {
                return "expected an integer in 0 … 9000000000000000, got \(Setting.describe(value))"
            }
            config.run.seed = UInt64(n)
            return nil
        }, write: { .integer(Int($0.run.seed)) }),
        .int("run.max_steps", \.run.maxSteps, 1...10_000_000, "optimizer steps; the learner finishes after this many"),
        .optionalString("run.directory", \.run.directory, "the run directory; null: `runs/<name>`"),
        .string("model.path", \.model.path, "a Hugging Face style model directory (config.json, model.safetensors, optional tokenizer.json)"),
        .optionalString("task.spec", \.task.spec, "a built-in task (docs/tasks.md); null when `task.file` is set"),
        .optionalString("task.file", \.task.file, "a JSONL task file `{\"id\"?, \"prompt\", \"answer\"?}`"),
        .string("task.split", \.task.split, allowed: ["train", "test"], "split of a built-in task"),
        .int("task.count", \.task.count, 1...10_000_000, "prompts in the run"),
        .string("task.bad_lines", \.task.badLines, allowed: ["refuse", "skip"], "what to do with bad lines of `task.file` (each is reported with its line number)"),
        .bool("task.label_free", \.task.labelFree, "test-time mode: answers never reach the learner, the actors or the reward (so a reward that needs them, `verifiable` or `serial_decay`, is refused); `troupe run` uses them only to evaluate"),
        .string("task.chat_template", \.task.chatTemplate, allowed: ["auto", "none"], "`auto`: each prompt becomes the user message of the model directory's chat template (tokenizer_config.json `chat_template` or chat_template.jinja) when it has one; `none`: prompts are given as written (docs/models.md)"),
        .optionalString("task.system_prompt", \.task.systemPrompt, "the system message of chat-template prompts, e.g. `Please reason step by step, and put your final answer within \\boxed{}.`; null: none (the template may write its default one)"),
        .optionalString("task.chat_date", \.task.chatDate, "the date a chat template's `strftime_now()` writes, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (Hugging Face reads the clock there; a fixed date keeps runs reproducible); null: `strftime_now` is undefined, and Llama 3.x templates write their own date (docs/models.md)"),
        .double("optimizer.learning_rate", \.optimizer.learningRate, 0...1, "AdamW learning rate (the peak, with a schedule)"),
        .double("optimizer.beta1", \.optimizer.beta1, 0...0.999999, "AdamW first-moment decay"),
        .double("optimizer.beta2", \.optimizer.beta2, 0...0.999999999, "AdamW second-moment decay"),
        .double("optimizer.epsilon", \.optimizer.epsilon, 1e-30...1, "AdamW denominator epsilon"),
        .double("optimizer.weight_decay", \.optimizer.weightDecay, 0...10, "decoupled weight decay on matrices (not norms or biases)"),
        Setting(key: "optimizer.max_grad_norm", type: "number or null", range: "> 0", doc: "global-norm gradient clipping; null disables", read: { config, value in
            if value.isNull { config.optimizer.maxGradNorm = nil; return nil }
            guard let d = value.double, d.isFinite, d > 0 else { return "expected a positive number or null, got \(Setting.describe(value))" }
            config.optimizer.maxGradNorm = d
            return nil
        }, write: { $0.optimizer.maxGradNorm.map(JSONValue.number) ?? .null }),
        .string("optimizer.schedule", \.schedule.kind, allowed: ["constant", "cosine"], "learning-rate schedule over `run.max_steps` after the warm-up: constant, or cosine decay to 10%"),
        .int("optimizer.warmup_steps", \.schedule.warmupSteps, 0...1_000_000, "linear learning-rate warm-up steps"),
        .double("sampling.temperature", \.sampling.temperature, 0.01...10, "sampling temperature; the learner scores tokens at the same temperature"),
        .int("sampling.top_k", \.sampling.topK, 0...1_000_000, "top-k truncation (0 disables); behaviour log-probs are always from the full distribution"),
        .double("sampling.top_p", \.sampling.topP, 0.001...1, "nucleus truncation (1 disables); behaviour log-probs are always from the full distribution"),
        .temperatures("sampling.temperatures", \.sampling.temperatures, count: "1 … `sampling.group_size`", single: "sampling.temperature",
                      "a multi-temperature group: sample j is drawn (and scored by the learner) at entry j mod n, every sample votes in one majority; null: all at `sampling.temperature`"),
        .string("sampling.shape", \.sampling.shape, allowed: ["preset", "independent", "serial", "tree"], "group shape: G independent samples, `serial` (S-GRPO: one path, then G − 1 early exits from it, earliest first, then the path) or `tree` (ETTRL: G / (1 + forks · branching) roots forking at their highest-entropy tokens; the leaves); `preset`: the algorithm's `sampling.shape`"),
        .int("sampling.tree_forks", \.sampling.treeForks, 0...65536, "tree groups: each root forks at its this-many highest-entropy tokens (ETTRL's N = 2)"),
        .int("sampling.tree_branching", \.sampling.treeBranching, 1...4096, "tree groups: branches started at each fork, each redrawing the fork token (ETTRL's B = 2)"),
        .string("sampling.serial_exit_phrase", \.sampling.serialExitPhrase, "serial groups: the text appended to the path's prefix at each exit (S-GRPO's; it may not contain a stop sequence of the task)"),
        .int("sampling.serial_answer_tokens", \.sampling.serialAnswerTokens, 1...65536, "serial groups: most answer tokens sampled after the exit phrase"),
        .int("sampling.max_new_tokens", \.sampling.maxNewTokens, 1...65536, "completion length cap (finish reason `length`)"),
        .int("sampling.group_size", \.sampling.groupSize, 1...4096, "completions per prompt (G); with a majority-vote reward, the votes"),
        .int("learner.batch_groups", \.learner.batchGroups, 1...100_000, "groups per optimizer step"),
        .int("learner.max_staleness", \.learner.maxStaleness, 0...1000, "versions a group may lag the weights being trained; 0 = synchronous on-policy"),
        .int("learner.publish_every", \.learner.publishEvery, 1...1_000_000, "publish new weights every this many steps; at most `learner.max_staleness` + 1"),
        .int("learner.checkpoint_every", \.learner.checkpointEvery, 1...1_000_000, "checkpoint every this many steps (and at the end)"),
        .int("learner.micro_batch_tokens", \.learner.microBatchTokens, 16...10_000_000, "packed tokens per forward/backward (bounds memory; never changes the gradient)"),
        .int("learner.lease_size", \.learner.leaseSize, 1...1024, "prompts per lease"),
        .double("learner.lease_timeout_s", \.learner.leaseTimeoutSeconds, 0.1...86400, "an unfinished lease returns to the queue after this"),
        .double("learner.heartbeat_timeout_s", \.learner.heartbeatTimeoutSeconds, 0.5...86400, "a silent actor is evicted after this (the Swift actor heartbeats while it samples; one that samples on its conversation's thread, as the Python reference actor does, must finish each group within it)"),
        .int("learner.credit", \.learner.credit, 1...1024, "groups an actor may have unacknowledged (see [credit](#learnercredit))"),
        .int("learner.threads", \.learner.threads, 1...256, "OpenBLAS threads of the learner (recorded in the run log; replay uses the same); at 1, large matrix products still use two cores, split by rows with the same bits (docs/ARCHITECTURE.md §6)"),
        .string("learner.backward_precision", \.learner.backwardPrecision, allowed: ["fp32", "bf16"], "the backward pass's linear-layer products: `fp32` (OpenBLAS sgemm) or `bf16` (operands rounded to bfloat16, sums in float; needs a CPU with AVX-512 BF16, refused on others); the forward, and so every log-prob, stays fp32 (see [bf16 backward](#learnerbackward_precision))"),
        .string("learner.shared_memory_dir", \.learner.sharedMemoryDirectory, emptyMeansOff: true, "published versions are also files here that actors on the learner's host map; `\"\"` turns it off (see [shared memory](#learnershared_memory_dir))"),
        .int("learner.relay_fanout", \.learner.relayFanout, 0...64, "actors each node of the weight relay tree serves; 1 is a chain, 0 has the learner serve every actor (see [relay](#learnerrelay_fanout))"),
        .string("endpoints.bind_host", \.endpoints.bindHost, "where the learner binds (`*` for every interface; IPv4: an IPv6 address is refused)"),
        .string("endpoints.advertise_host", \.endpoints.advertiseHost, "the address actors are told to connect to: an IPv4 address or a host name (never `0.0.0.0`)"),
        .int("endpoints.control_port", \.endpoints.controlPort, 1...65535, "control socket; `troupe run` picks a free block of ports when these are busy"),
        .int("endpoints.weights_port", \.endpoints.weightsPort, 1...65535, "weight chunks"),
        .int("endpoints.announce_port", \.endpoints.announcePort, 1...65535, "new-version announcements"),
        .int("endpoints.logs_port", \.endpoints.logsPort, 1...65535, "monitors subscribe here (the log proxy's XPUB side)"),
        .int("endpoints.logs_in_port", \.endpoints.logsInPort, 1...65535, "processes publish their log events here (the log proxy's XSUB side)"),
        .int("endpoints.metrics_port", \.endpoints.metricsPort, 0...65535, "the learner's HTTP `/metrics` for Prometheus, on `bind_host`; 0: none (metrics.prom is written either way)"),
        .int("actors.count", \.actors.count, 1...1024, "actors `troupe run` starts"),
        .int("actors.threads", \.actors.threads, 1...256, "OpenBLAS threads per actor"),
        .string("actors.sampling_priority", \.actors.samplingPriority, allowed: ["auto", "idle", "normal"], "`idle`: an actor's sampling threads run in Linux's `SCHED_IDLE` class, on the cycles nothing else on its cores wants (see [sampling priority](#actorssampling_priority)); `auto`: idle when `learner.max_staleness` ≥ 1, normal otherwise"),
        .int("eval.every", \.eval.every, 0...1_000_000, "`troupe run` evaluates the latest checkpoint every this many steps (0: start and end only)"),
        .int("eval.samples", \.eval.samples, 1...4096, "samples per prompt for pass@1 and maj@k"),
        .double("eval.temperature", \.eval.temperature, 0.01...10, "evaluation sampling temperature"),
        .temperatures("eval.temperatures", \.eval.temperatures, count: "1 … `eval.samples`", single: "eval.temperature",
                      "multi-temperature evaluation: sample j of each prompt is drawn at entry j mod n and all `eval.samples` vote in one maj@k; null: all at `eval.temperature`"),
        Setting(key: "reward_workers.endpoints", type: "list of strings", range: "`tcp://HOST:PORT`, `ipc://PATH`", doc: "reward workers the learner asks for every sample's score (needs `algorithm.reward.kind` `external`; see docs/rewards.md); `[]`: none", read: { config, value in
            guard case let .array(items) = value else { return "expected a list of endpoints, got \(Setting.describe(value))" }
            var endpoints: [String] = []
            for item in items {
                guard case let .string(text) = item else { return "expected endpoint strings, got \(Setting.describe(item))" }
                do { _ = try Endpoint(parsing: text) } catch { return "\(text): \(error)" }
                endpoints.append(text)
            }
            config.rewardWorkers.endpoints = endpoints
            return nil
        }, write: { .array($0.rewardWorkers.endpoints.map(JSONValue.string)) }),
        .string("reward_workers.version", \.rewardWorkers.version, emptyMeansOff: true, "the reward definition the workers must report (a response with another is refused); part of the cache key"),
        .double("reward_workers.deadline_s", \.rewardWorkers.deadlineSeconds, 0.01...3600, "seconds one attempt at a sample's score may take, the wait for a free worker included"),
        .int("reward_workers.attempts", \.rewardWorkers.attempts, 1...16, "attempts per sample, each on a worker not yet tried for it while one is up and has failed nothing since its last score (docs/rewards.md)"),
        .int("reward_workers.max_in_flight", \.rewardWorkers.maxInFlight, 1...4096, "requests in flight per worker"),
        Setting(key: "reward_workers.fallback_reward", type: "number or null", range: "±1e6", doc: "the score of a sample no worker scored in its attempts; null: its group is refused as `reward_unavailable` and its prompt returns to the queue", read: { config, value in
            if value.isNull { config.rewardWorkers.fallbackReward = nil; return nil }
            guard let d = value.double, d.isFinite, abs(d) <= 1e6 else { return "expected a number within ±1e6 or null, got \(Setting.describe(value))" }
            config.rewardWorkers.fallbackReward = d
            return nil
        }, write: { $0.rewardWorkers.fallbackReward.map(JSONValue.number) ?? .null }),
        .int("reward_workers.cache_entries", \.rewardWorkers.cacheEntries, 0...100_000_000, "scores the learner caches by (reward version, prompt and reference, completion); 0 turns the cache off"),
        .double("reward_workers.outage_stop_s", \.rewardWorkers.outageStopSeconds, 0...604_800, "the learner stops (a checkpoint, exit status 1) when samples go without a score after every attempt and no worker gives a score for this many seconds (errors and garbage are no scores, nor is one from the cache; a spell with no sample failing starts the count again); 0: it never stops for that"),
        Setting(key: "reward_workers.server_keys", type: "list of strings", range: "paths of `.key` files: one, or one per endpoint", doc: "the workers' public CURVE keys (`troupe keygen`; a worker's `--key`): one file for every worker, or one per entry of `reward_workers.endpoints` in order; `[]`: plaintext, allowed only for a learner that runs with `--insecure-plaintext` (see docs/rewards.md)", read: { config, value in
            guard case let .array(items) = value else { return "expected a list of key file paths, got \(Setting.describe(value))" }
            var paths: [String] = []
            for item in items {
                guard case let .string(path) = item, !path.isEmpty else { return "expected non-empty key file paths, got \(Setting.describe(item))" }
                paths.append(path)
            }
            config.rewardWorkers.serverKeys = paths
            return nil
        }, write: { .array($0.rewardWorkers.serverKeys.map(JSONValue.string)) }),
        .string("reward_workers.client_key", \.rewardWorkers.clientKey, emptyMeansOff: true, "the secret key file (`.key_secret`) the learner presents to its workers, whose `--allow` must list its public file; `\"\"`: the learner's own `--key`"),
    ]

    /// The sections in table order; `algorithm` comes after them.
    static var sectionNames: [String] {
        var seen: [String] = []
        for setting in settings where !seen.contains(setting.section) { seen.append(setting.section) }
        return seen
    }
}

// MARK: reading

extension RunConfig: Decodable {
    /// Strict: unknown sections and keys, wrong types and out-of-range values are errors naming the
    /// key (the decoder adds the position). Keys not given keep their defaults.
    package init(from decoder: any Decoder) throws {
        self.init()
        let root = try decoder.container(keyedBy: JSONKey.self)
        for section in Self.sectionNames where root.contains(JSONKey(section)) {
            let keys = try root.nestedContainer(keyedBy: JSONKey.self, forKey: JSONKey(section))
            for setting in Self.settings where setting.section == section && keys.contains(JSONKey(setting.name)) {
                let value = try keys.decode(JSONValue.self, forKey: JSONKey(setting.name))
                if let problem = setting.read(&self, value) {
                    throw DecodingError.dataCorruptedError(forKey: JSONKey(setting.name), in: keys, debugDescription: problem)
                }
            }
        }
        if root.contains(JSONKey("algorithm")) {
            algorithmJSON = try root.decode(JSONValue.self, forKey: JSONKey("algorithm"))
            guard case .object = algorithmJSON else {
                throw DecodingError.dataCorruptedError(forKey: JSONKey("algorithm"), in: root,
                                                       debugDescription: "expected an object, got \(algorithmJSON.typeName)")
            }
            algorithm = try AlgorithmOptions.resolve(algorithmJSON)
        }
    }

    /// Reads a configuration (sections of keys, as in the file) after applying `overrides`
    /// (`section.key=value`, the value parsed as JSON when it parses, else taken as a string) to it.
    /// `sourceMap` gives errors about the file's values their line and column.
    package static func parse(_ document: JSONDocument, overrides: [String] = []) throws -> RunConfig {
        var document = document
        try applyOverrides(overrides, to: &document)
        let config: RunConfig
        do {
            config = try JSONValueDecoder().decode(RunConfig.self, from: document)
        } catch let error as JSONError {
            throw ConfigError(key: error.path ?? "--config", problem: error.problem, location: error.location)
        } catch let error as AlgorithmError {
            // An unknown option is pointed at by its key, a bad value by the value.
            let key = "algorithm.\(error.field)", map = document.sourceMap
            let location = error.problem.hasPrefix("unknown") ? map.location(ofKey: key) : map.location(ofValue: key)
            throw ConfigError(key: key, problem: error.problem, location: location)
        }
        do {
            try config.validate()
        } catch var error as ConfigError {
            error.location = document.sourceMap.location(ofValue: error.key)
            throw error
        }
        return config
    }

    /// Whether `value` is one the setting `key` takes on its own (its type and range, declared once in
    /// `settings`), and that range as the docs print it: for command-line flags that stand for a setting.
    package static func admits(_ value: JSONValue, as key: String) -> (ok: Bool, range: String) {
        guard let setting = settings.first(where: { $0.key == key }) else { preconditionFailure("no setting \(key)") }
        var scratch = RunConfig()
        return (setting.read(&scratch, value) == nil, setting.range)
    }

    /// A configuration built from a value (no file positions).
    package static func parse(_ value: JSONValue, overrides: [String] = []) throws -> RunConfig {
        try parse(JSONDocument(value: value, sourceMap: JSONSourceMap(source: "--config")), overrides: overrides)
    }

    /// Sets each `section.key=value` in the tree (an `algorithm.…` override as a dotted key of the
    /// algorithm section, replacing the same key written nested). Without an `algorithm` section the
    /// run's default algorithm is used, or nothing but the preset when an override names one.
    static func applyOverrides(_ overrides: [String], to document: inout JSONDocument) throws {
        guard case var .object(root) = document.value else {
            let location = document.sourceMap.location(ofValue: "")
            throw ConfigError(key: location == nil ? "--config" : "", problem: "top level must be an object, got \(document.value.typeName)",
                              location: location)
        }
        if root["algorithm"] == nil {
            root["algorithm"] = overrides.contains(where: { $0.hasPrefix("algorithm.preset=") }) ? .object([:]) : defaultAlgorithm
        }
        for item in overrides {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ConfigError(key: "--set \(item)", problem: "an override must look like section.key=value")
            }
            let key = String(item[..<eq]), text = String(item[item.index(after: eq)...])
            let value = (try? JSONValue.parse(text)) ?? .string(text)
            let parts = key.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigError(key: "--set \(item)", problem: "an override must look like section.key=value")
            }
            var section = root[parts[0]] ?? .object([:])
            guard case var .object(members) = section else {
                throw ConfigError(key: parts[0], problem: "expected an object of keys, got \(section.typeName)",
                                  location: document.sourceMap.location(ofValue: parts[0]))
            }
            if parts[0] == "algorithm", let dot = parts[1].firstIndex(of: "."),
               case var .object(nested)? = members[String(parts[1][..<dot])] {
                nested[String(parts[1][parts[1].index(after: dot)...])] = nil
                members[String(parts[1][..<dot])] = .object(nested)
            }
            members[parts[1]] = value
            section = .object(members)
            root[parts[0]] = section
            document.sourceMap.replace(key, origin: "--set \(item)")
        }
        document.value = .object(root)
    }

    /// Reads `path` (JSON, `--config`'s file) or starts from the defaults, then applies `overrides`.
    package static func load(path: String?, overrides: [String]) throws -> RunConfig {
        guard let path else { return try parse(.object([:]), overrides: overrides) }
        return try read(path, overrides: overrides, givenAsOption: true)
    }

    /// A run directory's `config.json`, as its learner froze it, then `overrides`; errors name the file.
    package static func loadFrozen(path: String, overrides: [String] = []) throws -> RunConfig {
        try read(path, overrides: overrides, givenAsOption: false)
    }

    private static func read(_ path: String, overrides: [String], givenAsOption: Bool) throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            let descriptor = open(path, O_RDONLY)
            let reason = descriptor < 0 ? String(cString: strerror(errno)) : "not a readable file"
            if descriptor >= 0 { close(descriptor) }
            throw givenAsOption ? ConfigError(key: "--config", problem: "cannot read \(path): \(reason)") as any Error
                : RuntimeError.invalid("\(path): cannot be read: \(reason)")
        }
        do {
            return try parse(json: data, source: path, overrides: overrides)
        } catch where givenAsOption && data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) != UInt8(ascii: "{") {
            // A TOML file (what prime-rl users write) fails on its first `[` or `key =`; say what it should be.
            throw ConfigError(key: "--config", problem: "\(error); a configuration file is one JSON object, `{…}` (TOML is not accepted: docs/configuration.md)")
        }
    }

    /// Keys a resumed run may change: where it listens, how it treats actors, when it stops. Every other
    /// key is part of the run's numbers, which `config.json` freezes (replay re-executes each step with them).
    package static let resumableKeys = ["endpoints.", "run.max_steps", "learner.checkpoint_every", "learner.lease_timeout_s",
                                        "learner.heartbeat_timeout_s", "learner.credit", "learner.shared_memory_dir",
                                        "learner.relay_fanout", "actors.", "eval."]

    /// The frozen configuration of a run (`config.json`) with the `overrides` a resume may make; any other
    /// key, or a `run.max_steps` that a cosine schedule spans, is refused naming it.
    package static func loadForResume(frozen path: String, overrides: [String]) throws -> RunConfig {
        for item in overrides {
            let key = String(item.prefix { $0 != "=" })
            guard resumableKeys.contains(where: { $0.hasSuffix(".") ? key.hasPrefix($0) : key == $0 }) else {
                throw ConfigError(key: key, problem: "cannot change when a run resumes: it is part of the run's numbers, which \(path) freezes (keys a resume may set: \(resumableKeys.map { $0.hasSuffix(".") ? $0 + "*" : $0 }.joined(separator: ", ")))")
            }
        }
        let frozen = try loadFrozen(path: path)
        let resumed = try loadFrozen(path: path, overrides: overrides)
        if resumed.run.maxSteps != frozen.run.maxSteps && frozen.schedule.kind != "constant" {
            throw ConfigError(key: "run.max_steps", problem: "cannot change when a run resumes: the \(frozen.schedule.kind) learning-rate schedule spans run.max_steps (\(frozen.run.maxSteps)), so the steps already trained would change")
        }
        return resumed
    }

    /// Parses the text of a configuration file named `source` (for error positions), then as `parse`.
    package static func parse(json data: some Collection<UInt8>, source: String, overrides: [String] = []) throws -> RunConfig {
        let document: JSONDocument
        do {
            document = try JSONDocument.parse(data, source: source)
        } catch let error as JSONError {
            // The file may be --config's or a run directory's config.json: its name is in the location.
            throw ConfigError(key: error.path ?? (error.location == nil ? source : ""), problem: error.problem, location: error.location)
        }
        return try parse(document, overrides: overrides)
    }

    /// Checks that keys agree with each other.
    package func validate() throws {
        if task.spec == nil && task.file == nil { throw ConfigError(key: "task.spec", problem: "set task.spec or task.file") }
        if task.spec != nil && task.file != nil { throw ConfigError(key: "task.file", problem: "set only one of task.spec and task.file (task.spec defaults to \(RunConfig().task.spec ?? "null"): set it to null, or give the file as troupe run --file)") }
        if let spec = task.spec {
            do { _ = try TaskSpec(parsing: spec) } catch { throw ConfigError(key: "task.spec", problem: "\(error)") }
        }
        if task.systemPrompt != nil && task.chatTemplate == "none" {
            throw ConfigError(key: "task.system_prompt", problem: "a system prompt needs task.chat_template \"auto\" (a model with a chat template)")
        }
        if let chatDate = task.chatDate {
            if task.chatTemplate == "none" {
                throw ConfigError(key: "task.chat_date", problem: "a chat date needs task.chat_template \"auto\" (a model with a chat template)")
            }
            do { _ = try ChatDate(parsing: chatDate) } catch { throw ConfigError(key: "task.chat_date", problem: "\(error)") }
        }
        // A lease names weights at most max_staleness steps behind the learner (Lease.min_version); a
        // version is only ever fetched once published, so a step between publications would be waited for forever.
        if learner.publishEvery > learner.maxStaleness + 1 {
            throw ConfigError(key: "learner.publish_every",
                              problem: "is \(learner.publishEvery) but learner.max_staleness is \(learner.maxStaleness): leases ask for weights at most \(learner.maxStaleness) steps behind the learner, which would often be a step never published, so actors would wait for ever; set learner.publish_every at most \(learner.maxStaleness + 1) or raise learner.max_staleness")
        }
        // run.name is a directory under runs/: one path component, so a run never writes beside or above it.
        if run.name.isEmpty || run.name.contains("/") || run.name == "." || run.name == ".." {
            throw ConfigError(key: "run.name", problem: "must be one directory name (no '/', not '.' or '..'), got \"\(run.name)\"; set run.directory to put a run elsewhere")
        }
        if run.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ConfigError(key: "run.name", problem: "must be one directory name without control characters, got \(run.name.debugDescription)")
        }
        // The system cuts a path at its first NUL: the run would read or write another file than the one named.
        let paths: [(String, String?)] = [("run.directory", run.directory), ("model.path", model.path), ("task.file", task.file),
                                          ("learner.shared_memory_dir", learner.sharedMemoryDirectory),
                                          ("reward_workers.client_key", rewardWorkers.clientKey)]
            + rewardWorkers.serverKeys.map { ("reward_workers.server_keys", $0) }
        for case let (key, path?) in paths where path.contains("\u{0}") {
            throw ConfigError(key: key, problem: "holds a NUL character, which no file name can: \(path.debugDescription)")
        }
        let portKeys = ["control_port", "weights_port", "announce_port", "logs_port", "logs_in_port"]
        let socketPorts = [endpoints.controlPort, endpoints.weightsPort, endpoints.announcePort, endpoints.logsPort, endpoints.logsInPort]
        for (i, port) in socketPorts.enumerated() {
            if let j = socketPorts[..<i].firstIndex(of: port) {
                throw ConfigError(key: "endpoints.\(portKeys[i])", problem: "is \(port), the port of endpoints.\(portKeys[j]): each socket needs a port of its own")
            }
        }
        if endpoints.bindHost.isEmpty || endpoints.bindHost.contains(where: \.isWhitespace) {
            throw ConfigError(key: "endpoints.bind_host", problem: "must be an address or host name, got \"\(endpoints.bindHost)\"")
        }
        if endpoints.metricsPort != 0 && socketPorts.contains(endpoints.metricsPort) {
            throw ConfigError(key: "endpoints.metrics_port", problem: "is \(endpoints.metricsPort), a port of one of the learner's sockets (control, weights, announce, logs, logs_in)")
        }
        if ["0.0.0.0", "*", "::", "[::]"].contains(endpoints.advertiseHost) {
            throw ConfigError(key: "endpoints.advertise_host", problem: "must be an address others can connect to, not \(endpoints.advertiseHost)")
        }
        // libzmq sockets speak IPv6 only with ZMQ_IPV6, which no Troupe socket sets.
        for (key, host) in [("endpoints.bind_host", endpoints.bindHost), ("endpoints.advertise_host", endpoints.advertiseHost)] where host.contains(":") {
            throw ConfigError(key: key, problem: "is the IPv6 address \(host); the learner's sockets speak IPv4: give an IPv4 address or a host name with one")
        }
        // The actors sample sampling.group_size completions per prompt; an algorithm that asks for another
        // count (a preset's recommendation, or a user's override) would otherwise be silently ignored.
        if let samples = algorithm.sampling.samplesPerPrompt, samples != sampling.groupSize {
            throw ConfigError(key: "algorithm.sampling.samples_per_prompt",
                              problem: "is \(samples) (from the preset or an override) but the actors sample sampling.group_size = \(sampling.groupSize) completions per prompt: set sampling.group_size=\(samples) to follow it, or this key to null to keep \(sampling.groupSize)")
        }
        if let temperatures = eval.temperatures, temperatures.count > eval.samples {
            throw ConfigError(key: "eval.temperatures", problem: "lists \(temperatures.count) temperatures but eval.samples is \(eval.samples): each prompt's samples cannot hold one of each; list at most \(eval.samples) or raise eval.samples")
        }
        if let temperatures = sampling.temperatures, temperatures.count > sampling.groupSize {
            throw ConfigError(key: "sampling.temperatures", problem: "lists \(temperatures.count) temperatures but sampling.group_size is \(sampling.groupSize): a group cannot hold a sample of each; list at most \(sampling.groupSize) or raise sampling.group_size")
        }
        // Where the shape came from, for the errors below: `sampling.shape`, or the preset's.
        let shapeOrigin = sampling.shape == "preset" ? "sampling.shape \(groupShape.rawValue) from the algorithm" : "sampling.shape \(sampling.shape)"
        if algorithm.reward.kind == .serialDecay && groupShape != .serial {
            throw ConfigError(key: "algorithm.reward.kind", problem: "is serial_decay, which rewards a serial group's exits earliest first, but the groups are \(shapeOrigin): set sampling.shape=serial, or another reward kind")
        }
        if groupShape == .serial {
            if sampling.groupSize < 2 {
                throw ConfigError(key: "sampling.group_size", problem: "is \(sampling.groupSize) but a serial group (\(shapeOrigin)) holds at least one exit and the full path: set it to 2 or more")
            }
            if sampling.maxNewTokens < 2 {
                throw ConfigError(key: "sampling.max_new_tokens", problem: "is \(sampling.maxNewTokens) but a serial group (\(shapeOrigin)) exits its path before the path's last token: with one token every exit answers straight from the prompt; set it to 2 or more")
            }
            if sampling.temperatures != nil {
                throw ConfigError(key: "sampling.temperatures", problem: "cannot be combined with serial groups (sampling.shape): a serial group samples one path at sampling.temperature")
            }
            if let stop = stopSequences.first(where: { sampling.serialExitPhrase.contains($0) }) {
                throw ConfigError(key: "sampling.serial_exit_phrase", problem: "contains the task's stop sequence \(stop.debugDescription), which would end every exit before its answer: choose a phrase without it")
            }
        }
        if task.labelFree && [.serialDecay, .verifiable].contains(algorithm.reward.kind) {
            throw ConfigError(key: "task.label_free", problem: "is true but algorithm.reward.kind \(algorithm.reward.kind.rawValue) scores samples against the reference answer, which a label-free run keeps from the reward: set task.label_free=false, or a label-free reward (majority, frequency, novelty)")
        }
        if groupShape == .tree {
            let perRoot = 1 + sampling.treeForks * sampling.treeBranching
            if perRoot > sampling.groupSize {
                throw ConfigError(key: "sampling.tree_forks", problem: "and sampling.tree_branching give a tree root 1 + \(sampling.treeForks) × \(sampling.treeBranching) = \(perRoot) leaves, more than sampling.group_size = \(sampling.groupSize) holds (\(shapeOrigin)): lower them, or raise sampling.group_size to a multiple of \(perRoot)")
            }
            if sampling.groupSize % perRoot != 0 {
                throw ConfigError(key: "sampling.group_size", problem: "is \(sampling.groupSize), which no number of roots reaches (\(shapeOrigin)): a tree root gives 1 + sampling.tree_forks × sampling.tree_branching = \(perRoot) leaves (ETTRL: 12 roots × 5 = 60); set sampling.group_size to a multiple of \(perRoot)")
            }
            if sampling.treeForks > sampling.maxNewTokens {
                throw ConfigError(key: "sampling.tree_forks", problem: "is \(sampling.treeForks) but a completion holds at most sampling.max_new_tokens = \(sampling.maxNewTokens) tokens to fork at (\(shapeOrigin))")
            }
            if sampling.temperatures != nil {
                throw ConfigError(key: "sampling.temperatures", problem: "cannot be combined with tree groups (\(shapeOrigin)): a tree samples at sampling.temperature")
            }
        }
        if let train = algorithm.sampling.trainSamples, train > sampling.groupSize {
            throw ConfigError(key: "algorithm.sampling.train_samples", problem: "\(train) exceeds sampling.group_size \(sampling.groupSize)")
        }
        if rewardWorkers.enabled || algorithm.reward.kind == .external {
            guard rewardWorkers.enabled else {
                throw ConfigError(key: "algorithm.reward.kind", problem: "is \"external\", which takes each sample's score from reward workers, but reward_workers.endpoints is empty: name the workers or choose another kind")
            }
            guard algorithm.reward.kind == .external else {
                throw ConfigError(key: "reward_workers.endpoints", problem: "names reward workers but algorithm.reward.kind is \"\(algorithm.reward.kind.rawValue)\": set it to \"external\" so their scores are the reward (shaping terms still apply)")
            }
            guard !rewardWorkers.version.isEmpty else {
                throw ConfigError(key: "reward_workers.version", problem: "must name the reward definition the workers answer with (the cache key and the run's record depend on it)")
            }
            let keys = rewardWorkers.serverKeys.count
            if keys > 1 && keys != rewardWorkers.endpoints.count {
                throw ConfigError(key: "reward_workers.server_keys", problem: "lists \(keys) key files for \(rewardWorkers.endpoints.count) reward_workers.endpoints: give one for every worker, or one per endpoint in order")
            }
            if keys == 0 && !rewardWorkers.clientKey.isEmpty {
                throw ConfigError(key: "reward_workers.client_key", problem: "is set but reward_workers.server_keys is empty: the learner presents a key only to workers it can authenticate; name their public keys")
            }
            // A group waits for its scores while its lease runs: it must be able to land before the lease expires.
            let longest = rewardWorkers.deadlineSeconds * Double(rewardWorkers.attempts)
            if longest >= learner.leaseTimeoutSeconds {
                throw ConfigError(key: "reward_workers.deadline_s", problem: "× reward_workers.attempts is \(longest) s, not below learner.lease_timeout_s (\(learner.leaseTimeoutSeconds) s): a group waiting for its scores would lose its lease")
            }
        }
        do { try optimizer.validate() } catch let e as OptimizerError {
            throw ConfigError(key: "optimizer", problem: e.description)
        }
    }
}

// MARK: writing

extension RunConfig {
    /// The resolved configuration (every key, defaults included): what `troupe config` prints and a
    /// run freezes as `config.json`.
    package var resolved: JSONValue {
        var sections: [String: [String: JSONValue]] = [:]
        for setting in Self.settings { sections[setting.section, default: [:]][setting.name] = setting.write(self) }
        var root = sections.mapValues(JSONValue.object)
        root["algorithm"] = algorithmJSON
        return .object(root)
    }

    package func resolvedJSONData() -> Data {
        (try? resolved.serialized()) ?? Data()
    }

    /// docs/configuration.md's table of keys, generated from `settings` (`troupe config --doc-table`).
    package static func documentationTable() -> String {
        let defaults = RunConfig()
        var lines = ["| key | type | default | range | meaning |", "| --- | --- | --- | --- | --- |"]
        func cell(_ value: JSONValue) -> String {
            switch value {
            case .null: return "null"
            // A newline would end the table row: written as JSON writes it.
            case let .string(text): return text.isEmpty ? "`\"\"`" : "`\(text.replacingOccurrences(of: "\n", with: "\\n"))`"
            default: return "`\(value.description)`"
            }
        }
        for setting in settings {
            lines.append("| `\(setting.key)` | \(setting.type) | \(cell(setting.write(defaults))) | \(setting.range) | \(setting.doc) |")
        }
        lines.append("| `algorithm` | object | `\(defaultAlgorithm.description)` | | a preset and overrides, see docs/algorithms.md and [algorithm](#algorithm) |")
        return lines.joined(separator: "\n") + "\n"
    }
}
