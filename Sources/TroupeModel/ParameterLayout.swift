/// Where each named tensor lives in the one flat parameter buffer. Names follow Hugging Face
/// safetensors checkpoints (`model.layers.N.self_attn.q_proj.weight`, …), so real checkpoints load.
public struct ParameterLayout: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        public var range: Range<Int> { offset..<(offset + count) }
    }

    public struct LayerOffsets: Sendable, Equatable {
        public let inputNorm: Int, q: Int, k: Int, v: Int, qBias: Int?, kBias: Int?, vBias: Int?, o: Int, oBias: Int?
        /// Qwen3's per-head query and key norms (`ModelConfig.queryKeyNorm`).
        public let qNorm: Int?, kNorm: Int?
        public let postNorm: Int, gate: Int, up: Int, down: Int
    }

    public let entries: [Entry]
    public let totalCount: Int
    public let embedding: Int
    public let layers: [LayerOffsets]
    public let finalNorm: Int
    /// Offset of the output projection: the embedding itself when tied.
    public let lmHead: Int
    private let index: [String: Int]

    public init(config c: ModelConfig) {
        var entries: [Entry] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let e = Entry(name: name, shape: shape, offset: offset)
            entries.append(e)
            offset += e.count
            return e.offset
        }
        embedding = add("model.embed_tokens.weight", [c.vocabularySize, c.hiddenSize])
        var layers: [LayerOffsets] = []
        for l in 0..<c.layers {
            let p = "model.layers.\(l)."
            let inNorm = add(p + "input_layernorm.weight", [c.hiddenSize])
            let q = add(p + "self_attn.q_proj.weight", [c.qDim, c.hiddenSize])
            let qb = c.attentionBias ? add(p + "self_attn.q_proj.bias", [c.qDim]) : nil
            let k = add(p + "self_attn.k_proj.weight", [c.kvDim, c.hiddenSize])
            let kb = c.attentionBias ? add(p + "self_attn.k_proj.bias", [c.kvDim]) : nil
            let v = add(p + "self_attn.v_proj.weight", [c.kvDim, c.hiddenSize])
            let vb = c.attentionBias ? add(p + "self_attn.v_proj.bias", [c.kvDim]) : nil
            let o = add(p + "self_attn.o_proj.weight", [c.hiddenSize, c.qDim])
            let ob = c.outputProjectionBias ? add(p + "self_attn.o_proj.bias", [c.hiddenSize]) : nil
            let qn = c.queryKeyNorm ? add(p + "self_attn.q_norm.weight", [c.headDim]) : nil
            let kn = c.queryKeyNorm ? add(p + "self_attn.k_norm.weight", [c.headDim]) : nil
            let post = add(p + "post_attention_layernorm.weight", [c.hiddenSize])
            let gate = add(p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize])
            let up = add(p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize])
            let down = add(p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize])
            layers.append(LayerOffsets(inputNorm: inNorm, q: q, k: k, v: v, qBias: qb, kBias: kb, vBias: vb, o: o, oBias: ob,
                                       qNorm: qn, kNorm: kn, postNorm: post, gate: gate, up: up, down: down))
        }
        self.layers = layers
        finalNorm = add("model.norm.weight", [c.hiddenSize])
        lmHead = c.tieWordEmbeddings ? embedding : add("lm_head.weight", [c.vocabularySize, c.hiddenSize])
        self.entries = entries
        totalCount = offset
        var idx: [String: Int] = [:]
        for (i, e) in entries.enumerated() { idx[e.name] = i }
        index = idx
    }

    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// Ranges where weight decay applies: matrices, not norms or biases (the usual Llama recipe).
    public var decayRanges: [Range<Int>] {
        entries.filter { $0.shape.count == 2 }.map(\.range)
    }
}
