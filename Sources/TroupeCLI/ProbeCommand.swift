import ArgumentParser
import Foundation
import TroupeRuntime

/// `troupe probe`: a container's liveness or readiness check, run as an exec probe next to a learner or
/// actor started with `--status-file`.
package struct ProbeCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check a learner's or actor's status file: exit 0 when it is fresh (and in the required state), 1 when not.",
        discussion: """
        A learner or actor started with --status-file PATH rewrites PATH every 2 s from its main loop. This \
        command reads it and prints one line: `ok: …` (exit 0) or `unhealthy: …` (exit 1, also for a missing or \
        damaged file). --require listening (learner) or joined (actor: welcomed, and the learner heard from \
        recently) adds a state to freshness. Meant for Kubernetes exec probes (cluster/k8s/README.md).
        """)

    @Argument(help: "The status file a learner or actor writes (its --status-file).")
    package var file: String

    @Option(name: .long, help: "Seconds after which an unchanged status file counts as a hung process.")
    package var maxAge: Double = 30

    @Option(name: .long, help: "Also require this state: listening (a learner) or joined (an actor).")
    package var require: ProbeRequirement?

    package init() {}

    package func validate() throws {
        guard maxAge.isFinite, maxAge >= 1 else { throw ValidationError("--max-age must be at least 1 s (the file is rewritten every 2 s), got \(maxAge)") }
    }

    package func run() throws {
        let verdict: ProbeVerdict
        do {
            verdict = ProbeVerdict.judge(try StatusFileWriter.read(file), now: Date().timeIntervalSince1970, maxAge: maxAge, require: require)
        } catch {
            verdict = .unhealthy("\(error)")
        }
        print(verdict)
        try finish(status: verdict.isHealthy ? 0 : 1)
    }
}

/// `--status-file PATH` of `troupe learner` and `troupe actor`.
struct StatusFileOptions: ParsableArguments {
    @Option(name: .long, help: "Rewrite this file every 2 s with the process's state, for `troupe probe` (container health checks).")
    var statusFile: String?

    func validate() throws {
        guard let path = statusFile else { return }
        guard !path.isEmpty, !path.hasSuffix("/") else { throw ValidationError("--status-file must name a file, got \"\(path)\"") }
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--status-file: directory \(directory) does not exist")
        }
        // The file is replaced every 2 s: never replace anything but an earlier status file (or an empty file).
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let isRegular = info.st_mode & S_IFMT == S_IFREG
        guard isRegular, info.st_size == 0 || (try? StatusFileWriter.read(path)) != nil else {
            throw ValidationError("--status-file: \(path) exists and is not a status file troupe wrote "
                                  + "(\(isRegular ? "its content is something else" : "not a regular file")); refusing to replace it")
        }
    }

    var writer: StatusFileWriter? { statusFile.map { StatusFileWriter(path: $0) } }
}
