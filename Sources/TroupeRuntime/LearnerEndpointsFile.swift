import Foundation
import TroupeJSON
import TroupeModel
import TroupeWire

/// `RUN_DIR/endpoints.json`: where a bound learner can be reached, for processes that share the run
/// directory but not the learner's address (a batch job's actors, `troupe monitor`, `troupe doctor`).
/// The learner writes it atomically once its sockets are bound, and again when a resumed learner
/// (perhaps on another host) binds. Readers treat it as they treat the run directory itself: trusted
/// by whoever gave them the path.
package struct LearnerEndpointsFile: Equatable, Sendable {
    package static let fileName = "endpoints.json"

    /// The advertised endpoints: what actors and monitors connect to.
    package var control: String
    package var weights: String
    package var announce: String
    /// Monitors subscribe here (`endpoints.logs_port`).
    package var logs: String
    /// Processes publish their log events here (`endpoints.logs_in_port`).
    package var logsIn: String
    package var epoch: UInt64
    package var pid: Int32
    package var host: String
    /// "MAJOR.MINOR" of the wire protocol the learner speaks.
    package var protocolVersion: String
    /// The learner's CURVE public key (Z85), nil when the learner runs in plaintext.
    package var learnerPublicKey: String?
    package var writtenAt: Date
    /// Where the learner binds (`endpoints.bind_host`), for `troupe doctor`'s consistency check.
    package var bindHost: String
    /// When the learner of `epoch` ended the run (it reached its last step); nil while it runs, and
    /// after a stop that leaves the run to be resumed. An actor of that epoch that missed the end
    /// stops on reading it.
    package var finishedAt: Date?

    package init(control: String, weights: String, announce: String, logs: String, logsIn: String, epoch: UInt64, pid: Int32,
                 host: String, protocolVersion: String = "\(WireProtocol.major).\(WireProtocol.minor)", learnerPublicKey: String?,
                 writtenAt: Date = Date(), bindHost: String, finishedAt: Date? = nil) {
        self.control = control
        self.weights = weights
        self.announce = announce
        self.logs = logs
        self.logsIn = logsIn
        self.epoch = epoch
        self.pid = pid
        self.host = host
        self.protocolVersion = protocolVersion
        self.learnerPublicKey = learnerPublicKey
        self.writtenAt = writtenAt
        self.bindHost = bindHost
        self.finishedAt = finishedAt
    }

    /// The file of a learner of `endpoints`, this process, this host.
    package init(endpoints: RunConfig.Endpoints, epoch: UInt64, learnerPublicKey: String?) {
        func tcp(_ port: Int) -> String { "tcp://\(Self.bracketed(endpoints.advertiseHost)):\(port)" }
        self.init(control: tcp(endpoints.controlPort), weights: tcp(endpoints.weightsPort), announce: tcp(endpoints.announcePort),
                  logs: tcp(endpoints.logsPort), logsIn: tcp(endpoints.logsInPort), epoch: epoch, pid: getpid(),
                  host: ProcessInfo.processInfo.hostName, learnerPublicKey: learnerPublicKey, bindHost: endpoints.bindHost)
    }

    private static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// `PATH`, or `PATH/endpoints.json` when `PATH` is a directory (a run directory).
    package static func resolve(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return (path as NSString).appendingPathComponent(fileName)
        }
        return path
    }

    // MARK: JSON

    package var json: JSONValue {
        [
            "control": .string(control), "weights": .string(weights), "announce": .string(announce), "logs": .string(logs),
            "logs_in": .string(logsIn), "epoch": .string(String(epoch, radix: 16)), "pid": .integer(Int(pid)), "host": .string(host),
            "protocol": .string(protocolVersion), "learner_public_key": learnerPublicKey.map(JSONValue.string) ?? .null,
            "written_at": .string(Self.timestamp(writtenAt)), "bind_host": .string(bindHost),
            "finished_at": finishedAt.map { .string(Self.timestamp($0)) } ?? .null,
        ]
    }

    /// RFC 3339 with milliseconds, UTC.
    package static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    static func parseTimestamp(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    /// Parses the file's text; every problem names the file and the key. Keys this build does not know are ignored.
    package static func parse(_ data: Data, path: String) throws(EndpointsFileError) -> LearnerEndpointsFile {
        func fail(_ problem: String) -> EndpointsFileError { EndpointsFileError(path: path, problem: problem) }
        guard let parsed = try? JSONValue.parse(data, source: path) else { throw fail("not valid JSON (a damaged or foreign file)") }
        guard let object = parsed.object else { throw fail("not a JSON object") }
        func string(_ key: String) throws(EndpointsFileError) -> String {
            guard let value = object[key] else { throw fail("\(key) is missing") }
            guard let text = value.string else { throw fail("\(key) must be a string, got \(value.typeName)") }
            return text
        }
        func endpoint(_ key: String) throws(EndpointsFileError) -> String {
            let text = try string(key)
            do {
                let e = try Endpoint(parsing: text)
                try e.validateForConnect()
            } catch { throw fail("\(key): \(error)") }
            return text
        }
        let control = try endpoint("control"), weights = try endpoint("weights"), announce = try endpoint("announce")
        let logs = try endpoint("logs")
        let logsIn = object["logs_in"] == nil ? logs : try endpoint("logs_in")
        guard let epoch = UInt64(try string("epoch"), radix: 16), epoch != 0 else { throw fail("epoch must be a non-zero hexadecimal number") }
        guard let pidValue = object["pid"]?.int, let pid = Int32(exactly: pidValue), pid > 0 else { throw fail("pid must be a positive integer") }
        let host = try string("host")
        let version = try string("protocol")
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ UInt32($0) != nil }) else { throw fail("protocol must be \"MAJOR.MINOR\", got \"\(version)\"") }
        var key: String?
        if let value = object["learner_public_key"], !value.isNull {
            guard let text = value.string else { throw fail("learner_public_key must be a Z85 string or null") }
            do { _ = try CurveKey(z85: text) } catch { throw fail("learner_public_key: \(error)") }
            key = text
        }
        guard let writtenAt = parseTimestamp(try string("written_at")) else { throw fail("written_at is not an RFC 3339 time") }
        let bindHost = object["bind_host"]?.string ?? ""
        var finishedAt: Date?
        if let value = object["finished_at"], !value.isNull {
            guard let text = value.string, let date = parseTimestamp(text) else { throw fail("finished_at must be an RFC 3339 time or null") }
            finishedAt = date
        }
        return LearnerEndpointsFile(control: control, weights: weights, announce: announce, logs: logs, logsIn: logsIn, epoch: epoch,
                                    pid: pid, host: host, protocolVersion: version, learnerPublicKey: key, writtenAt: writtenAt,
                                    bindHost: bindHost, finishedAt: finishedAt)
    }

    /// Atomically (temporary file, fsync, rename): a reader sees the old file or the new one, never half.
    package func write(to path: String) throws {
        try AtomicFile.write(json.serialized(), to: path)
    }

    /// What is at `path` now.
    package enum Reading: Equatable {
        case missing
        case damaged(EndpointsFileError)
        case found(LearnerEndpointsFile)
    }

    package static func read(_ path: String) -> Reading {
        let resolved = resolve(path)
        // One open decides between missing and unreadable: checking existence after a failed read
        // would call a file renamed into place in between unreadable.
        let fd = open(resolved, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return .missing }
            return .damaged(EndpointsFileError(path: resolved, problem: "cannot be read (\(String(cString: strerror(code))))"))
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            return .damaged(EndpointsFileError(path: resolved, problem: "is a directory, not a learner's endpoints file"))
        }
        let data: Data
        do { data = try handle.readToEnd() ?? Data() } catch {
            return .damaged(EndpointsFileError(path: resolved, problem: "cannot be read (\(error))"))
        }
        do { return .found(try parse(data, path: resolved)) } catch { return .damaged(error) }
    }

    /// Waits up to `timeout` seconds for the file to appear (polling every `interval`); a damaged file
    /// or a timeout is an error naming the file. `shouldStop` ends the wait early (a shutdown signal).
    package static func wait(for path: String, timeout: Double, interval: Double = 0.2,
                             shouldStop: () -> Bool = { false }) throws(EndpointsFileError) -> LearnerEndpointsFile {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            switch read(path) {
            case .found(let file): return file
            case .damaged(let error): throw error
            case .missing: break
            }
            if Date() >= deadline || shouldStop() {
                let resolved = resolve(path)
                let parent = (resolved as NSString).deletingLastPathComponent
                let hint = FileManager.default.fileExists(atPath: parent.isEmpty ? "." : parent)
                    ? "is a learner running with this run directory?" : "its directory \(parent) does not exist either"
                throw EndpointsFileError(path: resolved, problem: shouldStop()
                    ? "did not appear before the shutdown request"
                    : "did not appear within \(Self.seconds(timeout)) s (\(hint))")
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    private static func seconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s) }
}

package struct EndpointsFileError: Error, Equatable, CustomStringConvertible {
    package let path: String
    package let problem: String
    package init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    package var description: String { "learner endpoints file \(path): \(problem)" }
}

extension ClientSecurity {
    /// A client's keys when it may have found the learner through its endpoints file: `--key` with
    /// `--learner-key` pins the learner's key (and a file naming another key is refused as another
    /// learner's); `--key` alone takes the learner's key from the file, trusting the run directory as
    /// its user does; no keys needs a plaintext learner. Returns whether the key came from the file.
    package static func resolve(secretKeyFile: String?, learnerKeyFile: String?,
                                file: LearnerEndpointsFile?, filePath: String?) throws -> (security: ClientSecurity?, learnerKeyFromFile: Bool) {
        let named = filePath.map { LearnerEndpointsFile.resolve($0) } ?? ""
        let fileKey = try file?.learnerPublicKey.map { try CurveKey(z85: $0) }
        guard let secretKeyFile else {
            if fileKey != nil {
                throw EndpointsFileError(path: named, problem: "the learner is authenticated (learner_public_key is set): give this process's --key")
            }
            return (nil, false)
        }
        if let learnerKeyFile {
            let pinned = try ClientSecurity(secretKeyFile: secretKeyFile, learnerKeyFile: learnerKeyFile)
            if file != nil {
                guard let fileKey else {
                    throw EndpointsFileError(path: named, problem: "the learner runs in plaintext (learner_public_key is null) but --key and --learner-key were given")
                }
                guard fileKey == pinned.learnerKey else {
                    throw EndpointsFileError(path: named, problem: "names learner key \(fileKey.z85), but --learner-key \(learnerKeyFile) pins \(pinned.learnerKey.z85): the file is another learner's")
                }
            }
            return (pinned, false)
        }
        guard file != nil else { throw RuntimeError.invalid("--key needs --learner-key, or --learner-file naming an authenticated learner") }
        guard let fileKey else {
            throw EndpointsFileError(path: named, problem: "the learner runs in plaintext (learner_public_key is null) but --key was given")
        }
        let (name, pair) = try CurveKeyFile.readSecret(secretKeyFile)
        return (ClientSecurity(name: name, keyPair: pair, learnerKey: fileKey), true)
    }
}
