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
        the learner refuses to start unless --insecure-plaintext asks for plaintext TCP (then it warns).
        """)

    @OptionGroup var runConfig: RunConfigOptions

    @Option(name: .long, help: "Continue the run in this directory from its latest checkpoint and run log.")
    var resume: String?

    @Option(name: .long, help: "The learner's secret key file (learner.key_secret from troupe keygen --role learner); needs --allow.")
    var key: String?

    @Option(name: .long, help: "A directory of public key files (NAME.key): the actors and monitors admitted, each under its NAME.")
    var allow: String?

    @Flag(name: .long, help: "Run without keys (plaintext TCP), on loopback too: anyone who reaches the ports can join, read the weights and forge log events.")
    var insecurePlaintext = false

    @Flag(name: .long, help: "When a configured port (endpoints.*_port) is taken on this host, bind a free block of five instead; actors find it in RUN_DIR/endpoints.json (--learner-file). For learners that may share a cluster node.")
    var freePorts = false

    @Option(name: .long, help: .hidden)
    var testFailAuthenticationAfterStep: Int?

    @OptionGroup var status: StatusFileOptions

    func validate() throws {
        guard (key == nil) == (allow == nil) else { throw ValidationError("--key and --allow go together") }
        if key != nil && insecurePlaintext { throw ValidationError("--insecure-plaintext contradicts --key and --allow") }
        if let key { try requireKeyFile(key, option: "--key") }
        if let allow {
            try requirePath(allow, directory: true, missing: "--allow \(allow) does not exist (a directory of the admitted public key files)",
                            wrongKind: "--allow \(allow) is a file: give the directory of the admitted public key files (NAME.key)")
        }
        if testFailAuthenticationAfterStep != nil && key == nil { throw ValidationError("--test-fail-authentication-after-step needs --key") }
        if let resume, runConfig.config != nil {
            throw ValidationError("--config cannot be given with --resume: the run continues with its frozen \(resume)/config.json")
        }
        if let resume { try validateRunDirectory(resume) }
    }

    func run() throws {
        Shutdown.installHandlers()
        var config = try runConfig.load(frozenIn: resume)
        if let dir = resume { config.run.directory = dir }
        if freePorts, let moved = try FreePorts.block(for: config.endpoints, bindHost: config.endpoints.bindHost) {
            config.endpoints = moved
            Console(role: "learner").info("configured ports are taken; binding \(moved.controlPort)…\(moved.logsInPort) (--free-ports)")
        }
        if let warning = try PlaintextPolicy.check(host: config.endpoints.bindHost, keysGiven: key != nil,
                                                   insecurePlaintext: insecurePlaintext, keyFlags: "--key and --allow") {
            let workers = config.rewardWorkers.enabled && config.rewardWorkers.serverKeys.isEmpty
                ? "; its reward workers are asked in plaintext too, so anyone who reaches them can read completions and serve scores" : ""
            Console(role: "learner").warn(warning + workers)
        }
        let security = try key.map { try LearnerSecurity(secretKeyFile: $0, allowlistDirectory: allow!) }
        let server: LearnerServer
        do { server = try LearnerServer(config: config, resume: resume != nil, security: security) } catch let error as ZMQError where error.code == EADDRINUSE {
            throw CommandError("\(error): another process holds that port; set the endpoints.*_port keys to free ones, or add --free-ports "
                               + "to bind a free block (actors given --learner-file RUN find it in RUN/endpoints.json)")
        }
        server.failAuthenticationAfterStep = testFailAuthenticationAfterStep
        server.statusFile = status.writer
        try finish(status: server.run())
    }
}

struct ActorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor",
        abstract: "Run an actor: joins a learner, samples groups with the current weights, streams them back.",
        discussion: """
        Start as many as you like, at any time; each needs only the learner's control address (--learner), or the \
        run directory's endpoints file (--learner-file), which it waits for and reads again when the learner goes \
        silent (a resumed learner may be on another host). Exits 0 when the run finishes or on SIGTERM/SIGINT; \
        1 when no learner answers within --connect-timeout, or when a learner that answered stays gone for \
        --learner-gone-timeout.
        """)

    @OptionGroup var address: LearnerAddressOptions

    @Option(name: .long, help: "A stable name for this actor (default: host name and process id).")
    var identity: String?

    @Option(name: .long, help: "Seconds to wait for a first answer from the learner (with --learner-file: for the file, then the answer) before giving up.")
    var connectTimeout: Double = 60

    @Option(name: .long, help: "Once a learner has answered, seconds it may stay silent (through reconnects and Hellos) before this actor gives up and exits 1. Longer than a learner takes to resume.")
    var learnerGoneTimeout: Double = 300

    @Option(name: .long, help: "The host name or address other actors reach this one at, to fetch weight chunks it relays (default: loopback when the learner is on loopback, else this host's address on the interface that routes to the learner).")
    var relayAdvertise: String?

    @Flag(name: .long, help: "Do not relay weight chunks to other actors (this actor still fetches through others).")
    var noRelay = false

    @OptionGroup var keys: ClientKeyOptions

    @OptionGroup var status: StatusFileOptions

    @Flag(name: .long, help: .hidden)
    var testIgnoreNewWeights = false

    func validate() throws {
        try address.validate(required: true)
        try keys.validate(learnerFileGiven: address.learnerFile != nil)
        guard connectTimeout.isFinite, connectTimeout > 0 else { throw ValidationError("--connect-timeout must be a positive number of seconds") }
        guard learnerGoneTimeout.isFinite, learnerGoneTimeout > 0 else {
            throw ValidationError("--learner-gone-timeout must be a positive number of seconds")
        }
        if let i = identity, i.isEmpty || i.contains("#") { throw ValidationError("--identity must be non-empty and without '#'") }
        if let key = keys.key, let i = identity, let keyName = try? CurveKeyFile.read(key).name, keyName != i {
            throw ValidationError("--identity \(i) differs from the name of --key (\(keyName)): the learner knows an actor by its key's name")
        }
        if let host = relayAdvertise {
            guard !noRelay else { throw ValidationError("--relay-advertise and --no-relay contradict each other") }
            // With an advertised host the relay's address does not depend on the learner's.
            do { _ = try WeightRelay.defaultAddress(learner: .tcp(host: host, port: 1), advertiseHost: host) } catch {
                throw ValidationError("--relay-advertise: \(error)")
            }
        }
    }

    func run() throws {
        Shutdown.installHandlers()
        let started = Date()
        let file = try address.waitForFile(timeout: connectTimeout)
        let learnerEndpoint = try Endpoint(parsing: address.learner ?? file!.control)
        let console = Console(role: "actor")
        let (security, keyFromFile) = try keys.security(connectingTo: learnerEndpoint, endpointsFile: file, path: address.learnerFile, console: console)
        let name = identity ?? security?.name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        var options = ActorClient.Options(learner: learnerEndpoint, identity: name)
        options.security = security
        options.learnerFile = address.learnerFile
        options.learnerKeyFromFile = keyFromFile
        // One budget for the file and the first answer.
        options.conversation.connectTimeout = max(1, connectTimeout - Date().timeIntervalSince(started))
        options.conversation.learnerGoneTimeout = learnerGoneTimeout
        options.statusFile = status.writer
        options.ownsProcess = true
        options.conversation.ignoreNewWeights = testIgnoreNewWeights
        if !noRelay { options.relay = try WeightRelay.defaultAddress(learner: options.learner, advertiseHost: relayAdvertise) }
        try finish(status: ActorClient(options: options).run())
    }
}
