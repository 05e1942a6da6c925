import Foundation
import TroupeProto
import TroupeRuntime
import TroupeWire

/// Subscribes to a learner's log stream (its XPUB side, `endpoints.logs_port`) and feeds the events
/// into a `MonitorState`. The SUB socket's receive queue is bounded: when this process falls behind,
/// libzmq drops events on the publishing side rather than slowing anyone, and the state counts the
/// holes in the sequence numbers. Like every socket, a `MonitorSubscriber` belongs to the thread that
/// created it.
package final class MonitorSubscriber {
    package let endpoint: Endpoint
    private let socket: ZMQSocket
    /// Watches the handshakes of an authenticated subscription for the learner's refusal.
    private let handshakes: SocketMonitor?
    /// Told the ZAP status code each time the learner refuses this subscriber's key at a handshake
    /// (it is not, or no longer, on the learner's allowlist as a monitor). libzmq does not try that
    /// connection again: `FollowingSubscriber` opens a fresh one.
    package var onKeyRefused: (UInt32) -> Void = { _ in }

    /// Why `run` returned.
    package enum StopReason: String, Sendable {
        /// `shouldStop` returned true (e.g. Ctrl-C).
        case requested
        /// The run's deadline passed.
        case deadline
        /// The learner published `run_finished` or `learner_stopped` (with `stopWhenRunEnds`).
        case runEnded
    }

    package struct RunOptions: Sendable {
        /// At most this many `onUpdate` calls per second (a dashboard redraws ~4 times a second).
        package var updatesPerSecond: Double
        /// Stop when this passes (nil: no limit).
        package var deadline: Deadline?
        /// Stop after the learner's `run_finished`/`learner_stopped` event.
        package var stopWhenRunEnds: Bool

        package init(updatesPerSecond: Double = 4, deadline: Deadline? = nil, stopWhenRunEnds: Bool = false) {
            self.updatesPerSecond = updatesPerSecond
            self.deadline = deadline
            self.stopWhenRunEnds = stopWhenRunEnds
        }
    }

    /// Connects a SUB socket to `endpoint` (it connects in the background: a learner that is not up
    /// yet is fine). `receiveQueue` bounds the events buffered here. `security`: CURVE client options
    /// when the learner's log stream is authenticated.
    package init(context: ZMQContext, endpoint: Endpoint, receiveQueue: Int32 = 10_000, security: [SocketOption] = []) throws {
        self.endpoint = endpoint
        socket = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
        do {
            // A monitor retries at most every second (actors' subscriptions back off to 5 s): what a
            // restarted learner publishes before the subscription reaches it is lost.
            try socket.set(SocketProfile.subscriber(limits: .headerOnly, queue: max(1, receiveQueue))
                           + [.reconnectInterval(milliseconds: 100, maximumMilliseconds: 1000)] + security)
            handshakes = security.isEmpty ? nil : try SocketMonitor(watching: socket, kinds: [.handshakeFailedAuth])
            try socket.connect(endpoint)
        } catch {
            socket.close()
            throw error
        }
    }

    deinit { close() }

    package func close() {
        handshakes?.close()
        socket.close()
    }

    /// Takes every event that arrives before `deadline` into `state`, calling `onEvent` for each
    /// (after ingesting it). Returns the number of events. Messages that are not valid LogEvents are
    /// counted in `state.malformedMessages`.
    @discardableResult
    package func receive(into state: inout MonitorState, until deadline: Deadline,
                        onEvent: (Troupe_V1_LogEvent) -> Void = { _ in }) throws -> Int {
        var count = 0
        while let refusal = try handshakes?.next(deadline: .now) { onKeyRefused(refusal.value) }
        while true {
            switch try socket.receiveMessage(deadline: deadline, limits: .headerOnly) {
            case .timedOut:
                return count
            case .rejected(let error):
                state.recordMalformedMessage(reason: error.reason.rawValue)
            case .message(let message):
                guard case .logEvent(let event) = message.body else {
                    state.recordMalformedMessage(reason: "not_a_log_event:\(message.kind.rawValue)")
                    continue
                }
                state.ingest(event, receivedAt: Date().timeIntervalSince1970)
                onEvent(event)
                count += 1
            }
            if deadline.hasPassed { return count }
        }
    }

    /// Receives until `shouldStop` says so, the deadline passes, or (optionally) the run ends,
    /// calling `onUpdate` at most `updatesPerSecond` times a second (and once more at the end).
    package func run(into state: inout MonitorState, options: RunOptions = RunOptions(),
                    shouldStop: () -> Bool = { false },
                    onEvent: (Troupe_V1_LogEvent) -> Void = { _ in },
                    onUpdate: (MonitorState) -> Void = { _ in }) throws -> StopReason {
        let interval = Duration.milliseconds(Int64(1000 / max(0.1, min(options.updatesPerSecond, 1000))))
        var nextUpdate = Deadline.now
        defer { onUpdate(state) }
        while true {
            if shouldStop() { return .requested }
            if options.stopWhenRunEnds && state.runEnded { return .runEnded }
            if let d = options.deadline, d.hasPassed { return .deadline }
            if nextUpdate.hasPassed {
                onUpdate(state)
                nextUpdate = .after(interval)
            }
            // Wake at the next redraw at the latest, and check the stop conditions between events.
            var until = min(nextUpdate, .afterMilliseconds(250))
            if let d = options.deadline { until = min(until, d) }
            try receive(into: &state, until: until) { event in
                onEvent(event)
            }
        }
    }
}

/// A log-stream subscription that follows the learner's endpoints file: when a resumed learner
/// rewrites it with another `logs` endpoint (another host or port), the subscription moves there,
/// keeping the state. The file is read every `checkInterval` seconds. After the learner refuses the
/// key at a handshake, the subscription starts afresh every `retryAfterRefusal` seconds (libzmq
/// gives up on a connection whose handshake was refused), so a key put back on the allowlist is
/// followed again.
package final class FollowingSubscriber {
    private let context: ZMQContext
    private let security: [SocketOption]
    private let learnerFile: String?
    private let checkInterval: Double
    package private(set) var endpoint: Endpoint
    private var subscriber: MonitorSubscriber
    private var lastCheck = Date()
    private var movedTo: Endpoint?
    private let retryAfterRefusal: Double
    /// When the learner last refused the key with no fresh subscription since.
    private var refusedAt: Date?
    /// Told each new endpoint.
    package var onMove: (Endpoint) -> Void = { _ in }
    /// `MonitorSubscriber.onKeyRefused`, at every endpoint and every fresh subscription.
    package var onKeyRefused: (UInt32) -> Void = { _ in }

    package init(context: ZMQContext, endpoint: Endpoint, security: [SocketOption] = [], learnerFile: String?, checkInterval: Double = 2,
                 retryAfterRefusal: Double = 6) throws {
        self.context = context
        self.endpoint = endpoint
        self.security = security
        self.learnerFile = learnerFile
        self.checkInterval = checkInterval
        self.retryAfterRefusal = retryAfterRefusal
        subscriber = try MonitorSubscriber(context: context, endpoint: endpoint, security: security)
        subscriber.onKeyRefused = { [unowned self] in keyRefused($0) }
    }

    private func keyRefused(_ status: UInt32) {
        if refusedAt == nil { refusedAt = Date() }
        onKeyRefused(status)
    }

    private var freshSubscriptionDue: Bool {
        refusedAt.map { Date().timeIntervalSince($0) >= retryAfterRefusal } ?? false
    }

    package func close() { subscriber.close() }

    /// `MonitorSubscriber.run`, across moves.
    package func run(into state: inout MonitorState, options: MonitorSubscriber.RunOptions, shouldStop: () -> Bool,
                     onEvent: (Troupe_V1_LogEvent) -> Void = { _ in },
                     onUpdate: (MonitorState) -> Void = { _ in }) throws -> MonitorSubscriber.StopReason {
        while true {
            let reason = try subscriber.run(into: &state, options: options,
                                            shouldStop: { shouldStop() || learnerMoved() || freshSubscriptionDue },
                                            onEvent: onEvent, onUpdate: onUpdate)
            guard reason == .requested, !shouldStop(), movedTo != nil || freshSubscriptionDue else { return reason }
            let next = movedTo ?? endpoint
            movedTo = nil
            refusedAt = nil
            subscriber.close()
            subscriber = try MonitorSubscriber(context: context, endpoint: next, security: security)
            subscriber.onKeyRefused = { [unowned self] in keyRefused($0) }
            if next != endpoint {
                endpoint = next
                onMove(next)
            }
        }
    }

    private func learnerMoved() -> Bool {
        guard let learnerFile, Date().timeIntervalSince(lastCheck) >= checkInterval else { return false }
        lastCheck = Date()
        guard case .found(let file) = LearnerEndpointsFile.read(learnerFile), let logs = try? Endpoint(parsing: file.logs),
              logs != endpoint else { return false }
        movedTo = logs
        return true
    }
}
