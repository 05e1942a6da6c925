import Foundation
import Testing
import TroupeJSON

/// Input files are regular files: a directory, a FIFO or a device is named as such (a FIFO would
/// otherwise block the read for ever), and a readable regular file has no problem.
@Suite struct ReadableFileTests {
    @Test func directoriesFIFOsAndDevicesAreNamedAndRegularFilesPass() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-readable-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        #expect(ReadableFile.problem(at: dir + "/config.json") == nil)
        #expect(ReadableFile.problem(at: dir) == "is a directory, not a file")
        #expect(ReadableFile.problem(at: dir + "/fifo") == "is not a regular file (a FIFO, a device or a socket)")
        #expect(ReadableFile.problem(at: "/dev/zero") == "is not a regular file (a FIFO, a device or a socket)")
        #expect(ReadableFile.problem(at: dir + "/missing") == "No such file or directory")
    }
}
