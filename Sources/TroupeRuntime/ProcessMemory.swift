import Foundation

/// This process's resident memory in MiB (Linux `/proc/self/statm`); 0 where it cannot be read.
package func residentMegabytes() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let parts = s.split(separator: " ")
    guard parts.count > 1, let pages = Double(parts[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}
