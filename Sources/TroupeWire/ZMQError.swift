import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq call failed. `code` is the errno libzmq reported; `operation` names the call and its
/// argument so a log line says what failed (`zmq_bind(tcp://0.0.0.0:5555): Address already in use`).
///
/// Timeouts, full queues and unreachable ROUTER peers are not errors: they come back as values
/// (`ReceiveResult.timedOut`, `SendResult.wouldBlock`, `SendResult.peerUnreachable`).
public struct ZMQError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int32
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The error libzmq recorded for the calling thread.
    static func last(_ operation: @autoclosure () -> String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation())
    }

    /// The context was shut down or terminated (`ETERM`): the socket's owner should close it and stop.
    public var isContextTerminated: Bool { code == ZMQError.contextTerminatedCode }

    public var description: String {
        "\(operation): \(String(cString: zmq_strerror(code))) (errno \(code))"
    }

    // zmq.h defines ETERM as ZMQ_HAUSNUMERO + 53.
    static let contextTerminatedCode: Int32 = Int32(ZMQ_HAUSNUMERO) + 53
}
