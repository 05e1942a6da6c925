import Testing
import TroupeModel

@Test func benchmarkComparesWithThePeerFiguresOfTheIssue() throws {
    let pinned = try #require(ModelBenchmark.compare(.training, shape: "small", tokensPerSecond: 1045, environmentKernel: true))
    #expect(pinned.peer == 1045 && pinned.ratio == 1 && pinned.target == 1 && pinned.met)
    let own = try #require(ModelBenchmark.compare(.training, shape: "small", tokensPerSecond: 1045, environmentKernel: false))
    #expect(own.target == 1.5 && !own.met)
    let b8 = try #require(ModelBenchmark.compare(.samplingBatch8, shape: "smollm2-135m", tokensPerSecond: 400, environmentKernel: true))
    #expect(b8.peer == 100 && b8.ratio == 4 && b8.met)
    let b1 = try #require(ModelBenchmark.compare(.samplingBatch1, shape: "small", tokensPerSecond: 300, environmentKernel: true))
    #expect(b1.peer == 429 && b1.target == 0.8 && !b1.met)
    #expect(ModelBenchmark.compare(.training, shape: "tiny", tokensPerSecond: 1, environmentKernel: true) == nil)
    // Every peer figure names a benchmark shape.
    let names = Set(ModelBenchmark.shapes.map(\.name))
    for (_, figures) in ModelBenchmark.peerTokensPerSecond { #expect(Set(figures.keys).isSubset(of: names)) }
}
