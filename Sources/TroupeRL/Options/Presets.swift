/// The presets: each paper's (or its reference code's) defaults as plain values.
/// docs/algorithms.md has the same table with the sources.
/// Where the paper and its code disagree, the comment says which one the preset follows.
extension AlgorithmOptions {
    public static let presetNames = ["grpo", "drgrpo", "dapo", "cispo", "topr", "ttrl", "ettrl", "evol-rl",
                                     "ttrv", "gui-rcpo", "dler", "s-grpo"]

    /// A preset by name; unknown names throw an error listing the known ones.
    public static func preset(named name: String) throws -> AlgorithmOptions {
        switch name {
        case "grpo": return grpo
        case "drgrpo": return drgrpo
        case "dapo": return dapo
        case "cispo": return cispo
        case "topr": return topr
        case "ttrl": return ttrl
        case "ettrl": return ettrl
        case "evol-rl": return evolRL
        case "ttrv": return ttrv
        case "gui-rcpo": return guiRCPO
        case "dler": return dler
        case "s-grpo": return sGRPO
        default:
            throw AlgorithmError(field: "preset", problem: "unknown preset \"\(name)\"; known presets: \(presetNames.joined(separator: ", "))")
        }
    }

    /// GRPO — Shao et al., "DeepSeekMath", arXiv 2402.03300, Eq. 3 and §4.1-4.2.
    /// Verifiable 0/1 reward; Â = (R − mean)/(std_unbiased + 1e-6) (verl); PPO-clip ε = 0.2, no dual
    /// clip (the paper has none); per-sequence token mean then mean over sequences; k3 KL with
    /// β = 0.04 in the loss; G = 64.
    public static var grpo: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.loss.epsilonLow = 0.2
        options.loss.epsilonHigh = 0.2
        options.aggregation.mode = .seqMeanTokenMean
        options.kl = KLOptions(estimator: .k3, coefficient: 0.04)
        options.sampling.samplesPerPrompt = 64
        return options
    }

    /// Dr. GRPO — Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783.
    /// Â = R − mean (no std); token sum divided by a constant, Σ/(S·L) as TRL's `dr_grpo` with
    /// L = 3000 (TRL's paper index, `max_completion_length=3000`); no KL; G = 8.
    public static var drgrpo: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.advantage.estimator = .drgrpo
        options.aggregation = AggregationOptions(mode: .tokenSumConstant, constant: 3000)
        options.sampling.samplesPerPrompt = 8
        return options
    }

    /// DAPO — Yu et al., "DAPO", arXiv 2503.14476, Eq. 7-13; verl `recipe/dapo`.
    /// ±1 rule reward plus soft overlong punishment (L_max 20480, L_cache 4096); GRPO advantage;
    /// clip-higher ε_low 0.2 / ε_high 0.28 with verl's default dual clip c = 3; token-mean over the
    /// step; no KL; dynamic sampling = drop zero-variance groups; G = 16. Overlong *filtering* is off
    /// (the paper's best run and verl's recipe shape instead; set `filter.mask_truncated`).
    public static var dapo: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.reward.correct = 1
        options.reward.incorrect = -1
        options.reward.overlongMaxLength = 20480
        options.reward.overlongCache = 4096
        options.loss = LossOptions(epsilonLow: 0.2, epsilonHigh: 0.28, dualClip: 3)
        options.filter.zeroVarianceTolerance = 1e-6
        options.sampling.samplesPerPrompt = 16
        return options
    }

    /// CISPO — MiniMax, "MiniMax-M1", arXiv 2506.13585, §3.1 Eq. 4-7.
    /// g = −clip(r, ·, 1 + ε_high)·Â with **no lower bound** (the report sets ε_low "large");
    /// the report does not publish ε_high: 0.2 here, as verl's `examples/cispo_trainer` (ScaleRL/TRL
    /// use a cap of 5, i.e. ε_high = 4). No unified mask; GRPO advantage; token-mean; no KL;
    /// DAPO's dynamic sampling and length penalty; G = 16.
    public static var cispo: AlgorithmOptions {
        var options = dapo
        options.reward.incorrect = 0
        options.loss = LossOptions(kind: .cispo, epsilonLow: nil, epsilonHigh: 0.2)
        return options
    }

    /// TOPR — Le Roux et al., "Tapered Off-Policy REINFORCE", arXiv 2503.14286, Eq. 7-8.
    /// ±1 reward, no baseline (Â = R); w = 1 on positives, clip(π(τ)/μ(τ), 0, 1) on negatives with the
    /// trajectory (product) ratio; loss divided by the sequence length, then averaged; no KL; G = 16.
    public static var topr: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.reward.correct = 1
        options.reward.incorrect = -1
        options.advantage.estimator = .raw
        options.loss = LossOptions(kind: .topr, toprRatio: .sequenceProduct)
        options.aggregation.mode = .seqMeanTokenMean
        options.sampling.samplesPerPrompt = 16
        return options
    }

    /// TTRL — Zuo et al., "TTRL", arXiv 2504.16084; PRIME-RL/TTRL `examples/ttrl/aime.sh` on verl.
    /// Majority-vote reward over 64 votes (invalid answers excluded), the first 32 trained; GRPO
    /// advantage; PPO-clip 0.2 with verl's dual clip 3; token-mean; k3 KL 0.001.
    public static var ttrl: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.reward.kind = .majority
        options.loss = LossOptions(epsilonLow: 0.2, epsilonHigh: 0.2, dualClip: 3)
        options.kl = KLOptions(estimator: .k3, coefficient: 0.001)
        options.sampling = SamplingOptions(samplesPerPrompt: 64, trainSamples: 32)
        return options
    }

    /// ETTRL — Liu et al., arXiv 2508.11356 (no public code; two paper summaries).
    /// TTRL plus entropy-based advantage reshaping Y = 1 + (mean H − H_i)/mean H, clamped at Y ≥ 0
    /// (the clamp is ours); 60 votes = M(1 + B·N) with M = 12, N = 2, B = 2 tree leaves: the
    /// entropy-fork tree rollout (`sampling.shape = tree`).
    public static var ettrl: AlgorithmOptions {
        var options = ttrl
        options.advantage.entropyReshaping = true
        options.sampling = SamplingOptions(samplesPerPrompt: 60, trainSamples: 32)
        options.sampling.shape = .tree
        return options
    }

    /// EVOL-RL — Zhou et al., arXiv 2509.15194; YujunZhou/EVOL-RL `evol_rl.sh --ent 0.003 --clip-high`.
    /// Novelty reward on top of the majority vote (64 votes, 32 trained); GRPO advantage; clip-higher
    /// 0.2/0.28 with verl's dual clip 3; token-mean; k3 KL 0.001; entropy bonus 0.003.
    public static var evolRL: AlgorithmOptions {
        var options = ttrl
        options.reward.kind = .novelty
        options.loss.epsilonHigh = 0.28
        options.entropy.coefficient = 0.003
        return options
    }

    /// TTRV — Singh et al., arXiv 2510.06783, Eq. 3-7 and App. 10 pseudo-code (no public code).
    /// Frequency + 0.75·(−H) reward; GRPO with the **population** std and no epsilon (the pseudo-code's
    /// `A = (R − mean)/std`); PPO-clip 0.2; aggregation and KL are not published: GRPO's
    /// seq-mean-token-mean and no KL here; N = 32.
    public static var ttrv: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.reward.kind = .frequency
        options.reward.frequencyEntropyWeight = 0.75
        options.advantage.std = .population
        options.advantage.epsilon = 0
        options.aggregation.mode = .seqMeanTokenMean
        options.sampling.samplesPerPrompt = 32
        return options
    }

    /// GUI-RCPO — Du et al., arXiv 2508.05615; ZJU-REAL/GUI-RCPO on VLM-R1 (TRL-style trainer).
    /// Region-consistency reward (points become 50-pixel squares, GUI-RC's evaluation size);
    /// Â = (R − mean)/(std_unbiased + 1e-4); PPO-clip 0.2; per-sequence token mean then mean;
    /// k3 KL β = 0.04; 16 samples.
    public static var guiRCPO: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.reward.kind = .regionConsistency
        options.reward.pointExpand = 50
        options.advantage.epsilon = 1e-4
        options.aggregation.mode = .seqMeanTokenMean
        options.kl = KLOptions(estimator: .k3, coefficient: 0.04)
        options.sampling.samplesPerPrompt = 16
        return options
    }

    /// DLER — Liu et al., "DLER: Doing Length pEnalty Right", arXiv 2510.15110; NVlabs/DLER `dler_slurm.sh`.
    /// 0/1 reward zeroed when truncated or longer than 4000 tokens; batch-normalised advantage with
    /// token-weighted statistics (verl `reinforce_plus_plus_baseline` / `masked_whiten`), computed
    /// after dropping zero-variance groups; clip-higher 0.2/0.28 with dual clip c = 10; token-mean;
    /// k3 KL 0.0005; G = 16.
    public static var dler: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.reward.truncationLength = 4000
        options.advantage.estimator = .batchnorm
        options.advantage.batchWeighting = .token
        options.loss = LossOptions(epsilonLow: 0.2, epsilonHigh: 0.28, dualClip: 10)
        options.kl = KLOptions(estimator: .k3, coefficient: 0.0005)
        options.filter.zeroVarianceTolerance = 1e-6
        options.sampling.samplesPerPrompt = 16
        return options
    }

    /// S-GRPO — Dai et al., arXiv 2505.07686 (paper notes).
    /// Serial decaying reward (1, 1/2, 1/4, … for correct exits, earliest first); Â = r − mean (no std);
    /// PPO-clip 0.2; per-sequence normalisation (seq-mean-token-mean); no KL. Serial groups: one path,
    /// then early exits from it (`sampling.shape = serial`); the group size (exits + full response) is
    /// left to the run.
    public static var sGRPO: AlgorithmOptions {
        var options = AlgorithmOptions()
        options.sampling.shape = .serial
        options.reward.kind = .serialDecay
        options.advantage.estimator = .drgrpo
        options.aggregation.mode = .seqMeanTokenMean
        return options
    }
}

// Convenience initialisers so presets read as one line per section.
extension LossOptions {
    public init(kind: PolicyLossKind = .ppoClip, epsilonLow: Double? = 0.2, epsilonHigh: Double = 0.2,
                dualClip: Double? = nil, toprRatio: TOPRRatioLevel = .sequenceProduct) {
        self.init()
        self.kind = kind
        self.epsilonLow = epsilonLow
        self.epsilonHigh = epsilonHigh
        self.dualClip = dualClip
        self.toprRatio = toprRatio
    }
}

extension KLOptions {
    public init(estimator: KLEstimator, coefficient: Double) {
        self.init()
        self.estimator = estimator
        self.coefficient = coefficient
    }
}

extension AggregationOptions {
    public init(mode: AggregationMode, constant: Int? = nil) {
        self.init()
        self.mode = mode
        self.constant = constant
    }
}

extension SamplingOptions {
    public init(samplesPerPrompt: Int?, trainSamples: Int? = nil) {
        self.init()
        self.samplesPerPrompt = samplesPerPrompt
        self.trainSamples = trainSamples
    }
}
