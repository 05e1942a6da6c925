import ArgumentParser

@main
struct Troupe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "troupe",
        abstract: "Distributed rollout/learner reinforcement learning for language-model policies.",
        subcommands: [ReportCommand.self, TokenizeCommand.self, AlgoCommand.self,
                      GenerateCommand.self, ScoreCommand.self, SFTCommand.self, BenchCommand.self,
                      LearnerCommand.self, ActorCommand.self, EvalCommand.self,
                      ReplayCommand.self, RunCommand.self, MonitorCommand.self, ConfigCommand.self])
}
