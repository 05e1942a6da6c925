import Foundation

/// CURVE key files in ZeroMQ's certificate convention (CZMQ `zcert`, pyzmq `zmq.auth`): `NAME.key`
/// holds the public key and may be shared; `NAME.key_secret` holds both keys and is mode 0600. Both
/// are ZPL text with a `metadata` section (`name`, `role`) and a `curve` section. Everything read is
/// checked, and every error names the file.
public enum CurveKeyFile {
    public struct Contents: Sendable, Equatable {
        public var name: String
        public var role: CurveAllowlist.Role
        /// The role the metadata writes (nil when absent: `role` is then actor).
        public var writtenRole: CurveAllowlist.Role?
        public var publicKey: CurveKey
        /// Only in a secret file.
        public var keyPair: CurveKeyPair?
    }

    /// Writes `DIRECTORY/NAME.key` and `DIRECTORY/NAME.key_secret` (0600) for a new key pair; refuses
    /// to overwrite either. Returns the two paths.
    @discardableResult
    public static func create(name: String, role: CurveAllowlist.Role, pair: CurveKeyPair, directory: String) throws -> (public: String, secret: String) {
        guard isValidName(name) else {
            throw KeyFileError(path: directory, problem: "key name \"\(name)\" must be letters, digits, '-', '_' or '.' (it names the files and the user id)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw KeyFileError(path: directory, problem: "is a file, not a directory") }
        } else {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw KeyFileError(path: directory, problem: "cannot create the directory: \((error as NSError).localizedDescription)")
            }
        }
        let base = directory + "/" + name
        // Both files or neither: a pair is never left half made.
        for path in [base + ".key_secret", base + ".key"] {
            var info = stat()
            if lstat(path, &info) == 0 { throw KeyFileError(path: path, problem: "already exists; keys are never overwritten") }
        }
        let header = "#   ZeroMQ CURVE certificate written by troupe keygen\n"
        let metadata = "metadata\n    name = \"\(name)\"\n    role = \"\(role.rawValue)\"\n"
        let curve = "curve\n    public-key = \"\(pair.publicKey.z85)\"\n"
        try writeNew(base + ".key_secret", header + "#   SECRET: keep this file private (mode 0600)\n\n" + metadata + curve
                     + "    secret-key = \"\(pair.secretKey.z85)\"\n", mode: 0o600)
        do {
            try writeNew(base + ".key", header + "#   Public: give it to the peers that must recognise this key\n\n" + metadata + curve, mode: 0o644)
        } catch {
            unlink(base + ".key_secret")
            throw error
        }
        return (base + ".key", base + ".key_secret")
    }

    /// A key name names its files and is the user id of its connections: letters, digits, '-', '_'
    /// and '.', not starting with '.'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    /// Reads a public file (`.key`) or a secret one; a secret file must not be readable by group or others.
    public static func read(_ path: String) throws -> Contents {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw KeyFileError(path: path, problem: String(cString: strerror(errno)))
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 << 10,
              let text = String(data: data, encoding: .utf8) else {
            throw KeyFileError(path: path, problem: "not a readable UTF-8 key file of at most 64 KiB")
        }
        let fields = try parse(text, path: path)
        func key(_ field: String) throws -> CurveKey? {
            guard let value = fields["curve/" + field] else { return nil }
            do { return try CurveKey(z85: value) } catch { throw KeyFileError(path: path, problem: "\(field): \(error)") }
        }
        guard let publicKey = try key("public-key") else { throw KeyFileError(path: path, problem: "no public-key in its curve section") }
        var pair: CurveKeyPair?
        if let secret = try key("secret-key") {
            if info.st_mode & 0o077 != 0 {
                throw KeyFileError(path: path, problem: "holds a secret key but is readable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 \(path)")
            }
            pair = try CurveKeyPair(secretKey: secret)
            guard pair!.publicKey == publicKey else {
                throw KeyFileError(path: path, problem: "its public-key is not the public key of its secret-key")
            }
        }
        let fileName = (path as NSString).lastPathComponent
        let name = fields["metadata/name"] ?? String(fileName.prefix { $0 != "." })
        let roleText = fields["metadata/role"] ?? CurveAllowlist.Role.actor.rawValue
        guard let role = CurveAllowlist.Role(rawValue: roleText) else {
            throw KeyFileError(path: path, problem: "role \"\(roleText)\" is not one of \(CurveAllowlist.Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard isValidName(name) else {
            throw KeyFileError(path: path, problem: "name \"\(name)\" must be letters, digits, '-', '_' or '.' (it is the key's user id)")
        }
        return Contents(name: name, role: role, writtenRole: fields["metadata/role"] == nil ? nil : role, publicKey: publicKey, keyPair: pair)
    }

    /// A secret file's key pair (with its name); with `role`, a file whose metadata names another role
    /// is refused (a key made for something else).
    public static func readSecret(_ path: String, as role: CurveAllowlist.Role? = nil) throws -> (name: String, pair: CurveKeyPair) {
        let contents = try read(path)
        guard let pair = contents.keyPair else {
            throw KeyFileError(path: path, problem: "has no secret-key (give the .key_secret file, not the public .key)")
        }
        if let role, let written = contents.writtenRole, written != role {
            throw KeyFileError(path: path, problem: "is a key of role \(written.rawValue) (its metadata), not \(role.rawValue): give the \(role.rawValue)'s key")
        }
        return (contents.name, pair)
    }

    /// A public key from a `.key` file; a file holding a secret key is refused, since whoever is given it
    /// could pose as its owner.
    public static func readPublic(_ path: String) throws -> CurveKey {
        let contents = try read(path)
        guard contents.keyPair == nil else {
            throw KeyFileError(path: path, problem: "holds a secret key: give the public .key file (the secret stays with its owner)")
        }
        return contents.publicKey
    }

    /// The allowlist of every public file (`*.key`) in `directory`; each file's metadata name is the user
    /// id its connections carry. An empty directory is refused unless `allowingEmpty` (a running
    /// learner's re-read: removing the last key revokes it).
    public static func allowlist(directory: String, allowingEmpty: Bool = false) throws -> CurveAllowlist {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw KeyFileError(path: directory, problem: "cannot list the allowlist directory (\(error.localizedDescription))")
        }
        var files: [String: String] = [:]  // a member's name → its file
        let members = try names.filter { $0.hasSuffix(".key") }.sorted().map { name in
            let path = directory + "/" + name
            let contents = try read(path)
            guard contents.keyPair == nil else {
                throw KeyFileError(path: path, problem: "holds a secret key: an allowlist holds public keys only (the secret stays with its owner)")
            }
            if let earlier = files.updateValue(name, forKey: contents.name) {
                throw KeyFileError(path: directory, problem: "\(earlier) and \(name) both name the key \"\(contents.name)\"")
            }
            return CurveAllowlist.Member(name: contents.name, role: contents.role, publicKey: contents.publicKey)
        }
        guard !members.isEmpty || allowingEmpty else { throw KeyFileError(path: directory, problem: "holds no public key files (*.key)") }
        do { return try CurveAllowlist(members) } catch { throw KeyFileError(path: directory, problem: error.description) }
    }

    /// `section/key` → value for ZPL lines `key = "value"` indented under a section name.
    static func parse(_ text: String, path: String) throws -> [String: String] {
        var section = ""
        var fields: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first != " " && line.first != "\t" {
                section = trimmed
                continue
            }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw KeyFileError(path: path, problem: "line \(number + 1): expected name = \"value\"")
            }
            let name = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            var value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            fields[section + "/" + name] = value
        }
        return fields
    }

    private static func writeNew(_ path: String, _ text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            throw KeyFileError(path: path, problem: errno == EEXIST ? "already exists; keys are never overwritten" : String(cString: strerror(errno)))
        }
        defer { close(fd) }
        // The umask may have narrowed the mode, never widened it; say it exactly.
        fchmod(fd, mode)
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            let problem = String(cString: strerror(errno))
            unlink(path)  // a key file cut short would be read as damaged: none is better
            throw KeyFileError(path: path, problem: problem)
        }
    }
}

public struct KeyFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "key file \(path): \(problem)" }
}
