/// Everything the algorithm side of a run is configured by: one plain value, named by a preset and
/// overridden field by field (`AlgorithmOptions.preset(named:)`, `applying(overrides:)`).
///
/// JSON keys are `section.key` in snake_case (e.g. `loss.epsilon_high`); docs/algorithms.md lists
/// every key with its meaning and range. `validate()` checks ranges and names the key at fault.
public struct AlgorithmOptions: Sendable, Equatable {
    public var reward = RewardOptions()
    public var advantage = AdvantageOptions()
    public var loss = LossOptions()
    public var kl = KLOptions()
    public var entropy = EntropyOptions()
    public var aggregation = AggregationOptions()
    public var filter = FilterOptions()
    public var sampling = SamplingOptions()

    /// Neutral defaults (verifiable 0/1 reward, GRPO advantage, PPO-clip 0.2, token-mean, no KL).
    public init() {}
}

/// A closed set of option values spelled as strings in JSON.
public protocol OptionEnum: RawRepresentable, CaseIterable, Sendable, Equatable where RawValue == String {}

extension OptionEnum {
    static var spelledValues: String { allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") }
}

// MARK: rewards

public enum RewardKind: String, OptionEnum {
    /// Exact / numeric match of the extracted answer with the ground truth.
    case verifiable
    /// TTRL majority vote over the valid answers (label-free).
    case majority
    /// TTRV frequency + entropy.
    case frequency
    /// EVOL-RL novelty on top of the majority vote (similarities supplied by the caller).
    case novelty
    /// GUI-RC region consistency (boxes and points).
    case regionConsistency = "region_consistency"
    /// S-GRPO serial decaying reward (group ordered earliest exit first).
    case serialDecay = "serial_decay"
    /// The reward arrives with each sample (a reward worker); only shaping terms are added.
    case external
}

public struct RewardOptions: Sendable, Equatable {
    public var kind: RewardKind = .verifiable
    /// Reward of a correct / majority answer (`reward.correct`).
    public var correct = 1.0
    /// Reward of a wrong or invalid answer (`reward.incorrect`; DAPO and TOPR use −1).
    public var incorrect = 0.0
    /// TTRV's α on −H (`reward.frequency_entropy_weight`).
    public var frequencyEntropyWeight = 0.75
    /// Side in pixels of the square a point prediction becomes (`reward.point_expand`).
    public var pointExpand = 50.0
    public var format: FormatRequirement = .none
    /// Added to the reward when the format check passes (`reward.format_weight`).
    public var formatWeight = 0.0
    /// DAPO soft overlong punishment: `L_max` and `L_cache` in tokens; both set or both nil.
    public var overlongMaxLength: Int?
    public var overlongCache: Int?
    public var overlongPenaltyFactor = 1.0
    /// DLER truncation: a completion longer than this, or cut by the budget, gets `incorrect`.
    public var truncationLength: Int?
    public init() {}
}

// MARK: advantages

public enum AdvantageEstimator: String, OptionEnum {
    /// `(R − mean_g)/(std_g + ε)` (DeepSeekMath GRPO).
    case grpo
    /// `(R − mean_g)/(std_batch(R) + ε)`: TRL `scale_rewards="batch"` (std of the raw rewards of the batch).
    case grpoBatchStd = "grpo_batch_std"
    /// `R − mean_g` (Dr. GRPO; S-GRPO).
    case drgrpo
    /// `a = R − mean_g`, then whitened over the batch (DLER Eq. 3 / ScaleRL / verl REINFORCE++-baseline).
    case batchnorm
    /// `R − baseline` (TOPR's raw-reward REINFORCE).
    case raw
}

public enum StandardDeviationKind: String, OptionEnum {
    /// ddof = 1 (verl `torch.std`, TRL `nanstd`).
    case unbiased
    /// ddof = 0 (TTRV's pseudo-code).
    case population
}

public enum BatchWeighting: String, OptionEnum {
    /// Each sequence counts once in the batch mean and std (DLER Eq. 3, ScaleRL).
    case sequence
    /// Each token counts (verl `masked_whiten`): long sequences weigh more.
    case token
}

public enum SingletonPolicy: String, OptionEnum {
    /// A group of one sample gets advantage 0 (TRL; recommended).
    case zero
    /// verl: mean 0 and std 1, so the advantage is the raw reward.
    case rawReward = "raw_reward"
}

public struct AdvantageOptions: Sendable, Equatable {
    public var estimator: AdvantageEstimator = .grpo
    public var std: StandardDeviationKind = .unbiased
    /// Added to the standard deviation (`grpo`, `grpo_batch_std`): verl 1e-6, TRL / VLM-R1 1e-4.
    public var epsilon = 1e-6
    public var batchWeighting: BatchWeighting = .sequence
    /// Added to the variance inside the square root (`batchnorm`), as verl `masked_whiten` does.
    public var batchVarianceEpsilon = 1e-8
    public var singleton: SingletonPolicy = .zero
    /// ETTRL entropy-based advantage reshaping (EAR).
    public var entropyReshaping = false
    /// Advantages are clipped to [−clip, clip] (ETTRL's Adv-Clip, β = 2); nil: no clipping.
    public var clip: Double?
    /// Subtracted from the reward by the `raw` estimator (TOPR's baseline c).
    public var baseline = 0.0
    public init() {}
}

// MARK: losses

public enum PolicyLossKind: String, OptionEnum {
    case ppoClip = "ppo_clip"
    case cispo
    case topr
    case reinforce
}

public enum TOPRRatioLevel: String, OptionEnum {
    /// π(τ)/μ(τ) = exp(Σ_t log r_t): the paper's trajectory ratio.
    case sequenceProduct = "sequence_product"
    /// exp(mean_t log r_t): verl's docs.
    case sequenceGeomean = "sequence_geomean"
    /// Per-token r_t: Trinity-RFT and ROLL.
    case token
}

public struct LossOptions: Sendable, Equatable {
    public var kind: PolicyLossKind = .ppoClip
    /// Lower clip `1 − ε_low` (PPO), lower IS bound (CISPO). nil: no lower bound.
    public var epsilonLow: Double? = 0.2
    /// Upper clip `1 + ε_high` (PPO); CISPO's IS cap is **`1 + ε_high`** (TRL's `epsilon_high = 5` is `ε_high = 4` here).
    public var epsilonHigh = 0.2
    /// Dual-clip constant c (PPO, Â < 0): the loss is capped at −Â·c. nil: off.
    public var dualClip: Double?
    /// CISPO's unified mask (MiniMax-M1 Eq. 7): drop tokens PPO's trust region would drop.
    public var cispoMask = false
    public var toprRatio: TOPRRatioLevel = .sequenceProduct
    /// TOPR truncation bounds [a−, b−] for negative samples and [a+, b+] for positive ones.
    public var toprNegativeLower = 0.0
    public var toprNegativeUpper = 1.0
    public var toprPositiveLower = 1.0
    public var toprPositiveUpper = 1.0
    /// REINFORCE's truncated-IS cap ρ̄ (V-trace): weight `min(r, ρ̄)`. nil: plain on-policy REINFORCE.
    public var tisCap: Double?
    /// The log-ratio `logp − behaviour_logp` is clamped to ±this before `exp` (verl uses 20).
    public var logRatioClamp = 20.0
    public init() {}
}

public enum KLEstimator: String, OptionEnum {
    /// `logp − ref`.
    case k1
    /// `½(logp − ref)²`.
    case k2
    /// `exp(ref − logp) − (ref − logp) − 1` (Schulman; verl `low_var_kl`).
    case k3
}

public struct KLOptions: Sendable, Equatable {
    public var estimator: KLEstimator = .k3
    /// β; 0 turns the term off (then no reference log-probs are needed).
    public var coefficient = 0.0
    public init() {}
}

public struct EntropyOptions: Sendable, Equatable {
    /// The loss gets `− coefficient · H` per token (EVOL-RL: 0.003); 0: off.
    public var coefficient = 0.0
    public init() {}
}

// MARK: aggregation, filters, sampling

public enum AggregationMode: String, OptionEnum {
    /// `Σ ℓ / T` with T the loss tokens of the whole optimiser step.
    case tokenMean = "token-mean"
    /// `(1/S) Σ_i (Σ_t ℓ / |o_i|)` with S the non-empty sequences of the step.
    case seqMeanTokenMean = "seq-mean-token-mean"
    /// `(1/S) Σ_i Σ_t ℓ`.
    case seqMeanTokenSum = "seq-mean-token-sum"
    /// `Σ ℓ / (S·L)` with L = `aggregation.constant` (TRL `dr_grpo`).
    case tokenSumConstant = "token-sum-const"
    /// `Σ ℓ / L` (verl `seq-mean-token-sum-norm`; no division by the sequence count).
    case tokenSumNorm = "token-sum-norm"
}

public struct AggregationOptions: Sendable, Equatable {
    public var mode: AggregationMode = .tokenMean
    /// L for `token-sum-const` / `token-sum-norm` (a generation budget in tokens).
    public var constant: Int?
    public init() {}
}

public struct FilterOptions: Sendable, Equatable {
    /// Drop a group when `max(R) − min(R) ≤ tolerance` over its training samples (DAPO dynamic
    /// sampling). nil: keep every group (a zero-variance group then has Â = 0 but still counts in
    /// the denominators).
    public var zeroVarianceTolerance: Double?
    /// Drop a group sampled more than this many policy steps ago. nil: no limit.
    public var maxStaleness: Int?
    /// DAPO overlong filtering: truncated completions contribute no loss tokens (their reward still
    /// enters the group statistics).
    public var maskTruncated = false
    public init() {}
}

public enum GroupShapeKind: String, OptionEnum {
    /// G independent samples from the prompt.
    case independent
    /// S-GRPO: one path, then G − 1 early exits from it, earliest first, then the path.
    case serial
    /// ETTRL's entropy-fork tree: roots forking at their highest-entropy tokens; the leaves.
    case tree
}

public struct SamplingOptions: Sendable, Equatable {
    /// The shape of a group; the run's `sampling.shape` follows it unless set.
    public var shape: GroupShapeKind = .independent
    /// Completions sampled per prompt (votes, for TTRL); nil: the run's configuration decides.
    public var samplesPerPrompt: Int?
    /// The first this-many samples of each group are trained on (TTRL: 64 votes, 32 trained); nil: all.
    public var trainSamples: Int?
    public init() {}
}

extension AlgorithmOptions {
    /// Indices of a group's samples the learner trains on: the first `sampling.train_samples`
    /// (TTRL's `_select_top_k_per_prompt`), all of them when unset. Rewards use every sample.
    public func trainingIndices(groupSize: Int) -> Range<Int> {
        0..<min(groupSize, sampling.trainSamples ?? groupSize)
    }
}
