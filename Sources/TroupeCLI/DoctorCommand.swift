import ArgumentParser
import Foundation
import TroupeRuntime
import TroupeWire

/// `troupe doctor`: this host's and (given one) the learner's readiness, one verdict per check.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host, and the learner as seen from it: a verdict per check, exit 1 when one fails.",
        discussion: """
        Always: CPUs and available memory, the OpenBLAS kernel and thread settings (warns about the slow generic \
        fallback), the shared-memory directory. With --config/--set of a learner configuration: whether the bind \
        host covers the advertised one, and whether each of its reward workers answers a probe request as the \
        run's reward version, with the keys the configuration names. With --learner or --learner-file: whether \
        the advertised address makes sense from here, a TCP connection to each advertised endpoint, the learner's protocol version (from its \
        answer to a Heartbeat of a connection that never said Hello: doctor does not join the run) and the clock \
        skew (from the learner's log events; without them a rough bound from endpoints.json's written_at). \
        Verdicts: ok, warn, FAIL; exit status 1 when any check fails.
        """)

    @OptionGroup var address: LearnerAddressOptions

    @OptionGroup var keys: ClientKeyOptions

    @OptionGroup var runConfig: RunConfigOptions

    @Flag(name: .long, help: "Print the checks as one JSON object.")
    var json = false

    @Option(name: .long, help: "Seconds for each network probe (connection, protocol answer, log events).")
    var timeout: Double = 3

    @Option(name: .customLong("connect-timeout"), help: "With --learner-file: seconds to wait for the file to appear (default: 10).")
    var connectTimeoutOption: Double?
    var connectTimeout: Double { connectTimeoutOption ?? 10 }

    func validate() throws {
        try address.validate(required: false)
        try keys.validate(learnerFileGiven: address.learnerFile != nil)
        guard timeout.isFinite, timeout > 0, timeout <= 60 else { throw ValidationError("--timeout must be between 0 and 60 seconds, got \(timeout)") }
        guard connectTimeout.isFinite, connectTimeout > 0 else { throw ValidationError("--connect-timeout must be a positive number of seconds") }
        if connectTimeoutOption != nil && address.learnerFile == nil {
            throw ValidationError("--connect-timeout is how long to wait for --learner-file to appear; without it there is nothing to wait for")
        }
    }

    func run() throws {
        Shutdown.installHandlers()
        let givenConfig = runConfig.config != nil || !runConfig.overrides.isEmpty
        let config = givenConfig ? try runConfig.load() : RunConfig()
        let file = try address.waitForFile(timeout: connectTimeout)
        let target = file.map(Doctor.Target.init(file:)) ?? address.learner.map { Doctor.Target(endpoints: [("control", $0)]) }
        var security: ClientSecurity?
        if let control = target?.endpoints.first?.endpoint {
            security = try keys.security(connectingTo: Endpoint(parsing: control), endpointsFile: file, path: address.learnerFile,
                                         console: Console(role: "doctor")).security
        }
        let probeTimeout = timeout
        let probes = Doctor.Probes(
            resolve: DoctorProbes.resolve,
            connect: { DoctorProbes.connect(host: $0, port: $1, timeout: probeTimeout) },
            protocolVersion: { DoctorProbes.protocolProbe(control: $0, security: security, timeout: probeTimeout) },
            clockSkew: { DoctorProbes.clockProbe(logs: $0, security: security, timeout: probeTimeout) },
            directory: DoctorProbes.directoryState, processAlive: DoctorProbes.processAlive)
        let checks = Doctor.checks(target: target, config: givenConfig ? config.endpoints : nil,
                                   sharedMemoryDirectory: config.learner.sharedMemoryDirectory, host: DoctorProbes.host(), probes: probes)
            + DoctorProbes.rewardWorkers(config.rewardWorkers, timeout: probeTimeout)
        if json {
            _ = StandardOutput.writeJSONLine(Doctor.json(checks))
        } else {
            _ = StandardOutput.write(Doctor.text(checks) + "\n")
        }
        if Doctor.verdict(checks) == .fail { throw ExitCode(1) }
    }
}
