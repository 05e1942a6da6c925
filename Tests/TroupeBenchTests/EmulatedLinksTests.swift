import Foundation
import Testing
import TroupeBench

struct EmulatedLinksTests {
    @Test func onlyTheBenchsOwnNamespaceNamesHaveAnOwner() {
        #expect(EmulatedLinks.leftoverOwner("trp1234-sw") == 1234)
        #expect(EmulatedLinks.leftoverOwner("trp77-h0") == 77)
        #expect(EmulatedLinks.leftoverOwner("trp77-h12") == 77)
        for name in ["trp-sw", "trp0-sw", "trp12-x", "trp12-h", "trp12-sw2", "xtrp12-sw", "troupe-fault-3", "trp1234567890-sw", ""] {
            #expect(EmulatedLinks.leftoverOwner(name) == nil, "\(name)")
        }
    }

    // A bench killed with SIGKILL leaves its namespaces; the next one removes those whose process is
    // gone and leaves a live process's alone (root only: it makes real namespaces).
    @Test(.enabled(if: getuid() == 0 && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains { FileManager.default.isExecutableFile(atPath: $0) }))
    func namespacesOfAGoneBenchAreRemoved() throws {
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let gone = "trp\(finished.processIdentifier)-sw", live = "trp\(getpid())-h99"
        func ip(_ arguments: String...) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["ip"] + arguments
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "ip \(arguments.joined(separator: " "))")
        }
        try ip("netns", "add", gone)
        try ip("netns", "add", live)
        defer {
            for name in [gone, live] where FileManager.default.fileExists(atPath: "/var/run/netns/" + name) { try? ip("netns", "del", name) }
        }
        EmulatedLinks.removeLeftovers()
        #expect(!FileManager.default.fileExists(atPath: "/var/run/netns/" + gone))
        #expect(FileManager.default.fileExists(atPath: "/var/run/netns/" + live))
    }
}
