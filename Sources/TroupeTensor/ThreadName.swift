import Foundation

/// Names the calling thread for the kernel (what `top -H`, `ps -L` and profilers show; at most 15
/// bytes). Foundation's `Thread.name` stays inside the process on Linux.
package func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = write(fd, bytes, bytes.count)
    close(fd)
}
