import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Drives a headless Chromium to render report pages: the DOM after the scripts ran (for tests) and
/// PNG screenshots (for the README). Each run gets a fresh profile directory, so parallel runs never
/// fight over a profile lock.
public struct HeadlessChromium: Sendable {
    public let executable: URL

    public static let candidateNames = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"]

    public init(executable: URL) {
        self.executable = executable
    }

    /// `$TROUPE_CHROMIUM` if set, else the first candidate on `$PATH`; nil when none is installed.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> HeadlessChromium? {
        let fileManager = FileManager.default
        if let explicit = environment["TROUPE_CHROMIUM"], !explicit.isEmpty {
            return fileManager.isExecutableFile(atPath: explicit) ? HeadlessChromium(executable: URL(fileURLWithPath: explicit)) : nil
        }
        let directories = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for name in candidateNames {
            for directory in directories {
                let path = directory + "/" + name
                if fileManager.isExecutableFile(atPath: path) { return HeadlessChromium(executable: URL(fileURLWithPath: path)) }
            }
        }
        return nil
    }

    /// Like `locate`, but says why nothing was found.
    public static func require(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> HeadlessChromium {
        if let found = locate(environment: environment) { return found }
        if let explicit = environment["TROUPE_CHROMIUM"], !explicit.isEmpty {
            throw ChromiumError.notExecutable(path: explicit)
        }
        throw ChromiumError.notInstalled
    }

    /// The serialized DOM of `page` after its scripts ran for up to `virtualTimeMilliseconds` of virtual time.
    public func renderedDOM(of page: URL, virtualTimeMilliseconds: Int = 5000, timeout: TimeInterval = 30) throws -> String {
        let output = try run(["--virtual-time-budget=\(virtualTimeMilliseconds)", "--dump-dom", page.absoluteString], timeout: timeout)
        return String(decoding: output, as: UTF8.self)
    }

    /// A PNG of the whole page at `width` CSS pixels. The page height is read from the rendered page
    /// (`data-page-height`, set by the report script) so nothing is cut off.
    public func screenshot(of page: URL, to png: URL, width: Int = 1280, scale: Double = 1, timeout: TimeInterval = 30) throws {
        let dom = try run(["--window-size=\(width),900", "--virtual-time-budget=5000", "--dump-dom", page.absoluteString], timeout: timeout)
        let height = Self.attribute("data-page-height", in: String(decoding: dom, as: UTF8.self)).flatMap(Int.init) ?? 2400
        try? FileManager.default.removeItem(at: png)
        _ = try run(["--window-size=\(width),\(min(max(height, 300), 16_000))", "--force-device-scale-factor=\(scale)",
                     "--hide-scrollbars", "--virtual-time-budget=5000", "--screenshot=\(png.path)", page.absoluteString],
                    timeout: timeout)
        guard FileManager.default.fileExists(atPath: png.path) else {
            throw ChromiumError.failed(command: executable.path, status: 0, stderrTail: "no screenshot was written to \(png.path)")
        }
    }

    static func attribute(_ name: String, in html: String) -> String? {
        guard let start = html.range(of: name + "=\"") else { return nil }
        let rest = html[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    private func run(_ arguments: [String], timeout: TimeInterval) throws -> Data {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                             "--disable-background-networking", "--user-data-dir=\(profile.path)"] + arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ChromiumError.couldNotStart(path: executable.path, reason: (error as NSError).localizedDescription)
        }
        // Drain stderr on another thread so a chatty browser never blocks on a full pipe.
        let stderrBox = DataBox()
        let stderrDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            stderrBox.data = stderr.fileHandleForReading.readDataToEndOfFile()
            stderrDone.signal()
        }
        let timedOut = TimeoutFlag()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem {
            guard process.isRunning else { return }
            timedOut.set()
            kill(pid, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        stderrDone.wait()
        if timedOut.value { throw ChromiumError.timedOut(seconds: timeout) }
        guard process.terminationStatus == 0 else {
            let tail = String(decoding: stderrBox.data.suffix(2000), as: UTF8.self)
            throw ChromiumError.failed(command: executable.path, status: process.terminationStatus, stderrTail: tail)
        }
        return output
    }
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}

private final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

public enum ChromiumError: Error, Equatable, CustomStringConvertible {
    case notInstalled
    case notExecutable(path: String)
    case couldNotStart(path: String, reason: String)
    case timedOut(seconds: Double)
    case failed(command: String, status: Int32, stderrTail: String)

    public var description: String {
        switch self {
        case .notInstalled:
            return "no Chromium found (looked for \(HeadlessChromium.candidateNames.joined(separator: ", ")) on PATH and "
                + "$TROUPE_CHROMIUM); on Debian: apt-get install chromium"
        case let .notExecutable(path): return "TROUPE_CHROMIUM=\(path) is not an executable file"
        case let .couldNotStart(path, reason): return "cannot start \(path): \(reason)"
        case let .timedOut(seconds): return "headless Chromium did not finish within \(Int(seconds)) s"
        case let .failed(command, status, tail): return "\(command) exited with status \(status): \(tail)"
        }
    }
}
