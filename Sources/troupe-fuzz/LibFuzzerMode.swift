import CFuzzerDriver
import Foundation
import TroupeFuzz

/// `TROUPE_LIBFUZZER_TARGET=NAME troupe-fuzz [libFuzzer flags]` in the instrumented build
/// (scripts/libfuzzer.sh): libFuzzer's coverage-guided loop over one target, with its own flags
/// (`-runs=`, `-max_total_time=`, a corpus folder…) instead of troupe-fuzz's.
enum LibFuzzerMode {
    static let variable = "TROUPE_LIBFUZZER_TARGET"

    /// The target libFuzzer's callback runs (a C callback cannot capture it).
    nonisolated(unsafe) private static var target: FuzzTarget?

    /// Runs libFuzzer and exits when the variable is set; returns otherwise.
    static func runIfAsked() {
        guard let name = ProcessInfo.processInfo.environment[variable] else { return }
        guard troupe_libfuzzer_available() == 1 else {
            fail("\(variable) is set, but this troupe-fuzz was built without libFuzzer; build it with scripts/libfuzzer.sh")
        }
        do {
            guard let chosen = try FuzzTarget.named(name) else {
                fail("\(variable)=\(name): no such target (troupe-fuzz --list names them; conversation has no libFuzzer mode)")
            }
            target = chosen
        } catch {
            fail("building the fuzz targets: \(error)")
        }
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(troupe_libfuzzer_run(&argc, &argv) { data, size in
            LibFuzzerMode.target!.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
            return 0
        })
    }

    private static func fail(_ message: String) -> Never {
        try? FileHandle.standardError.write(contentsOf: Data("troupe-fuzz: \(message)\n".utf8))
        exit(2)
    }
}
