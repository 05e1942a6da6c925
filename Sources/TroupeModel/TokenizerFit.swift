import TroupeTokenizer

/// How a tokenizer and a model configuration go together: whether the tokenizer's ids fit the model,
/// the stop tokens by default, and a fresh model's configuration sized for a tokenizer.
extension ModelConfig {
    /// Checks that `tokenizer`'s ids fit the embedding table (a tokenizer from another model would
    /// otherwise fail only when it emits a large id). `directory` names the model in the error.
    public func check(fits tokenizer: any Tokenizer, directory: String) throws {
        guard tokenizer.vocabularySize <= vocabularySize else {
            throw ModelError.invalidArgument(name: directory, reason: "the tokenizer has \(tokenizer.vocabularySize) ids but "
                + "the model's vocab_size is \(vocabularySize); the tokenizer belongs to another model")
        }
    }

    /// Stop tokens by default: the config's eos_token_id(s) and the tokenizer's EOS, as Hugging Face
    /// `generate` stops on the generation config's EOS.
    public func defaultStopTokens(tokenizer: (any Tokenizer)?) -> [Int32] {
        var ids = eosTokenIds.map { Int32($0) }
        if let eos = tokenizer?.eosTokenId, !ids.contains(eos) { ids.append(eos) }
        return ids
    }

    /// The end-of-sequence token an example ends with, so that a trained model learns to stop: the
    /// tokenizer's EOS, else the config's first eos_token_id.
    public func endOfSequence(tokenizer: any Tokenizer) throws -> Int32 {
        if let eos = tokenizer.eosTokenId { return eos }
        if let eos = eosTokenIds.first { return Int32(eos) }
        throw ModelError.invalidConfig(field: "eos_token_id", reason: "missing, and the tokenizer has no EOS token either, "
            + "so the model could not learn to stop; add eos_token to tokenizer_config.json")
    }

    /// This shape with `tokenizer`'s vocabulary and special ids, for random initial weights.
    public func sized(for tokenizer: any Tokenizer) -> ModelConfig {
        var config = self
        config.vocabularySize = tokenizer.vocabularySize
        config.bosTokenId = tokenizer.bosTokenId.map(Int.init)
        config.eosTokenIds = tokenizer.eosTokenId.map { [Int($0)] } ?? []
        config.padTokenId = tokenizer.padTokenId.map(Int.init)
        return config
    }

    /// Checks that a config.json (named `source`) can hold `tokenizer`'s ids. With the built-in byte
    /// tokenizer (`byteTokenizer`), a saved directory loads the byte tokenizer back only if the special
    /// ids are the byte tokenizer's, so those are checked and filled in.
    public func checked(for tokenizer: any Tokenizer, byteTokenizer: Bool, source: String) throws -> ModelConfig {
        guard vocabularySize >= tokenizer.vocabularySize else {
            throw ModelError.invalidArgument(name: source, reason: "vocab_size \(vocabularySize) is smaller than the "
                + "tokenizer's \(tokenizer.vocabularySize) ids")
        }
        guard byteTokenizer else { return self }
        for (key, have, want) in [("bos_token_id", bosTokenId, ByteTokenizer.bosId),
                                  ("pad_token_id", padTokenId, ByteTokenizer.padId)] {
            if let have, have != Int(want) {
                throw ModelError.invalidArgument(name: source, reason: "\(key) \(have) is not the byte tokenizer's \(want); "
                    + "give a tokenizer.json")
            }
        }
        if eosTokenIds.contains(where: { $0 != Int(ByteTokenizer.eosId) }) {
            throw ModelError.invalidArgument(name: source, reason: "eos_token_id \(eosTokenIds) is not the byte tokenizer's "
                + "\(ByteTokenizer.eosId); give a tokenizer.json")
        }
        var config = self
        config.bosTokenId = Int(ByteTokenizer.bosId)
        config.eosTokenIds = [Int(ByteTokenizer.eosId)]
        config.padTokenId = Int(ByteTokenizer.padId)
        return config
    }
}
