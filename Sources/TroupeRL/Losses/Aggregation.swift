/// The denominators of one optimiser step, counted over **all** its micro-batches (and ranks), so
/// that splitting a batch never changes the gradient (docs/algorithms.md). Additive.
public struct AggregationTotals: Sendable, Equatable, Codable {
    /// Loss tokens: tokens of non-empty, unmasked samples of kept groups.
    public var tokens: Int
    /// Sequences with at least one loss token (fully masked rows do not count, as in verl).
    public var sequences: Int

    public init(tokens: Int, sequences: Int) {
        self.tokens = tokens
        self.sequences = sequences
    }

    public static func + (lhs: AggregationTotals, rhs: AggregationTotals) -> AggregationTotals {
        AggregationTotals(tokens: lhs.tokens + rhs.tokens, sequences: lhs.sequences + rhs.sequences)
    }

    /// Totals of a list of samples (use every sample of the step).
    public static func counting(lengths: [Int], finishReasons: [FinishReason], filter: FilterOptions) -> AggregationTotals {
        var totals = AggregationTotals(tokens: 0, sequences: 0)
        for (length, reason) in zip(lengths, finishReasons) where Aggregation.contributes(length: length, finishReason: reason, filter: filter) {
            totals.tokens += length
            totals.sequences += 1
        }
        return totals
    }
}

/// Loss aggregation: the per-token weight `w_i` such that the step's loss is `Σ_i Σ_t w_i·ℓ_{i,t}`.
///
/// | mode | w_i for a sequence of n_i loss tokens |
/// |---|---|
/// | token-mean | 1/T |
/// | seq-mean-token-mean | 1/(S·n_i) |
/// | seq-mean-token-sum | 1/S |
/// | token-sum-const | 1/(S·L) |
/// | token-sum-norm | 1/L |
///
/// T and S are the step's `AggregationTotals`, L is `aggregation.constant`. KL and entropy terms are
/// aggregated the same way (as verl does).
public enum Aggregation {
    /// Whether a sample has loss tokens: non-empty and not masked as truncated (`filter.mask_truncated`).
    public static func contributes(length: Int, finishReason: FinishReason, filter: FilterOptions) -> Bool {
        length > 0 && !(filter.maskTruncated && finishReason == .length)
    }

    public static func weight(sequenceTokens: Int, totals: AggregationTotals, options: AggregationOptions) -> Double {
        guard sequenceTokens > 0, totals.tokens > 0, totals.sequences > 0 else { return 0 }
        let constant = Double(options.constant ?? 1)
        switch options.mode {
        case .tokenMean: return 1 / Double(totals.tokens)
        case .seqMeanTokenMean: return 1 / (Double(totals.sequences) * Double(sequenceTokens))
        case .seqMeanTokenSum: return 1 / Double(totals.sequences)
        case .tokenSumConstant: return 1 / (Double(totals.sequences) * constant)
        case .tokenSumNorm: return 1 / constant
        }
    }

    /// The aggregated value of per-token losses, one row per sequence (an empty row is a fully
    /// masked sequence), with the totals taken from these rows.
    public static func aggregate(tokenLosses rows: [[Double]], options: AggregationOptions) -> Double {
        let totals = AggregationTotals(tokens: rows.map(\.count).reduce(0, +), sequences: rows.filter { !$0.isEmpty }.count)
        var sum = 0.0
        for row in rows {
            let weight = weight(sequenceTokens: row.count, totals: totals, options: options)
            for loss in row { sum += weight * loss }
        }
        return sum
    }
}
