import ArgumentParser
import TroupeRuntime

/// The `troupe` command: every subcommand hangs off it. The executable only calls `Troupe.main()`.
package struct Troupe: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "troupe",
        abstract: "Distributed rollout/learner reinforcement learning for language-model policies.",
        version: TroupeBuild.version,
        subcommands: [ReportCommand.self, TokenizeCommand.self, AlgoCommand.self, DoctorCommand.self,
                      GenerateCommand.self, ScoreCommand.self, SFTCommand.self, BenchForwarder.self,
                      LearnerCommand.self, ActorCommand.self, EvalCommand.self,
                      ReplayCommand.self, RunCommand.self, MonitorCommand.self, ConfigCommand.self, KeygenCommand.self,
                      ProbeCommand.self])

    package init() {}

    package static func main() {
        main(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
    }

    /// ArgumentParser reads the `-1` of `--seed -1` as an unknown flag and says "Missing value for
    /// '--seed'"; a negative number after a long option is joined to it (`--seed=-1`), so the option's
    /// own check names the value.
    package static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var joined: [String] = []
        var ended = false  // after "--" every argument is positional
        for argument in arguments {
            if !ended, let option = joined.last, option.hasPrefix("--"), option.count > 2, !option.contains("="),
               argument.count > 1, argument.hasPrefix("-"), Double(argument) != nil {
                joined[joined.count - 1] = option + "=" + argument
            } else {
                if argument == "--" { ended = true }
                joined.append(argument)
            }
        }
        return joined
    }
}
