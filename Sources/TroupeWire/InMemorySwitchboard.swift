import Foundation

/// Addresses for the in-memory transports: routers and publishers bound at endpoints, and
/// connections made to an endpoint by its address, as ZeroMQ's connect does. A process that binds
/// again after another one left (a restarted learner) takes the address over; connections made
/// before keep their old, dead endpoint, as a closed socket would. Thread-safe.
public final class InMemorySwitchboard: @unchecked Sendable {
    private let lock = NSLock()
    private var routers: [String: InMemoryRouter] = [:]
    private var publishers: [String: InMemoryPublisher] = [:]
    private var connections = 0
    private var nextPort: UInt16 = 40_000

    public init() {}

    /// `router` serves `endpoint` from now on (replacing any earlier one).
    public func bind(_ router: InMemoryRouter, at endpoint: Endpoint) {
        lock.withLock { routers[endpoint.description] = router }
    }

    /// `publisher` publishes at `endpoint` from now on (replacing any earlier one).
    public func bind(_ publisher: InMemoryPublisher, at endpoint: Endpoint) {
        lock.withLock { publishers[endpoint.description] = publisher }
    }

    /// A new router for `listen`: a TCP port 0 gets a port of its own, as the kernel would pick one.
    /// Returns it with the address its peers connect to.
    public func bindRouter(_ listen: ListenAddress) throws -> (router: InMemoryRouter, endpoint: Endpoint) {
        let router = InMemoryRouter()
        let actual: Endpoint = lock.withLock {
            guard case .tcp(let host, 0, let source) = listen.bind else { return listen.bind }
            nextPort += 1
            return .tcp(host: host, port: nextPort, source: source)
        }
        let endpoint = try listen.advertised(boundTo: actual)
        bind(router, at: endpoint)
        return (router, endpoint)
    }

    /// The router bound at `endpoint` now, if any.
    public func router(at endpoint: Endpoint) -> InMemoryRouter? { lock.withLock { routers[endpoint.description] } }

    /// A new connection to whatever serves `endpoint` now, with a routing id unique to it (`identity`
    /// and a counter, as ZeroMQ gives each connection its own). Nothing there: a connection whose
    /// messages nobody reads, as a ZeroMQ DEALER's toward an address nobody has bound.
    public func connect(to endpoint: Endpoint, identity: String? = nil, authenticatedAs user: String? = nil) -> InMemoryDealer {
        let (router, n) = lock.withLock { () -> (InMemoryRouter, Int) in
            connections += 1
            return (routers[endpoint.description] ?? InMemoryRouter(), connections)
        }
        return router.connect(identity: "\(identity ?? "peer")~\(n)", authenticatedAs: user)
    }

    /// A subscription to what is published at `endpoint` from now on (nothing, when nobody publishes there).
    public func subscribe(to endpoint: Endpoint) -> InMemorySubscriber {
        let publisher = lock.withLock { publishers[endpoint.description] } ?? InMemoryPublisher()
        return publisher.subscribe()
    }
}
