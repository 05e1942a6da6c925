import Foundation
import Testing

/// The wire protocol from outside Swift (clients/, docs/PROTOCOL.md §11): the golden messages decode
/// identically under swift-protobuf, Python protobuf and protobuf-c and survive each runtime's
/// re-encoding; the C client is welcomed by a real learner; the reference Python actor trains a run.
/// Needs the virtualenv of scripts/interop-venv.sh and the C tool chain of scripts/bootstrap.sh (protoc-c,
/// libprotobuf-c, libxxhash). CI installs both and sets CI, so there a missing one fails; elsewhere the
/// tests are skipped with a message.
enum InteropClients {
    static let repository = TroupeBinary.repository.path
    static let required = ProcessInfo.processInfo.environment["CI"] != nil
    static let venv = ProcessInfo.processInfo.environment["TROUPE_INTEROP_VENV"] ?? repository + "/.build/venv-interop"
    static let python = venv + "/bin/python"
    static let pythonInstalled = FileManager.default.isExecutableFile(atPath: python)
        && FileManager.default.fileExists(atPath: repository + "/clients/python/generated/troupe/v1/envelope_pb2.py")
        && (try? Command.run([python, "-c", "import zmq, xxhash, numpy, google.protobuf"], within: 60).0) == 0
    static let cToolsInstalled = (try? Command.run(["/usr/bin/env", "sh", "-c",
                                                    "command -v protoc-c && pkg-config --exists libzmq libprotobuf-c libxxhash"], within: 30).0) == 0
    static let installed = pythonInstalled && cToolsInstalled
    static let skipReason: Comment = "the interop clients' tools are missing (bash scripts/interop-venv.sh; apt-get install protobuf-c-compiler libprotobuf-c-dev libxxhash-dev); skipped"
    static let goldens = repository + "/Tests/Fixtures/wire-goldens"

    static func requireTools() throws {
        try #require(pythonInstalled, "CI is set but \(venv) or clients/python/generated is missing: run bash scripts/interop-venv.sh")
        try #require(cToolsInstalled, "CI is set but protoc-c, libprotobuf-c or libxxhash is missing: run bash scripts/bootstrap.sh test")
    }

    /// Builds clients/c into `directory` (make, a few seconds) and returns the folder holding its programs.
    static func buildC(_ run: IntegrationRun) throws -> String {
        let build = run.directory + "/c"
        let (status, output) = try Command.run(["/usr/bin/env", "make", "-s", "-C", repository + "/clients/c", "BUILD=\(build)"], within: 180)
        try run.require(status == 0, "make -C clients/c failed:\n\(output)")
        return build
    }

    /// The golden generator, built next to the troupe binary (`swift build` builds every product).
    static func goldensTool() throws -> String {
        let path = (try TroupeBinary.path() as NSString).deletingLastPathComponent + "/troupe-wire-goldens"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("no \(path): run swift build --product troupe-wire-goldens")
        }
        return path
    }

    static func pythonActor(_ run: IntegrationRun, _ name: String, _ arguments: [String]) throws -> Child {
        try run.startProgram(name, [python, repository + "/clients/python/troupe_actor.py", "--learner", run.controlEndpoint,
                                    "--connect-timeout", "30"] + arguments)
    }

    /// The actor's JSON-lines events of one kind.
    static func events(_ child: Child, _ kind: String) -> [[String: Any]] {
        child.stderr.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["event"] as? String == kind else { return nil }
            return object
        }
    }

    /// mismatch_kl of every training step in metrics.jsonl.
    static func mismatchKL(_ run: IntegrationRun) -> [Double] {
        let text = (try? String(contentsOfFile: run.runDirectory + "/metrics.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["kind"] as? String == "train" else { return nil }
            return (object["mismatch_kl"] as? NSNumber)?.doubleValue
        }
    }
}

/// In the serialized suite of the other multi-process tests: the learners here must not compete with theirs.
extension RuntimeIntegrationTests {
    /// The rule checked: every runtime decodes every golden to the same message (canonical dumps of Python
    /// and C identical, field by field, sign of zero included; Python's decoding equal to the parsed text
    /// format), keeps no unknown field, and its own encoding — whose bytes may differ — decodes in Swift to
    /// a message equal to the golden, with two documented protobuf-c losses (§11): a present but empty
    /// optional string comes back absent, and -0.0 comes back +0.0.
    @Test(.enabled(if: InteropClients.installed || InteropClients.required, InteropClients.skipReason), .timeLimit(.minutes(3)))
    func goldenMessagesDecodeAlikeInSwiftPythonAndCAndSurviveEachRuntimesEncoding() throws {
        try InteropClients.requireTools()
        let run = try IntegrationRun("wire-goldens")
        defer { run.finish() }
        let tool = try InteropClients.goldensTool()
        let verified = try Command.run([tool, "verify", InteropClients.goldens], within: 60)
        run.check(verified.0 == 0, "the committed goldens are not what this build encodes:\n\(verified.1)")

        let c = try InteropClients.buildC(run)
        let cOut = run.directory + "/c-out", pythonOut = run.directory + "/python-out"
        try FileManager.default.createDirectory(atPath: cOut, withIntermediateDirectories: true)
        let cDecoded = try Command.run([c + "/conformance", InteropClients.goldens, cOut], within: 60)
        run.check(cDecoded.0 == 0 && cDecoded.1.contains("protobuf-c decoded 28 golden messages"), "protobuf-c: \(cDecoded.1)")
        let pythonDecoded = try Command.run([InteropClients.python, InteropClients.repository + "/clients/python/conformance.py",
                                             InteropClients.goldens, pythonOut, "--c-dumps", cOut], within: 120)
        run.check(pythonDecoded.0 == 0 && pythonDecoded.1.contains("ok: 28 golden messages"), "Python protobuf: \(pythonDecoded.1)")

        let fromPython = try Command.run([tool, "check", pythonOut, "python"], within: 60)
        run.check(fromPython.0 == 0, "Python's encodings, decoded in Swift:\n\(fromPython.1)")
        let fromC = try Command.run([tool, "check", cOut, "c", "--optional-as-implicit"], within: 60)
        run.check(fromC.0 == 0, "protobuf-c's encodings, decoded in Swift:\n\(fromC.1)")
        // The check can fail: held to the strict rule, protobuf-c's encoding of the one golden with an empty
        // optional string and signed zeros differs, and only that one.
        let strict = try Command.run([tool, "check", cOut, "c"], within: 60)
        let failing = strict.1.split(separator: "\n").filter { $0.contains(".c.pb: ") }
        run.check(strict.0 == 1 && failing.count == 1 && failing[0].contains("group-submit.c.pb"),
                  "the strict check of protobuf-c's encodings should fail on group-submit alone:\n\(strict.1.prefix(2000))")
        // The Python actor's reward port against the learner's own answer cases (clients/python/tests).
        let rewards = try Command.run([InteropClients.python, "-m", "unittest", "discover", "-s", InteropClients.repository + "/clients/python/tests"],
                                      within: 60)
        run.check(rewards.0 == 0 && rewards.1.contains("OK"), "clients/python/tests: \(rewards.1)")
        // And a changed byte in a golden is caught by `verify`.
        let tampered = run.directory + "/tampered"
        try FileManager.default.copyItem(atPath: InteropClients.goldens, toPath: tampered)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: tampered + "/bye.pb"))
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: URL(fileURLWithPath: tampered + "/bye.pb"))
        let caught = try Command.run([tool, "verify", tampered], within: 60)
        run.check(caught.0 == 1 && caught.1.contains("bye.pb: differs"), "a changed golden passed verify: \(caught.1)")
    }

    /// The reference Python actor alone trains a run over chunks (every tensor hash verified), computing
    /// behaviour log-probs with its numpy model close enough that mismatch_kl stays at float rounding;
    /// it drops its connection when group 3's Ack arrives, unread, and resends what is unacknowledged; the C client is
    /// welcomed meanwhile; the run replays bit for bit.
    @Test(.enabled(if: InteropClients.installed || InteropClients.required, InteropClients.skipReason), .timeLimit(.minutes(4)))
    func pythonActorTrainsARunAndTheCClientIsWelcomed() throws {
        try InteropClients.requireTools()
        let run = try IntegrationRun("python-actor")
        defer { run.finish() }
        let c = try InteropClients.buildC(run)
        let learner = try run.startLearner(maxSteps: 4)
        let actor = try InteropClients.pythonActor(run, "python-actor", ["--insecure-plaintext", "--identity", "py1",
                                                                         "--reconnect-after-group", "3"])
        let hello = try Command.run([c + "/troupe-hello", "--learner", run.controlEndpoint, "--insecure-plaintext", "--timeout", "20"],
                                    within: 60)
        run.check(hello.0 == 0 && hello.1.contains("welcome from") && hello.1.contains("credit: 64")
                  && hello.1.contains("weights_endpoint: tcp://127.0.0.1:\(run.ports.weights)"), "troupe-hello: \(hello.1)")
        try run.require(run.expectExit(learner, .code(0), within: 150) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 30)

        let records = run.records
        run.check(records.stepsDone == [1, 2, 3, 4], "step_done records \(records.stepsDone)")
        let trained = Set(records.survivingSteps.flatMap(\.groups))
        run.check(!trained.isEmpty && trained.allSatisfy { LogRecord.actor(ofGroup: $0) == "py1" }, "trained groups \(trained.sorted())")
        run.check(records.rejectionsByReason.isEmpty, "groups of the Python actor were refused: \(records.rejectionsByReason)")
        let joined = records.of("actor_joined").compactMap { $0.string("actor") }
        run.check(joined.contains("py1") && joined.contains("c-hello"), "actor_joined for \(joined)")
        let applied = InteropClients.events(actor, "weights_applied")
        run.check(!applied.isEmpty && applied.allSatisfy { ($0["tensors_verified"] as? NSNumber)?.intValue == 38 && $0["via"] as? String == "chunks" },
                  "weights_applied events \(applied)")
        run.check(Set(applied.compactMap { ($0["step"] as? NSNumber)?.intValue }).count >= 2, "the actor never applied a newer version")
        let kl = InteropClients.mismatchKL(run)
        run.check(kl.count == 4 && kl.allSatisfy { abs($0) < 1e-4 }, "mismatch_kl \(kl): the numpy model's log-probs are not the learner's")
        // The reconnect: dropped at group 3's Ack, welcomed again with it unacknowledged, resent, acknowledged.
        run.check(!InteropClients.events(actor, "dropping_connection").isEmpty, "the actor did not drop its connection")
        let resent = InteropClients.events(actor, "resending").flatMap { ($0["sequences"] as? [NSNumber])?.map(\.intValue) ?? [] }
        run.check(resent.contains(3), "group 3 was not resent after the reconnect (resent \(resent))")
        let acked = Set(InteropClients.events(actor, "group_acked").compactMap { ($0["sequence"] as? NSNumber)?.intValue })
        run.check(acked.contains(3), "group 3 was never acknowledged")
        RuntimeIntegrationTests.expectConsistentEnd(run, steps: 4)
        try RuntimeIntegrationTests.expectReplayVerifies(run, steps: 4)
    }

    /// A malformed group from a third-party actor is refused and counted like any other; the run goes on.
    /// With the built-in model (byte tokenizer, answers that are numbers) and multi-temperature groups:
    /// every other group's answers, majority-vote rewards and per-sample temperatures are the learner's own.
    @Test(.enabled(if: InteropClients.installed || InteropClients.required, InteropClients.skipReason), .timeLimit(.minutes(4)))
    func aMalformedGroupFromThePythonActorIsCountedAndTrainingGoesOn() throws {
        try InteropClients.requireTools()
        let run = try IntegrationRun("python-malformed")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 3, ["model.path=\(InteropClients.repository)/models/arith-base",
                                                          "sampling.temperatures=[0.7,1.3]"])
        let actor = try InteropClients.pythonActor(run, "python-actor", ["--insecure-plaintext", "--identity", "py-bad",
                                                                         "--malformed-group", "2"])
        try run.require(run.expectExit(learner, .code(0), within: 150) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 30)
        let records = run.records
        run.check(records.stepsDone == [1, 2, 3], "step_done records \(records.stepsDone)")
        let rejected = records.of("group_rejected")
        run.check(rejected.count == 1 && rejected.first?.string("reason") == "malformed"
                  && rejected.first?.string("group")?.hasSuffix("#2") == true,
                  "group_rejected records \(rejected.map(\.body))")
        let refusal = InteropClients.events(actor, "group_rejected")
        run.check(refusal.count == 1 && refusal.first?["reason"] as? String == "GROUP_REJECT_REASON_MALFORMED",
                  "the actor's view of the refusal: \(refusal)")
        run.check(records.accounting?["rejected"] == 1, "accounting \(records.accounting ?? [:])")
        RuntimeIntegrationTests.expectConsistentEnd(run, steps: 3)
    }

    /// Refusals are errors with a reason and a non-zero exit: the C client and the Python actor with a key
    /// not on the allowlist, the C client with no learner at all, the Python actor speaking another
    /// protocol major; the allowlisted C client is welcomed over CURVE.
    @Test(.enabled(if: InteropClients.installed || InteropClients.required, InteropClients.skipReason), .timeLimit(.minutes(3)))
    func refusedClientsSayWhyAndExitNonZero() throws {
        try InteropClients.requireTools()
        let run = try IntegrationRun("interop-refusals")
        defer { run.finish() }
        let c = try InteropClients.buildC(run)
        let keys = run.directory + "/keys"
        try run.makeKeys([("learner", "learner", keys), ("ok", "actor", keys + "/allowed"), ("outsider", "actor", keys + "/outside")])
        let learnerKey = keys + "/learner.key"
        let learner = try run.start("learner", ["learner", "--key", keys + "/learner.key_secret", "--allow", keys + "/allowed"]
                                    + run.learnerSettings(maxSteps: 1000))
        let welcomed = try Command.run([c + "/troupe-hello", "--learner", run.controlEndpoint, "--key", keys + "/allowed/ok.key_secret",
                                        "--learner-key", learnerKey, "--identity", "ok", "--timeout", "20"], within: 60)
        run.check(welcomed.0 == 0 && welcomed.1.contains("welcome from"), "the allowlisted C client: \(welcomed.1)")
        let outsider = try Command.run([c + "/troupe-hello", "--learner", run.controlEndpoint, "--key", keys + "/outside/outsider.key_secret",
                                        "--learner-key", learnerKey, "--timeout", "3"], within: 60)
        run.check(outsider.0 == 1 && outsider.1.contains("no answer") && outsider.1.contains("allowlist"), "the outsider C client: \(outsider.1)")
        let nobody = try Command.run([c + "/troupe-hello", "--learner", "tcp://127.0.0.1:\(run.ports.logs)", "--insecure-plaintext",
                                      "--timeout", "2"], within: 60)
        run.check(nobody.0 == 1 && nobody.1.contains("no answer from"), "the C client with no learner: \(nobody.1)")
        let badUsage = try Command.run([c + "/troupe-hello", "--learner", run.controlEndpoint], within: 10)
        run.check(badUsage.0 == 2 && badUsage.1.contains("--insecure-plaintext"), "the C client without keys or plaintext: \(badUsage.1)")

        let pythonOutsider = try InteropClients.pythonActor(run, "python-outsider", ["--key", keys + "/outside/outsider.key_secret",
                                                                                     "--learner-key", learnerKey, "--connect-timeout", "4"])
        run.expectExit(pythonOutsider, .code(1), within: 30)
        run.check(pythonOutsider.stderr.contains("error: no learner answered") && pythonOutsider.stderr.contains("allowlist"),
                  "the outsider Python actor: \(pythonOutsider.stderr)")
        let otherMajor = try InteropClients.pythonActor(run, "python-major-3", ["--key", keys + "/allowed/ok.key_secret", "--learner-key", learnerKey,
                                                                                "--identity", "ok", "--hello-protocol-major", "3"])
        run.expectExit(otherMajor, .code(1), within: 30)
        run.check(otherMajor.stderr.contains("error: the learner speaks another protocol") && otherMajor.stderr.contains("major 2"),
                  "the Python actor speaking major 3: \(otherMajor.stderr)")
        learner.send(SIGTERM)
        run.expectExit(learner, .code(0), within: 30)
    }
}
