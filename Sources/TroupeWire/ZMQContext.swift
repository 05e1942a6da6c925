import CZeroMQ

/// A libzmq context: the one object in this module that may be shared between threads.
///
/// Every socket keeps its context alive, so the context is terminated (`zmq_ctx_term`) only after
/// the last socket created from it is closed. Because every `ZMQSocket` has a bounded linger, that
/// termination returns within the longest linger of those sockets; it never hangs.
public final class ZMQContext: @unchecked Sendable {
    // libzmq documents contexts as thread-safe, hence @unchecked Sendable.
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq background I/O threads. One moves about 1 GB/s; more only help
    ///   with several busy connections.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: max(1, ioThreads))) != 0 {
            let error = ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS, \(ioThreads))")
            zmq_ctx_term(handle)
            throw error
        }
        self.handle = handle
    }

    /// Makes every blocking call on this context's sockets, in every thread, fail with `ETERM`
    /// (`ZMQError.isContextTerminated`). Idempotent. Sockets must still be closed by their owners.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// The libzmq library version, e.g. (4, 3, 4).
public var zmqVersion: (major: Int, minor: Int, patch: Int) {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return (Int(major), Int(minor), Int(patch))
}
