#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Why a path cannot be read as an input file, in words a user can act on: the documents Troupe reads
/// (configurations, tokenizers, task and metrics files, weights) are regular files, and a directory,
/// a FIFO or a device is named as such instead of surfacing as a raw I/O error (or a read that never ends).
public enum ReadableFile {
    /// nil when `path` is a regular file this process may read.
    public static func problem(at path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return String(cString: strerror(errno)) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return "is a directory, not a file"
        default: return "is not a regular file (a FIFO, a device or a socket)"
        }
        return access(path, R_OK) == 0 ? nil : String(cString: strerror(errno))
    }
}
