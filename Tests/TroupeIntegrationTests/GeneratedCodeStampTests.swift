import Foundation
import Testing

/// The Python programs refuse protobuf code generated from other `.proto` files than their checkout's
/// (it would misread messages): a copy of the generated code with a changed or missing stamp is
/// refused, naming the script that regenerates it, and the copy with its own stamp is accepted.
struct GeneratedCodeStampTests {
    /// Runs `command` against copies of `generated` whose stamp file `stamp` holds each case's text
    /// (nil: no stamp), the copy's path in `variable`; returns each case's exit status and output.
    static func runWithStamps(generated: String, stamp: String, variable: String, command: [String]) throws -> [(String?, Int32, String)] {
        let original = try String(contentsOfFile: generated + "/" + stamp, encoding: .utf8)
        var outcomes: [(String?, Int32, String)] = []
        for text in [original, "0000\n", nil] as [String?] {
            let copy = NSTemporaryDirectory() + "troupe-stamp-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: copy) }
            try FileManager.default.copyItem(atPath: generated, toPath: copy)
            try FileManager.default.removeItem(atPath: copy + "/" + stamp)
            if let text { try text.write(toFile: copy + "/" + stamp, atomically: true, encoding: .utf8) }
            var environment = ProcessInfo.processInfo.environment
            environment[variable] = copy
            let (status, output) = try Command.run(command, environment: environment, within: 60)
            outcomes.append((text == original ? "its own" : text, status, output))
        }
        return outcomes
    }

    @Test(.enabled(if: InteropClients.pythonInstalled || InteropClients.required, InteropClients.skipReason))
    func thePythonClientRefusesCodeFromOtherProtos() throws {
        try #require(InteropClients.pythonInstalled, "CI is set but \(InteropClients.venv) or clients/python/generated is missing: run bash scripts/interop-venv.sh")
        let outcomes = try Self.runWithStamps(
            generated: InteropClients.repository + "/clients/python/generated", stamp: "PROTOS_SHA256", variable: "TROUPE_PY_GENERATED",
            command: [InteropClients.python, "-c", "import sys; sys.path.insert(0, '\(InteropClients.repository)/clients/python'); import troupe_client.proto"])
        #expect(outcomes[0].1 == 0, "the client refused its own generated code: \(outcomes[0].2)")
        for (stamp, status, output) in outcomes.dropFirst() {
            #expect(status != 0 && output.contains("run bash clients/python/generate.sh"), "stamp \(stamp ?? "missing"): exit \(status), \(output)")
        }
    }

    @Test(.enabled(if: RewardWorkerVenv.installed || ClusterRecipes.required,
                   "the reward worker's venv is missing (bash scripts/rewards-venv.sh); skipped"))
    func theRewardWorkerRefusesCodeFromAnotherRewardProto() throws {
        try #require(RewardWorkerVenv.installed, "CI is set but \(RewardWorkerVenv.venv) cannot run the worker: run bash scripts/rewards-venv.sh")
        let outcomes = try Self.runWithStamps(generated: RewardWorkerVenv.venv + "/troupe_proto", stamp: "REWARD_PROTO_SHA256",
                                              variable: "TROUPE_REWARD_PROTO", command: [RewardWorkerVenv.python, RewardWorkerVenv.worker, "--self-test"])
        #expect(outcomes[0].1 == 0 && outcomes[0].2.contains("self-test ok"), "the worker refused its own generated code: \(outcomes[0].2)")
        for (stamp, status, output) in outcomes.dropFirst() {
            #expect(status != 0 && output.contains("run bash scripts/rewards-venv.sh"), "stamp \(stamp ?? "missing"): exit \(status), \(output)")
        }
    }
}
