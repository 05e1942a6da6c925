import Foundation
import Testing
import TroupeJSON
import TroupeRL

/// `troupe algo`'s engine: JSON in, what the learner computes out.
@Suite struct WorkbenchTests {
    func run(_ json: String, preset: String? = nil) throws -> [String: JSONValue] {
        guard case let .object(object) = try AlgorithmWorkbench.run(input: JSONValue.parse(Data(json.utf8)), presetOverride: preset) else {
            Issue.record("output is not an object")
            return [:]
        }
        return object
    }

    func numbers(_ value: JSONValue?) -> [Double] {
        guard case let .array(values)? = value else { return [] }
        return values.compactMap { if case let .number(number) = $0 { return number } else { return nil } }
    }

    func object(_ value: JSONValue?) -> [String: JSONValue] {
        if case let .object(object)? = value { return object }
        return [:]
    }

    func samples(_ output: [String: JSONValue], group: Int = 0) -> [[String: JSONValue]] {
        guard case let .array(groups)? = output["groups"], case let .array(samples)? = object(groups[group])["samples"] else { return [] }
        return samples.map { object($0) }
    }

    @Test func ttrlGroupEndToEnd() throws {
        let output = try run("""
        {"preset": "ttrl", "overrides": {"sampling.train_samples": 3, "kl.coefficient": 0},
         "groups": [{"ground_truth": "17", "samples": [
            {"completion": "so \\\\boxed{42}", "logp": [-0.5, -0.2], "behaviour_logp": [-0.6, -0.2]},
            {"answer": "17", "logp": [-1.0], "behaviour_logp": [-0.9]},
            {"answer": "42", "logp": [-0.1], "behaviour_logp": [-0.1]},
            {"answer": "42"}]}]}
        """)
        #expect(output["preset"] == .string("ttrl"))
        guard case let .array(groups)? = output["groups"] else { Issue.record("no groups"); return }
        #expect(object(groups[0])["label"] == .string("42"))
        let rows = samples(output)
        #expect(rows.map { $0["reward"] } == [.number(1), .number(0), .number(1), .number(1)])
        #expect(rows.map { $0["trained"] } == [.bool(true), .bool(true), .bool(true), .bool(false)])
        #expect(rows[0]["answer"] == .string("42"))
        #expect(rows[3]["advantage"] == nil && rows[3]["ratios"] == nil)
        // GRPO over the 3 trained rewards [1, 0, 1]; token-mean over 4 tokens.
        let advantage = numbers(.array(rows.prefix(3).map { $0["advantage"] ?? .null }))
        expectClose(advantage, [0.577350, -1.154700, 0.577350], tolerance: 2e-6)
        expectClose(numbers(rows[0]["ratios"]), [exp(0.1), 1])
        expectClose(numbers(rows[2]["logp_coefficients"]), [-advantage[2] / 4])
        #expect(object(output["totals"]) == ["tokens": .number(4), "sequences": .number(3)])
        let metrics = object(output["metrics"])
        #expect(metrics["clip_fraction"] == .number(0))
        #expect(object(output["loss"])["policy"] != nil)
    }

    @Test func givenRewardsAndPresetOverride() throws {
        let output = try run("""
        {"preset": "grpo", "groups": [
          {"samples": [{"reward": 1, "logp": [-1], "behaviour_logp": [-1]}, {"reward": 0, "logp": [-1], "behaviour_logp": [-1]}]},
          {"samples": [{"reward": 1, "logp": [-1], "behaviour_logp": [-1]}, {"reward": 1, "logp": [-1], "behaviour_logp": [-1]}]}]}
        """, preset: "dapo")
        #expect(output["preset"] == .string("dapo"))
        guard case let .array(groups)? = output["groups"] else { Issue.record("no groups"); return }
        #expect(object(groups[1])["kept"] == .bool(false))
        #expect(object(groups[1])["drop_reason"] == .string("zero_variance"))
        #expect(samples(output, group: 1).allSatisfy { $0["trained"] == .bool(false) })
        #expect(object(output["totals"]) == ["tokens": .number(2), "sequences": .number(2)])
    }

    @Test func withoutLogProbsOnlyRewardsAndAdvantages() throws {
        let output = try run(#"{"preset": "dler", "groups": [{"ground_truth": "1", "samples": [{"answer": "1", "length": 10}, {"answer": "1", "length": 5000}]}]}"#)
        #expect(output["loss"] == .null)
        #expect(samples(output).map { $0["reward"] } == [.number(1), .number(0)])
        #expect(object(samples(output)[1]["reward_components"])["truncated"] == .number(1))
    }

    @Test func errorsNameTheInputPath() {
        expectAlgorithmError(field: "groups[1].samples[0].logp[0]") {
            _ = try run(#"{"preset": "dapo", "groups": [{"samples": [{"reward": 1, "logp": [-1], "behaviour_logp": [-1]}, {"reward": 0, "logp": [-1], "behaviour_logp": [-1]}]}, {"samples": [{"reward": 1, "logp": [0.5], "behaviour_logp": [-1]}, {"reward": 0, "logp": [-1], "behaviour_logp": [-1]}]}]}"#)
        }
        expectAlgorithmError(field: "groups[0].samples[0].behavior_logp") {
            _ = try run(#"{"groups": [{"samples": [{"reward": 1, "behavior_logp": [-1]}]}]}"#)
        }
        expectAlgorithmError(field: "groups[0].samples") {
            _ = try run(#"{"groups": [{"samples": [{"reward": 1}, {"answer": "3"}]}]}"#)
        }
        expectAlgorithmError(field: "groups[0].ground_truth") { _ = try run(#"{"groups": [{"samples": [{"answer": "3"}]}]}"#) }
        expectAlgorithmError(field: "groups[0].samples[1].logp") {
            _ = try run(#"{"preset": "dapo", "groups": [{"samples": [{"reward": 1, "logp": [-1], "behaviour_logp": [-1]}, {"reward": 0}]}]}"#)
        }
        expectAlgorithmError(field: "groups[0].samples[0].length") {
            _ = try run(#"{"groups": [{"samples": [{"reward": 1, "length": 3, "logp": [-1], "behaviour_logp": [-1]}]}]}"#)
        }
        expectAlgorithmError(field: "groups") { _ = try run(#"{"groups": []}"#) }
        expectAlgorithmError(field: "preset") { _ = try run(#"{"preset": "nope", "groups": [{"samples": [{"reward": 1}]}]}"#) }
        expectAlgorithmError(field: "loss.epsilon_low") { _ = try run(#"{"overrides": {"loss.epsilon_low": 7}, "groups": [{"samples": [{"reward": 1}]}]}"#) }
        #expect(throws: JSONError(path: nil, problem: "unexpected 'n', expected a key in double quotes", location: JSONLocation(source: "input", line: 1, column: 2))) { _ = try run("{not json") }
        expectAlgorithmError(field: "extra") { _ = try run(#"{"extra": 1, "groups": [{"samples": [{"reward": 1}]}]}"#) }
    }
}
