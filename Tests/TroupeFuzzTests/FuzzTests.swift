import Foundation
import Testing
import TroupeFuzz

/// The short fuzz run CI makes: every target on a few thousand mutated inputs (a crash or hang ends
/// the test process, which fails the run), and the conversation fuzzer against a live learner.
/// `troupe-fuzz` runs the long version (docs/testing.md).
@Suite struct FuzzTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func everyTargetSurvivesMutatedInputs() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-fuzz-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let runner = FuzzRunner(inputs: 3000, seed: 7, outputDirectory: out)
        let targets = try FuzzTarget.all()
        #expect(targets.count >= 24, "envelope, one per message kind, raw frames, run log, safetensors, tokenizer, configs")
        for target in targets {
            let report = try runner.run(target)
            #expect(report.inputs == 3000 + target.seeds.count)
        }
    }

    @Test func theSeedsAreValidInputs() throws {
        // A target whose seeds its own decoder refuses would fuzz nothing but the first check.
        for kind in try FuzzTarget.seedRefusals() { Issue.record("seed refused: \(kind)") }
    }

    @Test func aLearnerUnderHostileConversationsKeepsServingAWellBehavedActor() throws {
        let fuzzer = ConversationFuzzer(modelDirectory: Self.repositoryRoot + "/models/arith-base", messages: 3000, seed: 11)
        let report = try fuzzer.run()
        #expect(report.messages == 3000)
        #expect(report.honestGroups >= 70)
        #expect(report.steps >= report.honestGroups / 2 - 1)
        #expect(!report.refusedByReason.isEmpty, "the hostile messages were refused, by reason")
    }
}
