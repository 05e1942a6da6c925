import Foundation
import TroupeWire

/// Hosts with network links of a given rate, emulated on this machine for `troupe bench runtime
/// --link-rate` (root only): one network namespace per host, each joined to a switch namespace by
/// a veth pair shaped with `tbf` both ways, so every host uploads and downloads at `rate` at most,
/// as on a cluster whose hosts share a switch. On loopback every byte costs CPU on the same two
/// cores instead, which hides what a relay saves on a real network. Nothing leaves the namespaces:
/// the addresses (10.201.0.x) exist only inside them.
///
/// A thread enters its host with `enter(host:)` before it creates its ZeroMQ context: libzmq's I/O
/// threads start from that thread and inherit its namespace, and so do its sockets.
package final class EmulatedLinks: @unchecked Sendable {
    /// A rate `tc` takes and this bench accepts: digits, then bit, kbit, mbit or gbit.
    package static func isValidRate(_ rate: String) -> Bool {
        rate.range(of: #"^[0-9]+(\.[0-9]+)?[kmg]?bit$"#, options: .regularExpression) != nil
    }

    let rate: String
    let hosts: Int
    private let prefix: String
    private var created: [String] = []

    /// Builds `hosts` hosts (host 0 is the learner's). Throws, having removed what it made, when a
    /// command fails (not root, no `ip` or `tc`).
    init(hosts: Int, rate: String) throws {
        guard EmulatedLinks.isValidRate(rate) else {
            throw RuntimeBenchError("links", "--link-rate \"\(rate)\": expected a tc rate such as 1gbit or 500mbit")
        }
        self.rate = rate
        self.hosts = hosts
        prefix = "trp\(getpid())"
        EmulatedLinks.removeLeftovers()
        do {
            let hub = "\(prefix)-sw"
            try EmulatedLinks.command("ip", "netns", "add", hub)
            created.append(hub)
            try EmulatedLinks.command("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
            try EmulatedLinks.command("ip", "-n", hub, "link", "set", "br0", "up")
            for i in 0..<hosts {
                let ns = namespace(i)
                try EmulatedLinks.command("ip", "netns", "add", ns)
                created.append(ns)
                try EmulatedLinks.command("ip", "link", "add", "\(prefix)v\(i)", "netns", ns, "type", "veth", "peer", "name", "p\(i)", "netns", hub)
                try EmulatedLinks.command("ip", "-n", ns, "addr", "add", "\(address(i))/24", "dev", "\(prefix)v\(i)")
                try EmulatedLinks.command("ip", "-n", ns, "link", "set", "\(prefix)v\(i)", "up")
                try EmulatedLinks.command("ip", "-n", ns, "link", "set", "lo", "up")
                try EmulatedLinks.command("ip", "-n", hub, "link", "set", "p\(i)", "master", "br0")
                try EmulatedLinks.command("ip", "-n", hub, "link", "set", "p\(i)", "up")
                // Upload (the host's side) and download (the switch's side), each at `rate`.
                try EmulatedLinks.command("tc", "-n", ns, "qdisc", "add", "dev", "\(prefix)v\(i)", "root", "tbf", "rate", rate, "burst", "1mb", "latency", "20ms")
                try EmulatedLinks.command("tc", "-n", hub, "qdisc", "add", "dev", "p\(i)", "root", "tbf", "rate", rate, "burst", "1mb", "latency", "20ms")
            }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    func address(_ host: Int) -> String { "10.201.0.\(host + 1)" }

    /// Where a role on `host` binds, on an ephemeral port: its emulated address, or loopback without links.
    static func bindEndpoint(_ links: EmulatedLinks?, host: Int) throws -> Endpoint {
        try Endpoint(parsing: "tcp://\(links?.address(host) ?? "127.0.0.1"):0")
    }
    private func namespace(_ host: Int) -> String { "\(prefix)-h\(host)" }

    /// Moves the calling thread (only it) into `host`'s network namespace.
    func enter(host: Int) throws {
        let path = "/var/run/netns/\(namespace(host))"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RuntimeBenchError("links", "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // setns(2) is not in Swift's Glibc module; CLONE_NEWNET = 0x40000000.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { throw RuntimeBenchError("links", "no setns in libc") }
        let setns = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        guard setns(fd, 0x4000_0000) == 0 else { throw RuntimeBenchError("links", "setns into \(namespace(host)): \(String(cString: strerror(errno)))") }
    }

    /// Deletes the namespaces a killed bench left behind (`trpPID-…` whose process is gone): a SIGKILL
    /// runs no deinit, and each leftover holds its veth pairs and qdiscs.
    package static func removeLeftovers() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns") else { return }
        for name in names {
            guard let pid = leftoverOwner(name), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? EmulatedLinks.command("ip", "netns", "del", name)
        }
    }

    /// The process id in a namespace name this bench makes (`trp1234-sw`, `trp1234-h0`); nil for any other name.
    package static func leftoverOwner(_ name: String) -> pid_t? {
        guard let match = name.wholeMatch(of: #/trp([0-9]{1,9})-(sw|h[0-9]+)/#), let pid = pid_t(match.1), pid > 0 else { return nil }
        return pid
    }

    /// Deletes the namespaces (their links go with them).
    func remove() {
        for ns in created.reversed() { try? EmulatedLinks.command("ip", "netns", "del", ns) }
        created.removeAll()
    }

    private static func command(_ arguments: String...) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { throw RuntimeBenchError("links", "cannot run \(arguments[0]): \(error)") }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let text = String(data: err.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
            throw RuntimeBenchError("links", "`\(arguments.joined(separator: " "))` failed: \(text.trimmingCharacters(in: .whitespacesAndNewlines)) (emulated links need root, iproute2 and tc)")
        }
    }
}
