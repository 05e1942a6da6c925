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
    /// Blocks until the control or weights endpoint, or the given file descriptor (the trainer's wake
    /// pipe), may be readable, or until the deadline.
    package var waitForInput: (Deadline, Int32) throws -> Void
    /// After a finished run, how long late speakers are still told so.
    package var lingerSeconds: Double
    package var close: () -> Void

    /// The learner's sockets bound as `settings` say, with the log proxy between publishers and monitors.
    package static func zeroMQ(_ settings: RunConfig.Endpoints, epoch: UInt64) throws -> LearnerEndpoints {
        let context = try ZMQContext(ioThreads: 1)
        func bindEndpoint(_ port: Int) throws -> Endpoint { try Endpoint(parsing: "tcp://\(settings.bindHost):\(port)") }
        let control = try ZMQSocket(context, type: .router, linger: .upTo(milliseconds: 500))
        try control.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                         .sendHighWaterMark(10_000), .receiveHighWaterMark(10_000),
                         .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
        _ = try control.bind(bindEndpoint(settings.controlPort))
        let weights = try ZMQSocket(context, type: .router, linger: .discardUnsent)
        try weights.set([.routerMandatory(true), .routerHandover(true), .maxMessageSize(WireLimits.control.socketMaxFrameBytes),
                         .sendHighWaterMark(1000), .heartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 5000, ttlMilliseconds: 10_000)])
        _ = try weights.bind(bindEndpoint(settings.weightsPort))
        let announce = try ZMQSocket(context, type: .publish, linger: .discardUnsent)
        try announce.set([.sendHighWaterMark(100)])
        _ = try announce.bind(bindEndpoint(settings.announcePort))
        let proxy = try ZMQProxy.startPubSubForwarder(context: context, publishersBind: bindEndpoint(settings.logsInPort),
                                                      subscribersBind: bindEndpoint(settings.logsPort))
        let logs = try LogPublisher(context: context, endpoint: Endpoint(parsing: "tcp://127.0.0.1:\(settings.logsInPort)"),
                                    source: "learner", runId: epoch)
        let poller = Poller()
        poller.register(control)
        poller.register(weights)
        var wakeRegistered: Int32?
        return LearnerEndpoints(
            control: control, weights: weights, announce: announce, logs: logs,
            waitForInput: { deadline, wake in
                if wakeRegistered != wake { poller.register(fileDescriptor: wake); wakeRegistered = wake }
                _ = try poller.poll(until: deadline)
            },
            lingerSeconds: 2,
            close: {
                proxy.stop()
                logs.close()
                control.close(); weights.close(); announce.close()
                context.shutdown()
            })
    }
}

/// A learner's endpoints in memory: actors are `InMemoryDealer`s of `control` and `weights`, the
/// announcements and log events are kept for the test to read, and waiting returns at once.
package final class InMemoryLearnerNetwork {
    package let control = InMemoryRouter()
    package let weights = InMemoryRouter()
    package let announce = InMemoryPublisher()
    package let logs = InMemoryLogStream(source: "learner")

    package init() {}

    package var endpoints: LearnerEndpoints {
        LearnerEndpoints(control: control, weights: weights, announce: announce, logs: logs,
                         waitForInput: { _, _ in }, lingerSeconds: 0, close: {})
    }
}
