import Testing
import TroupeProto
import TroupeRuntime

/// The reward workers' client over in-memory workers and a clock the test moves: concurrency across
/// workers, deadlines, further attempts, garbage, errors, the cache. No sockets.
@Suite struct RewardWorkerClientTests {
    static func client(workers: Int = 2, deadline: Double = 1, attempts: Int = 2, maxInFlight: Int = 2,
                       cache: Int = 100) -> (RewardWorkerClient, InMemoryRewardWorkers) {
        let transport = InMemoryRewardWorkers(workers: workers)
        let settings = RewardWorkerClient.Settings(version: "v1", deadlineSeconds: deadline, attempts: attempts,
                                                   maxInFlight: maxInFlight, cacheEntries: cache)
        return (RewardWorkerClient(settings: settings, transport: transport), transport)
    }

    static func queries(_ n: Int, prompt: String = "1+1=") -> [RewardQuery] {
        (0..<n).map { RewardQuery(promptID: 7, prompt: prompt, completion: "answer \($0)", reference: "2") }
    }

    static func answer(_ request: Troupe_V1_RewardRequest, score: Double = 1, version: String = "v1",
                       edit: (inout Troupe_V1_RewardResponse) -> Void = { _ in }) -> Troupe_V1_RewardResponse {
        var r = Troupe_V1_RewardResponse()
        r.protocol = 1
        r.requestID = request.requestID
        r.rewardVersion = version
        r.score = score
        edit(&r)
        return r
    }

    /// Polls every 0.25 s of the test's clock until the first batch finishes (or 10 s pass): its
    /// outcomes, and the time they came at.
    static func firstOutcomes(_ client: RewardWorkerClient) -> (outcomes: [RewardOutcome], at: Double) {
        var t = 0.0
        while t < 10 {
            if let outcomes = client.poll(now: t).first?.outcomes { return (outcomes, t) }
            t += 0.25
        }
        return ([], t)
    }

    @Test func requestsSpreadOverWorkersWithinTheirSlotsAndEveryScoreComesBackInOrder() {
        let (client, workers) = Self.client(workers: 2, maxInFlight: 2)
        let batch = client.request(Self.queries(6), now: 0)
        #expect(client.poll(now: 0).isEmpty)
        let sent = workers.takeRequests()
        // Two workers with two slots each: four requests in flight, two waiting for a slot.
        #expect(sent.count == 4)
        #expect(sent.filter { $0.worker == 0 }.count == 2 && sent.filter { $0.worker == 1 }.count == 2)
        #expect(sent.allSatisfy { $0.request.rewardVersion == "v1" && $0.request.hasReference_p && $0.request.referenceAnswer == "2" })
        for (worker, request) in sent { workers.respond(Self.answer(request, score: Double(request.completion.last!.wholeNumberValue!)), from: worker) }
        #expect(client.poll(now: 0.1).isEmpty)
        let rest = workers.takeRequests()
        #expect(rest.count == 2)
        for (worker, request) in rest { workers.respond(Self.answer(request, score: Double(request.completion.last!.wholeNumberValue!)), from: worker) }
        let done = client.poll(now: 0.2)
        #expect(done.count == 1 && done[0].batch == batch)
        #expect(done[0].outcomes.map(\.score) == [0, 1, 2, 3, 4, 5])
        #expect(client.counters.calls == 6 && client.counters.scored == 6 && client.pendingSamples == 0)
    }

    @Test func aWorkerThatNeverAnswersCostsItsDeadlineThenAnotherWorkerScores() {
        let (client, workers) = Self.client(workers: 2, deadline: 1, attempts: 2)
        _ = client.request(Self.queries(1), now: 0)
        _ = client.poll(now: 0)
        let first = workers.takeRequests()
        #expect(first.count == 1)
        #expect(client.poll(now: 0.99).isEmpty)
        // Deadline passed: the second attempt goes to the worker not yet tried.
        #expect(client.poll(now: 1.0).isEmpty)
        let second = workers.takeRequests()
        #expect(second.count == 1 && second[0].worker != first[0].worker)
        workers.respond(Self.answer(second[0].request, score: 0.5), from: second[0].worker)
        // The silent worker answers at last: counted as late, not used.
        workers.respond(Self.answer(first[0].request, score: 9), from: first[0].worker)
        let done = client.poll(now: 1.5)
        #expect(done.first?.outcomes == [.scored(0.5, fromCache: false, steps: 0)])
        #expect(client.counters.timeouts == 1 && client.counters.late == 1)
    }

    /// A worker whose attempts run out without an answer goes to the back of the line: after its deadline
    /// its slots are free again, but new samples go first to the worker that answers.
    @Test func aSilentWorkerIsAskedLastOnceItsAttemptsRunOut() {
        let (client, workers) = Self.client(workers: 2, deadline: 1, attempts: 2, maxInFlight: 4)
        _ = client.request(Self.queries(1), now: 0)
        _ = client.poll(now: 0)
        let first = workers.takeRequests()
        let silent = first[0].worker, answering = 1 - silent
        _ = client.poll(now: 1.0)
        let retry = workers.takeRequests()
        #expect(retry.map(\.worker) == [answering])
        workers.respond(Self.answer(retry[0].request), from: answering)
        _ = client.poll(now: 1.1)
        // New samples: both workers have free slots and neither was tried for them; the silent one waits.
        _ = client.request(Self.queries(3, prompt: "2+2="), now: 2)
        _ = client.poll(now: 2)
        #expect(workers.takeRequests().map(\.worker) == [answering, answering, answering])
    }

    /// A worker that fails fast (an error, garbage) does not get the sample back while a worker not yet
    /// tried for it is up and failing nothing: the sample waits for that worker's slot, and new samples go
    /// first to the worker that scores.
    @Test func aRetryWaitsForAnUntriedWorkerRatherThanGoingBackToOneThatFailedIt() {
        let (client, workers) = Self.client(workers: 2, deadline: 1, attempts: 2, maxInFlight: 1)
        _ = client.request(Self.queries(2), now: 0)
        _ = client.poll(now: 0)
        let first = workers.takeRequests()
        #expect(first.map(\.worker) == [0, 1])
        workers.respond(Self.answer(first[0].request) { $0.error = "sympy fell over" }, from: 0)
        #expect(client.poll(now: 0.1).isEmpty)
        #expect(workers.takeRequests().isEmpty, "worker 0 failed the sample and worker 1 is busy: the retry waits")
        workers.respond(Self.answer(first[1].request, score: 0.25), from: 1)
        _ = client.poll(now: 0.2)
        let retry = workers.takeRequests()
        #expect(retry.map(\.worker) == [1] && retry.first?.request.completion == "answer 0")
        workers.respond(Self.answer(retry[0].request, score: 0.75), from: 1)
        #expect(client.poll(now: 0.3).first?.outcomes == [.scored(0.75, fromCache: false, steps: 0), .scored(0.25, fromCache: false, steps: 0)])
        #expect(client.counters.workerErrors == 1 && client.counters.failed == 0)
        // New samples: both free and untried; the worker that failed is asked last.
        _ = client.request(Self.queries(1, prompt: "2+2="), now: 1)
        _ = client.poll(now: 1)
        #expect(workers.takeRequests().map(\.worker) == [1])
    }

    @Test func noWorkerAnsweringEndsInACountedFailureAfterEveryAttemptNeverAHang() {
        let (client, workers) = Self.client(workers: 2, deadline: 1, attempts: 3)
        _ = client.request(Self.queries(1), now: 0)
        let (finished, t) = Self.firstOutcomes(client)
        #expect(workers.takeRequests().count == 3)
        guard case .failed(let reason)? = finished.first else { Issue.record("no failure after \(t) s"); return }
        #expect(reason.contains("no answer within 1.0 s"))
        #expect(t <= 3.25)  // the poll that brought the outcome
        #expect(client.counters.timeouts == 3 && client.counters.failed == 1)
    }

    /// A sample that waited for a slot at every attempt says so once, with the problem before it.
    @Test func aSampleThatNeverGotASlotSaysSoOnce() {
        let (client, workers) = Self.client(workers: 1, deadline: 1, attempts: 3, maxInFlight: 1)
        _ = client.request(Self.queries(4), now: 0)
        let outcomes = Self.firstOutcomes(client).outcomes
        _ = workers.takeRequests()
        let reasons = outcomes.compactMap { if case .failed(let reason) = $0 { reason } else { nil } }
        #expect(reasons.count == 4)
        for reason in reasons {
            #expect(reason.components(separatedBy: "no worker could take the request").count <= 2, "\(reason)")
        }
    }

    @Test func workersThatAreDownAreSkippedAndWithNoneUpTheSampleFailsAtItsDeadline() {
        let (client, workers) = Self.client(workers: 2, deadline: 1, attempts: 1)
        workers.down = [0]
        _ = client.request(Self.queries(1), now: 0)
        _ = client.poll(now: 0)
        let sent = workers.takeRequests()
        #expect(sent.map(\.worker) == [1])
        workers.respond(Self.answer(sent[0].request), from: 1)
        #expect(client.poll(now: 0.1).first?.outcomes == [.scored(1, fromCache: false, steps: 0)])
        workers.down = [0, 1]
        _ = client.request([RewardQuery(promptID: 1, prompt: "p", completion: "c", reference: nil)], now: 1)
        #expect(client.poll(now: 1.5).isEmpty)
        let failed = client.poll(now: 2.0)
        guard case .failed(let reason)? = failed.first?.outcomes.first else { Issue.record("expected a failure"); return }
        #expect(reason.contains("no worker could take the request"))
        #expect(client.counters.unreachable >= 2)
    }

    @Test func garbageWrongVersionsErrorsAndBadScoresAreCountedAndRetried() {
        let cases: [(String, (Troupe_V1_RewardRequest, Int, InMemoryRewardWorkers) -> Void, (RewardWorkerClient.Counters) -> Int)] = [
            ("undecodable", { _, w, t in t.respond(frames: [[0xFF, 0xFE, 0x01]], from: w) }, { $0.garbage }),
            ("two frames", { r, w, t in t.respond(frames: [[], (try? Self.answer(r).serializedBytes()) ?? []], from: w) }, { $0.garbage }),
            ("wrong version", { r, w, t in t.respond(Self.answer(r, version: "v0"), from: w) }, { $0.garbage }),
            ("NaN score", { r, w, t in t.respond(Self.answer(r, score: .nan), from: w) }, { $0.garbage }),
            ("huge score", { r, w, t in t.respond(Self.answer(r, score: 1e300), from: w) }, { $0.garbage }),
            ("steps without aggregation", { r, w, t in t.respond(Self.answer(r) { $0.stepScores = [1, 0] }, from: w) }, { $0.garbage }),
            ("worker error", { r, w, t in t.respond(Self.answer(r) { $0.error = "sympy fell over" }, from: w) }, { $0.workerErrors }),
            ("worker error without a version", { r, w, t in t.respond(Self.answer(r, version: "") { $0.error = "no" }, from: w) }, { $0.workerErrors }),
            // Another reward's worker is garbage even when it answers with an error.
            ("error of another version", { r, w, t in t.respond(Self.answer(r, version: "v0") { $0.error = "no" }, from: w) }, { $0.garbage }),
            ("an empty frame (request id 0)", { _, w, t in t.respond(frames: [[]], from: w) }, { $0.garbage }),
        ]
        for (name, misbehave, counted) in cases {
            let (client, workers) = Self.client(workers: 2, deadline: 1, attempts: 2)
            _ = client.request(Self.queries(1), now: 0)
            _ = client.poll(now: 0)
            let first = workers.takeRequests()[0]
            misbehave(first.request, first.worker, workers)
            _ = client.poll(now: 0.1)
            var second = workers.takeRequests()
            if second.isEmpty {
                // An answer that names no request (undecodable): that attempt ends at its deadline.
                _ = client.poll(now: 1.05)
                second = workers.takeRequests()
            }
            #expect(second.count == 1, "\(name): the sample is asked again")
            if let retry = second.first {
                #expect(retry.worker != first.worker, "\(name)")
                workers.respond(Self.answer(retry.request, score: 0.25), from: retry.worker)
            }
            let done = client.poll(now: 1.2)
            #expect(done.first?.outcomes == [.scored(0.25, fromCache: false, steps: 0)], "\(name)")
            #expect(counted(client.counters) == 1, "\(name): counted once")
        }
    }

    /// A worker's error text reaches acks and the run log cut to 200 bytes, control characters blanked.
    @Test func aWorkersErrorTextIsCutAndBlanked() {
        var r = Troupe_V1_RewardResponse()
        r.protocol = rewardProtocolVersion
        r.rewardVersion = "v1"
        r.error = "line one\nline\u{1B}[31m two " + String(repeating: "é", count: 500)
        guard case .failure(let problem) = RewardWorkerClient.score(of: r, version: "v1") else { Issue.record("an error scored"); return }
        #expect(problem.isWorkerError && problem.text.hasPrefix("error: line one line [31m two é") && problem.text.hasSuffix("…"))
        #expect(problem.text.utf8.count <= "error: ".utf8.count + 200 + "…".utf8.count, "\(problem.text.utf8.count) bytes")
    }

    @Test func stepScoresAggregateAsTheResponseSays() {
        func score(_ steps: [Double], _ aggregation: Troupe_V1_StepAggregation) -> Double? {
            var r = Troupe_V1_RewardResponse()
            r.protocol = 1
            r.rewardVersion = "v"
            r.stepScores = steps
            r.aggregation = aggregation
            return try? RewardWorkerClient.score(of: r, version: "v").get().0
        }
        #expect(score([0.9, 0.2, 0.7], .min) == 0.2)
        #expect(score([0.9, 0.2, 0.7], .last) == 0.7)
        #expect(abs(score([0.9, 0.2, 0.7], .mean)! - 0.6) < 1e-12)
        #expect(abs(score([0.5, 0.5], .product)! - 0.25) < 1e-12)
        #expect(score([], .min) == nil)
        #expect(score([0.5, .infinity], .mean) == nil)
    }

    @Test func theCacheAnswersRepeatsByVersionPromptReferenceAndCompletion() {
        let (client, workers) = Self.client(workers: 1, maxInFlight: 8)
        _ = client.request(Self.queries(2), now: 0)
        _ = client.poll(now: 0)
        for (w, r) in workers.takeRequests() { workers.respond(Self.answer(r, score: 0.75), from: w) }
        #expect(client.poll(now: 0.1).count == 1)
        // The same samples again: no call.
        let again = client.request(Self.queries(2), now: 1)
        let done = client.poll(now: 1)
        #expect(done.map(\.batch) == [again])
        #expect(done[0].outcomes == [.scored(0.75, fromCache: true, steps: 0), .scored(0.75, fromCache: true, steps: 0)])
        #expect(workers.takeRequests().isEmpty && client.counters.cacheHits == 2)
        // Another prompt, or another reference, is another key.
        _ = client.request(Self.queries(1, prompt: "2+2="), now: 2)
        _ = client.request([RewardQuery(promptID: 7, prompt: "1+1=", completion: "answer 0", reference: nil)], now: 2)
        _ = client.poll(now: 2)
        #expect(workers.takeRequests().count == 2)
    }

    @Test func aDisabledCacheAlwaysCalls() {
        let (client, workers) = Self.client(workers: 1, maxInFlight: 8, cache: 0)
        for t in 0..<2 {
            _ = client.request(Self.queries(1), now: Double(t))
            _ = client.poll(now: Double(t))
            for (w, r) in workers.takeRequests() { workers.respond(Self.answer(r), from: w) }
            #expect(client.poll(now: Double(t) + 0.1).count == 1)
        }
        #expect(client.counters.calls == 2 && client.counters.cacheHits == 0)
    }
}
