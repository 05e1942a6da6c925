import ArgumentParser
import Foundation
import TroupeActor
import TroupeLearner
import TroupeRuntime
import TroupeWeights
import TroupeWire

struct LearnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learner",
        abstract: "Run the learner: leases prompts to actors, trains on their groups, publishes weights.",
        discussion: """
        Binds the control, weights, announce and log endpoints of the configuration (endpoints.*). \
        Actors join with `troupe actor --learner tcp://HOST:CONTROL_PORT`; watch with `troupe monitor tcp://HOST:LOGS_PORT`. \
        With --key and --allow every endpoint is CURVE-encrypted and admits only the allowlisted keys; without keys \
        the learner runs in plaintext on loopback only, unless --insecure-plaintext is given.
        """)

    @OptionGroup var runConfig: RunConfigOptions

    @Option(name: .long, help: "Continue the run in this directory from its latest checkpoint and run log.")
    var resume: String?

    @Option(name: .long, help: "The learner's secret key file (learner.key_secret from troupe keygen --role learner); needs --allow.")
    var key: String?

    @Option(name: .long, help: "A directory of public key files (NAME.key): the actors and monitors admitted, each under its NAME.")
    var allow: String?

    @Flag(name: .long, help: "Bind a non-loopback address without keys (plaintext TCP). Anyone who reaches it can join.")
    var insecurePlaintext = false

    func validate() throws {
        guard (key == nil) == (allow == nil) else { throw ValidationError("--key and --allow go together") }
        if key != nil && insecurePlaintext { throw ValidationError("--insecure-plaintext contradicts --key and --allow") }
    }

    func run() throws {
        Shutdown.installHandlers()
        var config = try runConfig.load(frozenIn: resume)
        if let dir = resume { config.run.directory = dir }
        if let warning = try PlaintextPolicy.check(host: config.endpoints.bindHost, keysGiven: key != nil,
                                                   insecurePlaintext: insecurePlaintext, keyFlags: "--key and --allow") {
            Console(role: "learner").warn(warning)
        }
        let security = try key.map { try LearnerSecurity(secretKeyFile: $0, allowlistDirectory: allow!) }
        let server = try LearnerServer(config: config, resume: resume != nil, security: security)
        try finish(status: server.run())
    }
}

struct ActorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor",
        abstract: "Run an actor: joins a learner, samples groups with the current weights, streams them back.",
        discussion: "Start as many as you like, at any time; each needs only the learner's control address.")

    @Option(name: .long, help: "The learner's control endpoint, e.g. tcp://learner-host:5555.")
    var learner: String

    @Option(name: .long, help: "A stable name for this actor (default: host name and process id).")
    var identity: String?

    @Option(name: .long, help: "Seconds to wait for a first answer from the learner before giving up.")
    var connectTimeout: Double = 60

    @Option(name: .long, help: "The host name or address other actors reach this one at, to fetch weight chunks it relays (default: loopback when the learner is on loopback, else this host's address on the interface that routes to the learner).")
    var relayAdvertise: String?

    @Flag(name: .long, help: "Do not relay weight chunks to other actors (this actor still fetches through others).")
    var noRelay = false

    @OptionGroup var keys: ClientKeyOptions

    @Flag(name: .long, help: .hidden)
    var testIgnoreNewWeights = false

    func validate() throws {
        do { try Endpoint(parsing: learner).validateForConnect() } catch {
            throw ValidationError("--learner: \(error)")
        }
        guard connectTimeout > 0 else { throw ValidationError("--connect-timeout must be > 0") }
        if let i = identity, i.isEmpty || i.contains("#") { throw ValidationError("--identity must be non-empty and without '#'") }
        if let key = keys.key, let i = identity, let keyName = try? CurveKeyFile.read(key).name, keyName != i {
            throw ValidationError("--identity \(i) differs from the name of --key (\(keyName)): the learner knows an actor by its key's name")
        }
        if let host = relayAdvertise {
            guard !noRelay else { throw ValidationError("--relay-advertise and --no-relay contradict each other") }
            do { _ = try WeightRelay.defaultAddress(learner: Endpoint(parsing: learner), advertiseHost: host) } catch {
                throw ValidationError("--relay-advertise: \(error)")
            }
        }
    }

    func run() throws {
        Shutdown.installHandlers()
        let learnerEndpoint = try Endpoint(parsing: learner)
        let security = try keys.security(connectingTo: learnerEndpoint, console: Console(role: "actor"))
        let name = identity ?? security?.name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        var options = ActorClient.Options(learner: learnerEndpoint, identity: name)
        options.security = security
        options.conversation.connectTimeout = connectTimeout
        options.conversation.ignoreNewWeights = testIgnoreNewWeights
        if !noRelay { options.relay = try WeightRelay.defaultAddress(learner: options.learner, advertiseHost: relayAdvertise) }
        try finish(status: ActorClient(options: options).run())
    }
}
