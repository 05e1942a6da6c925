import Foundation
import Testing
import TroupeLearner
import TroupeRuntime
import TroupeWire

/// `--allow` while a run goes on: keys added, removed and replaced in the directory change the
/// allowlist at the next check; a directory that cannot be used leaves it as it was.
@Suite struct LiveAllowlistTests {
    let directory = NSTemporaryDirectory() + "live-allowlist-\(UUID().uuidString)"

    func key(_ name: String, role: CurveAllowlist.Role = .actor) throws {
        try CurveKeyFile.create(name: name, role: role, pair: .generate(), directory: directory)
        // Only the public files belong in an allowlist directory.
        try FileManager.default.removeItem(atPath: directory + "/\(name).key_secret")
    }

    func live() throws -> LiveAllowlist {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try key("a1")
        let security = try LearnerSecurity(keyPair: .generate(), allowlist: CurveKeyFile.allowlist(directory: directory),
                                           allowlistDirectory: directory)
        return LiveAllowlist(security, checkInterval: 2)
    }

    @Test func addedRemovedAndReplacedKeysChangeTheAllowlistAtTheNextCheck() throws {
        let live = try live()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(live.check(now: 0) == .unchanged)
        try key("a2")
        #expect(live.check(now: 1) == .unchanged, "checked again before the interval passed")
        #expect(live.check(now: 2) == .changed(.init(added: ["a2"])))
        #expect(live.generation == 1 && live.security.allowlist.member(named: "a2") != nil)
        #expect(LiveAllowlist.relayPeers(of: live.security.allowlist).keys.sorted() == ["a1", "a2"])
        // An actor welcomed before a2 came does not admit it to its relay; one welcomed after does.
        #expect(live.relayAdmits("a1", admittedIn: 0) && !live.relayAdmits("a2", admittedIn: 0) && live.relayAdmits("a2", admittedIn: 1))

        try FileManager.default.removeItem(atPath: directory + "/a1.key")
        try FileManager.default.removeItem(atPath: directory + "/a2.key")
        try key("a2")
        try key("m", role: .monitor)
        #expect(live.check(now: 4) == .changed(.init(added: ["m"], removed: ["a1"], replaced: ["a2"])))
        #expect(!live.relayAdmits("a1", admittedIn: 5), "a removed key is admitted nowhere")
        #expect(!live.relayAdmits("a2", admittedIn: 1) && live.relayAdmits("a2", admittedIn: 2), "a replaced key counts as new")
        #expect(live.check(now: 6) == .unchanged)
    }

    @Test func aDirectoryThatCannotBeUsedLeavesTheAllowlistAsItWas() throws {
        let live = try live()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "not a key".write(toFile: directory + "/broken.key", atomically: true, encoding: .utf8)
        guard case .refused(let problem) = live.check(now: 2) else { Issue.record("a damaged key file was read"); return }
        #expect(problem.contains("broken.key"))
        #expect(live.check(now: 4) == .unchanged, "the same damaged directory is refused once")
        #expect(live.generation == 0 && live.security.allowlist.member(named: "a1") != nil)

        try key("a3")
        try FileManager.default.removeItem(atPath: directory + "/broken.key")
        guard case .refused = live.check(now: 6, accept: { _ in throw RuntimeError.invalid("too many keys for a Welcome") }) else {
            Issue.record("a change its learner refused was applied"); return
        }
        #expect(live.security.allowlist.member(named: "a1") != nil && live.security.allowlist.member(named: "a3") == nil)

        // A directory that is gone cannot be told from an outage. (A volume unmounted under it usually
        // leaves an empty mount point, which reads as emptied: every key is revoked, failing closed.)
        let moved = directory + ".moved"
        try FileManager.default.moveItem(atPath: directory, toPath: moved)
        defer { try? FileManager.default.removeItem(atPath: moved) }
        guard case .refused = live.check(now: 8) else { Issue.record("a missing directory emptied the allowlist"); return }
        #expect(live.security.allowlist.member(named: "a1") != nil)
        try FileManager.default.moveItem(atPath: moved, toPath: directory)
    }

    /// Removing the last key file revokes that key as removing any other does (it was kept before).
    @Test func anEmptiedDirectoryRevokesItsLastKey() throws {
        let live = try live()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.removeItem(atPath: directory + "/a1.key")
        #expect(live.check(now: 2) == .changed(.init(removed: ["a1"])))
        #expect(live.security.allowlist.member(named: "a1") == nil && !live.security.allowlist.members.values.contains { $0.role != .learner })
        try key("a1")
        #expect(live.check(now: 4) == .changed(.init(added: ["a1"])))
    }
}
