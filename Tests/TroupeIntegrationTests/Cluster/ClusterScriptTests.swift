import Foundation
import Testing

/// The cluster scripts' refusals, which need no Slurm: each bad input ends with a message naming the
/// problem and a non-zero status, before anything is submitted.
@Suite struct ClusterScriptTests {
    static let slurmDirectory = TroupeBinary.repository.appendingPathComponent("cluster/slurm").path

    /// Runs a cluster script with `environment` added to this test run's (TROUPE_BIN set to this build).
    func script(_ name: String, _ arguments: [String], _ run: IntegrationRun, environment: [String: String] = [:]) throws -> (Int32, String) {
        var env = run.environment
        env["TROUPE_BIN"] = run.binary
        for (key, value) in environment { env[key] = value }
        return try SlurmLab.run(["/bin/bash", Self.slurmDirectory + "/" + name] + arguments, environment: env, within: 60)
    }

    @Test func badInputToTheSlurmScriptsIsNamedAndFatal() throws {
        let run = try IntegrationRun("cluster-scripts")
        defer { run.finish() }
        let dir = run.runDirectory
        let cases: [(String, [String], [String: String], String)] = [
            ("troupe-slurm", ["submit", dir], [:], "is not a prepared run (no run-config.json): run troupe-slurm init"),
            ("troupe-slurm", ["init", dir, "--actors-max", "0"], [:], "--actors-max must be a positive integer (got '0')"),
            ("troupe-slurm", ["init", dir, "--set", "run.max_steps=ten"], [:], "run.max_steps"),
            ("troupe-slurm", ["launch", dir], [:], "troupe-slurm init RUN_DIR"),
            ("troupe-task", ["learner", dir], [:], "run directory \(dir) does not exist"),
            ("actors.sbatch", [dir], [:], "TROUPE_SLURM_DIR: is not set: submit with cluster/slurm/troupe-slurm"),
            ("actors.sbatch", [dir], ["TROUPE_SLURM_DIR": Self.slurmDirectory], "SLURM_ARRAY_TASK_ID: is not set: submit actors.sbatch as an array"),
        ]
        for (name, arguments, environment, expected) in cases {
            let (status, output) = try script(name, arguments, run, environment: environment)
            run.check(status != 0 && output.contains(expected),
                      "\(name) \(arguments.joined(separator: " ")): status \(status), expected a refusal containing \"\(expected)\", got:\n\(output)")
        }

        // A prepared run: keys for two actors. A third, a second init and a bad scale count are refused.
        let (status, output) = try script("troupe-slurm", ["init", dir, "--set", "task.spec=arith:add2", "--actors-max", "2"], run)
        try run.require(status == 0, "troupe-slurm init: \(output)")
        for file in ["run-config.json", "keys/learner.key", "keys/learner.key_secret", "keys/clients/actor-2.key_secret", "keys/clients/monitor.key"] {
            run.check(FileManager.default.fileExists(atPath: dir + "/" + file), "init made no \(file)")
        }
        let secret = try FileManager.default.attributesOfItem(atPath: dir + "/keys/clients/actor-1.key_secret")
        run.check((secret[.posixPermissions] as? Int) == 0o600, "an actor's secret key is readable by others")
        let prepared: [(String, [String], [String: String], String)] = [
            ("troupe-slurm", ["init", dir], [:], "is already prepared"),
            ("troupe-slurm", ["scale", dir, "up", "two"], [:], "scale's count must be a positive integer"),
            ("troupe-slurm", ["scale", dir, "sideways", "2"], [:], "scale takes up K or down K"),
            ("troupe-slurm", ["resume", dir], [:], "has no run log yet: nothing to resume"),
            ("troupe-task", ["actor", dir, "3"], [:], "no key for actor-3"),
            ("troupe-task", ["actor", dir, "x"], [:], "actor needs an INDEX or +BASE"),
            ("troupe-task", ["learner", dir], ["TROUPE_BIN": "/nonexistent/troupe"], "TROUPE_BIN=/nonexistent/troupe is not an executable"),
            ("troupe-task", ["learner", dir], ["TROUPE_ADVERTISE_INTERFACE": "nosuch0"], "TROUPE_ADVERTISE_INTERFACE=nosuch0 has no IPv4 address"),
        ]
        for (name, arguments, environment, expected) in prepared {
            let (status, output) = try script(name, arguments, run, environment: environment)
            run.check(status != 0 && output.contains(expected),
                      "\(name) \(arguments.joined(separator: " ")): status \(status), expected a refusal containing \"\(expected)\", got:\n\(output)")
        }
    }
}
