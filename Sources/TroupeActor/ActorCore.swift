import Foundation
import TroupeJSON
import TroupeModel
import TroupeProto
import TroupeRuntime
import TroupeWire

/// The actor's side of the conversation with the learner, without I/O: when to say Hello, what a
/// Welcome establishes, sequence numbers and credit, the groups not yet acknowledged and their resend,
/// leases, heartbeats and when the learner counts as gone. Every decision takes the time as `now`;
/// `ActorClient` carries out what it returns over its `ActorEndpoints`, and tests drive it by hand.
package struct ActorCore {
    package struct Options {
        package var identity: String
        package var runId: UInt64
        /// How long to wait for the first Welcome before giving up (a typo in the address must not hang).
        package var connectTimeout: Double = 60
        /// Silence after which the learner is presumed gone and Hello is repeated.
        package var learnerSilence: Double = 6
        /// Once welcomed, how long the learner may stay silent (no message from any learner, through
        /// reconnects and Hellos) before this actor gives up: on a batch system an actor waiting for a
        /// learner that will never return burns its allocation. Longer than a learner resume takes.
        package var learnerGoneTimeout: Double = 300
        /// How long a LeaseRequest, and a group sent, may go unanswered while the learner speaks (its
        /// heartbeats) before Hello is said again on a fresh connection: a connection that dropped and came
        /// back loses what was in flight, and nothing else would ask again. The learner answers a LeaseRequest
        /// at once; an Ack can wait for reward workers, at most the run's `learner.lease_timeout_s` (the
        /// configuration guarantees it), so the ack timeout is at least that plus 10 s.
        package var leaseAnswerTimeout: Double = 10
        package var ackTimeout: Double = 60
        /// Fault injection: keep the first weights forever and sample leases with them anyway.
        package var ignoreNewWeights = false
        package init(identity: String, runId: UInt64) {
            self.identity = identity
            self.runId = runId
        }
    }

    /// What the learner granted in its last Welcome.
    package struct Terms: Equatable {
        package var epoch: UInt64
        package var credit: Int
        package var leaseSize: UInt32
        package var heartbeatInterval: Double
        package init(epoch: UInt64, credit: Int, leaseSize: UInt32, heartbeatInterval: Double) {
            self.epoch = epoch
            self.credit = credit
            self.leaseSize = leaseSize
            self.heartbeatInterval = heartbeatInterval
        }
    }

    /// Where the conversation stands before any work: `ActorClient.run` asks every turn.
    package enum JoinStep: Equatable {
        /// Welcomed and the learner is speaking: work goes on.
        case joined
        /// Not welcomed: send this Hello, and report it with `sent(.hello, now:)` if it left.
        case sayHello(Troupe_V1_Hello)
        /// Not welcomed; a Hello is out (or a refusal asked for a pause): wait.
        case waiting
        /// The learner was silent for `learnerSilence`: open a fresh connection (the old one may hold
        /// queued messages for a dead learner); Hello follows.
        case reconnect(silentFor: Double)
        /// The learner speaks but left `what` unanswered (`leaseAnswerTimeout`, `ackTimeout`): the same.
        case reconnectUnanswered(what: String, seconds: Double)
        /// Not welcomed, and nothing came through this connection for `learnerSilence`: open a fresh one
        /// (libzmq does not retry a handshake the learner refused, say for a key its allowlist gains later).
        case renewConnection
        /// No learner ever answered within `connectTimeout`.
        case giveUp
        /// A learner answered once, then nothing spoke for `learnerGoneTimeout`: the learner is gone for good.
        case learnerGone(silentFor: Double)
    }

    /// What a message from the learner means beyond the core's own state.
    package enum Event {
        /// A Welcome: the client builds its session from `config`; `resending` groups go out again.
        case welcomed(Troupe_V1_Welcome, WelcomeConfig, resending: Int)
        /// A Welcome whose configuration this actor cannot use.
        case badWelcome(WelcomeConfigError)
        case rejected(Troupe_V1_Reject)
        /// The learner refused one of our groups (it still granted credit for it).
        case groupRejected(Troupe_V1_Ack)
        /// A learner of another epoch spoke: the learner restarted; Hello follows at once.
        case learnerRestarted(epoch: UInt64)
        /// The learner is stopping but the run is not over: wait for it (or its successor).
        case learnerLeft(reason: String)
        /// The conversation is over (the run finished, or the learner speaks another protocol).
        case stop(reason: String)
        /// The allowlist changed: the actors' keys this actor's relay admits from now on.
        case relayPeers([String: CurveKey])
        /// A RelayPeers this actor cannot use (the problem): its relay should admit nobody.
        case badRelayPeers(String)
    }

    /// A message for the learner; report each one that left with `sent(_:now:)`.
    package enum Outgoing {
        case hello
        case leaseRequest(maxPrompts: UInt32)
        case group(sequence: UInt64, WireMessage)
        /// The client adds its statistics.
        case heartbeat

        package var groupSequence: UInt64? { if case .group(let seq, _) = self { seq } else { nil } }
    }

    package let options: Options
    /// Reported in Hello: the BLAS threads this actor samples with (the run's `actors.threads` once welcomed).
    package var threadCount = 1
    package private(set) var terms: Terms?
    package var joined: Bool { terms != nil }
    package private(set) var everWelcomed = false
    /// The epoch of the last Welcome (kept while the actor reconnects, unlike `terms`).
    package private(set) var lastWelcomedEpoch: UInt64?
    /// The newest version the learner of `terms.epoch` has announced.
    package private(set) var newest: PolicyVersion?
    /// The weights this actor samples with (set by `weightsApplied`).
    package private(set) var weights: PolicyVersion?
    package private(set) var credit = 0
    package private(set) var sequence: UInt64 = 0
    package private(set) var produced: UInt64 = 0
    /// Groups sent or waiting to be sent, by sequence number, until acknowledged.
    private var unacked: [UInt64: WireMessage] = [:]
    /// Sequence numbers waiting to be sent, oldest first.
    package private(set) var unsent: [UInt64] = []
    /// Leases received and not yet sampled, oldest first.
    package private(set) var queuedLeases: [Troupe_V1_Lease] = []
    package private(set) var leaseRequested = false
    private var leaseRequestedAt = -Double.infinity
    /// `options.ackTimeout`, or longer where the run lets an Ack wait longer (set by each Welcome).
    private var ackTimeout: Double
    /// When each group in flight was last sent (resent after a Welcome).
    private var sentAt: [UInt64: Double] = [:]
    private var nextLeaseAt = -Double.infinity
    private let started: Double
    private var lastHeard: Double
    /// The last message from any learner (unlike `lastHeard`, a reconnect does not move it).
    package private(set) var lastHeardFromLearner: Double
    private var lastHello = -Double.infinity
    private var lastHeartbeat = -Double.infinity

    package init(options: Options, now: Double) {
        self.options = options
        ackTimeout = options.ackTimeout
        started = now
        lastHeard = now
        lastHeardFromLearner = now
    }

    package var unackedCount: Int { unacked.count }
    package var unackedSequences: [UInt64] { unacked.keys.sorted() }

    // MARK: joining

    package mutating func joinStep(now: Double) -> JoinStep {
        if joined && now - lastHeard <= options.learnerSilence {
            if let unanswered = unanswered(now: now) {
                leave()
                return .reconnectUnanswered(what: unanswered.what, seconds: unanswered.seconds)
            }
            return .joined
        }
        if !everWelcomed && now - started > options.connectTimeout { return .giveUp }
        if everWelcomed && now - lastHeardFromLearner > options.learnerGoneTimeout {
            leave()
            return .learnerGone(silentFor: now - lastHeardFromLearner)
        }
        if joined {
            let silent = now - lastHeard
            leave()
            lastHeard = now
            return .reconnect(silentFor: silent)
        }
        if now - lastHeard > options.learnerSilence {
            lastHeard = now
            return .renewConnection
        }
        // A Hello that left waits a second for its answer; one that found no connection yet is tried
        // again at once, so an actor started before its learner joins as soon as the learner binds.
        return now - lastHello > 1 ? .sayHello(hello) : .waiting
    }

    /// The request the learner has left unanswered too long, if any.
    private func unanswered(now: Double) -> (what: String, seconds: Double)? {
        if leaseRequested && now - leaseRequestedAt > options.leaseAnswerTimeout { return ("a LeaseRequest", now - leaseRequestedAt) }
        if let oldest = sentAt.values.min(), now - oldest > ackTimeout { return ("a group sent", now - oldest) }
        return nil
    }

    package var hello: Troupe_V1_Hello {
        var h = Troupe_V1_Hello()
        h.actorIdentity = options.identity
        h.actorRunID = options.runId
        h.protocolMajor = WireProtocol.major
        h.protocolMinor = WireProtocol.minor
        h.buildID = TroupeBuild.id
        h.threadCount = UInt32(threadCount)
        return h
    }

    private mutating func leave() {
        terms = nil
        newest = nil
        weights = nil
    }

    // MARK: from the learner

    package mutating func receive(_ message: WireMessage, now: Double) -> [Event] {
        lastHeard = now
        lastHeardFromLearner = now
        switch message.body {
        case .welcome(let w):
            return [welcome(w)]
        case .reject(let r):
            switch r.reason {
            case .protocolMajor:
                return [.rejected(r), .stop(reason: "protocol mismatch")]
            case .unknownActor:
                leave()
                lastHello = -.infinity
            case .configMismatch:
                lastHello = now + 2
            default:
                break
            }
            return [.rejected(r)]
        case .lease(let lease):
            leaseRequested = false
            if lease.prompts.isEmpty { nextLeaseAt = now + 0.05 } else { queuedLeases.append(lease) }
            return []
        case .ack(let ack):
            // Only the first ack of a group frees credit; a duplicate's grants none anyway.
            if unacked.removeValue(forKey: ack.sequence) != nil { credit += Int(ack.creditGranted) }
            sentAt.removeValue(forKey: ack.sequence)
            var events: [Event] = ack.status == .rejected ? [.groupRejected(ack)] : []
            events += note(PolicyVersion(ack.currentVersion))
            return events
        case .heartbeat(let hb):
            return note(PolicyVersion(hb.currentVersion))
        case .bye(let bye):
            if bye.reason == ByeReason.runFinished { return [.stop(reason: "learner: \(bye.reason)")] }
            leave()
            lastHello = now
            return [.learnerLeft(reason: bye.reason)]
        case .relayPeers(let update):
            guard joined else { return [] }
            do throws(WelcomeConfigError) { return [.relayPeers(try WelcomeConfig.relayPeers(update.publicKeys, field: "public_keys"))] } catch {
                return [.badRelayPeers("\(error.key): \(error.problem)")]
            }
        default:
            return []
        }
    }

    private mutating func welcome(_ w: Troupe_V1_Welcome) -> Event {
        let config: WelcomeConfig
        do { config = try WelcomeConfig(decoding: w.configJson) } catch { return .badWelcome(error) }
        terms = Terms(epoch: w.learnerEpoch, credit: Int(w.credit), leaseSize: w.leaseSize,
                      heartbeatInterval: Double(max(200, Int(w.heartbeatIntervalMs))) / 1000)
        newest = PolicyVersion(w.currentVersion)
        weights = nil
        everWelcomed = true
        lastWelcomedEpoch = w.learnerEpoch
        credit = Int(w.credit)
        ackTimeout = max(options.ackTimeout, config.run.learner.leaseTimeoutSeconds + 10)
        leaseRequested = false
        queuedLeases.removeAll()
        sentAt.removeAll()
        // Every unacknowledged group goes out again, same sequence numbers: the learner de-duplicates.
        unsent = unacked.keys.sorted()
        return .welcomed(w, config, resending: unsent.count)
    }

    /// A version the learner announced (in an ack, a heartbeat, a weight announcement, or weights
    /// received). Another epoch means the learner restarted: say Hello now rather than after the
    /// silence timeout (its run may be short).
    package mutating func note(_ version: PolicyVersion) -> [Event] {
        guard let terms else { return [] }
        guard version.epoch == terms.epoch else {
            guard version.epoch != 0 else { return [] }
            leave()
            lastHello = -.infinity
            return [.learnerRestarted(epoch: version.epoch)]
        }
        if version.step > newest?.step ?? 0 { newest = version }
        return []
    }

    // MARK: weights and work

    /// Verified weights are in use from now on.
    package mutating func weightsApplied(_ version: PolicyVersion) -> [Event] {
        guard joined else { return [] }
        weights = version
        return note(version)
    }

    /// Whether newer weights than the ones in use should be fetched.
    package var wantsWeights: Bool {
        guard let terms, let newest else { return false }
        guard let current = weights else { return true }
        if options.ignoreNewWeights { return false }
        return current.epoch != terms.epoch || current.step < newest.step
    }

    /// The next lease to sample, if the weights in use are recent enough for it.
    package mutating func takeLease() -> Troupe_V1_Lease? {
        guard let terms, let next = queuedLeases.first, let version = weights, version.epoch == terms.epoch,
              version.step >= next.minVersion.step || options.ignoreNewWeights else { return nil }
        return queuedLeases.removeFirst()
    }

    /// Numbers a sampled group and keeps it until acknowledged; returns its sequence number.
    @discardableResult
    package mutating func enqueue(_ group: GroupSubmission) -> UInt64 {
        sequence += 1
        produced += 1
        var g = group
        g.header.sequence = sequence
        g.header.actorRunID = options.runId
        unacked[sequence] = g.wireMessage()
        unsent.append(sequence)
        return sequence
    }

    /// What to send now, in order: a lease request when nothing is queued and groups in flight leave
    /// room, the unsent groups that credit allows, and a heartbeat when one is due.
    package mutating func outgoing(now: Double) -> [Outgoing] {
        guard let terms else { return [] }
        var out: [Outgoing] = []
        if queuedLeases.isEmpty && !leaseRequested && now >= nextLeaseAt && unacked.count < terms.credit + 2 {
            out.append(.leaseRequest(maxPrompts: terms.leaseSize))
        }
        unsent.removeAll { unacked[$0] == nil }  // acknowledged before their resend
        for seq in unsent.prefix(max(0, credit)) { out.append(.group(sequence: seq, unacked[seq]!)) }
        if now - lastHeartbeat >= heartbeatPeriod(terms) { out.append(.heartbeat) }
        return out
    }

    /// The Welcome's interval, but at most a third of `learnerSilence`: the learner speaks only in answer,
    /// so while a lease is sampled its answers to heartbeats are what keeps the silence rule from firing.
    private func heartbeatPeriod(_ terms: Terms) -> Double {
        min(terms.heartbeatInterval, options.learnerSilence / 3)
    }

    package mutating func sent(_ message: Outgoing, now: Double) {
        switch message {
        case .hello:
            lastHello = now
        case .leaseRequest:
            leaseRequested = true
            leaseRequestedAt = now
        case .group(let seq, _):
            guard let i = unsent.firstIndex(of: seq) else { return }
            unsent.remove(at: i)
            sentAt[seq] = now
            credit -= 1
        case .heartbeat:
            lastHeartbeat = now
        }
    }
}

/// The run configuration a Welcome carries (`config_json`: `{"config": <resolved RunConfig>,
/// "model_files": {name: text}}`), decoded and checked before the actor builds anything from it.
package struct WelcomeConfig {
    package var run: RunConfig
    package var model: ModelConfig
    /// The learner's model files (config.json, tokenizer files) by plain file name.
    package var modelFiles: [String: String]
    /// In an authenticated run, every actor's public key by name: who this actor's relay admits.
    package var relayPeers: [String: CurveKey] = [:]

    package init(decoding text: String) throws(WelcomeConfigError) {
        guard let object = (try? JSONValue.parse(text, source: "config_json"))?.object else {
            throw WelcomeConfigError(key: "config_json", problem: "not a JSON object")
        }
        guard let config = object["config"] else { throw WelcomeConfigError(key: "config", problem: "missing") }
        guard config.object != nil else { throw WelcomeConfigError(key: "config", problem: "expected an object") }
        guard let filesValue = object["model_files"] else { throw WelcomeConfigError(key: "model_files", problem: "missing") }
        guard let fileTexts = filesValue.object, fileTexts.values.allSatisfy({ $0.string != nil }) else {
            throw WelcomeConfigError(key: "model_files", problem: "expected an object of file names to texts")
        }
        let files = fileTexts.mapValues { $0.string! }
        // The names become files in a temporary directory: nothing that could leave it.
        for name in files.keys where name.isEmpty || name.contains("/") || name == "." || name == ".." {
            throw WelcomeConfigError(key: "model_files.\(name)", problem: "not a plain file name")
        }
        guard let modelJSON = files["config.json"] else { throw WelcomeConfigError(key: "model_files.config.json", problem: "missing") }
        do { model = try ModelConfig.parse(json: Data(modelJSON.utf8)) } catch {
            throw WelcomeConfigError(key: "model_files.config.json", problem: "\(error)")
        }
        do { run = try Self.decodeRunConfig(config) } catch let e as ConfigError {
            throw WelcomeConfigError(key: "config.\(e.key)", problem: e.problem)
        } catch {
            throw WelcomeConfigError(key: "config", problem: "\(error)")
        }
        modelFiles = files
        if let peers = object["relay_peers"] {
            guard let entries = peers.object else { throw WelcomeConfigError(key: "relay_peers", problem: "expected an object of actor names to keys") }
            relayPeers = try Self.relayPeers(entries.mapValues { $0.string ?? "" }, field: "relay_peers")
        }
    }

    /// Actor names to Z85 public keys (the Welcome's `relay_peers`, a RelayPeers' `public_keys`), decoded.
    package static func relayPeers(_ entries: [String: String], field: String) throws(WelcomeConfigError) -> [String: CurveKey] {
        var keys: [String: CurveKey] = [:]
        for (name, value) in entries {
            do { keys[name] = try CurveKey(z85: value) } catch { throw WelcomeConfigError(key: "\(field).\(name)", problem: "\(error)") }
        }
        return keys
    }

    /// The one place the actor turns the learner's resolved configuration into a `RunConfig`.
    static func decodeRunConfig(_ config: JSONValue) throws -> RunConfig {
        try RunConfig.parse(config)
    }
}

package struct WelcomeConfigError: Error, CustomStringConvertible, Equatable {
    /// The key of `config_json` at fault (`config.sampling.group_size`, `model_files.config.json`).
    package let key: String
    package let problem: String
    package init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }
    package var description: String { "the learner's Welcome cannot be used: \(key): \(problem)" }
}
