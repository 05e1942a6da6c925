import Foundation
import TroupeProto
import TroupeWire
import TroupeTensor

/// The ZAP domains of a run's CURVE servers and who each admits (docs/ARCHITECTURE.md §9). The
/// domain is per socket, so a monitor's key opens the log stream and nothing else, and an actor's key
/// cannot read the log stream.
package enum ZAPDomain {
    package static let control = "troupe-control"
    package static let weights = "troupe-weights"
    package static let announce = "troupe-announce"
    /// The learner's log proxy, publishers' side: actors and the learner itself.
    package static let logsIn = "troupe-logs-in"
    /// The learner's log proxy, subscribers' side: monitors (and `troupe run`, which follows the stream as one).
    package static let logs = "troupe-logs"
    /// An actor's weight relay: the run's other actors.
    package static let relay = "troupe-relay"

    package static func policy(_ allowlist: CurveAllowlist) -> ZAPHandler.Policy {
        ZAPHandler.Policy(allowlist: allowlist, rolesByDomain: [
            control: [.actor], weights: [.actor], announce: [.actor], relay: [.actor],
            logsIn: [.actor, .learner], logs: [.monitor, .learner],
        ])
    }
}

/// A learner's keys: its own pair, and the allowlist of the actors and monitors that may connect.
package struct LearnerSecurity: Sendable {
    /// The name under which the learner's own log publisher is admitted to its log proxy.
    package static let learnerName = "learner"
    package let keyPair: CurveKeyPair
    /// The allowlist as given, plus the learner's own key (role learner).
    package let allowlist: CurveAllowlist
    /// The `--allow` directory the allowlist was read from (nil: given in memory); the learner reads it
    /// again when its key files change (`LiveAllowlist`).
    package let allowlistDirectory: String?

    package init(keyPair: CurveKeyPair, allowlist: CurveAllowlist, allowlistDirectory: String? = nil) throws {
        guard !allowlist.members.values.contains(where: { $0.name == Self.learnerName || $0.role == .learner }) else {
            throw CurveKeyError("the allowlist must not hold a learner key or a key named \"\(Self.learnerName)\": that name is the learner's own")
        }
        self.keyPair = keyPair
        self.allowlist = try allowlist.adding(.init(name: Self.learnerName, role: .learner, publicKey: keyPair.publicKey))
        self.allowlistDirectory = allowlistDirectory
    }

    /// `--key FILE.key_secret` and `--allow DIRECTORY`.
    package init(secretKeyFile: String, allowlistDirectory: String) throws {
        try self.init(keyPair: CurveKeyFile.readSecret(secretKeyFile, as: .learner).pair, allowlist: CurveKeyFile.allowlist(directory: allowlistDirectory),
                      allowlistDirectory: allowlistDirectory)
    }

    /// The same keys with the allowlist read again from `allowlistDirectory`, checked as at the start.
    package func reloaded() throws -> LearnerSecurity {
        guard let directory = allowlistDirectory else { return self }
        // Emptied while the run goes on, it revokes every key: removing the last key file must revoke it too.
        return try LearnerSecurity(keyPair: keyPair, allowlist: CurveKeyFile.allowlist(directory: directory, allowingEmpty: true),
                                   allowlistDirectory: directory)
    }

    package var policy: ZAPHandler.Policy { ZAPDomain.policy(allowlist) }

    /// The options of a learner socket serving `domain`.
    package func server(_ domain: String) -> [SocketOption] { CurveRole.server(keyPair, domain: domain).options }

    /// A log event may enter the stream only from an admitted publisher, and only under its own name:
    /// the learner as "learner", an actor as "actor/NAME".
    package func admitsLogEvent(user: String?, key: String?, frames: [Frame]) -> Bool {
        Self.admitsLogEvent(user: user, key: key, frames: frames, policy: policy)
    }

    /// `admitsLogEvent` under `policy` (the learner's current one, which a reload of `--allow` replaces).
    package static func admitsLogEvent(user: String?, key: String?, frames: [Frame], policy: ZAPHandler.Policy) -> Bool {
        guard let user, !user.isEmpty, policy.admits(user: user, key: key, domain: ZAPDomain.logsIn),
              case .logEvent(let event)? = try? WireMessage.decode(frames, limits: .headerOnly).body else { return false }
        return event.source == (user == Self.learnerName ? "learner" : "actor/\(user)")
    }
}

/// A CURVE client's keys (an actor or a monitor): its own pair and the learner's public key, pinned.
package struct ClientSecurity: Sendable {
    package let name: String
    package let keyPair: CurveKeyPair
    package let learnerKey: CurveKey

    package init(name: String, keyPair: CurveKeyPair, learnerKey: CurveKey) {
        self.name = name
        self.keyPair = keyPair
        self.learnerKey = learnerKey
    }

    /// `--key FILE.key_secret` and `--learner-key FILE.key`.
    package init(secretKeyFile: String, learnerKeyFile: String) throws {
        let (name, pair) = try CurveKeyFile.readSecret(secretKeyFile)
        self.init(name: name, keyPair: pair, learnerKey: try CurveKeyFile.readPublic(learnerKeyFile))
    }

    /// The options of a socket connecting to the learner.
    package var toLearner: [SocketOption] { CurveRole.client(serverKey: learnerKey, own: keyPair).options }

    /// The options of a socket connecting to another actor's relay, whose key the learner named.
    package func toRelay(_ relayKey: CurveKey) -> [SocketOption] { CurveRole.client(serverKey: relayKey, own: keyPair).options }
}

/// The learner's fail-closed check of its ZAP handler: the handler must be serving, and answer a
/// canary request every `probeInterval` seconds. When either fails the learner closes its sockets.
package final class AuthenticationWatchdog {
    package let handler: ZAPHandler
    private let probeInterval: Double
    private var lastProbe = -Double.infinity

    package init(handler: ZAPHandler, probeInterval: Double = 1) {
        self.handler = handler
        self.probeInterval = probeInterval
    }

    /// Throws when the handler is gone (the caller must stop serving: libzmq would admit anyone).
    package func check(now: Double = monotonicSeconds()) throws {
        guard handler.isServing else {
            throw RuntimeError.invalid("the ZAP authentication handler stopped (\(handler.failureReason ?? "no reason")); closing every socket")
        }
        guard now - lastProbe >= probeInterval else { return }
        lastProbe = now
        guard handler.probe() else {
            throw RuntimeError.invalid("the ZAP authentication handler does not answer; closing every socket")
        }
    }
}

/// When plaintext TCP is allowed: only when asked for explicitly (`--insecure-plaintext`), on
/// loopback as anywhere else (on loopback any local user could join, read the weights and forge log
/// events), and then with a warning at start.
package enum PlaintextPolicy {
    /// The warning to give at start (nil: authenticated, nothing to say). Throws when plaintext was not asked for.
    /// `host` is where the learner binds, or the learner a client connects to.
    package static func check(host: String, keysGiven: Bool, insecurePlaintext: Bool, keyFlags: String) throws -> String? {
        if keysGiven {
            guard !insecurePlaintext else { throw RuntimeError.invalid("--insecure-plaintext contradicts \(keyFlags)") }
            return nil
        }
        guard insecurePlaintext else {
            throw RuntimeError.invalid("refusing plaintext TCP on \(host) without keys: give \(keyFlags) (make keys with troupe keygen), or --insecure-plaintext to accept an unauthenticated, unencrypted run")
        }
        let loopback = (try? Endpoint(parsing: "tcp://\(host):1"))?.isLoopback ?? false
        let who = loopback ? "any process on this host" : "anyone who reaches it"
        return "INSECURE: plaintext TCP on \(host) (--insecure-plaintext): \(who) can join, read the weights and forge log events"
    }
}
