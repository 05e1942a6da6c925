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
}
