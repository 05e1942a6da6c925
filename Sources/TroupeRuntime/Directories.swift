import Foundation

package enum Directories {
    /// Creates `path` and its missing parents (as `mkdir -p`); a failure names `what` the directory is for
    /// and the system's reason ("Not a directory", "Permission denied"), not Foundation's error domain.
    package static func create(_ path: String, for what: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            if mkdir(prefix, 0o755) == 0 { continue }
            let code = errno
            var isDirectory: ObjCBool = false
            if code == EEXIST && FileManager.default.fileExists(atPath: prefix, isDirectory: &isDirectory) && isDirectory.boolValue { continue }
            let reason = code == EEXIST ? "\(prefix) is a file" : "\(prefix): \(String(cString: strerror(code)))"
            throw RuntimeError.invalid("cannot create \(what) \(path): \(reason)")
        }
    }
}
