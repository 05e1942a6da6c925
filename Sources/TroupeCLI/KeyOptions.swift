import ArgumentParser
import TroupeRuntime
import TroupeWire

/// The keys of a CURVE client of the learner (`troupe actor`, `troupe monitor`).
struct ClientKeyOptions: ParsableArguments {
    @Option(name: .long, help: "This process's secret key file (NAME.key_secret from troupe keygen); needs --learner-key.")
    var key: String?

    @Option(name: .long, help: "The learner's public key file (learner.key), pinned: a server without its secret gets nothing from this process.")
    var learnerKey: String?

    @Flag(name: .long, help: "Connect without keys (plaintext TCP) to a learner that is not on loopback. Unauthenticated and unencrypted.")
    var insecurePlaintext = false

    func validate() throws {
        guard (key == nil) == (learnerKey == nil) else { throw ValidationError("--key and --learner-key go together") }
        if key != nil && insecurePlaintext { throw ValidationError("--insecure-plaintext contradicts --key") }
    }

    /// The keys read from their files (nil: plaintext), after the plaintext policy for `learner`.
    func security(connectingTo learner: Endpoint, console: Console) throws -> ClientSecurity? {
        // ipc and inproc never leave the host: the rule is about TCP.
        if case .tcp(let host, _, _) = learner,
           let warning = try PlaintextPolicy.check(host: host, keysGiven: key != nil, insecurePlaintext: insecurePlaintext,
                                                   keyFlags: "--key and --learner-key") {
            console.warn(warning)
        }
        guard let key, let learnerKey else { return nil }
        return try ClientSecurity(secretKeyFile: key, learnerKeyFile: learnerKey)
    }
}
