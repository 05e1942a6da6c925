import Foundation
import TroupeJSON

/// The tokenizer of a model directory:
/// - with a `tokenizer.json`: a `BPETokenizer` from it, its BOS/EOS/padding tokens named by
///   `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`) when that file exists, else
///   taken by id from `config.json` (`bos_token_id`, `eos_token_id`, `pad_token_id`; the first of a list);
/// - without one: the built-in `ByteTokenizer`, provided `config.json` (if any) agrees with it:
///   `vocab_size` at least 259 and any `bos_token_id`/`eos_token_id`/`pad_token_id` equal to 256/257/258.
///   A directory whose config says otherwise is a checkpoint missing its tokenizer, and is an error.
public func loadTokenizer(modelDirectory: String) throws -> any Tokenizer {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: modelDirectory, isDirectory: &isDirectory) else {
        throw TokenizerError.fileNotFound(path: modelDirectory)
    }
    guard isDirectory.boolValue else {
        throw TokenizerError.inconsistentModelDirectory(path: modelDirectory, problem: "not a directory")
    }
    let directory = URL(fileURLWithPath: modelDirectory)
    let tokenizerFile = directory.appendingPathComponent("tokenizer.json").path
    let configFile = directory.appendingPathComponent("config.json").path
    let config = try FileManager.default.fileExists(atPath: configFile) ? readJSONObject(configFile) : nil

    if FileManager.default.fileExists(atPath: tokenizerFile) {
        let tokenizerConfigFile = directory.appendingPathComponent("tokenizer_config.json").path
        if FileManager.default.fileExists(atPath: tokenizerConfigFile) {
            return try loadTokenizer(tokenizerFile: tokenizerFile, configFile: tokenizerConfigFile)
        }
        let plain = try loadBPETokenizer(tokenizerFile, names: (nil, nil, nil))
        guard let config else { return plain }
        // Name the tokens config.json gives by id, and build again with those names.
        func name(_ key: String) throws -> String? {
            guard let id = try tokenId(config, key, path: configFile) else { return nil }
            guard let name = plain.tokenString(for: id) else {
                throw TokenizerError.inFile(path: configFile, .invalidField(
                    field: key, problem: "token id \(id) is not a token of \(tokenizerFile)"))
            }
            return name
        }
        return try loadBPETokenizer(tokenizerFile,
                                    names: (try name("bos_token_id"), try name("eos_token_id"), try name("pad_token_id")))
    }

    if let config {
        let vocabularySize: Int?
        do {
            vocabularySize = try config.member("vocab_size")?.int()
        } catch let error as TokenizerError {
            throw TokenizerError.inFile(path: configFile, error)
        }
        if let vocabularySize, vocabularySize < ByteTokenizer.size {
            throw TokenizerError.inconsistentModelDirectory(
                path: modelDirectory,
                problem: "no tokenizer.json, and config.json vocab_size \(vocabularySize) is smaller than the "
                    + "built-in byte tokenizer's \(ByteTokenizer.size) ids")
        }
        for (key, expected) in [("bos_token_id", ByteTokenizer.bosId), ("eos_token_id", ByteTokenizer.eosId),
                                ("pad_token_id", ByteTokenizer.padId)] {
            if let id = try tokenId(config, key, path: configFile), id != expected {
                throw TokenizerError.inconsistentModelDirectory(
                    path: modelDirectory,
                    problem: "no tokenizer.json, and config.json \(key) \(id) is not the built-in byte tokenizer's "
                        + "\(expected); add the checkpoint's tokenizer.json")
            }
        }
    }
    return ByteTokenizer()
}

/// A `BPETokenizer` from a `tokenizer.json` file. Its BOS/EOS/padding tokens come from `configFile`
/// (a `tokenizer_config.json`) when given, else from a `tokenizer_config.json` next to the file if
/// there is one; otherwise it has none.
public func loadTokenizer(tokenizerFile: String, configFile: String? = nil) throws -> BPETokenizer {
    let sibling = URL(fileURLWithPath: tokenizerFile).deletingLastPathComponent()
        .appendingPathComponent("tokenizer_config.json").path
    let configFile = configFile ?? (FileManager.default.fileExists(atPath: sibling) ? sibling : nil)
    guard let configFile else { return try loadBPETokenizer(tokenizerFile, names: (nil, nil, nil)) }
    let config = try readJSONObject(configFile)
    func name(_ key: String) throws -> String? {
        // Written as a string, or as an AddedToken object with "content", or null.
        guard let value = try config.member(key) else { return nil }
        if case let .string(name) = value.value { return name }
        do {
            return try value.required("content").string()
        } catch let error as TokenizerError {
            throw TokenizerError.inFile(path: configFile, error)
        }
    }
    let addBosToken: Bool?
    do { addBosToken = try config.member("add_bos_token")?.bool() } catch let error as TokenizerError {
        throw TokenizerError.inFile(path: configFile, error)
    }
    do {
        return try loadBPETokenizer(tokenizerFile, names: (try name("bos_token"), try name("eos_token"),
                                                           try name("pad_token")), addBosToken: addBosToken)
    } catch let TokenizerError.inFile(path, .invalidField(field, problem))
                where path == tokenizerFile && ["bos_token", "eos_token", "pad_token"].contains(field) {
        throw TokenizerError.inFile(path: configFile, .invalidField(field: field, problem: problem))
    }
}

private func loadBPETokenizer(_ path: String, names: (bos: String?, eos: String?, pad: String?),
                              addBosToken: Bool? = nil) throws -> BPETokenizer {
    let data = try readFile(path)
    do {
        return try BPETokenizer(tokenizerJSON: data, bosToken: names.bos, eosToken: names.eos, padToken: names.pad,
                                addBosToken: addBosToken)
    } catch let error as TokenizerError {
        throw TokenizerError.inFile(path: path, error)
    }
}

private func readFile(_ path: String) throws -> Data {
    guard FileManager.default.fileExists(atPath: path) else { throw TokenizerError.fileNotFound(path: path) }
    if let problem = ReadableFile.problem(at: path) { throw TokenizerError.unreadableFile(path: path, reason: problem) }
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw TokenizerError.unreadableFile(path: path, reason: error.localizedDescription)
    }
}

private func readJSONObject(_ path: String) throws -> JSONField {
    let data = try readFile(path)
    do {
        let value = try JSONField.parse(data)
        _ = try value.object()
        return value
    } catch let error as TokenizerError {
        throw TokenizerError.inFile(path: path, error)
    }
}

/// `key` of a config.json as a token id: an integer, or the first of a list of them; nil when absent.
private func tokenId(_ config: JSONField, _ key: String, path: String) throws -> Int32? {
    do {
        guard let value = try config.member(key) else { return nil }
        if case .array = value.value { return try value.array().first?.tokenId() }
        return try value.tokenId()
    } catch let error as TokenizerError {
        throw TokenizerError.inFile(path: path, error)
    }
}
