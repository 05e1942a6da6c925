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

    @Flag(name: .customLong("absolute-paths"), help: "Make model.path and task.file absolute against the working directory, and check that they exist (for a configuration that processes started elsewhere read, such as batch jobs).")
    var absolutePaths = false

    func validate() throws {
        if docTable && algorithmDocTable { throw ValidationError("give --doc-table or --algorithm-doc-table, not both: each prints one table") }
        if (docTable || algorithmDocTable) && (runConfig.config != nil || !runConfig.overrides.isEmpty || absolutePaths) {
            throw ValidationError("\(docTable ? "--doc-table" : "--algorithm-doc-table") prints the built-in keys and defaults; it takes no --config, --set or --absolute-paths")
        }
    }

    func run() throws {
        if docTable || algorithmDocTable {
            print(docTable ? RunConfig.documentationTable() : AlgorithmOptions.documentationTable(), terminator: "")
            return
        }
        var config = try runConfig.load()
        if absolutePaths {
            let here = FileManager.default.currentDirectoryPath
            func absolute(_ path: String, _ key: String) throws -> String {
                let resolved = path.hasPrefix("/") ? path : URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: here + "/")).standardizedFileURL.path
                guard FileManager.default.fileExists(atPath: resolved) else {
                    throw CommandError("\(key): \(resolved) does not exist (relative paths are read from \(here))")
                }
                return resolved
            }
            config.model.path = try absolute(config.model.path, "model.path")
            config.task.file = try config.task.file.map { try absolute($0, "task.file") }
        }
        StandardStream.output.write(config.resolvedJSONData())
        print("")
    }
}
