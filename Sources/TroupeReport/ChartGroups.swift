/// Which metric keys share a chart. Built-in groups come first, in this order; every other key lands
/// in a chart named after its prefix (`time/wait_for_batch` → "time"), so no metric is ever dropped.
public struct ChartGroup: Sendable, Hashable {
    public let id: String
    public let title: String
    /// What the y axis measures, shown under the title.
    public let subtitle: String
    let matches: @Sendable (String) -> Bool

    public static func == (lhs: ChartGroup, rhs: ChartGroup) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }

    public static let builtIn: [ChartGroup] = [
        ChartGroup(id: "reward", title: "Reward", subtitle: "training reward per step",
                   matches: { $0.hasPrefix("reward/") || $0 == "reward" }),
        ChartGroup(id: "eval", title: "Test accuracy", subtitle: "pass@1 and maj@k on the test split (held-back answers)",
                   matches: { $0.hasPrefix("eval/") }),
        ChartGroup(id: "majority", title: "Majority ratio", subtitle: "share of a group agreeing with its majority answer",
                   matches: { $0.hasSuffix("majority_ratio") }),
        ChartGroup(id: "accuracy", title: "Label and reward accuracy",
                   subtitle: "majority label vs truth; reward vs the reward truth would give",
                   matches: { $0.hasSuffix("label_accuracy") || $0.hasSuffix("reward_accuracy") }),
        ChartGroup(id: "entropy", title: "Entropy", subtitle: "mean token entropy of the trained policy (nats), and of the votes' answers",
                   matches: { $0.hasPrefix("entropy/") || $0 == "entropy" || $0 == "entropy_mean" || $0.hasSuffix("answer_entropy") }),
        ChartGroup(id: "staleness", title: "Staleness", subtitle: "policy versions between sampling and training",
                   matches: { $0.hasPrefix("off_policy/") }),
        ChartGroup(id: "throughput", title: "Throughput", subtitle: "tokens per second",
                   matches: { $0.hasSuffix("tokens_per_s") }),
        ChartGroup(id: "loss", title: "Loss", subtitle: "policy-gradient loss terms",
                   matches: { $0.hasPrefix("loss/") || $0 == "loss" }),
        ChartGroup(id: "grad", title: "Gradient norm", subtitle: "before clipping",
                   matches: { $0 == "grad_norm" || $0.hasSuffix("/grad_norm") }),
        ChartGroup(id: "clipping", title: "Clip fraction", subtitle: "share of tokens whose importance weight was clipped",
                   matches: { $0.hasSuffix("clip_fraction") }),
        ChartGroup(id: "mismatch", title: "Sampler–learner mismatch",
                   subtitle: "KL between the actors' and the learner's log-probs of the same tokens",
                   matches: { $0.hasSuffix("mismatch_kl") }),
    ]

    /// The group of a key: the first built-in group that claims it, else one named after its prefix.
    public static func group(for key: String) -> ChartGroup {
        if let group = builtIn.first(where: { $0.matches(key) }) { return group }
        let prefix = key.split(separator: "/", maxSplits: 1).first.map(String.init) ?? key
        return ChartGroup(id: "other-" + prefix, title: prefix, subtitle: "other metrics",
                          matches: { $0 == prefix || $0.hasPrefix(prefix + "/") })
    }
}
