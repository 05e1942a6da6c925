import TroupeJSON

/// How far a numeric option may go: `validate()` checks it and docs/algorithms.md's table prints it.
enum OptionRange {
    /// Any finite number.
    case finite
    case atLeast(Double)
    case above(Double)
    case within(ClosedRange<Double>)
    /// `(lower, upper]`.
    case aboveAtMost(Double, Double)

    var text: String {
        switch self {
        case .finite: return ""
        case let .atLeast(bound): return "≥ \(format(bound))"
        case let .above(bound): return "> \(format(bound))"
        case let .within(range): return "[\(format(range.lowerBound)), \(format(range.upperBound))]"
        case let .aboveAtMost(lower, upper): return "(\(format(lower)), \(format(upper))]"
        }
    }

    /// What is wrong with `value`, or nil.
    func problem(_ value: Double) -> String? {
        guard value.isFinite else { return "must be a finite number, got \(value)" }
        let fits: Bool
        switch self {
        case .finite: fits = true
        case let .atLeast(bound): fits = value >= bound
        case let .above(bound): fits = value > bound
        case let .within(range): fits = range.contains(value)
        case let .aboveAtMost(lower, upper): fits = value > lower && value <= upper
        }
        if fits { return nil }
        return (text.hasPrefix("[") || text.hasPrefix("(") ? "must be in \(text)" : "must be \(text)") + ", got \(format(value))"
    }

    private func format(_ value: Double) -> String {
        let text = value.description
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }
}

/// One option, declared once: its JSON key, where it lives in `AlgorithmOptions` (whose initial value
/// is the default), its type and range, and a one-line doc. Overrides, `json`, `validate()`'s range
/// checks and docs/algorithms.md's table all come from `AlgorithmOptions.fields`.
struct OptionField {
    let key: String
    /// "number", "integer or null", "`a`/`b`", …
    let type: String
    let range: OptionRange?
    let doc: String
    let read: (AlgorithmOptions) -> JSONValue
    let write: (inout AlgorithmOptions, JSONValue) throws -> Void
    /// The range check of the current value (nil: fine, or nothing to check).
    let check: (AlgorithmOptions) -> String?
}

extension OptionField {
    static func number(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Double>, _ range: OptionRange, _ doc: String) -> OptionField {
        OptionField(key: key, type: "number", range: range, doc: doc, read: { .number($0[keyPath: path]) },
                    write: { options, value in options[keyPath: path] = try value.number(field: key) },
                    check: { range.problem($0[keyPath: path]) })
    }

    static func optionalNumber(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Double?>, _ range: OptionRange, _ doc: String) -> OptionField {
        OptionField(key: key, type: "number or null", range: range, doc: doc, read: { $0[keyPath: path].map(JSONValue.number) ?? .null },
                    write: { options, value in options[keyPath: path] = value == .null ? nil : try value.number(field: key) },
                    check: { $0[keyPath: path].flatMap(range.problem) })
    }

    static func optionalInteger(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Int?>, _ range: OptionRange, _ doc: String) -> OptionField {
        OptionField(key: key, type: "integer or null", range: range, doc: doc, read: { $0[keyPath: path].map(JSONValue.integer) ?? .null },
                    write: { options, value in options[keyPath: path] = value == .null ? nil : try value.integer(field: key) },
                    check: { $0[keyPath: path].flatMap { range.problem(Double($0)) } })
    }

    static func flag(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Bool>, _ doc: String) -> OptionField {
        OptionField(key: key, type: "boolean", range: nil, doc: doc, read: { .bool($0[keyPath: path]) }, write: { options, value in
            guard case let .bool(flag) = value else { throw Self.mismatch(key, expected: "true or false", got: value) }
            options[keyPath: path] = flag
        }, check: { _ in nil })
    }

    static func choice<E: OptionEnum>(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, E>, _ doc: String) -> OptionField {
        OptionField(key: key, type: E.allCases.map { "`\($0.rawValue)`" }.joined(separator: "/"), range: nil, doc: doc,
                    read: { .string($0[keyPath: path].rawValue) }, write: { options, value in
            guard case let .string(text) = value, let choice = E(rawValue: text) else {
                throw Self.mismatch(key, expected: "one of \(E.spelledValues)", got: value)
            }
            options[keyPath: path] = choice
        }, check: { _ in nil })
    }

    private static func mismatch(_ key: String, expected: String, got value: JSONValue) -> AlgorithmError {
        AlgorithmError(field: key, problem: value == .null ? "cannot be null (expected \(expected))" : "expected \(expected), got \(value)")
    }
}

extension AlgorithmOptions {
    static let sections = ["reward", "advantage", "loss", "kl", "entropy", "aggregation", "filter", "sampling"]

    static let fields: [OptionField] = [
        .choice("reward.kind", \.reward.kind, "how the base reward is computed (see [kinds](#kinds-rewardkind))"),
        .number("reward.correct", \.reward.correct, .finite, "reward of a correct / majority answer; > `reward.incorrect`"),
        .number("reward.incorrect", \.reward.incorrect, .finite, "reward of a wrong or invalid answer (DAPO, TOPR: −1)"),
        .number("reward.frequency_entropy_weight", \.reward.frequencyEntropyWeight, .atLeast(0), "TTRV's α"),
        .number("reward.point_expand", \.reward.pointExpand, .atLeast(0), "side in pixels of a point's square"),
        .choice("reward.format", \.reward.format, "format check"),
        .number("reward.format_weight", \.reward.formatWeight, .atLeast(0), "added when the format check passes; needs a format"),
        .optionalInteger("reward.overlong_max_length", \.reward.overlongMaxLength, .above(0), "DAPO L_max; set with `overlong_cache`"),
        .optionalInteger("reward.overlong_cache", \.reward.overlongCache, .above(0), "DAPO L_cache; ≤ L_max"),
        .number("reward.overlong_penalty_factor", \.reward.overlongPenaltyFactor, .atLeast(0), "scales the overlong penalty"),
        .optionalInteger("reward.truncation_length", \.reward.truncationLength, .above(0), "DLER L"),

        .choice("advantage.estimator", \.advantage.estimator, "see [advantages](#advantages)"),
        .choice("advantage.std", \.advantage.std, "ddof 1 or 0"),
        .number("advantage.epsilon", \.advantage.epsilon, .atLeast(0), "added to the std"),
        .choice("advantage.batch_weighting", \.advantage.batchWeighting, "batchnorm statistics weighting"),
        .number("advantage.batch_variance_epsilon", \.advantage.batchVarianceEpsilon, .atLeast(0), "added to the batch variance"),
        .choice("advantage.singleton", \.advantage.singleton, "advantage of a one-sample group"),
        .flag("advantage.entropy_reshaping", \.advantage.entropyReshaping, "ETTRL EAR (needs response entropies)"),
        .optionalNumber("advantage.clip", \.advantage.clip, .above(0), "clip Â to ±clip"),
        .number("advantage.baseline", \.advantage.baseline, .finite, "c in `raw`'s `R − c`"),

        .choice("loss.kind", \.loss.kind, "policy loss"),
        .optionalNumber("loss.epsilon_low", \.loss.epsilonLow, .within(0...1), "lower clip / IS bound `1 − ε_low`; null: none"),
        .number("loss.epsilon_high", \.loss.epsilonHigh, .atLeast(0), "upper clip; CISPO cap `1 + ε_high`"),
        .optionalNumber("loss.dual_clip", \.loss.dualClip, .above(1), "PPO dual-clip c"),
        .flag("loss.cispo_mask", \.loss.cispoMask, "MiniMax unified mask"),
        .choice("loss.topr_ratio", \.loss.toprRatio, "TOPR's ratio"),
        .number("loss.topr_negative_lower", \.loss.toprNegativeLower, .atLeast(0), "a−"),
        .number("loss.topr_negative_upper", \.loss.toprNegativeUpper, .atLeast(0), "b−; ≥ a−"),
        .number("loss.topr_positive_lower", \.loss.toprPositiveLower, .atLeast(0), "a+"),
        .number("loss.topr_positive_upper", \.loss.toprPositiveUpper, .atLeast(0), "b+; ≥ a+"),
        .optionalNumber("loss.tis_cap", \.loss.tisCap, .above(0), "REINFORCE truncated-IS cap ρ̄"),
        .number("loss.log_ratio_clamp", \.loss.logRatioClamp, .aboveAtMost(0, 700), "log-ratio clamp before exp (so exp() stays finite)"),

        .choice("kl.estimator", \.kl.estimator, "KL estimator"),
        .number("kl.coefficient", \.kl.coefficient, .atLeast(0), "β; > 0 needs reference log-probs"),

        .number("entropy.coefficient", \.entropy.coefficient, .atLeast(0), "entropy bonus c; > 0 needs token entropies"),

        .choice("aggregation.mode", \.aggregation.mode, "loss aggregation (see [aggregation](#aggregation))"),
        .optionalInteger("aggregation.constant", \.aggregation.constant, .above(0), "L for `token-sum-const`/`token-sum-norm` (required there)"),

        .optionalNumber("filter.zero_variance_tolerance", \.filter.zeroVarianceTolerance, .atLeast(0), "drop groups with `max − min ≤ tol`"),
        .optionalInteger("filter.max_staleness", \.filter.maxStaleness, .atLeast(0), "drop groups older than this many steps"),
        .flag("filter.mask_truncated", \.filter.maskTruncated, "truncated completions contribute no tokens"),

        .optionalInteger("sampling.samples_per_prompt", \.sampling.samplesPerPrompt, .above(0), "completions per prompt"),
        .optionalInteger("sampling.train_samples", \.sampling.trainSamples, .above(0), "first N trained; ≤ `samples_per_prompt`"),
        .choice("sampling.shape", \.sampling.shape, "group shape the preset samples (the run's `sampling.shape` = `preset` follows it)"),
    ]

    /// docs/algorithms.md's table of options, generated from `fields` (`troupe config
    /// --algorithm-doc-table`; a test compares it with the doc).
    public static func documentationTable() -> String {
        let defaults = AlgorithmOptions()
        var lines = ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
        for field in fields {
            let value = field.read(defaults)
            let shown: String
            switch value {
            case .null: shown = "null"
            case let .string(text): shown = "`\(text)`"
            default: shown = "`\(value)`"
            }
            lines.append("| `\(field.key)` | \(field.type) | \(shown) | \(field.range?.text ?? "") | \(field.doc) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every option key, `section.key`, in table order.
    public static var optionKeys: [String] { fields.map(\.key) }

    /// The options as a nested JSON object (`{"loss": {"epsilon_high": 0.28, …}, …}`), unset ones as null.
    public var json: JSONValue {
        var sections: [String: [String: JSONValue]] = [:]
        for field in Self.fields {
            let parts = field.key.split(separator: ".", maxSplits: 1).map(String.init)
            sections[parts[0], default: [:]][parts[1]] = field.read(self)
        }
        return .object(sections.mapValues(JSONValue.object))
    }

    /// These options with some fields replaced, then validated.
    ///
    /// `overrides` is a JSON object whose keys are sections holding objects (`{"loss": {"kind": "cispo"}}`)
    /// or dotted keys (`{"loss.kind": "cispo"}`); both may be mixed. `null` unsets an optional field.
    /// Unknown keys, wrong types and out-of-range values throw an error naming the key.
    public func applying(overrides: JSONValue) throws -> AlgorithmOptions {
        var result = self
        for (key, value) in try Self.flatten(overrides) {
            guard let field = Self.fields.first(where: { $0.key == key }) else { throw Self.unknownKey(key) }
            try field.write(&result, value)
        }
        try result.validate()
        return result
    }

    /// A config object: an optional `"preset"` name (default `"grpo"`) and overrides as above.
    public static func resolve(_ config: JSONValue) throws -> AlgorithmOptions {
        guard case var .object(object) = config else {
            throw AlgorithmError(field: "algorithm", problem: "expected an object, got \(config.typeName)")
        }
        var name = "grpo"
        if let preset = object.removeValue(forKey: "preset") {
            guard case let .string(text) = preset else { throw AlgorithmError(field: "preset", problem: "expected a string, got \(preset)") }
            name = text
        }
        return try preset(named: name).applying(overrides: .object(object))
    }

    private static func flatten(_ overrides: JSONValue) throws -> [(String, JSONValue)] {
        guard case let .object(object) = overrides else {
            throw AlgorithmError(field: "overrides", problem: "expected an object, got \(overrides.typeName)")
        }
        var flat: [(String, JSONValue)] = []
        for key in object.keys.sorted() {
            let value = object[key]!
            if key.contains(".") {
                flat.append((key, value))
            } else if sections.contains(key) {
                guard case let .object(inner) = value else {
                    throw AlgorithmError(field: key, problem: "expected an object of \(key) options, got \(value.typeName)")
                }
                for innerKey in inner.keys.sorted() { flat.append(("\(key).\(innerKey)", inner[innerKey]!)) }
            } else {
                throw unknownKey(key)
            }
        }
        var seen = Set<String>()
        for (key, _) in flat where !seen.insert(key).inserted {
            throw AlgorithmError(field: key, problem: "is given twice (once nested, once dotted)")
        }
        return flat
    }

    private static func unknownKey(_ key: String) -> AlgorithmError {
        let section = String(key.split(separator: ".").first ?? "")
        guard sections.contains(section) else {
            return AlgorithmError(field: key, problem: "unknown option; sections are \(sections.joined(separator: ", "))")
        }
        let known = fields.map(\.key).filter { $0.hasPrefix(section + ".") }.joined(separator: ", ")
        return AlgorithmError(field: key, problem: "unknown option; \(section) has \(known)")
    }
}

extension AlgorithmOptions: Codable {
    public init(from decoder: Decoder) throws {
        let value = try JSONValue(from: decoder)
        self = try AlgorithmOptions().applying(overrides: value)
    }

    public func encode(to encoder: Encoder) throws {
        try json.encode(to: encoder)
    }
}
