import Foundation
import TroupeRuntime
import TroupeWire

/// The learner's allowlist while a run goes on. `--allow`'s directory is looked at every
/// `checkInterval` seconds; when its `*.key` files change (a name, size, modification time or inode), it
/// is read again and checked as at the start. A good read replaces the allowlist: keys added are
/// admitted from their next handshake; keys removed, or replaced under the same name, are refused from
/// their next handshake and message (each message carries the key its connection proved). A bad read
/// (a damaged file, a duplicate name, a directory that cannot be listed) is refused and the allowlist
/// stays as it was, so a half-copied key cannot stop a run or lock everyone out. An emptied directory is
/// a good read: removing the last key file revokes that key like any other.
///
/// Actors admit one another to their relays by the keys their Welcome (or a later RelayPeers) listed, so
/// the learner places an actor below another's relay only if its key was allowlisted when that one was
/// last told (`relayAdmits`): each change starts a new generation.
package final class LiveAllowlist {
    /// What a change did, by key name (sorted).
    package struct Change: Equatable {
        package var added: [String] = []
        package var removed: [String] = []
        /// The same name with another key or role.
        package var replaced: [String] = []
        package var isEmpty: Bool { added.isEmpty && removed.isEmpty && replaced.isEmpty }
        package init(added: [String] = [], removed: [String] = [], replaced: [String] = []) {
            self.added = added
            self.removed = removed
            self.replaced = replaced
        }
    }

    package enum Outcome: Equatable {
        case unchanged
        case changed(Change)
        /// The directory changed but cannot be used; the allowlist stays as it was.
        case refused(String)
    }

    package private(set) var security: LearnerSecurity
    package private(set) var generation = 0
    private let checkInterval: Double
    private var fingerprint: [String: [Int]]?
    private var lastCheck = -Double.infinity
    /// The generation in which each name's current key entered the allowlist (0: at the start).
    private var keyGeneration: [String: Int]

    package init(_ security: LearnerSecurity, checkInterval: Double = 2) {
        self.security = security
        self.checkInterval = checkInterval
        keyGeneration = security.allowlist.members.values.reduce(into: [:]) { $0[$1.name] = 0 }
        fingerprint = security.allowlistDirectory.flatMap(Self.fingerprint)
    }

    /// An allowlist's actors' public keys (Z85) by name: what a Welcome tells actors to admit to their relays.
    package static func relayPeers(of allowlist: CurveAllowlist) -> [String: String] {
        allowlist.members.values.filter { $0.role == .actor }.reduce(into: [:]) { $0[$1.name] = $1.publicKey.z85 }
    }

    /// Whether the relay of an actor last told the keys of generation `admittedIn` admits the actor `name`.
    package func relayAdmits(_ name: String, admittedIn: Int) -> Bool { (keyGeneration[name] ?? .max) <= admittedIn }

    /// Reads the directory again if it is due and has changed since the last read. `accept` may refuse
    /// the new keys (by throwing) before they replace the old ones.
    package func check(now: Double, accept: (LearnerSecurity) throws -> Void = { _ in }) -> Outcome {
        guard now - lastCheck >= checkInterval, let directory = security.allowlistDirectory else { return .unchanged }
        lastCheck = now
        let current = Self.fingerprint(of: directory)
        guard current != fingerprint else { return .unchanged }
        fingerprint = current
        let next: LearnerSecurity
        do { next = try security.reloaded() } catch { return .refused("\(error)") }
        let old = security.allowlist.members.values.reduce(into: [String: CurveAllowlist.Member]()) { $0[$1.name] = $1 }
        let new = next.allowlist.members.values.reduce(into: [String: CurveAllowlist.Member]()) { $0[$1.name] = $1 }
        var change = Change()
        change.added = new.keys.filter { old[$0] == nil }.sorted()
        change.removed = old.keys.filter { new[$0] == nil }.sorted()
        change.replaced = new.keys.filter { old[$0] != nil && old[$0] != new[$0] }.sorted()
        guard !change.isEmpty else { return .unchanged }
        do { try accept(next) } catch { return .refused("\(error)") }
        generation += 1
        for name in change.removed { keyGeneration[name] = nil }
        for name in change.added + change.replaced { keyGeneration[name] = generation }
        security = next
        return .changed(change)
    }

    /// Each `*.key` entry of `directory` (links followed) with its size and modification time; nil when
    /// the directory cannot be listed.
    static func fingerprint(of directory: String) -> [String: [Int]]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var entries: [String: [Int]] = [:]
        for name in names where name.hasSuffix(".key") {
            var s = stat()
            guard stat(directory + "/" + name, &s) == 0 else { entries[name] = []; continue }
            entries[name] = [Int(s.st_size), Int(s.st_mtim.tv_sec), Int(s.st_mtim.tv_nsec), Int(s.st_ino)]
        }
        return entries
    }
}
