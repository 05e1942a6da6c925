import ArgumentParser
import Foundation
import TroupeWire

package struct KeygenCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: NAME.key (public) and NAME.key_secret (mode 0600).",
        discussion: """
        The files follow ZeroMQ's certificate format (zcert). NAME is the key's user id: an actor's key must be named \
        as the actor (its --identity). Give the learner its own key (--role learner) and a directory of the public \
        .key files it admits (--allow); give each actor and monitor its .key_secret and the learner's .key. \
        A reward worker (--role reward-worker) serves with its .key_secret; the learner names its .key in \
        reward_workers.server_keys (docs/rewards.md). See docs/cli.md and docs/ARCHITECTURE.md §9.
        """)

    @Argument(help: "The key's name: the actor's identity, or a name for a monitor, the learner or a reward worker.")
    package var name: String

    @Option(name: .long, help: "What the key is for: actor, monitor, learner or reward-worker.")
    package var role: String = "actor"

    @Option(name: .long, help: "Where to write the two files (created if missing).")
    package var directory: String = "."

    package init() {}

    package func validate() throws {
        guard CurveAllowlist.Role(rawValue: role) != nil else {
            throw ValidationError("--role must be one of \(CurveAllowlist.Role.allCases.map(\.rawValue).joined(separator: ", ")), got \(role)")
        }
        guard CurveKeyFile.isValidName(name) else {
            throw ValidationError("NAME must be letters, digits, '-', '_' or '.', got \"\(name)\"")
        }
        guard CurveKeyPair.isSupported else { throw ValidationError("this libzmq was built without CURVE") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--directory \(directory) is a file, not a directory")
        }
    }

    package func run() throws {
        let pair = try CurveKeyPair.generate()
        let paths = try CurveKeyFile.create(name: name, role: CurveAllowlist.Role(rawValue: role)!, pair: pair, directory: directory)
        print("public key \(pair.publicKey.z85)")
        print("wrote \(paths.public) and \(paths.secret) (mode 0600; never share it)")
    }
}
