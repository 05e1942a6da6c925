/// Similarities between completions for the novelty reward when no embedding service is configured:
/// the cosine of character-bigram count vectors, in [0, 1]. EVOL-RL (arXiv 2509.15194) embeds the text
/// after `</think>` with a sentence encoder; this is a lexical stand-in that needs no model, so the
/// reward runs anywhere. Identical texts score 1; texts sharing no bigram score 0.
public enum LexicalSimilarity {
    public static func matrix(_ texts: [String]) -> [[Double]] {
        let vectors = texts.map(bigrams)
        let norms = vectors.map { v in v.values.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() }
        return vectors.indices.map { i in
            vectors.indices.map { j in
                if i == j { return 1 }
                guard norms[i] > 0, norms[j] > 0 else { return texts[i] == texts[j] ? 1 : 0 }
                var dot = 0.0
                for (k, a) in vectors[i] { if let b = vectors[j][k] { dot += Double(a * b) } }
                return min(1, max(0, dot / (norms[i] * norms[j])))
            }
        }
    }

    static func bigrams(_ text: String) -> [String: Int] {
        let chars = Array(text)
        var counts: [String: Int] = [:]
        if chars.count == 1 { counts[String(chars)] = 1 }
        for i in 0..<max(0, chars.count - 1) { counts[String(chars[i...(i + 1)]), default: 0] += 1 }
        return counts
    }
}
