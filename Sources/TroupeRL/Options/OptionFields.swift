/// One overridable option: its JSON key and how to read and write it.
/// The table below is the single source of the option names (JSON, overrides, docs, errors).
struct OptionField {
    let key: String
    let read: (AlgorithmOptions) -> JSONValue
    let write: (inout AlgorithmOptions, JSONValue) throws -> Void
}

extension OptionField {
    static func number(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Double>) -> OptionField {
        OptionField(key: key, read: { .number($0[keyPath: path]) },
                    write: { options, value in options[keyPath: path] = try value.number(field: key) })
    }

    static func optionalNumber(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Double?>) -> OptionField {
        OptionField(key: key, read: { $0[keyPath: path].map(JSONValue.number) ?? .null },
                    write: { options, value in options[keyPath: path] = value == .null ? nil : try value.number(field: key) })
    }

    static func integer(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Int>) -> OptionField {
        OptionField(key: key, read: { .integer($0[keyPath: path]) },
                    write: { options, value in options[keyPath: path] = try value.integer(field: key) })
    }

    static func optionalInteger(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Int?>) -> OptionField {
        OptionField(key: key, read: { $0[keyPath: path].map(JSONValue.integer) ?? .null },
                    write: { options, value in options[keyPath: path] = value == .null ? nil : try value.integer(field: key) })
    }

    static func flag(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, Bool>) -> OptionField {
        OptionField(key: key, read: { .bool($0[keyPath: path]) }, write: { options, value in
            guard case let .bool(flag) = value else { throw Self.mismatch(key, expected: "true or false", got: value) }
            options[keyPath: path] = flag
        })
    }

    static func choice<E: OptionEnum>(_ key: String, _ path: WritableKeyPath<AlgorithmOptions, E>) -> OptionField {
        OptionField(key: key, read: { .string($0[keyPath: path].rawValue) }, write: { options, value in
            guard case let .string(text) = value, let choice = E(rawValue: text) else {
                throw Self.mismatch(key, expected: "one of \(E.spelledValues)", got: value)
            }
            options[keyPath: path] = choice
        })
    }

    private static func mismatch(_ key: String, expected: String, got value: JSONValue) -> AlgorithmError {
        AlgorithmError(field: key, problem: value == .null ? "cannot be null (expected \(expected))" : "expected \(expected), got \(value)")
    }
}

extension AlgorithmOptions {
    static let sections = ["reward", "advantage", "loss", "kl", "entropy", "aggregation", "filter", "sampling"]

    static let fields: [OptionField] = [
        .choice("reward.kind", \.reward.kind),
        .number("reward.correct", \.reward.correct),
        .number("reward.incorrect", \.reward.incorrect),
        .number("reward.frequency_entropy_weight", \.reward.frequencyEntropyWeight),
        .number("reward.point_expand", \.reward.pointExpand),
        .choice("reward.format", \.reward.format),
        .number("reward.format_weight", \.reward.formatWeight),
        .optionalInteger("reward.overlong_max_length", \.reward.overlongMaxLength),
        .optionalInteger("reward.overlong_cache", \.reward.overlongCache),
        .number("reward.overlong_penalty_factor", \.reward.overlongPenaltyFactor),
        .optionalInteger("reward.truncation_length", \.reward.truncationLength),

        .choice("advantage.estimator", \.advantage.estimator),
        .choice("advantage.std", \.advantage.std),
        .number("advantage.epsilon", \.advantage.epsilon),
        .choice("advantage.batch_weighting", \.advantage.batchWeighting),
        .number("advantage.batch_variance_epsilon", \.advantage.batchVarianceEpsilon),
        .choice("advantage.singleton", \.advantage.singleton),
        .flag("advantage.entropy_reshaping", \.advantage.entropyReshaping),
        .optionalNumber("advantage.clip", \.advantage.clip),
        .number("advantage.baseline", \.advantage.baseline),

        .choice("loss.kind", \.loss.kind),
        .optionalNumber("loss.epsilon_low", \.loss.epsilonLow),
        .number("loss.epsilon_high", \.loss.epsilonHigh),
        .optionalNumber("loss.dual_clip", \.loss.dualClip),
        .flag("loss.cispo_mask", \.loss.cispoMask),
        .choice("loss.topr_ratio", \.loss.toprRatio),
        .number("loss.topr_negative_lower", \.loss.toprNegativeLower),
        .number("loss.topr_negative_upper", \.loss.toprNegativeUpper),
        .number("loss.topr_positive_lower", \.loss.toprPositiveLower),
        .number("loss.topr_positive_upper", \.loss.toprPositiveUpper),
        .optionalNumber("loss.tis_cap", \.loss.tisCap),
        .number("loss.log_ratio_clamp", \.loss.logRatioClamp),

        .choice("kl.estimator", \.kl.estimator),
        .number("kl.coefficient", \.kl.coefficient),

        .number("entropy.coefficient", \.entropy.coefficient),

        .choice("aggregation.mode", \.aggregation.mode),
        .optionalInteger("aggregation.constant", \.aggregation.constant),

        .optionalNumber("filter.zero_variance_tolerance", \.filter.zeroVarianceTolerance),
        .optionalInteger("filter.max_staleness", \.filter.maxStaleness),
        .flag("filter.mask_truncated", \.filter.maskTruncated),

        .optionalInteger("sampling.samples_per_prompt", \.sampling.samplesPerPrompt),
        .optionalInteger("sampling.train_samples", \.sampling.trainSamples),
    ]

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
