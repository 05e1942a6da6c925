import Foundation

// Reads a run directory the way an operator would: run.log as JSON lines and learner-summary.json.
// Parsed here, independently of TroupeRuntime, so the tests check the files' documented shape.

struct LogRecord {
    let seq: Int
    let type: String
    let body: [String: Any]

    func int(_ key: String) -> Int? { (body[key] as? NSNumber)?.intValue }
    func string(_ key: String) -> String? { body[key] as? String }
    func ints(_ key: String) -> [Int] { (body[key] as? [NSNumber])?.map(\.intValue) ?? [] }
    func strings(_ key: String) -> [String] { body[key] as? [String] ?? [] }

    /// `actor` of a group key "actor#run#sequence".
    static func actor(ofGroup key: String) -> String { String(key.split(separator: "#").first ?? "") }
}

/// A group as the run log accepted it.
struct AcceptedGroup {
    let key: String
    let seq: Int
    let promptId: Int
    let epoch: String
    let versionStep: Int
    var actor: String { LogRecord.actor(ofGroup: key) }
}

/// A training step that still counts: its batch was formed and no later `resumed` record voided it.
struct SurvivingStep {
    let step: Int
    let groups: [String]
    /// The learner epoch that formed the batch.
    let epoch: String
}

struct RunRecords {
    let runDirectory: String

    /// Every complete line of run.log (a torn last line, if the learner died mid-append, is skipped).
    var all: [LogRecord] {
        guard let data = FileManager.default.contents(atPath: runDirectory + "/run.log"),
              let text = String(data: data, encoding: .utf8) else { return [] }
        var out: [LogRecord] = []
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let seq = (object["seq"] as? NSNumber)?.intValue, let type = object["type"] as? String else { continue }
            out.append(LogRecord(seq: seq, type: type, body: object))
        }
        return out
    }

    func of(_ type: String) -> [LogRecord] { all.filter { $0.type == type } }

    /// Breaks in the hash chain's links: `seq` must count 1, 2, 3… and each `prev` must be the previous
    /// line's `hash` (the hashes themselves are recomputed by `troupe replay`).
    var chainProblems: [String] {
        var problems: [String] = []
        var previous = String(repeating: "0", count: 16) // XXH64's genesis
        for (i, r) in all.enumerated() {
            if r.seq != i + 1 { problems.append("line \(i + 1) has seq \(r.seq)") }
            if r.string("prev") != previous { problems.append("line \(i + 1) (\(r.type)): prev does not link to line \(i)") }
            previous = r.string("hash") ?? ""
        }
        return problems
    }

    var stepsDone: [Int] { of("step_done").compactMap { $0.int("step") } }

    var accepted: [AcceptedGroup] {
        of("group_accepted").compactMap { r in
            guard let key = r.string("group"), let prompt = r.int("prompt_id"), let v = r.body["version"] as? [String: Any],
                  let epoch = v["epoch"] as? String, let step = (v["step"] as? NSNumber)?.intValue else { return nil }
            return AcceptedGroup(key: key, seq: r.seq, promptId: prompt, epoch: epoch, versionStep: step)
        }
    }

    /// Reasons of `group_rejected` records, counted.
    var rejectionsByReason: [String: Int] {
        var counts: [String: Int] = [:]
        for r in of("group_rejected") { counts[r.string("reason") ?? "?", default: 0] += 1 }
        return counts
    }

    /// The history that counts after every resume: `batch_formed` records in order, minus the steps
    /// beyond each `resumed` record's `from_step` formed before it.
    var survivingSteps: [SurvivingStep] {
        var steps: [SurvivingStep] = []
        var epoch = ""
        for r in all {
            switch r.type {
            case "epoch_started": epoch = r.string("epoch") ?? ""
            case "batch_formed":
                if let s = r.int("step") { steps.append(SurvivingStep(step: s, groups: r.strings("groups"), epoch: epoch)) }
            case "resumed":
                if let from = r.int("from_step") { steps.removeAll { $0.step > from } }
            default: break
            }
        }
        return steps
    }

    /// Per learner epoch, the last step whose weights survive: an epoch ended by a crash keeps only the
    /// versions up to the checkpoint the next learner resumed from. Live epochs are absent (unbounded).
    var epochCutoffs: [String: Int] {
        var cut: [String: Int] = [:]
        var epoch = ""
        for r in all {
            if r.type == "epoch_started" { epoch = r.string("epoch") ?? "" }
            if r.type == "resumed", let from = r.int("from_step"), !epoch.isEmpty { cut[epoch] = from }
        }
        return cut
    }

    /// Problems with the surviving history: a group trained twice, a trained group never accepted,
    /// steps not exactly 1...n, or a group sampled with weights that are not in the surviving history
    /// before its step (a later step's, a voided step's, or beyond `maxStaleness`).
    func historyProblems(maxStaleness: Int) -> [String] {
        var problems: [String] = []
        let steps = survivingSteps
        let numbers = steps.map(\.step)
        if numbers != Array(1...max(1, numbers.count)) && !numbers.isEmpty {
            problems.append("surviving steps are \(numbers), not 1...\(numbers.count)")
        }
        let acceptedByKey = Dictionary(accepted.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let cutoffs = epochCutoffs
        var trainedAt: [String: Int] = [:]
        for s in steps {
            for key in s.groups {
                if let earlier = trainedAt[key] { problems.append("group \(key) trained at step \(earlier) and again at step \(s.step)") }
                trainedAt[key] = s.step
                guard let g = acceptedByKey[key] else { problems.append("step \(s.step) trains \(key), never accepted"); continue }
                if g.versionStep >= s.step {
                    problems.append("step \(s.step) trains \(key), sampled with weights of step \(g.versionStep) (epoch \(g.epoch)): not before this step")
                } else if let cut = cutoffs[g.epoch], g.versionStep > cut {
                    problems.append("step \(s.step) trains \(key), sampled with weights of step \(g.versionStep) of epoch \(g.epoch), whose steps after \(cut) were voided by a resume")
                } else if s.step - 1 - g.versionStep > maxStaleness {
                    problems.append("step \(s.step) trains \(key), sampled at step \(g.versionStep): beyond max_staleness \(maxStaleness)")
                }
            }
        }
        return problems
    }

    var summary: [String: Any]? {
        guard let data = FileManager.default.contents(atPath: runDirectory + "/learner-summary.json") else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    var accounting: [String: Int]? {
        (summary?["accounting"] as? [String: Any])?.compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    /// The step named by checkpoints/latest ("step-00000004.safetensors" → 4).
    var latestCheckpointStep: Int? {
        guard let data = FileManager.default.contents(atPath: runDirectory + "/checkpoints/latest"),
              let name = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              name.hasPrefix("step-"), name.hasSuffix(".safetensors") else { return nil }
        return Int(name.dropFirst("step-".count).dropLast(".safetensors".count))
    }
}

/// Problems with the accounting identity `produced = trained + rejected + duplicates + lost_uncommitted
/// + in_flight` (rejected being the sum of rejected/<reason>), computed from the summary's numbers.
func accountingProblems(_ a: [String: Int]?) -> [String] {
    guard let a else { return ["learner-summary.json has no accounting"] }
    var problems: [String] = []
    for key in ["produced", "trained", "rejected", "duplicates", "lost_uncommitted", "in_flight"] where a[key] == nil {
        problems.append("accounting lacks \(key)")
    }
    guard problems.isEmpty else { return problems }
    let byReason = a.filter { $0.key.hasPrefix("rejected/") }.values.reduce(0, +)
    if byReason != a["rejected"]! { problems.append("rejected \(a["rejected"]!) != sum of rejected/<reason> \(byReason)") }
    let rhs = a["trained"]! + a["rejected"]! + a["duplicates"]! + a["lost_uncommitted"]! + a["in_flight"]!
    if a["produced"]! != rhs {
        problems.append("produced \(a["produced"]!) != trained \(a["trained"]!) + rejected \(a["rejected"]!) + duplicates \(a["duplicates"]!) + lost_uncommitted \(a["lost_uncommitted"]!) + in_flight \(a["in_flight"]!) = \(rhs)")
    }
    return problems
}
