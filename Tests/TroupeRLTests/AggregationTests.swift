import Testing
import TroupeJSON
import TroupeRL

/// TV8 and the micro-batching rule: denominators are global over the optimiser step.
@Suite struct AggregationTests {
    func aggregate(_ rows: [[Double]], _ mode: AggregationMode, constant: Int? = nil) -> Double {
        Aggregation.aggregate(tokenLosses: rows, options: AggregationOptions(mode: mode, constant: constant))
    }

    @Test func tv8Modes() {
        let rows: [[Double]] = [[1, 1], [2, 2, 2, 2]]
        expectClose(aggregate(rows, .tokenMean), 1.666667)
        expectClose(aggregate(rows, .seqMeanTokenSum), 5.0)
        expectClose(aggregate(rows, .seqMeanTokenMean), 1.5)
        expectClose(aggregate(rows, .tokenSumNorm, constant: 4), 2.5)
        expectClose(aggregate(rows, .tokenSumConstant, constant: 4), 1.25)
    }

    @Test func tv8FullyMaskedRowChangesNothing() {
        let rows: [[Double]] = [[1, 1], [2, 2, 2, 2], []]
        expectClose(aggregate(rows, .tokenMean), 1.666667)
        expectClose(aggregate(rows, .seqMeanTokenSum), 5.0)
        expectClose(aggregate(rows, .seqMeanTokenMean), 1.5)
    }

    @Test func stepLossMatchesAggregateOfTokenLosses() throws {
        for mode in AggregationMode.allCases {
            let options = AlgorithmOptions.make("grpo", ["aggregation.mode": .string(mode.rawValue), "aggregation.constant": 7, "kl.coefficient": 0])
            let samples = [LossSample(advantage: 0.7, logp: [-0.2, -1.1], behaviourLogp: [-0.3, -1.0]),
                           LossSample(advantage: -1.2, logp: [-0.5, -0.4, -2.0, -0.1], behaviourLogp: [-0.5, -0.6, -1.9, -0.1]),
                           LossSample(advantage: 0.5, logp: [], behaviourLogp: [])]
            let plan = try StepLossPlan.compute(samples: samples, totals: AggregationTotals(tokens: 6, sequences: 2), options: options)
            expectClose(plan.loss.policy, aggregate(plan.samples.map(\.tokenLosses), mode, constant: 7), tolerance: 1e-12)
        }
    }

    @Test func totalsCountMaskedAndEmptySamplesOut() {
        var filter = FilterOptions()
        #expect(AggregationTotals.counting(lengths: [3, 0, 5], finishReasons: [.stop, .stop, .length], filter: filter)
                == AggregationTotals(tokens: 8, sequences: 2))
        filter.maskTruncated = true
        #expect(AggregationTotals.counting(lengths: [3, 0, 5], finishReasons: [.stop, .stop, .length], filter: filter)
                == AggregationTotals(tokens: 3, sequences: 1))
        #expect(AggregationTotals(tokens: 1, sequences: 1) + AggregationTotals(tokens: 2, sequences: 3) == AggregationTotals(tokens: 3, sequences: 4))
    }

    @Test func totalsSmallerThanTheMicroBatchAreRejected() {
        let sample = LossSample(advantage: 1, logp: [-1, -1], behaviourLogp: [-1, -1])
        expectAlgorithmError(field: "totals") {
            _ = try StepLossPlan.compute(samples: [sample], totals: AggregationTotals(tokens: 1, sequences: 1), options: .make("dapo"))
        }
    }
}
