import Foundation
import TroupeJSON
import TroupeWire

/// `troupe doctor`: checks of this host and, given one, of the learner as seen from here. Each check
/// is a small function of what `DoctorProbes` found, so tests feed it any environment they like.
package enum Doctor {
    package enum Verdict: String, Sendable, Comparable {
        case ok, warn, fail

        package static func < (a: Verdict, b: Verdict) -> Bool { a.rank < b.rank }
        private var rank: Int { switch self { case .ok: 0; case .warn: 1; case .fail: 2 } }
        /// As printed: `ok`, `warn`, `FAIL`.
        package var label: String { self == .fail ? "FAIL" : rawValue }
    }

    package struct Check: Equatable, Sendable {
        package var name: String
        package var verdict: Verdict
        /// One line: why.
        package var detail: String
        package init(_ name: String, _ verdict: Verdict, _ detail: String) {
            self.name = name
            self.verdict = verdict
            self.detail = detail
        }
    }

    /// Where the learner is, as far as doctor was told.
    package struct Target: Sendable {
        /// The advertised endpoints by name (`control`, and with an endpoints file `weights`, `announce`, `logs`).
        package var endpoints: [(name: String, endpoint: String)]
        /// From the endpoints file: the learner's host name, bind host, and when it wrote the file.
        package var file: LearnerEndpointsFile?
        package init(endpoints: [(name: String, endpoint: String)], file: LearnerEndpointsFile? = nil) {
            self.endpoints = endpoints
            self.file = file
        }
        package init(file: LearnerEndpointsFile) {
            self.init(endpoints: [("control", file.control), ("weights", file.weights), ("announce", file.announce), ("logs", file.logs)],
                      file: file)
        }
    }

    /// What doctor looked at on this host. `DoctorProbes.system` fills it for real.
    package struct Host: Sendable {
        package var hostName: String
        /// The addresses of this host's interfaces (loopback included).
        package var localAddresses: Set<String>
        package var cpuCount: Int
        /// MemAvailable from /proc/meminfo; nil where unknown.
        package var availableMemoryBytes: UInt64?
        package var environment: [String: String]
        /// `openblas_get_corename()` and `openblas_get_num_threads()` of this process.
        package var blasCoreName: String
        package var blasThreads: Int
        /// Whether this kernel gives a product split by rows bit for bit (`GEMMRowSplit.splitIsExact`):
        /// a learner here then splits its larger products over two threads.
        package var blasSplitIsExact: Bool
        /// The kernel an actor started here with this environment decodes with (`StreamingGEMM.kernel`:
        /// `avx512` or `portable`).
        package var decodeKernel: String
        package init(hostName: String, localAddresses: Set<String>, cpuCount: Int, availableMemoryBytes: UInt64?,
                     environment: [String: String], blasCoreName: String, blasThreads: Int, blasSplitIsExact: Bool = true,
                     decodeKernel: String = "portable") {
            self.hostName = hostName
            self.localAddresses = localAddresses
            self.cpuCount = cpuCount
            self.availableMemoryBytes = availableMemoryBytes
            self.environment = environment
            self.blasCoreName = blasCoreName
            self.blasThreads = blasThreads
            self.blasSplitIsExact = blasSplitIsExact
            self.decodeKernel = decodeKernel
        }
    }

    package struct DirectoryState: Equatable, Sendable {
        package var exists: Bool
        package var writable: Bool
        package var freeBytes: UInt64?
        package init(exists: Bool, writable: Bool, freeBytes: UInt64?) {
            self.exists = exists
            self.writable = writable
            self.freeBytes = freeBytes
        }
    }

    // MARK: host checks

    package static func cpusAndMemory(_ host: Host) -> Check {
        let cpus = "\(host.cpuCount) CPU\(host.cpuCount == 1 ? "" : "s")"
        guard let bytes = host.availableMemoryBytes else { return Check("cpus_memory", .warn, "\(cpus); available memory unknown (no MemAvailable in /proc/meminfo)") }
        let text = "\(cpus), \(megabytes(bytes)) MiB available"
        // The tiny models need little; a 135M-parameter learner needs about 2 GiB with optimizer state.
        if bytes < 1 << 30 { return Check("cpus_memory", .warn, "\(text): under 1 GiB leaves little room for a model and its optimizer state") }
        return Check("cpus_memory", .ok, text)
    }

    /// The kernel OpenBLAS picked, its thread settings, whether a learner here splits its products
    /// by rows and which kernel actors decode with. An unrecognised CPU falls back to generic kernels (`Prescott` on x86-64) that run sgemm
    /// several times slower: that is a warning.
    package static func openBLAS(_ host: Host) -> Check {
        let coreType = host.environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 }
        let threadsSetting = host.environment["OPENBLAS_NUM_THREADS"].flatMap { $0.isEmpty ? nil : $0 }
        let split = host.environment["TROUPE_GEMM_ROW_SPLIT"] == "off" ? "one thread (TROUPE_GEMM_ROW_SPLIT=off)"
            : host.blasSplitIsExact ? "rows split over 2 threads" : "one thread (this kernel's split products differ from whole ones)"
        let facts = "kernel \(host.blasCoreName), OPENBLAS_CORETYPE=\(coreType ?? "unset"), OPENBLAS_NUM_THREADS=\(threadsSetting ?? "unset"), "
            + "learner's matrix products: \(split), actors' decoding kernel: \(host.decodeKernel)"
        if genericKernels.contains(host.blasCoreName.lowercased()) {
            let fix = coreType == nil
                ? "OpenBLAS did not recognise this CPU and fell back to generic kernels (several times slower); set OPENBLAS_CORETYPE to the CPU's family (e.g. Haswell or SkylakeX)"
                : "OPENBLAS_CORETYPE=\(coreType!) selects generic kernels (several times slower); set it to the CPU's family (e.g. Haswell or SkylakeX)"
            return Check("openblas", .warn, "\(facts): \(fix)")
        }
        if let threadsSetting {
            guard let n = Int(threadsSetting), n >= 1 else { return Check("openblas", .warn, "\(facts): OPENBLAS_NUM_THREADS is not a positive number") }
            if n > host.cpuCount {
                return Check("openblas", .warn, "\(facts): more threads than the \(host.cpuCount) CPUs here; every process starts that many")
            }
        } else if host.cpuCount > 4 {
            return Check("openblas", .warn, "\(facts): each troupe process starts a thread per CPU (\(host.cpuCount)) before it sets learner/actors.threads; set OPENBLAS_NUM_THREADS to what a process gets")
        }
        return Check("openblas", .ok, facts)
    }

    /// OpenBLAS's generic targets: what it uses for a CPU it does not know.
    static let genericKernels: Set<String> = ["prescott", "katmai", "coppermine", "northwood", "banias", "generic", "core2", "atom", "armv8"]

    /// The learner's shared-memory directory (`learner.shared_memory_dir`): actors on the learner's
    /// host map weights from it. Without it weights travel as chunks (slower, still correct): a warning.
    package static func sharedMemory(path: String, state: DirectoryState) -> Check {
        guard !path.isEmpty else { return Check("shared_memory", .ok, "learner.shared_memory_dir is empty: weights always travel as chunks") }
        guard state.exists else { return Check("shared_memory", .warn, "\(path) does not exist: actors on the learner's host would fetch chunks instead of mapping weights") }
        guard state.writable else { return Check("shared_memory", .warn, "\(path) is not writable here: a learner here would send weights as chunks") }
        guard let free = state.freeBytes else { return Check("shared_memory", .ok, "\(path) writable, free space unknown") }
        let text = "\(path) writable, \(megabytes(free)) MiB free"
        // Two versions live at once (the newest and the one before it).
        if free < 256 << 20 { return Check("shared_memory", .warn, "\(text): under 256 MiB holds two versions only of a small model") }
        return Check("shared_memory", .ok, text)
    }

    // MARK: learner checks

    /// A TCP connection to each advertised endpoint. `connect` returns nil on success, else why not.
    package static func reachability(_ target: Target, connect: (String, UInt16) -> String?) -> [Check] {
        target.endpoints.map { name, text in
            guard let (host, port) = tcpHostPort(text) else { return Check("reach_\(name)", .fail, "\(text) is not a tcp://host:port endpoint") }
            if let problem = connect(host, port) { return Check("reach_\(name)", .fail, "\(text): \(problem)") }
            return Check("reach_\(name)", .ok, "\(text) accepts connections")
        }
    }

    /// On the learner's host: is the process that wrote the endpoints file still running? A file whose
    /// learner is gone is stale until a resumed learner rewrites it.
    package static func learnerProcess(_ file: LearnerEndpointsFile, alive: Bool) -> Check {
        if alive { return Check("learner_process", .ok, "pid \(file.pid) (epoch \(String(file.epoch, radix: 16))) is running") }
        if let finished = file.finishedAt {
            return Check("learner_process", .warn, "the run finished at \(LearnerEndpointsFile.timestamp(finished)) (epoch \(String(file.epoch, radix: 16))); no learner is running")
        }
        return Check("learner_process", .fail, "pid \(file.pid), which wrote endpoints.json, is not running: the file is stale (resume the learner, or start one)")
    }

    /// Is the advertised address one this host can use? It must resolve, must not be a wildcard, and
    /// must not be loopback unless doctor runs on the learner's host; on the learner's host it must be
    /// one of this host's addresses.
    package static func advertisedAddress(_ target: Target, host: Host, resolve: (String) -> [String]) -> Check {
        guard let control = target.endpoints.first(where: { $0.name == "control" }), let (advertised, _) = tcpHostPort(control.endpoint) else {
            return Check("advertised_address", .fail, "no tcp control endpoint to check")
        }
        if ["*", "0.0.0.0", "::"].contains(advertised) {
            return Check("advertised_address", .fail, "the learner advertises \(advertised), a wildcard nobody can connect to; set endpoints.advertise_host to its host name or address")
        }
        let addresses = resolve(advertised)
        guard !addresses.isEmpty else {
            return Check("advertised_address", .fail, "the advertised host \(advertised) does not resolve here")
        }
        let shown = "\(advertised) (\(addresses.sorted().joined(separator: ", ")))"
        let loopback = addresses.allSatisfy(isLoopback)
        let onLearnerHost = target.file.map { $0.host == host.hostName }
        if loopback {
            if onLearnerHost == false {
                return Check("advertised_address", .fail, "the learner on \(target.file!.host) advertises loopback \(shown): nothing on this host (\(host.hostName)) reaches it; set endpoints.advertise_host")
            }
            return Check("advertised_address", .warn, "\(shown) is loopback: only processes on the learner's host can reach it")
        }
        if onLearnerHost == true && addresses.allSatisfy({ !host.localAddresses.contains($0) }) {
            return Check("advertised_address", .fail, "\(shown) is not an address of this host, where the learner runs (\(host.hostName)): a wrong endpoints.advertise_host")
        }
        return Check("advertised_address", .ok, "\(shown)")
    }

    /// Does the learner bind where it advertises? `*` covers every address; a loopback bind only
    /// loopback; an address or a host name must be (or resolve to) an advertised address.
    package static func bindCoversAdvertised(bindHost: String, advertisedHost: String, resolve: (String) -> [String]) -> Check {
        if ["*", "0.0.0.0", "::"].contains(bindHost) { return Check("bind_vs_advertised", .ok, "binds every interface (\(bindHost)); advertises \(advertisedHost)") }
        let advertised = Set(resolve(advertisedHost))
        let bound = Set(resolve(bindHost))
        guard !bound.isEmpty else {
            return Check("bind_vs_advertised", .warn, "bind host \(bindHost) does not resolve here (an interface name?); cannot compare with \(advertisedHost)")
        }
        guard !advertised.isEmpty else { return Check("bind_vs_advertised", .fail, "the advertised host \(advertisedHost) does not resolve") }
        if bound.isDisjoint(with: advertised) {
            return Check("bind_vs_advertised", .fail, "binds \(bindHost) (\(bound.sorted().joined(separator: ", "))) but advertises \(advertisedHost) (\(advertised.sorted().joined(separator: ", "))): connections to the advertised address find nothing")
        }
        return Check("bind_vs_advertised", .ok, "binds \(bindHost), advertises \(advertisedHost): the same address")
    }

    /// The learner's protocol version, from its answer to a probe (see `DoctorProbes.protocolProbe`).
    package static func protocolVersion(_ answer: Result<(major: UInt32, minor: UInt32), ProbeFailure>, ours: (major: UInt32, minor: UInt32)) -> Check {
        switch answer {
        case .failure(let failure):
            return Check("protocol", failure.verdict, failure.detail)
        case .success(let theirs):
            let text = "learner speaks \(theirs.major).\(theirs.minor), this build \(ours.major).\(ours.minor)"
            if theirs.major != ours.major { return Check("protocol", .fail, "\(text): different majors cannot talk; use the same troupe build") }
            return Check("protocol", .ok, text)
        }
    }

    /// A reward worker's answer to doctor's probe request (`DoctorProbes.rewardWorkerProbes`).
    package struct RewardWorkerAnswer: Equatable, Sendable {
        package var rewardVersion: String
        /// The worker's `error`, if it answered with one (a verifier asked without a reference does).
        package var error: String?
        package var seconds: Double
        package init(rewardVersion: String, error: String?, seconds: Double) {
            self.rewardVersion = rewardVersion
            self.error = error
            self.seconds = seconds
        }
    }

    /// One check per configured reward worker, from its answer to a probe: ok when it answers as the
    /// run's reward version; FAIL when it does not answer or answers as another version.
    package static func rewardWorkers(_ settings: RunConfig.RewardWorkers, curve: Bool,
                                      answers: [Result<RewardWorkerAnswer, ProbeFailure>]) -> [Check] {
        zip(settings.endpoints, answers).enumerated().map { index, item in
            let (endpoint, answer) = item
            let name = "reward_worker_\(index + 1)"
            switch answer {
            case .failure(let failure):
                return Check(name, failure.verdict, "\(endpoint): \(failure.detail)")
            case .success(let a):
                guard a.rewardVersion == settings.version else {
                    return Check(name, .fail, "\(endpoint) answers as reward version \"\(a.rewardVersion)\", the run asks for \"\(settings.version)\" (reward_workers.version): the learner would refuse every score")
                }
                let how = curve ? "over CURVE" : "in plaintext (only a learner run with --insecure-plaintext asks it so)"
                let note = a.error.map { "; to doctor's probe, which has no reference answer, it said: \($0)" } ?? ""
                return Check(name, curve ? .ok : .warn, String(format: "%@ answered in %.0f ms %@ as \"%@\"%@", endpoint, a.seconds * 1000, how, a.rewardVersion, note))
            }
        }
    }

    package struct ProbeFailure: Error, Equatable, Sendable {
        package var verdict: Verdict
        package var detail: String
        package init(_ verdict: Verdict, _ detail: String) {
            self.verdict = verdict
            self.detail = detail
        }
    }

    /// How far the learner's wall clock is from this host's. `fromLogStream`: seconds the learner's
    /// clock is ahead, measured from its log events' timestamps (accurate to their delivery delay).
    /// Without the stream, the endpoints file's `written_at` gives only a one-sided bound.
    package static func clockSkew(fromLogStream skew: Result<Double, ProbeFailure>?, file: LearnerEndpointsFile?, now: Date) -> Check {
        if case .success(let s)? = skew {
            let text = String(format: "the learner's clock is %.3f s %@ this host's (from its log events' timestamps)", abs(s), s >= 0 ? "ahead of" : "behind")
            // Timeouts use monotonic clocks; skew only misleads timestamps in logs and monitors.
            return Check("clock_skew", abs(s) > 2 ? .warn : .ok, text)
        }
        let reason: String
        switch skew {
        case .failure(let f)?: reason = f.detail
        default: reason = "no log endpoint to read timestamps from"
        }
        guard let file else { return Check("clock_skew", .warn, "not measured: \(reason)") }
        let age = now.timeIntervalSince(file.writtenAt)
        if age < -2 {
            return Check("clock_skew", .warn, String(format: "endpoints.json was written %.1f s in this host's future: the learner's clock is at least that far ahead (%@)", -age, reason))
        }
        return Check("clock_skew", .ok, String(format: "rough bound only (%@): endpoints.json written %.1f s ago by this host's clock", reason, age))
    }

    // MARK: all of them

    /// The I/O the checks need, injectable: `DoctorProbes` does it for real.
    package struct Probes {
        package var resolve: (String) -> [String]
        package var connect: (String, UInt16) -> String?
        package var protocolVersion: (Endpoint) -> Result<(major: UInt32, minor: UInt32), ProbeFailure>
        package var clockSkew: (Endpoint) -> Result<Double, ProbeFailure>
        package var directory: (String) -> DirectoryState
        /// Whether a process of this host with that id is alive.
        package var processAlive: (Int32) -> Bool
        package var now: () -> Date
        package init(resolve: @escaping (String) -> [String], connect: @escaping (String, UInt16) -> String?,
                     protocolVersion: @escaping (Endpoint) -> Result<(major: UInt32, minor: UInt32), ProbeFailure>,
                     clockSkew: @escaping (Endpoint) -> Result<Double, ProbeFailure>,
                     directory: @escaping (String) -> DirectoryState, processAlive: @escaping (Int32) -> Bool = { _ in true },
                     now: @escaping () -> Date = Date.init) {
            self.resolve = resolve
            self.connect = connect
            self.protocolVersion = protocolVersion
            self.clockSkew = clockSkew
            self.directory = directory
            self.processAlive = processAlive
            self.now = now
        }
    }

    /// Every check that applies: this host's always; a learner configuration's (`config`: bind and
    /// advertised addresses) when given; the learner's (reachability, addresses, protocol, clock) when
    /// `target` says where it is.
    package static func checks(target: Target?, config: RunConfig.Endpoints?, sharedMemoryDirectory: String, host: Host,
                               probes: Probes) -> [Check] {
        var checks = [cpusAndMemory(host), openBLAS(host), sharedMemory(path: sharedMemoryDirectory, state: probes.directory(sharedMemoryDirectory))]
        if let config {
            checks.append(bindCoversAdvertised(bindHost: config.bindHost, advertisedHost: config.advertiseHost, resolve: probes.resolve))
            if target == nil {
                let control = "tcp://\(config.advertiseHost.contains(":") ? "[\(config.advertiseHost)]" : config.advertiseHost):\(config.controlPort)"
                checks.append(advertisedAddress(Target(endpoints: [("control", control)]), host: host, resolve: probes.resolve))
            }
        }
        guard let target else { return checks }
        if let file = target.file, file.host == host.hostName {
            checks.append(learnerProcess(file, alive: probes.processAlive(file.pid)))
        }
        checks.append(advertisedAddress(target, host: host, resolve: probes.resolve))
        if config == nil, let file = target.file, !file.bindHost.isEmpty, let (advertised, _) = tcpHostPort(file.control) {
            checks.append(bindCoversAdvertised(bindHost: file.bindHost, advertisedHost: advertised, resolve: probes.resolve))
        }
        let reach = reachability(target, connect: probes.connect)
        checks += reach
        if let control = target.endpoints.first(where: { $0.name == "control" }), let endpoint = try? Endpoint(parsing: control.endpoint),
           reach.first(where: { $0.name == "reach_control" })?.verdict == .ok {
            checks.append(protocolVersion(probes.protocolVersion(endpoint), ours: (WireProtocol.major, WireProtocol.minor)))
        } else {
            checks.append(Check("protocol", .fail, "not asked: the control endpoint is not reachable"))
        }
        let logs = target.endpoints.first(where: { $0.name == "logs" }).flatMap { try? Endpoint(parsing: $0.endpoint) }
        let logsReachable = reach.first(where: { $0.name == "reach_logs" })?.verdict == .ok
        checks.append(clockSkew(fromLogStream: logs.map { logsReachable ? probes.clockSkew($0) : .failure(ProbeFailure(.warn, "the log endpoint is not reachable")) },
                                file: target.file, now: probes.now()))
        return checks
    }

    // MARK: report

    package static func verdict(_ checks: [Check]) -> Verdict { checks.map(\.verdict).max() ?? .ok }

    package static func text(_ checks: [Check]) -> String {
        let width = checks.map(\.name.count).max() ?? 0
        let lines = checks.map { "\($0.verdict.label.padding(toLength: 4, withPad: " ", startingAt: 0))  \($0.name.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.detail)" }
        let failed = checks.filter { $0.verdict == .fail }.count, warned = checks.filter { $0.verdict == .warn }.count
        return (lines + ["verdict: \(verdict(checks).label) (\(checks.count) checks, \(failed) failed, \(warned) warnings)"]).joined(separator: "\n")
    }

    package static func json(_ checks: [Check]) -> JSONValue {
        [
            "verdict": .string(verdict(checks).rawValue),
            "checks": .array(checks.map { ["name": .string($0.name), "verdict": .string($0.verdict.rawValue), "detail": .string($0.detail)] }),
        ]
    }

    // MARK: helpers

    package static func tcpHostPort(_ text: String) -> (String, UInt16)? {
        guard let endpoint = try? Endpoint(parsing: text), case .tcp(let host, let port, _) = endpoint else { return nil }
        return (host, port)
    }

    static func isLoopback(_ address: String) -> Bool { address.hasPrefix("127.") || address == "::1" }

    private static func megabytes(_ bytes: UInt64) -> Int { Int(bytes >> 20) }
}
