import Foundation
import TroupeJSON
#if canImport(Glibc)
import Glibc
#endif

/// What a learner or actor says about itself in its status file (`--status-file PATH`): rewritten every
/// few seconds from the process's own loop, so a file that stops changing means a loop that stopped.
/// `troupe probe` reads it for a container's liveness and readiness probes.
package struct ProcessStatus: Equatable, Sendable {
    package enum Role: String, Sendable, CaseIterable { case learner, actor }

    package var role: Role
    package var pid: Int32
    /// Wall-clock time of the write (seconds since 1970): the probe runs in another process.
    package var writtenUnix: Double
    /// Learner: it serves (its endpoints are bound); false while it stops and in its last write.
    package var listening: Bool?
    /// Learner: optimizer steps done, and the run's total.
    package var step: Int?
    package var maxSteps: Int?
    /// Learner: actors known, prompts waiting for a lease.
    package var actors: Int?
    package var queue: Int?
    /// Actor: welcomed by a learner and not yet silent past its reconnect limit.
    package var joined: Bool?
    /// Actor: seconds since the learner last said anything.
    package var learnerSilentSeconds: Double?
    /// The process's last write, as it exits (its run finished, a stop, a failure): nothing lives to probe.
    package var stopped: Bool?

    package init(role: Role, pid: Int32, writtenUnix: Double) {
        self.role = role
        self.pid = pid
        self.writtenUnix = writtenUnix
    }

    package static func learner(pid: Int32 = getpid(), writtenUnix: Double = Date().timeIntervalSince1970,
                                step: Int, maxSteps: Int, actors: Int, queue: Int) -> ProcessStatus {
        var s = ProcessStatus(role: .learner, pid: pid, writtenUnix: writtenUnix)
        s.listening = true
        s.step = step
        s.maxSteps = maxSteps
        s.actors = actors
        s.queue = queue
        return s
    }

    package static func actor(pid: Int32 = getpid(), writtenUnix: Double = Date().timeIntervalSince1970,
                              joined: Bool, learnerSilentSeconds: Double) -> ProcessStatus {
        var s = ProcessStatus(role: .actor, pid: pid, writtenUnix: writtenUnix)
        s.joined = joined
        s.learnerSilentSeconds = learnerSilentSeconds
        return s
    }

    package var json: JSONValue {
        var o: [String: JSONValue] = ["role": .string(role.rawValue), "pid": .integer(Int(pid)), "written_unix": .number(writtenUnix)]
        if let listening { o["listening"] = .bool(listening) }
        if let step { o["step"] = .integer(step) }
        if let maxSteps { o["max_steps"] = .integer(maxSteps) }
        if let actors { o["actors"] = .integer(actors) }
        if let queue { o["queue"] = .integer(queue) }
        if let joined { o["joined"] = .bool(joined) }
        if let learnerSilentSeconds { o["learner_silent_s"] = .number(learnerSilentSeconds) }
        if let stopped { o["stopped"] = .bool(stopped) }
        return .object(o)
    }

    /// Parses a status file's text; a damaged or foreign file is an error naming what is wrong.
    package init(parsing text: String, source: String) throws(StatusFileError) {
        let value: JSONValue
        do { value = try JSONValue.parse(text, source: source) } catch { throw .damaged(source, "\(error)") }
        guard let o = value.object else { throw .damaged(source, "expected an object, got \(value.typeName)") }
        func field<T>(_ key: String, _ read: (JSONValue) -> T?, _ kind: String, required: Bool) throws(StatusFileError) -> T? {
            guard let v = o[key] else {
                if required { throw .damaged(source, "\(key) is missing") }
                return nil
            }
            guard let t = read(v) else { throw .damaged(source, "\(key): expected \(kind), got \(v.typeName)") }
            return t
        }
        let roleName = try field("role", \.string, "a string", required: true)!
        guard let role = Role(rawValue: roleName) else {
            throw .damaged(source, "role: expected learner or actor, got \"\(roleName)\"")
        }
        let pidValue = try field("pid", \.int, "an integer", required: true)!
        guard let pid = Int32(exactly: pidValue), pid > 0 else { throw .damaged(source, "pid: expected a positive process id, got \(pidValue)") }
        let written = try field("written_unix", \.double, "a number", required: true)!
        self.init(role: role, pid: pid, writtenUnix: written)
        listening = try field("listening", \.bool, "a boolean", required: false)
        step = try field("step", \.int, "an integer", required: false)
        maxSteps = try field("max_steps", \.int, "an integer", required: false)
        actors = try field("actors", \.int, "an integer", required: false)
        queue = try field("queue", \.int, "an integer", required: false)
        joined = try field("joined", \.bool, "a boolean", required: false)
        learnerSilentSeconds = try field("learner_silent_s", \.double, "a number", required: false)
        stopped = try field("stopped", \.bool, "a boolean", required: false)
    }

    /// This status while the process finishes its last work (a learner's last step and checkpoint):
    /// alive, so liveness holds, but not listening, so readiness fails.
    package var asStopping: ProcessStatus {
        var stopping = self
        if stopping.listening != nil { stopping.listening = false }
        return stopping
    }

    /// This status as the process's last: not listening, not joined, stopped.
    package var asStopped: ProcessStatus {
        var last = self
        last.writtenUnix = Date().timeIntervalSince1970
        last.stopped = true
        if last.listening != nil { last.listening = false }
        if last.joined != nil { last.joined = false }
        return last
    }
}

package enum StatusFileError: Error, CustomStringConvertible, Equatable {
    case damaged(String, String)
    case unreadable(String, String)
    case unwritable(String, String)

    package var description: String {
        switch self {
        case .damaged(let path, let problem): "status file \(path) is damaged: \(problem)"
        case .unreadable(let path, let problem): "cannot read status file \(path): \(problem)"
        case .unwritable(let path, let problem): "cannot write status file \(path): \(problem)"
        }
    }
}

/// A state a probe can insist on beyond freshness.
package enum ProbeRequirement: String, CaseIterable, Sendable {
    /// A learner whose endpoints are bound and that is not stopping.
    case listening
    /// An actor a learner has welcomed and that has heard from it recently.
    case joined

    package var role: ProcessStatus.Role {
        switch self {
        case .listening: .learner
        case .joined: .actor
        }
    }
}

/// The probe's verdict on one status (pure: the caller reads the file and the clock).
package enum ProbeVerdict: Equatable, CustomStringConvertible {
    case healthy(String)
    case unhealthy(String)

    package var isHealthy: Bool { if case .healthy = self { true } else { false } }
    package var description: String {
        switch self {
        case .healthy(let s): "ok: \(s)"
        case .unhealthy(let s): "unhealthy: \(s)"
        }
    }

    /// Healthy when the file was written within `maxAge` seconds of `now` and, with a requirement, the
    /// process is in that state. A status from the future beyond `maxAge` counts as stale too (a clock jump).
    package static func judge(_ status: ProcessStatus, now: Double, maxAge: Double, require: ProbeRequirement?) -> ProbeVerdict {
        let age = now - status.writtenUnix
        let ageText = String(format: "%.1f", age)
        if status.stopped == true {
            let step = status.step.map { " at step \($0)" + (status.maxSteps.map { "/\($0)" } ?? "") } ?? ""
            return .unhealthy("the \(status.role.rawValue) (pid \(status.pid)) stopped\(step), \(ageText) s ago")
        }
        if age > maxAge {
            return .unhealthy("the \(status.role.rawValue) (pid \(status.pid)) last wrote its status \(ageText) s ago, more than --max-age \(formatSeconds(maxAge)) s")
        }
        if -age > maxAge {
            return .unhealthy("the status was written \(String(format: "%.1f", -age)) s in the future; the clock moved")
        }
        if let require {
            guard require.role == status.role else {
                let needed = require.role == .actor ? "an actor" : "a learner"
                return .unhealthy("--require \(require.rawValue) is for \(needed), but this is \(status.role == .actor ? "an" : "a") \(status.role.rawValue)'s status")
            }
            switch require {
            case .listening where status.listening != true:
                return .unhealthy("the learner is not listening")
            case .joined where status.joined != true:
                let silent = status.learnerSilentSeconds.map { "; the learner has been silent for \(String(format: "%.1f", $0)) s" } ?? ""
                return .unhealthy("the actor has not joined a learner\(silent)")
            default: break
            }
        }
        var facts = ["\(status.role.rawValue) pid \(status.pid)", "written \(ageText) s ago"]
        if let step = status.step { facts.append("step \(step)" + (status.maxSteps.map { "/\($0)" } ?? "")) }
        if let actors = status.actors { facts.append("\(actors) actors") }
        if let queue = status.queue { facts.append("queue \(queue)") }
        if let joined = status.joined { facts.append(joined ? "joined" : "not joined") }
        return .healthy(facts.joined(separator: ", "))
    }

    private static func formatSeconds(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(s)
    }
}

/// Rewrites a status file atomically (a temporary file in the same directory, then rename) at most once
/// per `interval` seconds, so a probe never reads half a file.
package final class StatusFileWriter {
    package let path: String
    package let interval: Double
    private var lastWrite = -Double.infinity
    private var failing = false
    private var lastState: [Bool?] = []

    package init(path: String, interval: Double = 2) {
        self.path = path
        self.interval = interval
    }

    /// Writes `status()` when `interval` has passed since the last try, or at once when the process's state
    /// (listening, joined) changed, so a readiness probe sees it without waiting (`now`: any monotonic clock).
    /// Throws only the first failure of a run of failures, so a full disk is reported once, not every 2 s;
    /// meanwhile the file goes stale and the probe says so.
    package func writeIfDue(now: Double, _ status: () -> ProcessStatus) throws(StatusFileError) {
        let current = status()
        let state = [current.listening, current.joined]
        guard now - lastWrite >= interval || state != lastState else { return }
        lastWrite = now
        lastState = state
        do throws(StatusFileError) {
            try write(current)
            failing = false
        } catch {
            defer { failing = true }
            if !failing { throw error }
        }
    }

    package func write(_ status: ProcessStatus) throws(StatusFileError) {
        let temporary = path + ".tmp-\(getpid())"
        let text = status.json.serializedString(pretty: false) + "\n"
        let bytes = Array(text.utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .unwritable(path, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let problem = written == bytes.count ? nil : String(cString: strerror(errno))
        close(fd)
        if let problem {
            unlink(temporary)
            throw .unwritable(path, "writing \(temporary): \(problem)")
        }
        guard rename(temporary, path) == 0 else {
            let problem = String(cString: strerror(errno))
            unlink(temporary)
            throw .unwritable(path, problem)
        }
    }

    /// Reads and parses a status file.
    package static func read(_ path: String) throws(StatusFileError) -> ProcessStatus {
        guard let data = FileManager.default.contents(atPath: path) else {
            let problem = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file (the process has not written it yet)"
            throw .unreadable(path, problem)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .damaged(path, "not UTF-8") }
        return try ProcessStatus(parsing: text, source: path)
    }
}
