import Foundation
import TroupeTensor

/// A process's kernel threads, as /proc/PID/task lists them.
package enum ProcessThreads {
    package struct Thread: Equatable {
        package let id: Int32
        /// The kernel's name for it (`comm`, at most 15 bytes): what `nameCurrentThread` set, or the
        /// name it inherited from the thread that created it.
        package let name: String
    }

    /// Every thread of process `pid` (nil: this one); empty when /proc cannot be read.
    package static func all(process pid: Int32? = nil) -> [Thread] {
        let tasks = "/proc/\(pid.map(String.init) ?? "self")/task"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return [] }
        return entries.compactMap { entry in
            guard let id = Int32(entry) else { return nil }
            // A thread that ended since the listing has no comm left: it is skipped.
            guard let name = try? String(contentsOfFile: "\(tasks)/\(entry)/comm", encoding: .utf8) else { return nil }
            return Thread(id: id, name: name.trimmingCharacters(in: .newlines))
        }.sorted { $0.id < $1.id }
    }

    /// The calling thread's kernel id (`gettid`, which Swift's Glibc module does not export).
    package static func currentID() -> Int32? {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        // "PID/task/TID"
        let path = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.split(separator: "/").last.flatMap { Int32($0) }
    }

    /// The threads a library started without naming them: those still carrying the name of the main
    /// thread (which every thread created before `main` inherits), the main thread excepted. In a
    /// Troupe process these are OpenBLAS's workers: Troupe, ZeroMQ and Dispatch name their own.
    package static func unnamed() -> [Thread] {
        let threads = all()
        let mainID = getpid()
        guard let main = threads.first(where: { $0.id == mainID }) else { return [] }
        return threads.filter { $0.id != mainID && $0.name == main.name }
    }
}
