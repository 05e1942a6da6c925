import CBLAS

/// Facts about the BLAS library this process runs on, for benchmarks and the preflight check.
public enum BLASInfo {
    /// The kernel OpenBLAS picked at load time ("Haswell", "Cooperlake", "Prescott", …).
    public static var coreName: String { String(cString: openblas_get_corename()) }
    /// The build configuration string of the loaded OpenBLAS.
    public static var config: String { String(cString: openblas_get_config()) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
