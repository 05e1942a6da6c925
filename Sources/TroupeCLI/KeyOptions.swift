import ArgumentParser
import TroupeRuntime
import TroupeWire

/// The keys of a CURVE client of the learner (`troupe actor`, `troupe monitor`).
struct ClientKeyOptions: ParsableArguments {
    @Option(name: .long, help: "This process's secret key file (NAME.key_secret from troupe keygen); needs --learner-key.")
    var key: String?

    @Option(name: .long, help: "The learner's public key file (learner.key), pinned: a server without its secret gets nothing from this process. With --learner-file it may be left out: the key is then read from the endpoints file.")
    var learnerKey: String?

    @Flag(name: .long, help: "Connect without keys (plaintext TCP), on loopback too. Unauthenticated and unencrypted.")
    var insecurePlaintext = false

    func validate() throws {
        if learnerKey != nil && key == nil { throw ValidationError("--key and --learner-key go together") }
        if key != nil && insecurePlaintext { throw ValidationError("--insecure-plaintext contradicts --key") }
    }

    /// The command's own check: `--key` alone is allowed only where the learner's key can come from
    /// its endpoints file.
    func validate(learnerFileGiven: Bool) throws {
        if key != nil && learnerKey == nil && !learnerFileGiven {
            throw ValidationError("--key and --learner-key go together (or give --learner-file, whose learner_public_key is then used)")
        }
        if let key { try requireKeyFile(key, option: "--key") }
        if let learnerKey { try requireKeyFile(learnerKey, option: "--learner-key") }
    }

    /// The keys read from their files (nil: plaintext), after the plaintext policy for `learner`.
    func security(connectingTo learner: Endpoint, console: Console) throws -> ClientSecurity? {
        try security(connectingTo: learner, endpointsFile: nil, path: nil, console: console).security
    }

    /// The same, for a learner found through its endpoints file (`ClientSecurity.resolve` says how the
    /// file's key is used); `learnerKeyFromFile` tells the caller to follow a key the file changes.
    func security(connectingTo learner: Endpoint, endpointsFile: LearnerEndpointsFile?, path: String?,
                  console: Console) throws -> (security: ClientSecurity?, learnerKeyFromFile: Bool) {
        // The endpoints file first: of an authenticated learner it says which key to give.
        let resolved = try ClientSecurity.resolve(secretKeyFile: key, learnerKeyFile: learnerKey, file: endpointsFile, filePath: path)
        // ipc and inproc never leave the host: the rule is about TCP.
        if case .tcp(let host, _, _) = learner,
           let warning = try PlaintextPolicy.check(host: host, keysGiven: resolved.security != nil, insecurePlaintext: insecurePlaintext,
                                                   keyFlags: "--key and --learner-key") {
            console.warn(warning)
        }
        return resolved
    }
}

/// A key file an option names: missing or a directory is a command-line mistake (exit 64), found
/// before anything connects; what it holds is checked when it is read.
func requireKeyFile(_ path: String, option: String) throws {
    try requirePath(path, directory: false, missing: "\(option) \(path) does not exist (make keys with troupe keygen)",
                    wrongKind: "\(option) \(path) is a directory, not a key file")
}

/// Where the learner is: its control address, or the endpoints file in its run directory
/// (`troupe actor`, `troupe doctor`).
struct LearnerAddressOptions: ParsableArguments {
    @Option(name: .long, help: "The learner's control endpoint, e.g. tcp://learner-host:5555.")
    var learner: String?

    @Option(name: .long, help: ArgumentHelp("The learner's endpoints file (RUN_DIR/endpoints.json, or the run directory itself), written by the learner once it is bound: an alternative to --learner for processes that share the run directory.", valueName: "path"))
    var learnerFile: String?

    /// Exactly one of the two (`required`), a connectable --learner.
    func validate(required: Bool) throws {
        if learner != nil && learnerFile != nil { throw ValidationError("give --learner or --learner-file, not both") }
        if required && learner == nil && learnerFile == nil { throw ValidationError("give --learner tcp://HOST:PORT or --learner-file RUN_DIR/endpoints.json") }
        if let learner {
            do { try Endpoint(parsing: learner).validateForConnect() } catch { throw ValidationError("--learner: \(error)") }
        }
        if let learnerFile, learnerFile.isEmpty { throw ValidationError("--learner-file must not be empty") }
    }

    /// Waits up to `timeout` seconds for the endpoints file (when one was named); an error names it.
    func waitForFile(timeout: Double) throws -> LearnerEndpointsFile? {
        guard let learnerFile else { return nil }
        do { return try LearnerEndpointsFile.wait(for: learnerFile, timeout: timeout, shouldStop: { Shutdown.requested }) } catch {
            throw CommandError("\(error)")
        }
    }
}
