import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A client that takes over its routing id from a second connection, keeps writing on the first and
/// then closes it: with ZMTP heartbeats on the learner's ROUTERs, libzmq 4.3.4 aborted the learner
/// a heartbeat interval later (`Assertion failed: !_io_error`). The learner must outlive it and go on
/// to finish its run with a real actor.
@Suite(.serialized) struct ConnectionTakeoverTests {
    @Test func aRoutingIdTakenOverMidWriteDoesNotStopTheLearner() throws {
        let run = try IntegrationRun("takeover")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 3)
        try run.require(run.waitUntil("the learner listens", within: 30) { FileManager.default.fileExists(atPath: run.runDirectory + "/endpoints.json") },
                        "the learner did not start: \(learner.tail())")
        for port in [run.ports.control, run.ports.weights] {
            do {
                let first = try RawZMTPConnection(port: port, routingID: "taken")
                try first.send(frame: Array("before".utf8))
                Thread.sleep(forTimeInterval: 0.3)
                let second = try RawZMTPConnection(port: port, routingID: "taken")
                Thread.sleep(forTimeInterval: 0.3)
                for _ in 0..<50 { try first.send(frame: [UInt8](repeating: 0x78, count: 200)) }
                Thread.sleep(forTimeInterval: 0.3)
                first.close()
                // Heartbeats were due every second: the abort (and Swift's backtrace) came within this wait.
                let exited = learner.waitForExit(within: 4)
                second.close()
                try run.require(exited == nil, "the learner exited (\(exited!)) after a routing-id takeover on port \(port): \(learner.tail())")
            } catch let error as RawZMTPError {
                try run.require(false, "port \(port): \(error); the learner: \(learner.tail())")
            }
        }
        let actor = try run.startActor("after-takeover")
        run.expectExit(learner, .code(0), within: 90)
        run.expectExit(actor, .code(0), within: 30)
    }
}

/// A plaintext ZMTP 3.0 DEALER spoken by hand over a TCP socket to 127.0.0.1: the greeting, a READY
/// naming `routingID`, then single-frame messages. Only as much of ZMTP (RFC 23) as the test needs.
final class RawZMTPConnection {
    private let fd: Int32

    init(port: Int, routingID: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawZMTPError("socket() failed: errno \(errno)") }
        let connected = withLoopbackAddress(port: port) { connect(fd, $0, $1) }
        guard connected == 0 else { Glibc.close(fd); throw RawZMTPError("connect to port \(port) failed: errno \(errno)") }
        // Signature, version 3.0, mechanism NULL, as-server 0, filler.
        var greeting: [UInt8] = [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0]
        greeting += Array("NULL".utf8) + [UInt8](repeating: 0, count: 16)
        greeting += [UInt8](repeating: 0, count: 32)
        try write(greeting)
        var peerGreeting = [UInt8](repeating: 0, count: 64)
        var read = 0
        while read < 64 {
            let n = peerGreeting.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + read, 64 - read, 0) }
            guard n > 0 else { throw RawZMTPError("the peer closed during the greeting") }
            read += n
        }
        var ready: [UInt8] = [5] + Array("READY".utf8)
        ready += Self.property("Socket-Type", Array("DEALER".utf8)) + Self.property("Identity", Array(routingID.utf8))
        try write([0x04, UInt8(ready.count)] + ready)
        Thread.sleep(forTimeInterval: 0.2)
    }

    private static func property(_ name: String, _ value: [UInt8]) -> [UInt8] {
        let length = UInt32(value.count)
        return [UInt8(name.utf8.count)] + Array(name.utf8) + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> $0) } + value
    }

    /// One short frame, the last of its message (at most 255 bytes).
    func send(frame: [UInt8]) throws {
        precondition(frame.count < 256)
        try write([0x00, UInt8(frame.count)] + frame)
    }

    private func write(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw RawZMTPError("send failed: errno \(errno)") }
    }

    func close() { Glibc.close(fd) }
}

/// `body` given 127.0.0.1:`port` as a socket address, for the tests that speak TCP by hand.
func withLoopbackAddress<Result>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A socket listening on 127.0.0.1:`port`, or nil: holds the port so that a process under test finds it taken.
func listenOnLoopback(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var reuse: Int32 = 1   // the port's last connections may still be in TIME_WAIT
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    let bound = withLoopbackAddress(port: port) { bind(fd, $0, $1) }
    guard bound == 0, listen(fd, 1) == 0 else { close(fd); return nil }
    return fd
}

struct RawZMTPError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
