import Foundation
import TroupeModel
import TroupeRL
import TroupeRuntime
import TroupeWire

/// Everything a group must satisfy before the learner acknowledges it (docs/ARCHITECTURE.md §3): its
/// shape, every value against the run's limits, and its answers and rewards against the learner's own
/// scoring of its tokens. A group that would fail or skew a training step is refused here with a
/// counted reason; once acknowledged, it is trained. Pure: no I/O.
package struct GroupAdmission {
    package struct Limits: Sendable, Equatable {
        package var vocabularySize: Int
        /// The model's `max_position_embeddings`: prompt plus completion must fit.
        package var contextLength: Int
        package var maxNewTokens: Int
        package var groupSize: Int
        /// The temperatures the run samples at: sample j's must be `temperatures[j mod n]`.
        package var temperatures: [Float]
        /// Whether every sample must carry per-token entropies (`advantage.entropy_reshaping`).
        package var entropiesRequired: Bool
        /// The lowest behaviour log-prob accepted. e⁻⁵⁰ ≈ 2·10⁻²²: a sampler drawing from 64-bit
        /// uniforms cannot pick a token that unlikely, and the importance ratio stays representable.
        package var logProbFloor: Float = -50
        /// The largest |reward| accepted: squares and sums of a group's rewards stay far from overflow.
        package var rewardBound: Double = 1e6
        /// Serial groups (`sampling.shape = serial`); nil: every sample is drawn from the prompt alone.
        package var serial: Serial?
        /// Tree groups (`sampling.shape = tree`); nil: no sample shares a computed prefix with another.
        package var tree: Tree?

        /// A tree group's shape (ETTRL): per root, its path, then `forks · branching` branches, each the
        /// path's first p tokens, p the fork point the path's entropies give, then its own tokens.
        package struct Tree: Sendable, Equatable {
            package var forks: Int
            package var branching: Int
            package init(forks: Int, branching: Int) {
                self.forks = forks
                self.branching = branching
            }
            package var leavesPerRoot: Int { 1 + forks * branching }
        }

        /// A serial group's shape: `groupSize − 1` exits, each the path's prefix, `phrase`, then at
        /// most `answerTokens` drawn tokens; then the path.
        package struct Serial: Sendable, Equatable {
            package var phrase: [Int32]
            package var answerTokens: Int
            package init(phrase: [Int32], answerTokens: Int) {
                self.phrase = phrase
                self.answerTokens = answerTokens
            }
        }

        package init(vocabularySize: Int, contextLength: Int, maxNewTokens: Int, groupSize: Int, temperatures: [Float],
                     entropiesRequired: Bool) {
            self.vocabularySize = vocabularySize
            self.contextLength = contextLength
            self.maxNewTokens = maxNewTokens
            self.groupSize = groupSize
            self.temperatures = temperatures
            self.entropiesRequired = entropiesRequired
        }

        /// The limits of `config` sampled with `model`. Tree groups always carry entropies: their fork
        /// points are checked against them.
        package init(config: RunConfig, model: ModelConfig) {
            self.init(vocabularySize: model.vocabularySize, contextLength: model.maxPositions,
                      maxNewTokens: config.sampling.maxNewTokens, groupSize: config.sampling.groupSize,
                      temperatures: config.sampling.temperatures.map { $0.map(Float.init) } ?? [Float(config.sampling.temperature)],
                      entropiesRequired: config.algorithm.advantage.entropyReshaping || config.groupShape == .tree)
            if config.groupShape == .tree { tree = Tree(forks: config.sampling.treeForks, branching: config.sampling.treeBranching) }
        }
    }

    package struct Refusal: Error, Equatable {
        package var reason: LearnerCore.RejectReason
        package var detail: String
        /// Whether the actor made the group so (`LearnerCore.isActorFault`), rather than the learner's own
        /// scoring or its reward workers failing on it: only then does the actor get a strike.
        package var actorAtFault: Bool
        package init(_ reason: LearnerCore.RejectReason, _ detail: String, learnerSide: Bool = false) {
            self.reason = reason
            self.detail = detail
            actorAtFault = !learnerSide && LearnerCore.isActorFault(reason)
        }
    }

    package let limits: Limits
    /// Re-scores every group from its tokens; nil checks shape and ranges only (tests of the core).
    package let scorer: GroupScorer?
    /// The stop sequences the run samples with.
    package let stopSequences: [String]
    /// The reference answer a prompt's reward may use (verifiable rewards); nil in label-free runs.
    package let groundTruth: (UInt64) -> String?

    package init(limits: Limits, scorer: GroupScorer?, stopSequences: [String], groundTruth: @escaping (UInt64) -> String? = { _ in nil }) {
        self.limits = limits
        self.scorer = scorer
        self.stopSequences = stopSequences
        self.groundTruth = groundTruth
    }

    /// Checks `group`; returns it with the learner's own answers, rewards and reward components.
    package func review(_ group: RolloutGroup) -> Result<RolloutGroup, Refusal> {
        if let refusal = precheck(group) { return .failure(refusal) }
        guard let scorer else { return .success(group) }
        return rescored(group, by: scorer)
    }

    /// Every check but the rewards: what a group must pass before the reward workers are asked to score it.
    package func precheck(_ group: RolloutGroup) -> Refusal? {
        Self.shapeProblem(group) ?? rangeProblem(group) ?? serialProblem(group) ?? treeProblem(group) ?? finishProblem(group)
    }

    /// Checks `group` as `review` does, with the reward workers' scores (`reward.kind = external`) in
    /// place of the ones the actor reported, which it could not know. A sample the workers did not
    /// score gets `fallback` (marked by the component `reward_fallback` = 1) or, without one, the group
    /// is refused as `reward_unavailable`. The answers are still checked against the tokens.
    package func review(_ group: RolloutGroup, workerScores: [RewardOutcome], fallback: Double?) -> Result<RolloutGroup, Refusal> {
        if let refusal = precheck(group) { return .failure(refusal) }
        guard workerScores.count == group.samples.count else {
            return .failure(Refusal(.malformed, "\(workerScores.count) worker scores for \(group.samples.count) samples", learnerSide: true))
        }
        var scores: [Double] = []
        var fellBack: [Bool] = []
        for (i, outcome) in workerScores.enumerated() {
            switch outcome {
            case .scored(let score, _, _):
                scores.append(score)
                fellBack.append(false)
            case .failed(let reason):
                guard let fallback else { return .failure(Refusal(.rewardUnavailable, "sample \(i): \(reason)")) }
                scores.append(fallback)
                fellBack.append(true)
            }
        }
        guard let scorer else { return .success(group) }
        return rescored(group, by: scorer, workerScores: scores).map { checked in
            var marked = checked
            for i in marked.samples.indices where fellBack[i] { marked.samples[i].components["reward_fallback"] = 1 }
            return marked
        }
    }

    /// Counts that disagree and values that are not numbers: what no run could train on.
    package static func shapeProblem(_ g: RolloutGroup) -> Refusal? {
        if g.samples.isEmpty { return Refusal(.malformed, "group has no samples") }
        for (i, s) in g.samples.enumerated() {
            if s.tokens.isEmpty { return Refusal(.malformed, "sample \(i) has no tokens") }
            if s.logprobs.count != s.tokens.count { return Refusal(.malformed, "sample \(i): \(s.logprobs.count) log-probs for \(s.tokens.count) tokens") }
            if let e = s.entropies, e.count != s.tokens.count { return Refusal(.malformed, "sample \(i): \(e.count) entropies for \(s.tokens.count) tokens") }
            // Before anything counts the tokens drawn: a span past the sample's end makes them negative.
            if let span = s.inserted, span.upperBound > s.tokens.count {
                return Refusal(.malformed, "sample \(i): inserted tokens \(span.lowerBound)..<\(span.upperBound) of \(s.tokens.count)")
            }
            if !s.reward.isFinite { return Refusal(.nonFinite, "sample \(i): reward \(s.reward)") }
            if ScanFor.nonFinite(s.logprobs), let p = s.logprobs.firstIndex(where: { !$0.isFinite }) { return Refusal(.nonFinite, "sample \(i): log-prob \(s.logprobs[p]) at token \(p)") }
            if let e = s.entropies, ScanFor.nonFinite(e), let p = e.firstIndex(where: { !$0.isFinite }) { return Refusal(.nonFinite, "sample \(i): entropy \(e[p]) at token \(p)") }
            if !s.temperature.isFinite { return Refusal(.nonFinite, "sample \(i): temperature \(s.temperature)") }
            if let (name, v) = s.components.first(where: { !$0.value.isFinite }) { return Refusal(.nonFinite, "sample \(i): reward component \(name) = \(v)") }
        }
        return nil
    }

    private func rangeProblem(_ g: RolloutGroup) -> Refusal? {
        func out(_ text: String) -> Refusal { Refusal(.outOfRange, text) }
        if g.samples.count != limits.groupSize { return out("\(g.samples.count) samples; the run samples \(limits.groupSize) per group") }
        // At least one sample is drawn whole; none is drawn twice.
        let drawnAlone = g.tokensDrawnAlone, longest = g.samples.map(\.trainedTokenCount).max() ?? 0
        if g.tokensGenerated > 0 && !(longest...drawnAlone).contains(Int(g.tokensGenerated)) {
            return out("tokens_generated \(g.tokensGenerated): a group whose longest sample draws \(longest) tokens and whose samples draw \(drawnAlone) alone")
        }
        let vocabulary = Int32(clamping: limits.vocabularySize)
        let logEntropyCeiling = Float(log(Double(max(2, limits.vocabularySize)))) * 1.0001 + 1e-4
        for (i, s) in g.samples.enumerated() {
            // A serial exit holds a proper prefix of the path, the phrase and its answer.
            let most = s.inserted == nil ? limits.maxNewTokens : limits.maxNewTokens - 1 + (limits.serial.map { $0.phrase.count + $0.answerTokens } ?? 0)
            if s.tokens.count > most { return out("sample \(i): \(s.tokens.count) tokens; sampling.max_new_tokens is \(limits.maxNewTokens)" + (s.inserted == nil ? "" : " (a serial exit: at most \(most))")) }
            if g.promptTokens.count + s.tokens.count > limits.contextLength {
                return out("sample \(i): prompt and completion hold \(g.promptTokens.count + s.tokens.count) tokens; the model's context is \(limits.contextLength)")
            }
            if ScanFor.outside(s.tokens, below: vocabulary), let p = s.tokens.firstIndex(where: { $0 < 0 || $0 >= vocabulary }) {
                return out("sample \(i): token id \(s.tokens[p]) at \(p) is outside the vocabulary (0..<\(limits.vocabularySize))")
            }
            if ScanFor.outside(s.logprobs, limits.logProbFloor, 1e-3), let p = s.logprobs.firstIndex(where: { $0 > 1e-3 || $0 < limits.logProbFloor }) {
                return out("sample \(i): behaviour log-prob \(s.logprobs[p]) at token \(p) is outside [\(limits.logProbFloor), 0] (0.001 above 0 is allowed for rounding)")
            }
            if limits.entropiesRequired && s.entropies == nil { return out("sample \(i): no entropies; advantage.entropy_reshaping needs them") }
            if let e = s.entropies, ScanFor.outside(e, -1e-4, logEntropyCeiling), let p = e.firstIndex(where: { $0 < -1e-4 || $0 > logEntropyCeiling }) {
                return out("sample \(i): entropy \(e[p]) at token \(p) is outside [0, ln \(limits.vocabularySize)]")
            }
            let expected = limits.temperatures.isEmpty ? nil : limits.temperatures[i % limits.temperatures.count]
            if expected.map({ abs($0 - s.temperature) > 1e-6 * max(1, abs($0)) }) ?? true {
                let schedule = limits.temperatures.count == 1 ? "the run samples at \(limits.temperatures[0])"
                    : "the run samples sample \(i) at \(expected.map { "\($0)" } ?? "none") (temperatures \(limits.temperatures.map { "\($0)" }.joined(separator: ", ")) in turn)"
                return out("sample \(i): temperature \(s.temperature); \(schedule)")
            }
            if abs(s.reward) > limits.rewardBound { return out("sample \(i): reward \(s.reward) is beyond ±\(limits.rewardBound)") }
        }
        return nil
    }

    /// A serial group is its exits, earliest first, then the path: exit j is the path's first P_j
    /// tokens (P_j < the path's length, never decreasing), the run's exit phrase (the inserted
    /// tokens) and at least one answer token. Inserted tokens anywhere else are refused.
    private func serialProblem(_ g: RolloutGroup) -> Refusal? {
        func malformed(_ text: String) -> Refusal { Refusal(.malformed, text) }
        guard let serial = limits.serial else {
            if let i = g.samples.firstIndex(where: { $0.inserted != nil }) {
                return malformed("sample \(i): inserted tokens, but the run samples independent groups (sampling.shape)")
            }
            return nil
        }
        let path = g.samples.last!
        if path.inserted != nil { return malformed("sample \(g.samples.count - 1): the path of a serial group has inserted tokens") }
        var previous = 0
        for (i, s) in g.samples.dropLast().enumerated() {
            guard let inserted = s.inserted else { return malformed("sample \(i): a serial exit without its inserted exit phrase") }
            let kept = inserted.lowerBound
            if kept >= path.tokens.count || kept < previous {
                return malformed("sample \(i): exit after \(kept) tokens; exits come earliest first, each before the path's last token (\(path.tokens.count))")
            }
            if inserted.upperBound > s.tokens.count || Array(s.tokens[inserted]) != serial.phrase {
                return malformed("sample \(i): inserted tokens \(inserted) are not the run's exit phrase")
            }
            if s.tokens[..<kept] != path.tokens[..<kept] { return malformed("sample \(i): its first \(kept) tokens are not the path's") }
            let answer = s.tokens.count - inserted.upperBound
            if answer < 1 || answer > serial.answerTokens {
                return malformed("sample \(i): \(answer) answer tokens; sampling.serial_answer_tokens is \(serial.answerTokens)")
            }
            if s.logprobs[inserted].contains(where: { $0 != 0 }) || (s.entropies?[inserted].contains { $0 != 0 } ?? false) {
                return malformed("sample \(i): inserted tokens carry log-probs or entropies (they must be 0)")
            }
            previous = kept
        }
        return nil
    }

    /// A tree group is, per root, its path and then its branches by fork point and branch: branch b at
    /// fork f holds the path's first p_f tokens with their log-probs and entropies as computed once
    /// (bit for bit), then at least the redrawn fork token; p_f are the path's `forks` highest-entropy
    /// positions (`TreeRequest.forkPoints`). A reported `tokens_generated` must be the tokens the tree
    /// computed: each path whole, each branch from its fork point on.
    private func treeProblem(_ g: RolloutGroup) -> Refusal? {
        guard let tree = limits.tree else { return nil }
        func malformed(_ text: String) -> Refusal { Refusal(.malformed, text) }
        guard g.samples.count % tree.leavesPerRoot == 0 else {
            return malformed("\(g.samples.count) samples do not make trees of \(tree.leavesPerRoot) leaves (1 + sampling.tree_forks · sampling.tree_branching)")
        }
        var computed = 0
        for start in stride(from: 0, to: g.samples.count, by: tree.leavesPerRoot) {
            let path = g.samples[start]
            guard let pathEntropies = path.entropies else { return malformed("sample \(start): a tree path without entropies") }
            computed += path.tokens.count
            let forks = TreeRequest.forkPoints(entropies: pathEntropies, forks: tree.forks)
            for (f, point) in forks.enumerated() {
                for b in 0..<tree.branching {
                    let i = start + 1 + f * tree.branching + b
                    let branch = g.samples[i]
                    guard branch.tokens.count > point, let entropies = branch.entropies,
                          branch.tokens[..<point] == path.tokens[..<point],
                          branch.logprobs[..<point].elementsEqual(path.logprobs[..<point], by: { $0.bitPattern == $1.bitPattern }),
                          entropies[..<point].elementsEqual(pathEntropies[..<point], by: { $0.bitPattern == $1.bitPattern }) else {
                        return malformed("sample \(i): branch \(b) of fork \(f) does not hold the first \(point) tokens of its path (sample \(start)), "
                                         + "their log-probs and entropies, and a token of its own; the path's entropies put that fork at token \(point)")
                    }
                    computed += branch.tokens.count - point
                }
            }
        }
        if g.tokensGenerated > 0 && Int(g.tokensGenerated) != computed {
            return malformed("tokens_generated \(g.tokensGenerated), but the tree's paths and branches from their fork points hold \(computed) tokens")
        }
        return nil
    }

    /// A sampler ends a completion at its first stop token or stop sequence, or at its length limit;
    /// a finish reason that says otherwise does not describe the tokens.
    private func finishProblem(_ g: RolloutGroup) -> Refusal? {
        guard let scorer else { return nil }
        for (i, s) in g.samples.enumerated() {
            if let p = s.tokens.dropLast().firstIndex(where: scorer.stopTokens.contains) {
                return Refusal(.malformed, "sample \(i): stop token \(s.tokens[p]) at \(p) is not the last token")
            }
            // Nor may a stop sequence be complete before the last token: tokens after it would be trained on.
            // A serial exit's sampler looks from its first answer token on, over the path's prefix and the
            // inserted phrase: one answer token may follow a stop sequence the two make together, not more.
            let lookedAt = s.inserted.map { $0.upperBound + 1 } ?? 1
            if s.tokens.count > lookedAt && containsStopSequence(Array(s.tokens.dropLast()), scorer: scorer) {
                return Refusal(.malformed, "sample \(i): its text holds a stop sequence before its last token, where sampling stops")
            }
            switch s.finishReason {
            case .stop:
                let stopped = scorer.stopTokens.contains(s.tokens.last!)
                    || containsStopSequence(s.tokens, scorer: scorer)
                if !stopped { return Refusal(.malformed, "sample \(i): finish_reason stop, but it ends in neither a stop token nor a stop sequence") }
            case .length:
                // A serial exit's answer is cut at sampling.serial_answer_tokens.
                let limit = s.inserted.map { inserted in
                    inserted.upperBound + min(limits.serial?.answerTokens ?? 0, limits.contextLength - g.promptTokens.count - inserted.upperBound)
                } ?? min(limits.maxNewTokens, limits.contextLength - g.promptTokens.count)
                if s.tokens.count != limit { return Refusal(.malformed, "sample \(i): finish_reason length after \(s.tokens.count) of \(limit) tokens") }
            }
        }
        return nil
    }

    private func containsStopSequence(_ tokens: [Int32], scorer: GroupScorer) -> Bool {
        guard !stopSequences.isEmpty else { return false }
        let bytes = scorer.bytes(of: tokens)
        return stopSequences.contains { containsSubsequence(bytes, Array($0.utf8)) }
    }

    /// The group with the learner's answers, rewards and components; refused when the actor reported
    /// a different answer or reward (a hint that does not check out).
    /// With `workerScores` the reward is the workers', so only the answers are compared.
    private func rescored(_ group: RolloutGroup, by scorer: GroupScorer, workerScores: [Double]? = nil) -> Result<RolloutGroup, Refusal> {
        let completions = group.samples.indices.map { i in
            GroupScorer.Completion(tokens: group.samples[i].tokens, finishReason: group.samples[i].finishReason,
                                   reportedReward: workerScores?[i] ?? group.samples[i].reward)
        }
        let scored: [GroupScorer.Scored]
        do {
            scored = try scorer.score(completions, stopSequences: stopSequences, groundTruth: groundTruth(group.promptId))
        } catch {
            return .failure(Refusal(.malformed, "cannot score the group: \(error)", learnerSide: true))
        }
        var checked = group
        for (i, s) in scored.enumerated() {
            let reported = group.samples[i]
            if reported.answer != s.answer {
                return .failure(Refusal(.rewardMismatch, "sample \(i): reported answer \(Self.quoted(reported.answer)), its tokens give \(Self.quoted(s.answer))"))
            }
            if workerScores == nil, abs(reported.reward - s.reward) > 1e-9 * max(1, abs(s.reward)) {
                return .failure(Refusal(.rewardMismatch, "sample \(i): reported reward \(reported.reward), the run's reward gives \(s.reward)"))
            }
            checked.samples[i].reward = s.reward
            checked.samples[i].components = s.components
        }
        return .success(checked)
    }

    private static func quoted(_ answer: String?) -> String { answer.map { "\"\($0)\"" } ?? "none" }
}
