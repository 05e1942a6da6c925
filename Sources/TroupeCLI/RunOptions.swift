import ArgumentParser
import Foundation
import TroupeRuntime

/// Options shared by the commands that start a run: a configuration file and `section.key=value` overrides.
struct RunConfigOptions: ParsableArguments {
    // An array only so that a second --config is refused rather than silently replacing the first.
    @Option(name: .customLong("config"), help: ArgumentHelp("Run configuration (JSON; docs/configuration.md), given at most once. Defaults are built in.",
                                                             valueName: "file"))
    var configFiles: [String] = []

    var config: String? { configFiles.first }

    func validate() throws {
        if configFiles.count > 1 {
            throw ValidationError("--config is given \(configFiles.count) times: a run reads one configuration file (merge them, or change keys with --set)")
        }
    }

    @Option(name: [.customLong("set")], help: ArgumentHelp("Override one key, e.g. --set learner.batch_groups=4 (repeatable).", valueName: "section.key=value"))
    var overrides: [String] = []

    /// With a run directory (a resume): its frozen `config.json` and the overrides a resume may make.
    func load(frozenIn runDirectory: String? = nil) throws -> RunConfig {
        if let dir = runDirectory, config != nil {
            throw ValidationError("--config cannot be given with --resume: the run continues with its frozen \(dir)/config.json")
        }
        if let dir = runDirectory, FileManager.default.fileExists(atPath: dir + "/config.json") {
            return try RunConfig.loadForResume(frozen: dir + "/config.json", overrides: overrides)
        }
        return try RunConfig.load(path: config, overrides: overrides)
    }
}
