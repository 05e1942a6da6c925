import Foundation
import TroupeProto
import TroupeTensor
import TroupeWire

/// Weight blobs in shared memory, so that actors on the learner's own host take a new version by
/// mapping a file instead of pulling every byte through the learner's one ZeroMQ I/O thread (which
/// costs the learner one copy per actor, docs/ARCHITECTURE.md §4, step 5).
///
/// The learner writes each published version once into `<directory>/troupe-weights-<pid>-<epoch>-<step>-<tag>`
/// (tmpfs: /dev/shm by default), serves chunks to remote actors from the same mapping, and unlinks the
/// file when it stops serving that version or exits; an actor that mapped it keeps its pages. A file
/// left by a killed learner is removed by the next learner that starts with the same directory.
/// Actors map it shared and read-only (they never write weights), verify every tensor's
/// hash, and use the mapping as their parameters: no copy.
package enum SharedMemoryWeights {
    package static let prefix = "troupe-weights-"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A new file of `bytes` bytes mapped shared and writable, filled by `fill`, then handed over as
    /// a `SharedBuffer` whose release unmaps and unlinks it.
    static func create(directory: String, epoch: UInt64, step: UInt64, bytes: Int,
                       fill: (UnsafeMutableRawBufferPointer) -> Void) throws -> (SharedBuffer, path: String) {
        // A random tag keeps two snapshots of one version (a rebuilt one) from sharing a name.
        var path = "", fd: Int32 = -1
        for _ in 0..<8 where fd < 0 {
            path = "\(directory)/\(prefix)\(getpid())-\(String(epoch, radix: 16))-\(step)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 && errno != EEXIST { break }
        }
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw Failure(description: "cannot size \(path) to \(bytes) bytes: \(reason)")
        }
        guard let base = mmap(nil, max(bytes, 1), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw Failure(description: "cannot map \(path): \(reason)")
        }
        // tmpfs allocates pages on first touch: a full /dev/shm would kill us with SIGBUS while
        // filling, so reserve them now, where running out is an error we can report.
        if bytes > 0, posix_fallocate(fd, 0, off_t(bytes)) != 0 {
            munmap(base, max(bytes, 1))
            unlink(path)
            throw Failure(description: "no room for \(bytes) bytes in \(directory)")
        }
        fill(UnsafeMutableRawBufferPointer(start: base, count: bytes))
        let name = path
        let buffer = SharedBuffer(adopting: base, count: bytes) { base, count in
            munmap(base, max(count, 1))
            unlink(name)
        }
        return (buffer, name)
    }

    /// Maps a learner's file privately as this actor's parameters, after checking its size and every
    /// tensor's hash against `manifest`. Nil (fetch chunks instead) when the file is not there, which
    /// is the normal case on another host.
    static func map(_ manifest: Troupe_V1_WeightManifest, floats: Int) throws -> FloatBuffer? {
        let path = manifest.sharedMemoryPath
        guard !path.isEmpty, manifest.totalBytes == UInt64(floats * 4) else { return nil }
        // Only a learner's weight file, and never anything that could block the open (a FIFO).
        guard (path.split(separator: "/").last ?? "").hasPrefix(prefix) else {
            throw Failure(description: "\(path) is not a learner's weight file (\(prefix)…)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw Failure(description: "\(path) is not a regular file") }
        guard UInt64(info.st_size) == manifest.totalBytes else {
            throw Failure(description: "\(path) is \(info.st_size) bytes, the manifest says \(manifest.totalBytes)")
        }
        let bytes = Int(manifest.totalBytes)
        // Read-only: nothing this process does can reach the learner's pages (an actor never writes
        // its weights; a stray write would fault rather than corrupt). Not MAP_POPULATE: pages come
        // in as hashing touches them (16 per fault), which runs in parallel across processes and
        // threads, where populating at mmap time holds the address-space lock for all of it; and
        // a private writable mapping would cost 5-10x more again.
        guard let base = mmap(nil, max(bytes, 1), PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw Failure(description: "cannot map \(path): \(String(cString: strerror(errno)))")
        }
        if let bad = manifest.firstMismatch(in: UnsafeRawBufferPointer(start: base, count: bytes)) {
            munmap(base, max(bytes, 1))
            throw Failure(description: "tensor \(bad) in \(path) failed its hash check")
        }
        return FloatBuffer(adopting: base.bindMemory(to: Float.self, capacity: floats), count: floats) { pointer, count in
            munmap(UnsafeMutableRawPointer(pointer), max(count * 4, 1))
        }
    }

    /// Removes files that learners no longer running left in `directory`; returns how many.
    @discardableResult
    package static func sweep(directory: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                if unlink("\(directory)/\(name)") == 0 { removed += 1 }
            }
        }
        return removed
    }
}
