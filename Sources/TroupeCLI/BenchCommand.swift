import ArgumentParser

/// `troupe bench`: throughput measurements. Each kind of benchmark is a subcommand; add new ones to
/// `subcommands` (one line each).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput (not tests: numbers depend on the machine and its load).",
        subcommands: [
            BenchModelCommand.self, BenchRuntimeCommand.self,
        ])
}
