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
        return try Command.run(["/bin/bash", Self.slurmDirectory + "/" + name] + arguments, environment: env, within: 60)
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

    /// What troupe-slurm hands sbatch, with the shipped site.env (no site options) and a stand-in `sbatch`
    /// that records its arguments: every layout's geometry, no empty argument, the environment exported,
    /// and a refused submission gives its actor numbers back.
    @Test func submissionsHandSbatchEachLayoutsGeometry() throws {
        let run = try IntegrationRun("cluster-submit")
        defer { run.finish() }
        let bin = run.directory + "/bin", record = run.directory + "/sbatch.args"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let stub = """
            #!/bin/bash
            [[ -n ${SBATCH_REFUSE:-} ]] && { echo "sbatch: error: $SBATCH_REFUSE" >&2; exit 1; }
            echo "sbatch: note: a site's message on stderr" >&2
            { printf '%s\\n' "$@"; echo "--end--"; } >>\(record)
            echo "4242;cluster"

            """
        try stub.write(toFile: bin + "/sbatch", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/sbatch")
        // An empty queue (this machine runs no slurmctld); a failing squeue is tested below.
        try "#!/bin/bash\n[[ -n ${SQUEUE_FAIL:-} ]] && { echo 'squeue: error: Unable to contact slurm controller' >&2; exit 1; }\nexit 0\n"
            .write(toFile: bin + "/squeue", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/squeue")
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        func submissions() -> [[String]] {
            let text = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "--end--\n").filter { !$0.isEmpty }.map { $0.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
        }
        let (status, output) = try script("troupe-slurm", ["init", run.runDirectory, "--set", "task.spec=arith:add2", "--actors-max", "8"], run)
        try run.require(status == 0, "init: \(output)")
        for layout in ["hetjob", "multiprog", "split"] {
            try? FileManager.default.removeItem(atPath: record)
            // Each layout's submission as if it were the run's first: forget the previous one's jobs.
            try? FileManager.default.removeItem(atPath: run.runDirectory + "/slurm/jobs.tsv")
            let (status, output) = try script("troupe-slurm", ["submit", run.runDirectory, "--layout", layout, "--actors", "2"], run,
                                              environment: ["PATH": path])
            run.check(status == 0, "\(layout): \(output)")
            let calls = submissions()
            for call in calls {
                run.check(!call.contains(""), "\(layout): sbatch got an empty argument: \(call)")
                run.check(call.first == "--parsable" && call.contains("--export=ALL"), "\(layout): \(call)")
            }
            switch layout {
            case "hetjob":
                run.check(calls.count == 1 && calls[0].contains(":") && calls[0].contains("--ntasks=2")
                          && calls[0].filter { $0 == "--mem-per-cpu=2048M" }.count == 2 && !calls[0].contains { $0.hasPrefix("--mem=") },
                          "hetjob: \(calls)")
            case "multiprog":
                // Learner 8G over 4 CPUs and actors 4G over 2: every task 4 CPUs and 2048M per CPU.
                run.check(calls.count == 1 && calls[0].contains("--ntasks=3") && calls[0].contains("--cpus-per-task=4")
                          && calls[0].contains("--mem-per-cpu=2048M"), "multiprog: \(calls)")
            default:
                run.check(calls.count == 2 && calls[1].contains("--dependency=after:4242") && calls[1].contains("--array=5-6"),
                          "split: \(calls)")
            }
        }
        let before = try String(contentsOfFile: run.runDirectory + "/slurm/actors.next", encoding: .utf8)
        let (refused, message) = try script("troupe-slurm", ["scale", run.runDirectory, "up", "2"], run,
                                            environment: ["PATH": path, "SBATCH_REFUSE": "Invalid account"])
        run.check(refused != 0 && message.contains("Invalid account") && message.contains("sbatch refused the job"), "a refusal: \(message)")
        run.check(try String(contentsOfFile: run.runDirectory + "/slurm/actors.next", encoding: .utf8) == before,
                  "a refused submission kept its actor numbers")
        // Beyond --actors-max the new actors get keys of their own, which a running learner admits.
        let (grown, grownOutput) = try script("troupe-slurm", ["scale", run.runDirectory, "up", "4"], run, environment: ["PATH": path])
        run.check(grown == 0 && grownOutput.contains("added actors 7…10"), "scale beyond --actors-max: \(grownOutput)")
        for i in 9...10 {
            run.check(FileManager.default.fileExists(atPath: run.runDirectory + "/keys/clients/actor-\(i).key_secret"), "no key made for actor-\(i)")
        }
        let raised = try? String(contentsOfFile: run.runDirectory + "/slurm/actors.max", encoding: .utf8)
        run.check(raised?.trimmingCharacters(in: .whitespacesAndNewlines) == "10", "actors.max is \(raised ?? "missing"), not 10")
        let (foreign, text) = try script("troupe-slurm", ["cancel", run.runDirectory, "99"], run, environment: ["PATH": path])
        run.check(foreign != 0 && text.contains("job 99 is not one of this run's jobs"), "cancel of another job: \(text)")
        // A busy controller is not an empty queue: with the run's jobs unknown, no second learner is submitted.
        try? FileManager.default.removeItem(atPath: record)
        let (blind, blindOutput) = try script("troupe-slurm", ["submit", run.runDirectory, "--layout", "split", "--actors", "1"], run,
                                              environment: ["PATH": path, "SQUEUE_FAIL": "1"])
        run.check(blind != 0 && blindOutput.contains("squeue failed, so the run's jobs are unknown") && submissions().isEmpty,
                  "a submit with squeue failing: \(blindOutput)")
    }

    /// Every shell script under cluster/ passes shellcheck (from the checkers' virtualenv that
    /// `cluster/k8s/validate.sh --install` makes; skipped without it, failed without it under CI).
    @Test func theClusterScriptsPassShellcheck() throws {
        let shellcheck = TroupeBinary.repository.appendingPathComponent(".build/venv-cluster/bin/shellcheck").path
        guard FileManager.default.isExecutableFile(atPath: shellcheck) else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("CI is set but \(shellcheck) is missing: bash cluster/k8s/validate.sh --install")
            }
            return
        }
        let cluster = TroupeBinary.repository.appendingPathComponent("cluster").path
        let scripts = try FileManager.default.subpathsOfDirectory(atPath: cluster).filter { path in
            path.hasSuffix(".sh") || path.hasSuffix(".sbatch") || ["slurm/troupe-slurm", "slurm/troupe-task"].contains(path)
        }.sorted().map { cluster + "/" + $0 }
        #expect(scripts.count >= 10, "\(scripts)")
        let (status, output) = try Command.run([shellcheck, "--external-sources"] + scripts, within: 60)
        #expect(status == 0, "shellcheck:\n\(output)")
    }
}
