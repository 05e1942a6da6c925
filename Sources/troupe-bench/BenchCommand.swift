import ArgumentParser
import TroupeRuntime

/// `troupe-bench` (run as `troupe bench`): throughput measurements, in an executable of their own so
/// neither `troupe` nor the tests link them. Each kind of benchmark is a subcommand; add new ones to
/// `subcommands` (one line each).
@main
struct BenchCommand: ParsableCommand {
    static func main() {
        TroupeLogging.bootstrap()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "troupe bench",
        abstract: "Measure throughput (not tests: numbers depend on the machine and its load).",
        subcommands: [
            BenchModelCommand.self, BenchRuntimeCommand.self, BenchRLStepCommand.self,
        ])
}
