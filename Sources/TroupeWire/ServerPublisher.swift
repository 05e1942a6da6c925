import CZeroMQ
import Foundation

extension ZMQProxy.Side {
    /// A socket made and bound as this side says, with the address it actually bound (port 0 resolved).
    func make(_ context: ZMQContext) throws(ZMQError) -> (socket: ZMQSocket, bound: Endpoint) {
        let socket = try ZMQSocket(context, type: type, linger: linger)
        do {
            try socket.set(options)
            return (socket, try socket.bind(bind))
        } catch {
            socket.close()
            throw error
        }
    }

    /// Closes `old`, which was bound at `bound`, and binds a new socket of this side there. Every
    /// connection `old` held is dropped; each peer's socket reconnects on its own and comes back
    /// through a new handshake, which a key withdrawn since fails. libzmq releases the address in its
    /// I/O thread, after `close` returns, so binding is tried again for up to `patienceMilliseconds`.
    func remake(replacing old: ZMQSocket, boundAt bound: Endpoint, in context: ZMQContext,
                patienceMilliseconds: Int = 2000) throws(ZMQError) -> ZMQSocket {
        try? old.unbind(bound)
        old.close()
        let deadline = Deadline.afterMilliseconds(patienceMilliseconds)
        var again = self
        again.bind = bound
        while true {
            do {
                return try again.make(context).socket
            } catch where error.code == EADDRINUSE && !deadline.hasPassed {
                var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
                nanosleep(&pause, nil)
            }
        }
    }
}

/// A bound PUB socket (the learner's announcements) that can drop every subscriber at once
/// (`dropSubscribers`), so that a key taken off the allowlist stops receiving what it subscribed to:
/// a PUB socket cannot close one peer's connection. Owned by one thread, like its socket.
public final class ServerPublisher: PublishTransport {
    private let context: ZMQContext
    private let side: ZMQProxy.Side
    private var socket: ZMQSocket
    /// Where it is bound (port 0 resolved).
    public let endpoint: Endpoint

    public init(context: ZMQContext, side: ZMQProxy.Side) throws(ZMQError) {
        self.context = context
        self.side = side
        (socket, endpoint) = try side.make(context)
    }

    public func send(_ message: WireMessage, deadline: Deadline) throws -> SendResult {
        try socket.send(message, deadline: deadline)
    }

    /// Closes every subscriber's connection by binding a new socket at the same address; subscribers
    /// reconnect (a legitimate one within its reconnect interval) and what is published meanwhile is
    /// lost to them. Throws when the address cannot be bound again; the publisher is then closed.
    public func dropSubscribers() throws(ZMQError) {
        socket = try side.remake(replacing: socket, boundAt: endpoint, in: context)
    }

    public func close() { socket.close() }
}
