import Foundation

/// Writes a model directory so that readers only ever see a complete one: everything goes into a
/// sibling temporary directory first, which then replaces the destination in one rename
/// (renameat2 RENAME_EXCHANGE where the kernel has it; otherwise two renames, and a crash between
/// them leaves both complete copies on disk, never a half-written one).
public enum ModelOutput {
    /// Files of a source model directory that travel with its weights (sft's output, a run's `model/`).
    public static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                                        "generation_config.json"]

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Saves `model` with `copying` files (absolute paths, copied under their own names) and `extra`
    /// files (name → contents) as the directory `destination`.
    public static func save(_ model: LlamaModel, to destination: String, copying: [String], extra: [String: Data]) throws {
        let url = URL(fileURLWithPath: destination).standardizedFileURL
        let parent = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let prefix = ".\(url.lastPathComponent).tmp-"
        let temporary = parent.appendingPathComponent(prefix + "\(getpid())")
        try? FileManager.default.removeItem(at: temporary)
        // What a writer killed mid-save left (SIGKILL gives no chance to clean up): a whole model copy each.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] where name.hasPrefix(prefix) {
            if let pid = pid_t(name.dropFirst(prefix.count)), kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))
            }
        }
        do {
            try ModelDirectory.save(model, to: temporary.path)
            for file in copying {
                let name = URL(fileURLWithPath: file).lastPathComponent
                try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: file)), to: temporary.appendingPathComponent(name).path)
            }
            for (name, data) in extra.sorted(by: { $0.key < $1.key }) {
                try AtomicFile.write(data, to: temporary.appendingPathComponent(name).path)
            }
            try replace(url, with: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    private static func replace(_ destination: URL, with temporary: URL) throws {
        if !FileManager.default.fileExists(atPath: destination.path) {
            guard rename(temporary.path, destination.path) == 0 else { throw failure("rename", temporary, destination) }
            return
        }
        if let exchange = renameExchange, exchange(AT_FDCWD, temporary.path, AT_FDCWD, destination.path, 2 /* RENAME_EXCHANGE */) == 0 {
            try? FileManager.default.removeItem(at: temporary)  // now the previous contents
            return
        }
        let previous = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).old-\(getpid())")
        try? FileManager.default.removeItem(at: previous)
        guard rename(destination.path, previous.path) == 0 else { throw failure("rename", destination, previous) }
        guard rename(temporary.path, destination.path) == 0 else { throw failure("rename", temporary, destination) }
        try? FileManager.default.removeItem(at: previous)
    }

    private static func failure(_ what: String, _ from: URL, _ to: URL) -> Failure {
        Failure(description: "cannot \(what) \(from.path) to \(to.path): \(String(cString: strerror(errno)))")
    }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// glibc's renameat2, looked up at run time: Swift's Glibc module does not import it (it needs _GNU_SOURCE).
    private static let renameExchange: RenameAt2? = {
        guard let symbol = dlsym(nil, "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()
}
