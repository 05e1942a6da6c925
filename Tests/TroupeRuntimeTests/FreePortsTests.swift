import Foundation
import Testing
import TroupeRuntime

@Suite struct FreePortsTests {
    /// A port whose last connection lingers in TIME_WAIT is one the learner's listeners can bind
    /// (they set SO_REUSEADDR), so the probe must call it free: a run started right after another
    /// moved to a random block of ports. A port with a listener is taken.
    @Test func aPortLeftInTimeWaitIsFreeAndAListenedOneIsNot() throws {
        // As libzmq listens: its accepted connections inherit SO_REUSEADDR, which is what lets a
        // later SO_REUSEADDR bind pass their TIME_WAIT.
        let listener = try Self.socket()
        // Closed by hand below; closed twice, the number may by then be another test's file.
        var listenerOpen = true
        defer { if listenerOpen { close(listener) } }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try Self.check(Self.withAddress(&address) { bind(listener, $0, length) }, "bind")
        try Self.check(listen(listener, 1), "listen")
        try Self.check(Self.withAddress(&address) { getsockname(listener, $0, &length) }, "getsockname")
        let port = Int(UInt16(bigEndian: address.sin_port))
        #expect(!FreePorts.isFree(port), "a port with a listener was called free")

        // The side that closes first keeps the connection in TIME_WAIT on the listener's port.
        let client = try Self.socket()
        try Self.check(Self.withAddress(&address) { connect(client, $0, length) }, "connect")
        let accepted = accept(listener, nil, nil)
        try Self.check(accepted, "accept")
        close(accepted)
        Thread.sleep(forTimeInterval: 0.05)
        close(client)
        close(listener)
        listenerOpen = false
        Thread.sleep(forTimeInterval: 0.05)

        // A bind without SO_REUSEADDR is refused now: the lingering connection is there.
        let plain = try Self.socket()
        defer { close(plain) }
        let plainBind = Self.withAddress(&address) { bind(plain, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        #expect(plainBind != 0 && errno == EADDRINUSE, "no connection lingered in TIME_WAIT on port \(port)")
        #expect(FreePorts.isFree(port), "port \(port), left only in TIME_WAIT, was called taken")
    }

    private static func socket() throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try check(fd, "socket")
        return fd
    }

    private static func withAddress<T>(_ address: inout sockaddr_in, _ body: (UnsafeMutablePointer<sockaddr>) -> T) -> T {
        withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
    }

    private static func check(_ result: Int32, _ call: String) throws {
        if result < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: call]) }
    }
}
