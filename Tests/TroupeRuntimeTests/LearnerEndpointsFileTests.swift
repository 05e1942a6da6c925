import Foundation
import Testing
import TroupeJSON
import TroupeRuntime
import TroupeWire

/// RUN_DIR/endpoints.json: written and read back, every damage named, the wait for it bounded, and
/// how a client's keys follow from it.
@Suite struct LearnerEndpointsFileTests {
    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-endpoints-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func sample(key: String? = nil) -> LearnerEndpointsFile {
        var endpoints = RunConfig().endpoints
        endpoints.bindHost = "*"
        endpoints.advertiseHost = "node7.cluster"
        return LearnerEndpointsFile(endpoints: endpoints, epoch: 0xFEED_F00D_DEAD_BEEF, learnerPublicKey: key)
    }

    @Test func whatTheLearnerWritesReadsBackWithItsAdvertisedEndpoints() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = Self.sample()
        try file.write(to: dir + "/endpoints.json")
        guard case .found(let read) = LearnerEndpointsFile.read(dir) else { Issue.record("a run directory did not lead to its endpoints.json"); return }
        #expect(read.control == "tcp://node7.cluster:5555")
        #expect(read.logs == "tcp://node7.cluster:5558", "monitors subscribe at logs_port, not logs_in_port")
        #expect(read.logsIn == "tcp://node7.cluster:5559")
        #expect(read.epoch == 0xFEED_F00D_DEAD_BEEF, "a 64-bit epoch survives (hex string, not a JSON number)")
        #expect(read.pid == getpid())
        #expect(read.protocolVersion == "\(WireProtocol.major).\(WireProtocol.minor)")
        #expect(read.learnerPublicKey == nil)
        #expect(read.bindHost == "*")
        #expect(abs(read.writtenAt.timeIntervalSince(file.writtenAt)) < 0.002)
        let text = try String(contentsOfFile: dir + "/endpoints.json", encoding: .utf8)
        #expect(try JSONValue.parse(text)["learner_public_key"]?.isNull == true, "a plaintext learner writes null: \(text)")
        let written = try #require(try JSONValue.parse(text)["written_at"]?.string)
        #expect(written.hasSuffix("Z") && written.contains("T"), "written_at is RFC 3339 UTC: \(written)")
        #expect(try JSONValue.parse(text)["finished_at"]?.isNull == true, "a running learner's file says null: \(text)")
        #expect(read.finishedAt == nil)
    }

    @Test func aFinishedRunIsMarkedAndAFileWithoutTheMarkReadsAsRunning() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var file = Self.sample()
        file.finishedAt = Date(timeIntervalSince1970: 1_800_000_000.25)
        try file.write(to: dir + "/endpoints.json")
        guard case .found(let read) = LearnerEndpointsFile.read(dir) else { Issue.record("not read back"); return }
        #expect(read.finishedAt.map { abs($0.timeIntervalSince1970 - 1_800_000_000.25) < 0.002 } == true, "\(String(describing: read.finishedAt))")
        let text = try String(contentsOfFile: dir + "/endpoints.json", encoding: .utf8)
        #expect(try JSONValue.parse(text)["finished_at"]?.string == "2027-01-15T08:00:00.250Z")
        // Files written before the key existed: a running learner's.
        let older = #"{"control":"tcp://h:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"2.0","written_at":"2026-01-01T00:00:00Z"}"#
        try Data(older.utf8).write(to: URL(fileURLWithPath: dir + "/endpoints.json"))
        guard case .found(let old) = LearnerEndpointsFile.read(dir) else { Issue.record("a file without finished_at was refused"); return }
        #expect(old.finishedAt == nil)
    }

    @Test(arguments: [
        ("{", "not valid JSON"),
        ("[]", "not a JSON object"),
        (#"{"weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"2.0","written_at":"2026-01-01T00:00:00Z"}"#, "control is missing"),
        (#"{"control":"tcp://0.0.0.0:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"2.0","written_at":"2026-01-01T00:00:00Z"}"#, "control: invalid endpoint"),
        (#"{"control":"tcp://h:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"zz","pid":1,"host":"h","protocol":"2.0","written_at":"2026-01-01T00:00:00Z"}"#, "epoch must be"),
        (#"{"control":"tcp://h:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"two","written_at":"2026-01-01T00:00:00Z"}"#, "protocol must be"),
        (#"{"control":"tcp://h:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"2.0","learner_public_key":"short","written_at":"2026-01-01T00:00:00Z"}"#, "learner_public_key"),
        (#"{"control":"tcp://h:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"2.0","written_at":"yesterday"}"#, "written_at"),
        (#"{"control":"tcp://h:1","weights":"tcp://h:1","announce":"tcp://h:2","logs":"tcp://h:3","epoch":"1","pid":1,"host":"h","protocol":"2.0","written_at":"2026-01-01T00:00:00Z","finished_at":true}"#, "finished_at must be"),
    ])
    func aDamagedFileIsAnErrorNamingTheFileAndTheProblem(_ text: String, _ problem: String) throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/endpoints.json"))
        guard case .damaged(let error) = LearnerEndpointsFile.read(dir + "/endpoints.json") else { Issue.record("\(text) was not refused"); return }
        #expect(error.description.contains(dir + "/endpoints.json"), "\(error)")
        #expect(error.description.contains(problem), "\(error)")
        #expect(throws: EndpointsFileError.self) { try LearnerEndpointsFile.wait(for: dir, timeout: 5) }
    }

    @Test func waitingForAFileThatNeverComesEndsWithinTheTimeoutNamingIt() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let started = Date()
        do {
            _ = try LearnerEndpointsFile.wait(for: dir, timeout: 0.5, interval: 0.05)
            Issue.record("no error")
        } catch {
            #expect(error.description.contains(dir + "/endpoints.json") && error.description.contains("did not appear within"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 3)
        do {
            _ = try LearnerEndpointsFile.wait(for: dir + "/nowhere/endpoints.json", timeout: 0.1, interval: 0.05)
        } catch {
            #expect(error.description.contains("does not exist either"), "\(error)")
        }
        // A directory where the file belongs is named at once, not waited for.
        try FileManager.default.createDirectory(atPath: dir + "/endpoints.json", withIntermediateDirectories: false)
        do {
            _ = try LearnerEndpointsFile.wait(for: dir, timeout: 5, interval: 0.05)
            Issue.record("a directory was taken for the file")
        } catch {
            #expect(error.description.contains("is a directory, not a learner's endpoints file"), "\(error)")
        }
    }

    /// A file renamed into place (or removed) while it is being read is missing or found, never
    /// unreadable: one open decides, not a read followed by an existence check.
    @Test func aFileComingAndGoingIsNeverReadAsUnreadable() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try Self.sample().json.serialized()
        let path = dir + "/endpoints.json", staged = dir + "/staged"
        let done = LockedFlag(), writeFailed = LockedFlag()
        let writer = Thread {
            for _ in 0..<3000 {
                guard FileManager.default.createFile(atPath: staged, contents: bytes), rename(staged, path) == 0 else {
                    writeFailed.set()
                    break
                }
                unlink(path)
            }
            done.set()
        }
        writer.start()
        var reads = 0
        while !done.isSet || reads == 0 {
            reads += 1
            switch LearnerEndpointsFile.read(dir) {
            case .damaged(let error): Issue.record("read as damaged after \(reads) reads: \(error)"); return
            case .found, .missing: break
            }
        }
        #expect(reads > 0)
        #expect(!writeFailed.isSet, "the writer could not stage or rename the file, so nothing came and went")
    }

    @Test func aFileThatAppearsWhileWaitingIsRead() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = Self.sample()
        let writer = Thread { Thread.sleep(forTimeInterval: 0.3); try? file.write(to: dir + "/endpoints.json") }
        writer.start()
        let read = try LearnerEndpointsFile.wait(for: dir, timeout: 10, interval: 0.05)
        #expect(read.control == file.control)
    }

    // MARK: keys

    @Test func theLearnersKeyComesFromTheFileOnlyWhenNotPinnedAndAPinnedKeyMustMatch() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let learner = try CurveKeyPair.generate(), other = try CurveKeyPair.generate()
        let actorFiles = try CurveKeyFile.create(name: "a1", role: .actor, pair: .generate(), directory: dir)
        let learnerFiles = try CurveKeyFile.create(name: "learner", role: .learner, pair: learner, directory: dir)
        let authenticated = Self.sample(key: learner.publicKey.z85), plaintext = Self.sample()

        let fromFile = try ClientSecurity.resolve(secretKeyFile: actorFiles.secret, learnerKeyFile: nil, file: authenticated, filePath: dir)
        #expect(fromFile.learnerKeyFromFile && fromFile.security?.learnerKey == learner.publicKey && fromFile.security?.name == "a1")
        let pinned = try ClientSecurity.resolve(secretKeyFile: actorFiles.secret, learnerKeyFile: learnerFiles.public, file: authenticated, filePath: dir)
        #expect(!pinned.learnerKeyFromFile && pinned.security?.learnerKey == learner.publicKey)
        #expect(try ClientSecurity.resolve(secretKeyFile: nil, learnerKeyFile: nil, file: plaintext, filePath: dir).security == nil)

        func refusal(_ secret: String?, _ learnerKey: String?, _ file: LearnerEndpointsFile) -> String {
            do { _ = try ClientSecurity.resolve(secretKeyFile: secret, learnerKeyFile: learnerKey, file: file, filePath: dir); return "accepted" } catch {
                return "\(error)"
            }
        }
        #expect(refusal(actorFiles.secret, learnerFiles.public, Self.sample(key: other.publicKey.z85)).contains("another learner's"))
        #expect(refusal(nil, nil, authenticated).contains("give this process's --key"))
        #expect(refusal(actorFiles.secret, nil, plaintext).contains("plaintext"))
        #expect(refusal(actorFiles.secret, learnerFiles.public, plaintext).contains("plaintext"))
    }
}

/// A flag one thread sets and another polls.
private final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
