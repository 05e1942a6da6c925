import Foundation
import Testing
import TroupeJSON
import TroupeLearner

/// `learner-summary.json`: the keys other tools and the docs name, read back by the one reader, and
/// a clear error for a file that is missing or lacks a field.
@Suite struct LearnerSummaryTests {
    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "learner-summary-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    let summary = LearnerSummary(steps: 12, finished: true, wallTimeSeconds: 3.5, tokensTrained: 4096, weightsHash: "ab12",
                                 accounting: ["produced": 10, "trained": 8, "rejected": 2, "rejected/stale": 2],
                                 accountingIdentityHolds: true, trainerIdleRatio: 0.25, rewardWorkers: nil)

    @Test func writesTheDocumentedKeysAndReadsThemBack() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try summary.write(runDirectory: dir)
        let value = try JSONValue.parse(FileManager.default.contents(atPath: dir + "/learner-summary.json")!)
        #expect(value.object.map { Set($0.keys) } == ["steps", "finished", "wall_time_s", "tokens_trained", "weights_hash",
                                                       "accounting", "accounting_identity_holds", "trainer_idle_ratio"])
        #expect(value["accounting"]?["rejected/stale"] == .integer(2))
        #expect(try LearnerSummary.read(runDirectory: dir) == summary)

        var withWorkers = summary
        withWorkers.rewardWorkers = ["calls": 5, "groups_waiting": 1]
        try withWorkers.write(runDirectory: dir)
        #expect(try LearnerSummary.read(runDirectory: dir).rewardWorkers == ["calls": 5, "groups_waiting": 1])

        var resumed = summary
        resumed.resumedFromStep = 8
        try resumed.write(runDirectory: dir)
        #expect(try JSONValue.parse(FileManager.default.contents(atPath: dir + "/learner-summary.json")!)["resumed_from_step"] == .integer(8))
        #expect(try LearnerSummary.read(runDirectory: dir) == resumed)
    }

    @Test func aMissingFileOrFieldIsNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = #expect(throws: JSONError.self) { try LearnerSummary.read(runDirectory: dir) }
        #expect(missing?.description.contains("learner-summary.json") == true)

        try Data(#"{"steps": 3, "finished": true}"#.utf8).write(to: URL(fileURLWithPath: dir + "/learner-summary.json"))
        let lacking = #expect(throws: JSONError.self) { try LearnerSummary.read(runDirectory: dir) }
        #expect(lacking?.description.contains("learner-summary.json") == true)
        #expect(lacking?.description.contains("wall_time_s") == true || lacking?.description.contains("accounting") == true)
    }
}
