import ArgumentParser
import Foundation
import TroupeRuntime

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the resolved run configuration (built-in defaults, then --config, then --set) as JSON.",
        discussion: "Every key it prints can be written in a configuration file or given with --set; docs/configuration.md explains each.")

    @OptionGroup var runConfig: RunConfigOptions

    func run() throws {
        let config = try runConfig.load()
        FileHandle.standardOutput.write(config.resolvedJSONData())
        print("")
    }
}
