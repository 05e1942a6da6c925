import Foundation

/// The learner's five socket ports when they are taken: `troupe run` (two runs on one machine) and
/// `troupe learner --free-ports` (two learners on one cluster node) bind a free block instead, which
/// actors find in `RUN/endpoints.json` or are told.
package enum FreePorts {
    /// `endpoints` as given when all five socket ports can be bound on `bindHost`, else with a free block
    /// of five consecutive ports in 20000…60000 (nil: no change was needed).
    package static func block(for endpoints: RunConfig.Endpoints, bindHost: String) throws -> RunConfig.Endpoints? {
        let wanted = [endpoints.controlPort, endpoints.weightsPort, endpoints.announcePort, endpoints.logsPort, endpoints.logsInPort]
        if wanted.allSatisfy({ isFree($0, host: bindHost) }) { return nil }
        for _ in 0..<50 {
            let base = Int.random(in: 20000...60000)
            guard (base..<(base + 5)).allSatisfy({ isFree($0, host: bindHost) }) else { continue }
            var moved = endpoints
            (moved.controlPort, moved.weightsPort, moved.announcePort, moved.logsPort, moved.logsInPort) = (base, base + 1, base + 2, base + 3, base + 4)
            return moved
        }
        throw RuntimeError.io("no free block of 5 tcp ports on \(bindHost)")
    }

    /// True when a TCP port can be bound on `host` right now: an IPv4 address is tried as given; `*`,
    /// `0.0.0.0` and a host name are tried on every interface. With `SO_REUSEADDR`, as libzmq's and the
    /// /metrics listeners bind: a port whose last connections linger in TIME_WAIT is free to them.
    package static func isFree(_ port: Int, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let everyInterface = host == "*" || host == "0.0.0.0"
        address.sin_addr.s_addr = everyInterface ? INADDR_ANY : inet_addr(host)
        if address.sin_addr.s_addr == INADDR_NONE { address.sin_addr.s_addr = INADDR_ANY }  // a host name: test every interface
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
