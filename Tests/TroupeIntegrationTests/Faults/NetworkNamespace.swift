import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// A private network for one scenario: a namespace joined to the root namespace by a veth pair in a
// 10.231.N.0/24 subnet of its own, with an nftables table inside the namespace for loss and partitions
// (this kernel family has no netem). Everything it creates is removed by `remove()`.

/// Whether this machine can build such a network: root, `ip` and `nft`. Without them a scenario is
/// skipped with the reason, except under CI (CI=true), where it runs and fails with that reason.
enum NetworkLab {
    static func tool(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return directories.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Why a namespace cannot be made here; nil when it can.
    static var unavailableReason: String? {
        var missing: [String] = []
        if getuid() != 0 { missing.append("root") }
        if tool("ip") == nil { missing.append("`ip` (iproute2)") }
        if tool("nft") == nil { missing.append("`nft` (nftables)") }
        return missing.isEmpty ? nil : "network-namespace scenarios need " + missing.joined(separator: ", ")
    }

    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Run the scenario when the lab is available, and under CI always (so a missing tool fails there).
    static var shouldRun: Bool { unavailableReason == nil || inCI }

    /// Ends the test with the reason when the lab is missing (only reached under CI).
    static func requireAvailable() throws {
        if let reason = unavailableReason {
            Issue.record("CI=true but \(reason): scripts/bootstrap.sh installs iproute2 and nftables and CI runs as root")
            throw HarnessError(reason)
        }
    }
}

final class NetworkNamespace {
    let name: String
    let subnet: Int
    let hostInterface: String
    let namespaceInterface: String
    private let ip: String
    private let nft: String
    private var guardRoute = false
    private var created = false

    /// The root namespace's end of the link, and the namespace's.
    var hostAddress: String { "10.231.\(subnet).1" }
    var namespaceAddress: String { "10.231.\(subnet).2" }
    var prefix: String { "10.231.\(subnet).0/24" }

    /// Runs a program inside the namespace (`ip netns exec` execs it: the child's pid is the program's).
    var launcher: [String] { [ip, "netns", "exec", name] }

    init() throws {
        try NetworkLab.requireAvailable()
        ip = NetworkLab.tool("ip")!
        nft = NetworkLab.tool("nft")!
        let token = String(format: "%04x", UInt16.random(in: 0...UInt16.max))
        name = "troupe-fault-\(token)"
        hostInterface = "trf\(token)h"
        namespaceInterface = "trf\(token)n"
        subnet = try Self.freeSubnet(ip: ip)
        do { try create() } catch { remove(); throw error }
    }

    /// A 10.231.N.0/24 no route of this machine mentions yet.
    private static func freeSubnet(ip: String) throws -> Int {
        for _ in 0..<40 {
            let n = Int.random(in: 1...254)
            if try run(ip, ["-4", "route", "show", "table", "all", "to", "root", "10.231.\(n).0/24"]).isEmpty { return n }
        }
        throw HarnessError("no free 10.231.N.0/24 subnet")
    }

    private func create() throws {
        // First a fallback route, so that nothing addressed to the subnet ever leaves through the
        // machine's gateway (the veth's own route, added below, takes precedence while it exists).
        try Self.run(ip, ["route", "add", "unreachable", prefix, "metric", "4000"])
        guardRoute = true
        try Self.run(ip, ["netns", "add", name])
        created = true
        try Self.run(ip, ["link", "add", hostInterface, "type", "veth", "peer", "name", namespaceInterface])
        try Self.run(ip, ["link", "set", namespaceInterface, "netns", name])
        try Self.run(ip, ["addr", "add", hostAddress + "/24", "dev", hostInterface])
        try Self.run(ip, ["link", "set", hostInterface, "up"])
        try Self.run(ip, ["-n", name, "addr", "add", namespaceAddress + "/24", "dev", namespaceInterface])
        try Self.run(ip, ["-n", name, "link", "set", "lo", "up"])
        try Self.run(ip, ["-n", name, "link", "set", namespaceInterface, "up"])
        try nftables("""
            table inet troupe_fault {
                chain input { type filter hook input priority 0; policy accept; }
                chain output { type filter hook output priority 0; policy accept; }
            }
            """)
    }

    /// Drops every packet crossing the link, both ways, until `heal()`.
    func partition() throws {
        try nftables("""
            add rule inet troupe_fault input iifname "\(namespaceInterface)" counter drop
            add rule inet troupe_fault output oifname "\(namespaceInterface)" counter drop
            """)
    }

    /// Drops each packet crossing the link, either way, with probability `percent`/100.
    func dropRandomly(percent: Int) throws {
        try nftables("""
            add rule inet troupe_fault input iifname "\(namespaceInterface)" numgen random mod 100 < \(percent) counter drop
            add rule inet troupe_fault output oifname "\(namespaceInterface)" numgen random mod 100 < \(percent) counter drop
            """)
    }

    /// Packets the rules dropped so far (their counters summed).
    func droppedPackets() -> Int {
        guard let listing = try? Self.run(ip, ["netns", "exec", name, nft, "list", "table", "inet", "troupe_fault"]) else { return -1 }
        var total = 0
        for line in listing.split(separator: "\n") where line.contains("counter packets") {
            let words = line.split(separator: " ")
            if let i = words.firstIndex(of: "packets"), i + 1 < words.count, let n = Int(words[i + 1]) { total += n }
        }
        return total
    }

    /// Removes every rule; the link carries everything again.
    func heal() throws {
        try nftables("flush chain inet troupe_fault input\nflush chain inet troupe_fault output")
    }

    /// Deletes the namespace (its end of the veth, and so the pair, goes with it) and the fallback route.
    /// Safe to call more than once.
    func remove() {
        if created {
            _ = try? Self.run(ip, ["netns", "delete", name])
            _ = try? Self.run(ip, ["link", "delete", hostInterface])
            created = false
        }
        if guardRoute {
            _ = try? Self.run(ip, ["route", "delete", "unreachable", prefix, "metric", "4000"])
            guardRoute = false
        }
    }

    private func nftables(_ script: String) throws {
        try Self.run(ip, ["netns", "exec", name, nft, "-f", "-"], input: script)
    }

    /// Runs a setup command to completion (10 s at most); its standard output, or an error with its stderr.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")) did not finish within 10 s")
        }
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")): exit \(process.terminationStatus): \(message)")
        }
        return output
    }
}
