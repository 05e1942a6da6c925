import Foundation
import TroupeRuntime
import TroupeWire

/// What the learner talks through: the control and weights conversations, the announcements, its
/// log stream, and how to wait for input. Over ZeroMQ (`zeroMQ`) these are bound sockets, the log
/// proxy and a poller; in memory (`InMemoryLearnerNetwork`) a test runs each side when it chooses.
package struct LearnerEndpoints {
    package var control: any RouterTransport
    package var weights: any RouterTransport
    package var announce: any PublishTransport
    package var logs: any LogStreamPublisher
    /// Who may connect, when the endpoints are authenticated (CURVE): every message then comes from a
    /// peer with an `authenticatedUser`, the name of its allowlisted key. Nil: plaintext.
    package var allowlist: CurveAllowlist?
    /// The ZAP handler the sockets authenticate through (nil: plaintext, or in memory).
    package var zapHandler: ZAPHandler?
    /// Admits a new allowlist (the learner's own key included) from the next handshake and the next
    /// message on: a reload of `--allow` (`LiveAllowlist`). In memory: nothing to do.
    package var updateAllowlist: (CurveAllowlist) -> Void = { _ in }
    /// After a key was withdrawn (removed, replaced or given another role): the announcements and the
    /// log stream drop every subscriber, since a PUB socket cannot close one peer's connection; the
    /// others reconnect through a new handshake, the withdrawn key cannot. Throws when a subscriber side
    /// could not be bound again. In memory: nothing to do.
    package var dropSubscribers: () throws -> Void = {}
    /// Blocks until the control or weights endpoint, or one of the given file descriptors (the trainer's
    /// and the run-log writer's wake pipes), may be readable, or until the deadline.
    package var waitForInput: (Deadline, [Int32]) throws -> Void
    /// Throws when authentication can no longer be enforced (the ZAP handler died), after closing
    /// every endpoint: the learner then stops (fail closed). Checked at every turn.
    package var checkAuthentication: () throws -> Void = {}
    /// After a finished run, how long late speakers are still told so.
    package var lingerSeconds: Double
    /// After a finished run, how long at most the learner waits on for the Bye of every actor it knows
    /// (joined, or evicted shortly before), telling whoever speaks that the run finished.
    package var goodbyeWaitSeconds: Double
    package var close: () -> Void

    /// The learner's sockets bound as `settings` say, with the log proxy between publishers and monitors.
    /// With `security`, the ZAP handler is bound first and every socket is a CURVE server of it.
    package static func zeroMQ(_ settings: RunConfig.Endpoints, epoch: UInt64, security: LearnerSecurity? = nil) throws -> LearnerEndpoints {
        let context = try ZMQContext(ioThreads: 1)
        // Before any socket binds: a CURVE server without a handler admits everyone.
        let zap = try security.map { try ZAPHandler(context: context, policy: $0.policy) }
        func bindEndpoint(_ port: Int) throws -> Endpoint { .tcp(host: settings.bindHost, port: UInt16(port)) }
        func secure(_ socket: ZMQSocket, _ domain: String) throws {
            guard let security, let zap else { return }
            try socket.set(security.server(domain))
            // Every message is checked against the handler's current policy, which a reload replaces.
            socket.admitsUser = { zap.currentPolicy.admits(user: $0, key: $1, domain: domain) }
        }
        let control = try ZMQSocket(context, type: .router, linger: .upTo(milliseconds: 500))
        try control.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                         .sendHighWaterMark(10_000), .receiveHighWaterMark(10_000)] + SocketProfile.acceptedConnectionLiveness)
        try secure(control, ZAPDomain.control)
        _ = try control.bind(bindEndpoint(settings.controlPort))
        let weights = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        try weights.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                         .sendHighWaterMark(1000)] + SocketProfile.acceptedConnectionLiveness)
        try secure(weights, ZAPDomain.weights)
        _ = try weights.bind(bindEndpoint(settings.weightsPort))
        let announce = try ServerPublisher(context: context, side: ZMQProxy.Side(
            type: .publish, bind: bindEndpoint(settings.announcePort), linger: .discardUnsent,
            options: [.sendHighWaterMark(100)] + (security?.server(ZAPDomain.announce) ?? [])))
        let proxy = try ZMQProxy.startPubSubForwarder(
            context: context, publishersBind: bindEndpoint(settings.logsInPort), subscribersBind: bindEndpoint(settings.logsPort),
            publishersSecurity: security?.server(ZAPDomain.logsIn) ?? [], subscribersSecurity: security?.server(ZAPDomain.logs) ?? [],
            admitPublisher: zap.map { zap in { @Sendable user, key, frames in
                LearnerSecurity.admitsLogEvent(user: user, key: key, frames: frames, policy: zap.currentPolicy) } })
        let ownKeys = security.map { ClientSecurity(name: LearnerSecurity.learnerName, keyPair: $0.keyPair, learnerKey: $0.keyPair.publicKey) }
        let logs = try LogPublisher(context: context, endpoint: Endpoint(parsing: "tcp://127.0.0.1:\(settings.logsInPort)"),
                                    source: "learner", runId: epoch, security: ownKeys?.toLearner ?? [])
        let poller = Poller()
        poller.register(control)
        poller.register(weights)
        let close = {
            // Sockets first, the handler last: without a handler libzmq would admit anyone.
            proxy.stop()
            logs.close()
            control.close(); weights.close(); announce.close()
            context.shutdown()
            zap?.stop()
        }
        let watchdog = zap.map { AuthenticationWatchdog(handler: $0) }
        return LearnerEndpoints(
            control: control, weights: weights, announce: announce, logs: logs, allowlist: security?.allowlist, zapHandler: zap,
            updateAllowlist: { zap?.update(ZAPDomain.policy($0)) },
            dropSubscribers: {
                guard zap != nil else { return }
                // Both, whatever the first does; a side that failed stays closed (fail closed).
                let announcements = Result { try announce.dropSubscribers() }
                try proxy.dropSubscribers()
                try announcements.get()
            },
            waitForInput: { deadline, wakes in
                for wake in wakes { poller.register(fileDescriptor: wake) } // once each: registering again changes nothing
                _ = try poller.poll(until: deadline)
            },
            checkAuthentication: {
                do { try watchdog?.check() } catch {
                    close()
                    throw error
                }
            },
            lingerSeconds: 2, goodbyeWaitSeconds: 10,
            close: close)
    }
}

/// A learner's endpoints in memory: actors are `InMemoryDealer`s of `control` and `weights`, the
/// announcements and log events are kept for the test to read, and waiting returns at once.
package final class InMemoryLearnerNetwork {
    package let control = InMemoryRouter()
    package let weights = InMemoryRouter()
    package let announce = InMemoryPublisher()
    package let logs = InMemoryLogStream(source: "learner")
    /// The `LearnerEndpoints` linger times (none by default: a test that checks the end of a run sets them).
    package var lingerSeconds = 0.0
    package var goodbyeWaitSeconds = 0.0
    /// Authenticated endpoints: actors connect with `InMemoryRouter.connect(identity:authenticatedAs:)`.
    package let allowlist: CurveAllowlist?

    package init(allowlist: CurveAllowlist? = nil) {
        self.allowlist = allowlist
    }

    /// Binds the control, weights and announcement endpoints on `switchboard` at the addresses a
    /// learner with `settings` gives actors (the control endpoint, and the Welcome's), so that real
    /// actors on the switchboard (`InMemoryActorEndpoints`) reach this learner.
    package func bind(on switchboard: InMemorySwitchboard, as settings: RunConfig.Endpoints) throws {
        func advertised(_ port: Int) throws -> Endpoint { try Endpoint(parsing: "tcp://\(settings.advertiseHost):\(port)") }
        switchboard.bind(control, at: try advertised(settings.controlPort))
        switchboard.bind(weights, at: try advertised(settings.weightsPort))
        switchboard.bind(announce, at: try advertised(settings.announcePort))
    }

    package var endpoints: LearnerEndpoints {
        LearnerEndpoints(control: control, weights: weights, announce: announce, logs: logs, allowlist: allowlist,
                         waitForInput: { _, _ in }, lingerSeconds: lingerSeconds,
                         goodbyeWaitSeconds: goodbyeWaitSeconds, close: {})
    }
}
