/// The model shapes Troupe knows by name: `troupe sft --init NAME` starts from one, and the
/// benchmarks measure on them.
public struct ModelShape: Sendable {
    public let name: String
    public let config: ModelConfig

    public static let builtIn: [ModelShape] = [
        ModelShape(name: "tiny", config: ModelConfig(vocabularySize: 256, hiddenSize: 128, intermediateSize: 352, layers: 4,
                                                     heads: 4, kvHeads: 2, maxPositions: 512, tieWordEmbeddings: true)),
        ModelShape(name: "small", config: ModelConfig(vocabularySize: 4096, hiddenSize: 512, intermediateSize: 1408, layers: 8,
                                                      heads: 8, kvHeads: 4, maxPositions: 512, tieWordEmbeddings: false)),
        ModelShape(name: "smollm2-135m", config: ModelConfig(vocabularySize: 49152, hiddenSize: 576, intermediateSize: 1536, layers: 30,
                                                             heads: 9, kvHeads: 3, maxPositions: 512, tieWordEmbeddings: true)),
    ]

    public static func named(_ name: String) -> ModelShape? { builtIn.first { $0.name == name } }
}
