import TroupeProto
import TroupeWire

/// One sample to score: what a worker sees (docs/rewards.md).
package struct RewardQuery: Sendable, Equatable {
    package var promptID: UInt64
    package var prompt: String
    package var completion: String
    /// The task's reference answer; nil in label-free runs.
    package var reference: String?
    package init(promptID: UInt64, prompt: String, completion: String, reference: String?) {
        self.promptID = promptID
        self.prompt = prompt
        self.completion = completion
        self.reference = reference
    }
}

/// What became of one sample's score.
package enum RewardOutcome: Sendable, Equatable {
    /// `steps`: the process reward model's step count (0 for a score per sample).
    case scored(Double, fromCache: Bool, steps: Int)
    /// No attempt gave a score; `reason` says what the last attempt ended with.
    case failed(reason: String)

    package var score: Double? { if case .scored(let s, _, _) = self { s } else { nil } }
}

/// The learner's side of the reward workers: several requests in flight on each of N workers, a
/// deadline on every attempt, further attempts on other workers, and a cache keyed by (reward version,
/// prompt and reference, completion). It does no I/O of its own (its transport does, without
/// waiting) and takes the time as an argument, so every path is tested in memory. A caller asks for
/// a batch of samples (`request`) and collects finished batches from `poll`, which also sends,
/// receives and expires; nothing here blocks, so a worker that never answers costs its deadline only.
package final class RewardWorkerClient {
    package struct Settings: Sendable, Equatable {
        package var version: String
        package var deadlineSeconds: Double
        package var attempts: Int
        package var maxInFlight: Int
        package var cacheEntries: Int
        package init(version: String, deadlineSeconds: Double, attempts: Int, maxInFlight: Int, cacheEntries: Int) {
            self.version = version
            self.deadlineSeconds = deadlineSeconds
            self.attempts = attempts
            self.maxInFlight = maxInFlight
            self.cacheEntries = cacheEntries
        }
        package init(_ config: RunConfig.RewardWorkers) {
            self.init(version: config.version, deadlineSeconds: config.deadlineSeconds, attempts: config.attempts,
                      maxInFlight: config.maxInFlight, cacheEntries: config.cacheEntries)
        }
    }

    /// What the client counted since it started (metrics `reward_workers/<name>`).
    package struct Counters: Sendable, Equatable {
        /// Requests sent to a worker.
        package var calls = 0
        package var cacheHits = 0
        /// Attempts whose deadline passed (no answer, or no worker free to take the request).
        package var timeouts = 0
        /// Answers that were not a valid response to a request in flight: undecodable, wrong protocol
        /// or version, a score that is not a finite number within ±1e6, steps without an aggregation.
        package var garbage = 0
        /// Answers with an `error`: the worker could not score.
        package var workerErrors = 0
        /// Answers to a request no longer in flight (after its deadline).
        package var late = 0
        /// Sends a worker could not take (no live connection: down, restarting or crashed).
        package var unreachable = 0
        /// Samples that got a score / that got none after every attempt.
        package var scored = 0
        package var failed = 0

        package init() {}

        /// What went wrong since `earlier`: the counts of timeouts, garbage, worker errors, refused sends
        /// and unscored samples that grew, by their metric names (those above zero).
        package func problems(since earlier: Counters) -> [String: Int] {
            ["timeouts": timeouts - earlier.timeouts, "garbage": garbage - earlier.garbage, "worker_errors": workerErrors - earlier.workerErrors,
             "unreachable": unreachable - earlier.unreachable, "failed": failed - earlier.failed].filter { $0.value > 0 }
        }

        package var metrics: [String: Double] {
            ["calls": calls, "cache_hits": cacheHits, "timeouts": timeouts, "garbage": garbage, "worker_errors": workerErrors,
             "late": late, "unreachable": unreachable, "scored": scored, "failed": failed].mapValues(Double.init)
        }
    }

    private struct Job {
        var batch: UInt64
        var index: Int
        var query: RewardQuery
        var key: CacheKey
        var attemptsLeft: Int
        var tried: Set<Int> = []
        /// When the current attempt began (queued or sent) and its last reason to fail.
        var attemptStart: Double
        var lastProblem = "no worker answered"
    }

    private struct InFlight {
        var job: Job
        var worker: Int
        var deadline: Double
    }

    private struct Batch {
        var outcomes: [RewardOutcome?]
        var remaining: Int
    }

    private struct CacheKey: Hashable {
        var prompt: [UInt8]
        var completion: [UInt8]
    }

    package let settings: Settings
    private let transport: any RewardWorkerTransport
    package private(set) var counters = Counters()
    private var queue: [Job] = []
    private var inFlight: [UInt64: InFlight] = [:]
    private var inFlightPerWorker: [Int]
    /// A worker that could not take a request is left alone until then (down or reconnecting: the
    /// transport reconnects by itself, and asking it at every turn would only count the same refusal).
    private var unavailableUntil: [Double]
    /// Attempts each worker failed since its last score (let run out, answered with an error or garbage):
    /// a silent worker's slots come free at every deadline and a failing one answers fast, and neither
    /// must be first in line again for them.
    private var failuresSinceScore: [Int]
    private var batches: [UInt64: Batch] = [:]
    private var finished: [(UInt64, [RewardOutcome])] = []
    private var nextBatch: UInt64 = 1
    private var nextRequest: UInt64 = 1
    private var cache: [CacheKey: (score: Double, steps: Int, used: UInt64)] = [:]
    private var useClock: UInt64 = 0

    /// Seconds a worker that refused a send is skipped.
    package static let unavailablePause = 0.25

    package init(settings: Settings, transport: any RewardWorkerTransport) {
        self.settings = settings
        self.transport = transport
        inFlightPerWorker = Array(repeating: 0, count: transport.workerCount)
        unavailableUntil = Array(repeating: -.infinity, count: transport.workerCount)
        failuresSinceScore = Array(repeating: 0, count: transport.workerCount)
    }

    /// Samples asked for and not yet finished, and requests on the wire.
    package var pendingSamples: Int { batches.values.reduce(0) { $0 + $1.remaining } }
    package var requestsInFlight: Int { inFlight.count }

    /// Asks for the scores of `queries`; returns the batch's id, which `poll` hands back with one
    /// outcome per query, in order. Cached scores are answered at once (the batch may finish in the next poll).
    package func request(_ queries: [RewardQuery], now: Double) -> UInt64 {
        let id = nextBatch
        nextBatch += 1
        var batch = Batch(outcomes: Array(repeating: nil, count: queries.count), remaining: queries.count)
        for (index, query) in queries.enumerated() {
            let key = cacheKey(query)
            if settings.cacheEntries > 0, let hit = cache[key] {
                useClock += 1
                cache[key]!.used = useClock
                counters.cacheHits += 1
                counters.scored += 1
                batch.outcomes[index] = .scored(hit.score, fromCache: true, steps: hit.steps)
                batch.remaining -= 1
            } else {
                queue.append(Job(batch: id, index: index, query: query, key: key, attemptsLeft: settings.attempts, attemptStart: now))
            }
        }
        batches[id] = batch
        if batch.remaining == 0 { finish(id) }
        return id
    }

    /// Receives answers, expires attempts past their deadline, sends what waits to workers with a free
    /// slot, and returns the batches that finished, each with its outcomes in query order.
    package func poll(now: Double) -> [(batch: UInt64, outcomes: [RewardOutcome])] {
        for (worker, frames) in transport.receive() { take(frames, from: worker, now: now) }
        expire(now: now)
        dispatch(now: now)
        defer { finished.removeAll() }
        return finished.map { (batch: $0.0, outcomes: $0.1) }
    }

    /// Forgets every batch (the learner stopping); what workers answer later is counted as late.
    package func close() { transport.close() }

    // MARK: internals

    private func cacheKey(_ q: RewardQuery) -> CacheKey {
        var prompt = Blake2b(digestLength: 16)
        prompt.updateField(Array(settings.version.utf8))
        prompt.updateField(Array(q.prompt.utf8))
        prompt.updateInteger(q.reference == nil ? 0 : 1)
        prompt.updateField(Array((q.reference ?? "").utf8))
        return CacheKey(prompt: prompt.finalize(), completion: Blake2b.hash(Array(q.completion.utf8), digestLength: 16))
    }

    private func dispatch(now: Double) {
        var waiting: [Job] = []
        for var job in queue {
            // Workers with a free slot: those not yet tried for this sample first, then those scoring
            // (fewest attempts failed since their last score), then the least busy. While a worker not yet
            // tried for the sample is up and failing nothing, the sample waits for its slot rather than
            // going back to one that failed it (within the attempt's deadline).
            func rank(_ w: Int) -> (Int, Int, Int) { (job.tried.contains(w) ? 1 : 0, failuresSinceScore[w], inFlightPerWorker[w]) }
            let untriedHealthy = (0..<transport.workerCount).contains {
                !job.tried.contains($0) && failuresSinceScore[$0] == 0 && now >= unavailableUntil[$0]
            }
            let candidates = (0..<transport.workerCount).filter {
                inFlightPerWorker[$0] < settings.maxInFlight && now >= unavailableUntil[$0] && !(untriedHealthy && job.tried.contains($0))
            }.sorted { rank($0) < rank($1) }
            var sent = false
            for worker in candidates {
                var r = Troupe_V1_RewardRequest()
                r.protocol = rewardProtocolVersion
                r.requestID = nextRequest
                r.rewardVersion = settings.version
                r.promptID = job.query.promptID
                r.prompt = job.query.prompt
                r.completion = job.query.completion
                r.hasReference_p = job.query.reference != nil
                r.referenceAnswer = job.query.reference ?? ""
                guard transport.send(r, to: worker) else {
                    counters.unreachable += 1
                    unavailableUntil[worker] = now + Self.unavailablePause
                    job.lastProblem = "worker \(worker) unreachable"
                    continue
                }
                counters.calls += 1
                job.tried.insert(worker)
                inFlightPerWorker[worker] += 1
                inFlight[nextRequest] = InFlight(job: job, worker: worker, deadline: job.attemptStart + settings.deadlineSeconds)
                nextRequest += 1
                sent = true
                break
            }
            if !sent { waiting.append(job) }
        }
        queue = waiting
    }

    private func expire(now: Double) {
        for (id, f) in inFlight where now >= f.deadline {
            inFlight.removeValue(forKey: id)
            inFlightPerWorker[f.worker] -= 1
            failuresSinceScore[f.worker] += 1
            counters.timeouts += 1
            var job = f.job
            job.lastProblem = "worker \(f.worker) gave no answer within \(settings.deadlineSeconds) s"
            retryOrFail(job, now: now)
        }
        var waiting: [Job] = []
        for var job in queue {
            if now >= job.attemptStart + settings.deadlineSeconds {
                counters.timeouts += 1
                // Said once, with the problem before it, however many attempts waited for a slot.
                let waited = "no worker could take the request within \(settings.deadlineSeconds) s"
                if !job.lastProblem.hasPrefix(waited) { job.lastProblem = "\(waited) (\(job.lastProblem))" }
                retryOrFail(job, now: now, requeue: &waiting)
            } else {
                waiting.append(job)
            }
        }
        queue = waiting
    }

    private func retryOrFail(_ job: Job, now: Double) {
        var q = queue
        retryOrFail(job, now: now, requeue: &q)
        queue = q
    }

    private func retryOrFail(_ job: Job, now: Double, requeue: inout [Job]) {
        var job = job
        job.attemptsLeft -= 1
        if job.attemptsLeft > 0 {
            job.attemptStart = now
            requeue.append(job)
        } else {
            counters.failed += 1
            resolve(job, .failed(reason: job.lastProblem))
        }
    }

    private func take(_ frames: [[UInt8]], from worker: Int, now: Double) {
        guard frames.count == 1, let response = try? Troupe_V1_RewardResponse(serializedBytes: frames[0]) else {
            counters.garbage += 1
            return
        }
        // Ids are never 0: such an answer (an empty frame parses as one) answers nothing that was asked.
        guard response.requestID != 0 else {
            counters.garbage += 1
            return
        }
        guard let f = inFlight[response.requestID], f.worker == worker else {
            counters.late += 1
            return
        }
        inFlight.removeValue(forKey: response.requestID)
        inFlightPerWorker[worker] -= 1
        var job = f.job
        switch Self.score(of: response, version: settings.version) {
        case .success(let (score, steps)):
            failuresSinceScore[worker] = 0
            counters.scored += 1
            remember(job.key, score: score, steps: steps)
            resolve(job, .scored(score, fromCache: false, steps: steps))
        case .failure(let problem):
            if problem.isWorkerError { counters.workerErrors += 1 } else { counters.garbage += 1 }
            failuresSinceScore[worker] += 1
            job.lastProblem = "worker \(worker): \(problem.text)"
            retryOrFail(job, now: now)
        }
    }

    package struct ResponseProblem: Error, Equatable {
        package var text: String
        package var isWorkerError = false
    }

    /// The score a response gives, or what is wrong with it. Pure.
    package static func score(of r: Troupe_V1_RewardResponse, version: String) -> Result<(Double, Int), ResponseProblem> {
        if r.protocol != rewardProtocolVersion { return .failure(.init(text: "protocol \(r.protocol), expected \(rewardProtocolVersion)")) }
        // Another reward's worker is garbage whatever it says; an error may leave the version empty.
        let versionProblem = ResponseProblem(text: "reward version \"\(printable(r.rewardVersion, bytes: 100))\", expected \"\(version)\"")
        if !r.rewardVersion.isEmpty && r.rewardVersion != version { return .failure(versionProblem) }
        if !r.error.isEmpty { return .failure(.init(text: "error: \(printable(r.error, bytes: 200))", isWorkerError: true)) }
        if r.rewardVersion != version { return .failure(versionProblem) }
        let score: Double
        switch r.aggregation {
        case .unspecified:
            if !r.stepScores.isEmpty { return .failure(.init(text: "\(r.stepScores.count) step scores without an aggregation")) }
            score = r.score
        case .UNRECOGNIZED(let n):
            return .failure(.init(text: "unknown step aggregation \(n)"))
        default:
            guard !r.stepScores.isEmpty else { return .failure(.init(text: "aggregation \(r.aggregation) without step scores")) }
            guard r.stepScores.allSatisfy({ $0.isFinite }) else { return .failure(.init(text: "a step score is not a finite number")) }
            let s = r.stepScores
            switch r.aggregation {
            case .min: score = s.min()!
            case .mean: score = s.reduce(0, +) / Double(s.count)
            case .last: score = s.last!
            default: score = s.reduce(1, *)
            }
        }
        guard score.isFinite, abs(score) <= 1e6 else { return .failure(.init(text: "score \(score) is not a finite number within ±1e6")) }
        return .success((score, r.stepScores.count))
    }

    private func remember(_ key: CacheKey, score: Double, steps: Int) {
        guard settings.cacheEntries > 0 else { return }
        useClock += 1
        cache[key] = (score, steps, useClock)
        if cache.count > settings.cacheEntries {
            // Evict the least recently used eighth at once, so eviction costs O(1) per insertion on average.
            let drop = max(1, settings.cacheEntries / 8)
            for (k, _) in cache.sorted(by: { $0.value.used < $1.value.used }).prefix(drop) { cache.removeValue(forKey: k) }
        }
    }

    private func resolve(_ job: Job, _ outcome: RewardOutcome) {
        guard var batch = batches[job.batch], batch.outcomes[job.index] == nil else { return }
        batch.outcomes[job.index] = outcome
        batch.remaining -= 1
        batches[job.batch] = batch
        if batch.remaining == 0 { finish(job.batch) }
    }

    private func finish(_ id: UInt64) {
        guard let batch = batches.removeValue(forKey: id) else { return }
        finished.append((id, batch.outcomes.map { $0! }))
    }
}

/// A worker's text as it goes into acks, the run log and the console: at most `bytes` bytes of UTF-8,
/// control characters shown as spaces.
func printable(_ text: String, bytes: Int) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        let shown: Unicode.Scalar = scalar.properties.generalCategory == .control ? " " : scalar
        if out.utf8.count + String(shown).utf8.count > bytes { return out + "…" }
        out.unicodeScalars.append(shown)
    }
    return out
}
