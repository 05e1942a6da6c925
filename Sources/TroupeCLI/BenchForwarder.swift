import ArgumentParser
import Foundation

/// `troupe bench …` runs the `troupe-bench` executable that sits next to `troupe` (the benchmarks are
/// built as a program of their own), with the same arguments.
struct BenchForwarder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput (runs troupe-bench, built next to troupe; `troupe bench --help` lists the benchmarks).")

    @Argument(parsing: .captureForPassthrough, help: "What troupe-bench takes: model … or runtime ….")
    var arguments: [String] = []

    func run() throws {
        let path = Self.benchExecutable()
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CommandError("no troupe-bench next to this troupe (\(path)): build it with `swift build -c release --product troupe-bench`")
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        throw CommandError("cannot run \(path): \(String(cString: strerror(errno)))")
    }

    /// `troupe-bench` in the folder of the running executable.
    static func benchExecutable() -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("troupe-bench").path
    }
}
