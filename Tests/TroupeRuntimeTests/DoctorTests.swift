import Foundation
import Testing
import TroupeJSON
import TroupeRuntime
import TroupeWire

/// `troupe doctor`'s checks, each fed a made-up host and made-up probes.
@Suite struct DoctorTests {
    static func host(name: String = "node1", addresses: Set<String> = ["127.0.0.1", "10.0.0.1"], cpus: Int = 16,
                     memory: UInt64? = 64 << 30, environment: [String: String] = ["OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell"],
                     core: String = "Haswell") -> Doctor.Host {
        Doctor.Host(hostName: name, localAddresses: addresses, cpuCount: cpus, availableMemoryBytes: memory, environment: environment,
                    blasCoreName: core, blasThreads: 1)
    }

    /// A cluster's name service: node1 is 10.0.0.1, node2 10.0.0.2, localhost loopback.
    static func resolve(_ name: String) -> [String] {
        ["node1": ["10.0.0.1"], "node2": ["10.0.0.2"], "localhost": ["127.0.0.1"], "10.0.0.1": ["10.0.0.1"], "10.0.0.2": ["10.0.0.2"],
         "127.0.0.1": ["127.0.0.1"], "127.0.0.2": ["127.0.0.2"], "*": []][name] ?? []
    }

    static func file(advertise: String, host: String = "node1", bind: String = "*") -> LearnerEndpointsFile {
        LearnerEndpointsFile(control: "tcp://\(advertise):5555", weights: "tcp://\(advertise):5556", announce: "tcp://\(advertise):5557",
                             logs: "tcp://\(advertise):5558", logsIn: "tcp://\(advertise):5559", epoch: 1, pid: 42, host: host,
                             learnerPublicKey: nil, bindHost: bind)
    }

    static func probes(open: Set<UInt16> = [5555, 5556, 5557, 5558], major: UInt32 = WireProtocol.major, skew: Double = 0.01) -> Doctor.Probes {
        Doctor.Probes(resolve: resolve, connect: { host, port in open.contains(port) ? nil : "TCP connection failed: Connection refused" },
                      protocolVersion: { _ in .success((major, 0)) }, clockSkew: { _ in .success(skew) },
                      directory: { _ in Doctor.DirectoryState(exists: true, writable: true, freeBytes: 8 << 30) })
    }

    static func check(_ name: String, in checks: [Doctor.Check]) -> Doctor.Check? { checks.first { $0.name == name } }

    @Test func aHealthyLearnerSeenFromAnotherHostPassesEveryCheck() {
        let checks = Doctor.checks(target: .init(file: Self.file(advertise: "node1")), config: nil, sharedMemoryDirectory: "/dev/shm",
                                   host: Self.host(name: "node2", addresses: ["127.0.0.1", "10.0.0.2"]), probes: Self.probes())
        #expect(Doctor.verdict(checks) == .ok, "\(Doctor.text(checks))")
        #expect(Set(checks.map(\.name)).isSuperset(of: ["cpus_memory", "openblas", "shared_memory", "advertised_address", "bind_vs_advertised",
                                                         "reach_control", "reach_weights", "reach_announce", "reach_logs", "protocol", "clock_skew"]))
    }

    @Test func aPortThatIsNotReachableFails() {
        let checks = Doctor.checks(target: .init(file: Self.file(advertise: "node1")), config: nil, sharedMemoryDirectory: "/dev/shm",
                                   host: Self.host(name: "node2"), probes: Self.probes(open: [5555, 5557, 5558]))
        #expect(Doctor.verdict(checks) == .fail)
        let weights = Self.check("reach_weights", in: checks)
        #expect(weights?.verdict == .fail && weights?.detail.contains("tcp://node1:5556") == true && weights?.detail.contains("refused") == true)
        #expect(Self.check("reach_control", in: checks)?.verdict == .ok)
        let closed = Doctor.checks(target: .init(file: Self.file(advertise: "node1")), config: nil, sharedMemoryDirectory: "/dev/shm",
                                   host: Self.host(name: "node2"), probes: Self.probes(open: []))
        #expect(Self.check("protocol", in: closed)?.verdict == .fail, "no protocol answer without a control connection")
    }

    @Test func aWrongAdvertisedAddressFails() {
        // On the learner's host, an advertised address that is not this host's.
        let elsewhere = Doctor.advertisedAddress(.init(file: Self.file(advertise: "node2", host: "node1")), host: Self.host(), resolve: Self.resolve)
        #expect(elsewhere.verdict == .fail && elsewhere.detail.contains("not an address of this host"), "\(elsewhere)")
        // Loopback advertised by a learner on another host.
        let loopback = Doctor.advertisedAddress(.init(file: Self.file(advertise: "127.0.0.1", host: "node1")),
                                                host: Self.host(name: "node2"), resolve: Self.resolve)
        #expect(loopback.verdict == .fail && loopback.detail.contains("loopback"), "\(loopback)")
        // The same on the learner's own host: a warning (actors elsewhere cannot join).
        let here = Doctor.advertisedAddress(.init(file: Self.file(advertise: "127.0.0.1", host: "node1")), host: Self.host(), resolve: Self.resolve)
        #expect(here.verdict == .warn)
        let unresolved = Doctor.advertisedAddress(.init(file: Self.file(advertise: "nosuchnode")), host: Self.host(name: "node2"), resolve: Self.resolve)
        #expect(unresolved.verdict == .fail && unresolved.detail.contains("does not resolve"))
        let wildcard = Doctor.advertisedAddress(.init(endpoints: [("control", "tcp://0.0.0.0:5555")]), host: Self.host(), resolve: Self.resolve)
        #expect(wildcard.verdict == .fail && wildcard.detail.contains("wildcard"))
    }

    @Test func theBindHostMustCoverTheAdvertisedAddress() {
        #expect(Doctor.bindCoversAdvertised(bindHost: "*", advertisedHost: "node1", resolve: Self.resolve).verdict == .ok)
        #expect(Doctor.bindCoversAdvertised(bindHost: "10.0.0.1", advertisedHost: "node1", resolve: Self.resolve).verdict == .ok)
        let loopbackBind = Doctor.bindCoversAdvertised(bindHost: "127.0.0.1", advertisedHost: "node1", resolve: Self.resolve)
        #expect(loopbackBind.verdict == .fail && loopbackBind.detail.contains("binds 127.0.0.1"), "\(loopbackBind)")
        #expect(Doctor.bindCoversAdvertised(bindHost: "127.0.0.1", advertisedHost: "127.0.0.2", resolve: Self.resolve).verdict == .fail)
        #expect(Doctor.bindCoversAdvertised(bindHost: "eth0", advertisedHost: "node1", resolve: Self.resolve).verdict == .warn)
        // With a learner configuration and no learner: the configuration's addresses are checked.
        var config = RunConfig().endpoints
        config.bindHost = "127.0.0.1"
        config.advertiseHost = "node1"
        let checks = Doctor.checks(target: nil, config: config, sharedMemoryDirectory: "", host: Self.host(), probes: Self.probes())
        #expect(Self.check("bind_vs_advertised", in: checks)?.verdict == .fail)
        #expect(!checks.contains { $0.name.hasPrefix("reach_") }, "no learner given, nothing to connect to")
    }

    @Test func aStaleEndpointsFileOnTheLearnersHostFails() {
        var probes = Self.probes()
        probes.processAlive = { _ in false }
        let checks = Doctor.checks(target: .init(file: Self.file(advertise: "node1")), config: nil, sharedMemoryDirectory: "", host: Self.host(), probes: probes)
        let check = Self.check("learner_process", in: checks)
        #expect(check?.verdict == .fail && check?.detail.contains("stale") == true, "\(String(describing: check))")
        let elsewhere = Doctor.checks(target: .init(file: Self.file(advertise: "node1")), config: nil, sharedMemoryDirectory: "",
                                      host: Self.host(name: "node2"), probes: probes)
        #expect(Self.check("learner_process", in: elsewhere) == nil, "another host's pid says nothing here")
    }

    @Test func aFinishedRunsFileIsNotCalledStale() {
        var probes = Self.probes()
        probes.processAlive = { _ in false }
        var file = Self.file(advertise: "node1")
        file.finishedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let checks = Doctor.checks(target: .init(file: file), config: nil, sharedMemoryDirectory: "", host: Self.host(), probes: probes)
        let check = Self.check("learner_process", in: checks)
        #expect(check?.verdict == .warn && check?.detail.contains("the run finished at 2027-01-15T08:00:00.000Z") == true, "\(String(describing: check))")
    }

    @Test func anotherProtocolMajorFails() {
        let checks = Doctor.checks(target: .init(file: Self.file(advertise: "node1")), config: nil, sharedMemoryDirectory: "", host: Self.host(name: "node2"),
                                   probes: Self.probes(major: WireProtocol.major + 1))
        #expect(Self.check("protocol", in: checks)?.verdict == .fail)
    }

    @Test func clockSkewFromLogEventsOrARoughBoundFromTheFile() {
        #expect(Doctor.clockSkew(fromLogStream: .success(0.2), file: nil, now: Date()).verdict == .ok)
        let ahead = Doctor.clockSkew(fromLogStream: .success(-7.5), file: nil, now: Date())
        #expect(ahead.verdict == .warn && ahead.detail.contains("7.500 s behind"))
        var file = Self.file(advertise: "node1")
        file.writtenAt = Date().addingTimeInterval(60)
        let future = Doctor.clockSkew(fromLogStream: .failure(.init(.warn, "no log event")), file: file, now: Date())
        #expect(future.verdict == .warn && future.detail.contains("future"))
        file.writtenAt = Date().addingTimeInterval(-30)
        let rough = Doctor.clockSkew(fromLogStream: nil, file: file, now: Date())
        #expect(rough.verdict == .ok && rough.detail.contains("rough bound"))
    }

    @Test func openBLASFallbackAndThreadSettingsAreWarnedAbout() {
        let fallback = Doctor.openBLAS(Self.host(environment: ["OPENBLAS_NUM_THREADS": "1"], core: "Prescott"))
        #expect(fallback.verdict == .warn && fallback.detail.contains("did not recognise"))
        let pinnedGeneric = Doctor.openBLAS(Self.host(environment: ["OPENBLAS_CORETYPE": "Prescott"], core: "Prescott"))
        #expect(pinnedGeneric.verdict == .warn && pinnedGeneric.detail.contains("OPENBLAS_CORETYPE=Prescott"))
        #expect(Doctor.openBLAS(Self.host(environment: [:])).verdict == .warn, "16 CPUs and no OPENBLAS_NUM_THREADS")
        #expect(Doctor.openBLAS(Self.host(environment: ["OPENBLAS_NUM_THREADS": "64"])).verdict == .warn)
        #expect(Doctor.openBLAS(Self.host(environment: ["OPENBLAS_NUM_THREADS": "lots"])).verdict == .warn)
        #expect(Doctor.openBLAS(Self.host()).verdict == .ok)
    }

    @Test func theLearnersRowSplitIsReported() {
        var host = Self.host()
        #expect(Doctor.openBLAS(host).detail.contains("matrix products: rows split over 2 threads"))
        host.blasSplitIsExact = false
        let differing = Doctor.openBLAS(host)
        #expect(differing.verdict == .ok && differing.detail.contains("one thread (this kernel's split products differ"))
        host.blasSplitIsExact = true
        host.environment["TROUPE_GEMM_ROW_SPLIT"] = "off"
        #expect(Doctor.openBLAS(host).detail.contains("one thread (TROUPE_GEMM_ROW_SPLIT=off)"))
    }

    @Test func memoryAndSharedMemory() {
        #expect(Doctor.cpusAndMemory(Self.host(memory: 512 << 20)).verdict == .warn)
        #expect(Doctor.cpusAndMemory(Self.host()).detail.contains("16 CPUs"))
        #expect(Doctor.sharedMemory(path: "/dev/shm", state: .init(exists: false, writable: false, freeBytes: nil)).verdict == .warn)
        #expect(Doctor.sharedMemory(path: "/dev/shm", state: .init(exists: true, writable: false, freeBytes: 1 << 30)).detail.contains("not writable"))
        #expect(Doctor.sharedMemory(path: "/dev/shm", state: .init(exists: true, writable: true, freeBytes: 100 << 20)).verdict == .warn)
        #expect(Doctor.sharedMemory(path: "/dev/shm", state: .init(exists: true, writable: true, freeBytes: 4 << 30)).verdict == .ok)
    }

    @Test func theReportsSayEveryVerdict() throws {
        let checks = [Doctor.Check("a", .ok, "fine"), Doctor.Check("bb", .fail, "broken")]
        let text = Doctor.text(checks)
        #expect(text.contains("FAIL  bb  broken") && text.contains("verdict: FAIL (2 checks, 1 failed, 0 warnings)"), "\(text)")
        let json = Doctor.json(checks)
        #expect(json["verdict"]?.string == "fail")
        #expect(json["checks"]?.array?.count == 2)
    }

    @Test func realProbesRefuseAClosedPortAndResolveNothingForAnInvalidName() {
        #expect(DoctorProbes.resolve("no-such-host.invalid").isEmpty)
        #expect(DoctorProbes.resolve("127.0.0.1") == ["127.0.0.1"])
        #expect(DoctorProbes.localAddresses().contains("127.0.0.1"))
        // A port bound by nobody: a socket bound, its port noted, then closed.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        close(fd)
        let problem = DoctorProbes.connect(host: "127.0.0.1", port: port, timeout: 1)
        #expect(problem?.contains("refused") == true, "\(problem ?? "connected")")
    }

    /// Each reward worker's answer to doctor's probe: ok over CURVE, warn in plaintext, FAIL for another
    /// reward version or no answer (the probe's own words kept).
    @Test func rewardWorkersAreJudgedByTheirAnswerToAProbe() throws {
        let settings = try RunConfig.parse(.object([:]), overrides: [
            "reward_workers.endpoints=[\"tcp://h:1\",\"tcp://h:2\",\"tcp://h:3\"]", "reward_workers.version=v1",
            "algorithm.reward.kind=external"]).rewardWorkers
        let answers: [Result<Doctor.RewardWorkerAnswer, Doctor.ProbeFailure>] = [
            .success(.init(rewardVersion: "v1", error: nil, seconds: 0.012)),
            .success(.init(rewardVersion: "v2", error: nil, seconds: 0.010)),
            .failure(.init(.fail, "no connection within 3.0 s")),
        ]
        let curve = Doctor.rewardWorkers(settings, curve: true, answers: answers)
        #expect(curve.map(\.name) == ["reward_worker_1", "reward_worker_2", "reward_worker_3"])
        #expect(curve.map(\.verdict) == [.ok, .fail, .fail])
        #expect(curve[0].detail == "tcp://h:1 answered in 12 ms over CURVE as \"v1\"")
        #expect(curve[1].detail.contains("answers as reward version \"v2\", the run asks for \"v1\""))
        #expect(curve[2].detail == "tcp://h:3: no connection within 3.0 s")
        let plaintext = Doctor.rewardWorkers(settings, curve: false, answers: [.success(.init(rewardVersion: "v1", error: "needs a reference", seconds: 0.001))])
        #expect(plaintext.map(\.verdict) == [.warn] && plaintext[0].detail.contains("in plaintext") && plaintext[0].detail.contains("it said: needs a reference"))
    }
}
