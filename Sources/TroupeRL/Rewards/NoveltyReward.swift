/// EVOL-RL novelty reward on top of the majority vote — Zhou et al., EVOL-RL, arXiv 2509.15194
/// (code: YujunZhou/EVOL-RL
/// `verl/workers/reward_manager/semantic_novelty.py`).
///
/// The caller supplies the similarity matrix `S` (cosine similarity of embeddings of the text after
/// `</think>`); entries are clipped to [0, 1] as in the code. For each valid sample i:
/// `u_i = 1 − (0.5·mean_{j in i's side, j≠i} s_ij + 0.5·max_{valid j≠i} s_ij)`, where the sides are the
/// majority and the non-majority samples. `u` is min-max normalised within each side, then
/// majority: `0.5 + 0.5·ũ` ∈ [0.5, 1]; non-majority: `−1 + 0.5·ũ` ∈ [−1, −0.5]; invalid: −1.
/// Degenerate cases follow the code: a side with one member gets 1.0 / −0.5; a side whose novelty is
/// all equal gets 0.75 / −0.75; if any answer is invalid and fewer than 2 are valid, every sample
/// gets −1; a group of one sample gets 1.0 (valid) or −1 (invalid).
public enum NoveltyReward {
    public static func compute(majority: [Bool], valid: [Bool], similarities: [[Double]]) throws -> [Double] {
        let n = majority.count
        try Check.count(valid.count, equals: n, "valid", what: "majority")
        try Check.count(similarities.count, equals: n, "similarities", what: "the group")
        for (row, values) in similarities.enumerated() {
            try Check.count(values.count, equals: n, "similarities[\(row)]", what: "the group")
            try Check.finite(values, "similarities[\(row)]")
        }
        if n == 1 { return [valid[0] ? 1.0 : -1.0] }
        let validIndices = (0..<n).filter { valid[$0] }
        if validIndices.count < n && validIndices.count < 2 { return Array(repeating: -1, count: n) }

        func similarity(_ i: Int, _ j: Int) -> Double { min(max(similarities[i][j], 0), 1) }
        let majoritySide = validIndices.filter { majority[$0] }
        let otherSide = validIndices.filter { !majority[$0] }
        var novelty = Array(repeating: 0.0, count: n)
        for i in validIndices {
            let side = (majority[i] ? majoritySide : otherSide).filter { $0 != i }
            let others = validIndices.filter { $0 != i }
            // A lone member's novelty is never used (its reward is fixed below); the code's fallback is the global mean.
            let peers = side.isEmpty ? others : side
            let meanSimilarity = peers.map { similarity(i, $0) }.reduce(0, +) / Double(peers.count)
            let maxSimilarity = others.map { similarity(i, $0) }.max()!
            novelty[i] = 1 - (0.5 * meanSimilarity + 0.5 * maxSimilarity)
        }
        var rewards = Array(repeating: -1.0, count: n)
        for (side, low, lone) in [(majoritySide, 0.5, 1.0), (otherSide, -1.0, -0.5)] where !side.isEmpty {
            if side.count == 1 { rewards[side[0]] = lone; continue }
            let values = side.map { novelty[$0] }
            let lowest = values.min()!, highest = values.max()!
            for i in side {
                let scaled = highest > lowest ? (novelty[i] - lowest) / (highest - lowest) : 0.5
                rewards[i] = low + 0.5 * scaled
            }
        }
        return rewards
    }
}
