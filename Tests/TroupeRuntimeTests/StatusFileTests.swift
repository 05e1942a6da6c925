import Foundation
import Testing
import TroupeRuntime

@Suite struct StatusFileTests {
    let directory = NSTemporaryDirectory() + "troupe-status-\(UUID().uuidString)"
    var path: String { directory + "/status.json" }

    init() throws { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }

    @Test func aWrittenStatusReadsBackAsWritten() throws {
        let writer = StatusFileWriter(path: path)
        let learner = ProcessStatus.learner(pid: 42, writtenUnix: 1000.5, step: 3, maxSteps: 10, actors: 2, queue: 7)
        try writer.write(learner)
        #expect(try StatusFileWriter.read(path) == learner)
        let actor = ProcessStatus.actor(pid: 43, writtenUnix: 2000, joined: true, learnerSilentSeconds: 0.25)
        try writer.write(actor)
        #expect(try StatusFileWriter.read(path) == actor)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(leftovers == ["status.json"], "the temporary file is renamed, not left behind")
    }

    @Test func writeIfDueWritesOncePerInterval() throws {
        let writer = StatusFileWriter(path: path, interval: 2)
        var calls = 0
        let make = { () -> ProcessStatus in calls += 1; return .actor(pid: 1, writtenUnix: Double(calls), joined: false, learnerSilentSeconds: 0) }
        try writer.writeIfDue(now: 100, make)
        try writer.writeIfDue(now: 101.9, make)
        #expect(try StatusFileWriter.read(path).writtenUnix == 1)
        try writer.writeIfDue(now: 102, make)
        #expect(try StatusFileWriter.read(path).writtenUnix == 3, "written on the third call, at 102")
        try writer.writeIfDue(now: 102.5, make)
        #expect(try StatusFileWriter.read(path).writtenUnix == 3)
    }

    @Test func aChangedStateIsWrittenAtOnce() throws {
        let writer = StatusFileWriter(path: path, interval: 2)
        try writer.writeIfDue(now: 100) { .actor(pid: 1, writtenUnix: 1, joined: false, learnerSilentSeconds: 0) }
        try writer.writeIfDue(now: 100.1) { .actor(pid: 1, writtenUnix: 2, joined: false, learnerSilentSeconds: 0) }
        try writer.writeIfDue(now: 100.2) { .actor(pid: 1, writtenUnix: 3, joined: true, learnerSilentSeconds: 0) }
        #expect(try StatusFileWriter.read(path) == .actor(pid: 1, writtenUnix: 3, joined: true, learnerSilentSeconds: 0))
    }

    @Test func aWriteFailureIsReportedOnceUntilAWriteSucceeds() throws {
        let writer = StatusFileWriter(path: directory + "/missing/status.json", interval: 1)
        let status = ProcessStatus.actor(pid: 1, writtenUnix: 1, joined: false, learnerSilentSeconds: 0)
        #expect(throws: StatusFileError.self) { try writer.writeIfDue(now: 0) { status } }
        try writer.writeIfDue(now: 1) { status }   // the same failure again: not thrown twice
        try FileManager.default.createDirectory(atPath: directory + "/missing", withIntermediateDirectories: true)
        try writer.writeIfDue(now: 2) { status }
        try FileManager.default.removeItem(atPath: directory + "/missing")
        #expect(throws: StatusFileError.self) { try writer.writeIfDue(now: 3) { status } }
    }

    @Test func damagedAndMissingFilesAreErrorsNamingTheProblem() throws {
        func problem(_ text: String) -> String {
            do { _ = try ProcessStatus(parsing: text, source: "s.json"); return "accepted" } catch { return error.description }
        }
        #expect(problem("{") .hasPrefix("status file s.json is damaged: "))
        #expect(problem("[]") == "status file s.json is damaged: expected an object, got an array")
        #expect(problem(#"{"pid": 1, "written_unix": 1}"#) == "status file s.json is damaged: role is missing")
        #expect(problem(#"{"role": "monitor", "pid": 1, "written_unix": 1}"#) == "status file s.json is damaged: role: expected learner or actor, got \"monitor\"")
        #expect(problem(#"{"role": "actor", "pid": 0, "written_unix": 1}"#) == "status file s.json is damaged: pid: expected a positive process id, got 0")
        #expect(problem(#"{"role": "actor", "pid": 1, "written_unix": "now"}"#) == "status file s.json is damaged: written_unix: expected a number, got a string")
        #expect(problem(#"{"role": "actor", "pid": 1, "written_unix": 1, "joined": "yes"}"#) == "status file s.json is damaged: joined: expected a boolean, got a string")
        #expect(problem(#"{"role": "actor", "pid": 1, "written_unix": 1}"#) == "accepted")
        #expect(throws: StatusFileError.unreadable(path, "no such file (the process has not written it yet)")) { try StatusFileWriter.read(path) }
    }

    @Test func theProbeJudgesFreshnessAndTheRequiredState() throws {
        let learner = ProcessStatus.learner(pid: 7, writtenUnix: 1000, step: 4, maxSteps: 20, actors: 3, queue: 5)
        #expect(ProbeVerdict.judge(learner, now: 1010, maxAge: 30, require: nil)
                == .healthy("learner pid 7, written 10.0 s ago, step 4/20, 3 actors, queue 5"))
        #expect(ProbeVerdict.judge(learner, now: 1010, maxAge: 30, require: .listening).isHealthy)
        #expect(ProbeVerdict.judge(learner, now: 1031, maxAge: 30, require: nil)
                == .unhealthy("the learner (pid 7) last wrote its status 31.0 s ago, more than --max-age 30 s"))
        #expect(ProbeVerdict.judge(learner, now: 960, maxAge: 30, require: nil)
                == .unhealthy("the status was written 40.0 s in the future; the clock moved"))
        #expect(ProbeVerdict.judge(learner, now: 1000, maxAge: 30, require: .joined)
                == .unhealthy("--require joined is for an actor, but this is a learner's status"))

        let waiting = ProcessStatus.actor(pid: 8, writtenUnix: 1000, joined: false, learnerSilentSeconds: 12.5)
        #expect(ProbeVerdict.judge(waiting, now: 1001, maxAge: 30, require: nil).isHealthy, "alive, though not joined")
        #expect(ProbeVerdict.judge(waiting, now: 1001, maxAge: 30, require: .joined)
                == .unhealthy("the actor has not joined a learner; the learner has been silent for 12.5 s"))
        let joined = ProcessStatus.actor(pid: 8, writtenUnix: 1000, joined: true, learnerSilentSeconds: 0.5)
        #expect(ProbeVerdict.judge(joined, now: 1001, maxAge: 30, require: .joined) == .healthy("actor pid 8, written 1.0 s ago, joined"))
        var notListening = learner
        notListening.listening = false
        #expect(ProbeVerdict.judge(notListening, now: 1001, maxAge: 30, require: .listening) == .unhealthy("the learner is not listening"))
        // A process's last status says it stopped: unhealthy however fresh, and it reads back so.
        var last = learner.asStopped
        last.writtenUnix = 1000
        #expect(last.listening == false && last.stopped == true)
        #expect(ProbeVerdict.judge(last, now: 1001, maxAge: 30, require: nil) == .unhealthy("the learner (pid 7) stopped at step 4/20, 1.0 s ago"))
        #expect(try ProcessStatus(parsing: String(decoding: try last.json.serialized(compact: true), as: UTF8.self), source: "s") == last)
    }
}
