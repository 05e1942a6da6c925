import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// A Slurm cluster on this machine for one test: cluster/lab/slurm-lab.sh brings up one slurmd per node,
// each in a network namespace of its own, and the controller with the "login" host in another. The
// test talks to Slurm only from the login host (as a user would), through cluster/slurm/troupe-slurm.

enum SlurmLabAvailability {
    static let tools = ["ip", "nsenter", "munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel"]

    /// Why the lab cannot run here; nil when it can.
    static var unavailableReason: String? {
        var missing: [String] = []
        if getuid() != 0 { missing.append("root") }
        missing += tools.filter { NetworkLab.tool($0) == nil }.map { "`\($0)`" }
        return missing.isEmpty ? nil : "the Slurm lab needs " + missing.joined(separator: ", ")
            + " (Debian: slurmctld slurmd slurm-client munge iproute2 util-linux)"
    }

    /// Run where the lab can run, and under CI always (so a missing package fails there).
    static var shouldRun: Bool { unavailableReason == nil || NetworkLab.inCI }
}

final class SlurmLab {
    let directory: String
    let environment: [String: String]
    private let script: String

    var loginNamespace: String { environment["LAB_LOGIN_NETNS"] ?? "" }
    var slurmConf: String { environment["SLURM_CONF"] ?? "" }

    /// Brings a lab up in `directory` (its state, daemons' logs and pid files live there).
    init(directory: String, nodes: Int, cpusPerNode: Int) throws {
        if let reason = SlurmLabAvailability.unavailableReason {
            Issue.record("CI=true but \(reason): scripts/bootstrap.sh installs them and CI runs as root")
            throw HarnessError(reason)
        }
        self.directory = directory
        script = TroupeBinary.repository.appendingPathComponent("cluster/lab/slurm-lab.sh").path
        let (status, output) = try Command.run(["/bin/bash", script, "up", "--dir", directory, "--nodes", "\(nodes)", "--cpus", "\(cpusPerNode)"],
                                            within: 90)
        guard status == 0 else { throw HarnessError("slurm-lab.sh up failed (\(status)):\n\(output)") }
        let env = try String(contentsOfFile: directory + "/lab.env", encoding: .utf8)
        var parsed: [String: String] = [:]
        for line in env.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            parsed[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        environment = parsed
    }

    /// Stops every daemon and job of the lab and removes its namespaces (safe to call twice).
    func down() {
        _ = try? Command.run(["/bin/bash", script, "down", "--dir", directory], within: 60)
    }

    /// The command as run on the login host: `nsenter --net=LOGIN COMMAND…` with the lab's SLURM_CONF.
    func onLogin(_ command: [String]) -> [String] {
        [NetworkLab.tool("nsenter")!, "--net=/run/netns/\(loginNamespace)"] + command
    }

    /// Runs a command on the login host to completion; its exit status and output (stdout and stderr).
    func login(_ command: [String], environment extra: [String: String] = [:], within seconds: Double = 60) throws -> (Int32, String) {
        var env = ProcessInfo.processInfo.environment
        env["SLURM_CONF"] = slurmConf
        for (key, value) in extra { env[key] = value }
        return try Command.run(onLogin(command), environment: env, within: seconds)
    }
}
