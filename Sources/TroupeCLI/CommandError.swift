import ArgumentParser

/// An error found while a command runs (after argument validation); `main()` shows it as
/// `Error: <description>` and exits with status 1.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Ends a command with `status`: returns for 0, else throws it as `ExitCode` for `main()` to exit with.
func finish(status: Int32) throws {
    if status != 0 { throw ExitCode(status) }
}
