import ArgumentParser
import Foundation
import TroupeRL
import TroupeRuntime

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the resolved run configuration (built-in defaults, then --config, then --set) as JSON.",
        discussion: "Every key it prints can be written in a configuration file or given with --set; docs/configuration.md explains each.")

    @OptionGroup var runConfig: RunConfigOptions

    @Flag(name: .customLong("doc-table"), help: "Print the table of keys (type, default, range, meaning) that docs/configuration.md holds, as Markdown.")
    var docTable = false

    @Flag(name: .customLong("algorithm-doc-table"), help: "Print the table of algorithm options that docs/algorithms.md holds, as Markdown.")
    var algorithmDocTable = false

    func run() throws {
        if docTable || algorithmDocTable {
            print(docTable ? RunConfig.documentationTable() : AlgorithmOptions.documentationTable(), terminator: "")
            return
        }
        let config = try runConfig.load()
        StandardStream.output.write(config.resolvedJSONData())
        print("")
    }
}
