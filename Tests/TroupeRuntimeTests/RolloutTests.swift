import Testing
import TroupeProto
import TroupeRuntime
import TroupeWire

@Suite struct RolloutTests {
    @Test func groupKeyRoundTripsThroughItsText() {
        for key in [GroupKey(actor: "actor-1", actorRunId: 0xBEEF, sequence: 7),
                    GroupKey(actor: "node#3", actorRunId: 1, sequence: 0)] {
            #expect(GroupKey(parsing: key.description) == key)
        }
        #expect(GroupKey(parsing: "actor#zz#1") == nil)
        #expect(GroupKey(parsing: "actor#1") == nil)
    }

    @Test func policyVersionRoundTripsThroughItsMessage() {
        let version = PolicyVersion(epoch: 0xABCDEF, step: 42)
        #expect(PolicyVersion(version.proto) == version)
        #expect(version.description == "42@abcdef")
    }

    @Test func submissionBecomesAGroupSampleBySample() throws {
        var header = Troupe_V1_GroupSubmit()
        header.actorRunID = 9
        header.sequence = 3
        header.promptID = 5
        header.leaseID = 11
        header.version = PolicyVersion(epoch: 2, step: 4).proto
        for (count, finish, answer) in [(2, Troupe_V1_FinishReason.stop, "12"), (3, .length, "")] {
            var sample = Troupe_V1_SampleInfo()
            sample.extractedAnswer = answer
            sample.tokenCount = UInt32(count)
            sample.finishReason = finish
            sample.temperature = 0.5
            sample.reward = Double(count)
            header.samples.append(sample)
        }
        let submission = GroupSubmission(header: header, tokenIDs: [1, 2, 3, 4, 5], logProbs: [-1, -2, -3, -4, -5])
        let group = RolloutGroup(submission: submission, actor: "a", promptTokens: [7, 8])
        #expect(group.key == GroupKey(actor: "a", actorRunId: 9, sequence: 3))
        #expect(group.version == PolicyVersion(epoch: 2, step: 4))
        #expect(group.samples.map(\.tokens) == [[1, 2], [3, 4, 5]])
        #expect(group.samples.map(\.logprobs) == [[-1, -2], [-3, -4, -5]])
        #expect(group.samples.map(\.finishReason) == [.stop, .length])
        // A present empty answer is no answer (PROTOCOL.md §11: protobuf-c cannot even send one).
        #expect(group.samples.map(\.answer) == ["12", nil])
        #expect(group.tokenCount == 5)
    }
}
