import Foundation
import TroupeProto
import TroupeTensor
import TroupeWire
#if canImport(Glibc)
import Glibc
#endif

/// What `troupe doctor` looks at for real: this host, name resolution, TCP connections, and two
/// messages to the learner that do not make doctor an actor (`protocolProbe`, `clockProbe`).
package enum DoctorProbes {
    /// This host as `Doctor.Host` sees it.
    package static func host(environment: [String: String] = ProcessInfo.processInfo.environment) -> Doctor.Host {
        Doctor.Host(hostName: ProcessInfo.processInfo.hostName, localAddresses: localAddresses(),
                    cpuCount: ProcessInfo.processInfo.activeProcessorCount, availableMemoryBytes: availableMemory(),
                    environment: environment, blasCoreName: BLASInfo.coreName, blasThreads: BLASInfo.threads,
                    blasSplitIsExact: splitIsExactOnOneThread(), decodeKernel: StreamingGEMM.kernel.rawValue)
    }

    /// The row-split probe as a learner runs it: on one OpenBLAS thread (learner.threads = 1).
    private static func splitIsExactOnOneThread() -> Bool {
        let threads = BLASInfo.threads
        BLASInfo.setThreads(1)
        defer { BLASInfo.setThreads(threads) }
        return GEMMRowSplit.splitIsExact()
    }

    /// The numeric addresses `host` resolves to (empty: it does not resolve).
    package static func resolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var out: Set<String> = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let a = cursor {
            if let text = numeric(a.pointee.ai_addr, length: a.pointee.ai_addrlen) { out.insert(text) }
            cursor = a.pointee.ai_next
        }
        return out.sorted()
    }

    private static func numeric(_ address: UnsafeMutablePointer<sockaddr>?, length: socklen_t) -> String? {
        guard let address else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
        let text = String(cString: buffer)
        // Link-local IPv6 carries %interface; the address alone is what others report.
        return text.split(separator: "%").first.map(String.init)
    }

    /// The addresses of this host's interfaces.
    package static func localAddresses() -> Set<String> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var out: Set<String> = []
        var cursor = list
        while let i = cursor {
            if let a = i.pointee.ifa_addr {
                let family = Int32(a.pointee.sa_family)
                if family == AF_INET || family == AF_INET6 {
                    let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
                    if let text = numeric(a, length: length) { out.insert(text) }
                }
            }
            cursor = i.pointee.ifa_next
        }
        return out
    }

    /// A TCP connection to `host:port` within `timeout` seconds: nil when it was accepted, else why not.
    package static func connect(host: String, port: UInt16, timeout: Double) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { return "\(host) does not resolve (\(String(cString: gai_strerror(status))))" }
        defer { freeaddrinfo(list) }
        var problems: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let a = cursor {
            cursor = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else { problems.append(String(cString: strerror(errno))); continue }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&p, 1, Int32(timeout * 1000))
            guard ready > 0 else { problems.append("no answer within \(timeout) s (filtered, or a host that is down)"); continue }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            if error == 0 { return nil }
            problems.append(String(cString: strerror(error)))
        }
        return "TCP connection failed: " + (problems.isEmpty ? "no usable address" : Set(problems).sorted().joined(separator: "; "))
    }

    /// kill(pid, 0): the process exists (EPERM: it exists, owned by another user).
    package static func processAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    /// MemAvailable from /proc/meminfo.
    package static func availableMemory() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kb = UInt64(fields[1]) { return kb * 1024 }
        }
        return nil
    }

    /// Whether `path` is a directory this process can create files in, and its free space.
    package static func directoryState(_ path: String) -> Doctor.DirectoryState {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return Doctor.DirectoryState(exists: false, writable: false, freeBytes: nil)
        }
        let probe = path + "/.troupe-doctor-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        let writable = fd >= 0
        if writable { close(fd); unlink(probe) }
        var stats = statvfs()
        let free = statvfs(path, &stats) == 0 ? UInt64(stats.f_bavail) * UInt64(stats.f_frsize) : nil
        return Doctor.DirectoryState(exists: true, writable: writable, freeBytes: free)
    }

    /// The learner's protocol version without joining: a Heartbeat from a connection that never said
    /// Hello is answered with a Reject (unknown actor), whose envelope carries the learner's protocol
    /// major and minor. The learner registers nothing and writes nothing to the run log.
    package static func protocolProbe(control: Endpoint, security: ClientSecurity?, timeout: Double) -> Result<(major: UInt32, minor: UInt32), Doctor.ProbeFailure> {
        do {
            let context = try ZMQContext(ioThreads: 1)
            defer { context.shutdown() }
            let socket = try ZMQSocket(context, type: .dealer, linger: .discardUnsent)
            defer { socket.close() }
            try socket.set([.routingID(Array("doctor#\(getpid())".utf8)), .maxMessageSize(WireLimits.controlReplies.socketMaxFrameBytes)]
                           + (security?.toLearner ?? []))
            try socket.connect(control)
            let deadline = Deadline.afterMilliseconds(Int(timeout * 1000))
            _ = try socket.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())), deadline: deadline)
            switch try socket.receiveMessage(deadline: deadline, limits: .controlReplies) {
            case .message(let m):
                return .success((m.protocolMajor, m.protocolMinor))
            case .rejected(let error):
                return .failure(.init(.fail, "the learner's answer was refused here: \(error)"))
            case .timedOut:
                let why = security == nil
                    ? "no answer within \(timeout) s (an authenticated learner answers no plaintext client: give --key and --learner-key / --learner-file)"
                    : "no answer within \(timeout) s (are --key and the learner's key the pair it allows?)"
                return .failure(.init(.fail, why))
            }
        } catch {
            return .failure(.init(.fail, "probe failed: \(error)"))
        }
    }

    /// The reward workers of a learner configuration, each probed with the keys it names (`Doctor.rewardWorkers`
    /// gives the verdicts). The key a learner presents by default is its own `--key`, which doctor does not
    /// have: then nothing is probed, and the check says how to give it.
    package static func rewardWorkers(_ settings: RunConfig.RewardWorkers, timeout: Double) -> [Doctor.Check] {
        guard settings.enabled else { return [] }
        if !settings.serverKeys.isEmpty && settings.clientKey.isEmpty {
            return [Doctor.Check("reward_workers", .warn, "not probed: the learner presents its own --key to its workers; give doctor the same file with --set reward_workers.client_key=LEARNER.key_secret")]
        }
        let keys: RewardWorkerKeys?
        do { keys = try RewardWorkerKeys.resolve(settings, learner: .insecurePlaintext) } catch {
            return [Doctor.Check("reward_workers", .fail, "\(error)")]
        }
        return Doctor.rewardWorkers(settings, curve: keys != nil,
                                    answers: rewardWorkerProbes(endpoints: settings.endpoints, keys: keys, version: settings.version, timeout: timeout))
    }

    /// Asks every reward worker for one score at once, as the learner would (over CURVE with `keys`): a
    /// request with an empty completion and no reference to each, resent until its connection is up,
    /// all answered or `timeout` passed.
    package static func rewardWorkerProbes(endpoints: [String], keys: RewardWorkerKeys?, version: String,
                                           timeout: Double) -> [Result<Doctor.RewardWorkerAnswer, Doctor.ProbeFailure>] {
        let workers: ZeroMQRewardWorkers
        do { workers = try ZeroMQRewardWorkers(endpoints: endpoints, keys: keys) } catch {
            return endpoints.map { _ in .failure(.init(.fail, "probe failed: \(error)")) }
        }
        defer { workers.close() }
        var request = Troupe_V1_RewardRequest()
        request.protocol = rewardProtocolVersion
        request.requestID = UInt64(getpid())
        request.rewardVersion = version
        request.prompt = "troupe doctor's probe"
        let started = monotonicSeconds()
        var sent = Array(repeating: false, count: endpoints.count)
        var answers: [Result<Doctor.RewardWorkerAnswer, Doctor.ProbeFailure>?] = Array(repeating: nil, count: endpoints.count)
        while answers.contains(where: { $0 == nil }) && monotonicSeconds() - started < timeout {
            for i in endpoints.indices where !sent[i] { sent[i] = workers.send(request, to: i) }
            for (i, frames) in workers.receive() where answers[i] == nil {
                guard frames.count == 1, let response = try? Troupe_V1_RewardResponse(serializedBytes: frames[0]),
                      response.protocol == rewardProtocolVersion, response.requestID == request.requestID else {
                    answers[i] = .failure(.init(.fail, "answered with something that is not a RewardResponse to the probe (protocol \(rewardProtocolVersion))"))
                    continue
                }
                answers[i] = .success(.init(rewardVersion: response.rewardVersion, error: response.error.isEmpty ? nil : response.error,
                                            seconds: monotonicSeconds() - started))
            }
            usleep(5_000)
        }
        return endpoints.indices.map { i in
            answers[i] ?? .failure(.init(.fail, !sent[i]
                ? (keys == nil ? "no connection within \(timeout) s (not running there, or it serves over CURVE: name its key in reward_workers.server_keys)"
                               : "no connection within \(timeout) s (not running there, another key pair there than reward_workers.server_keys names, or its --allow lacks the key presented: reward_workers.client_key)")
                : "connected, but no answer within \(timeout) s"))
        }
    }

    /// Seconds the learner's wall clock is ahead of this host's, from the timestamps of the log events
    /// it publishes (`learner_stats` comes every second): the largest difference over `timeout`
    /// seconds, since each event's delivery delay only makes it smaller.
    package static func clockProbe(logs: Endpoint, security: ClientSecurity?, timeout: Double) -> Result<Double, Doctor.ProbeFailure> {
        do {
            let context = try ZMQContext(ioThreads: 1)
            defer { context.shutdown() }
            let socket = try ZMQSocket(context, type: .subscribe, linger: .discardUnsent)
            defer { socket.close() }
            try socket.set(SocketProfile.subscriber(limits: .headerOnly, queue: 1000) + (security?.toLearner ?? []))
            try socket.connect(logs)
            let deadline = Deadline.afterMilliseconds(Int(timeout * 1000))
            var best: Double?
            while !deadline.hasPassed {
                guard case .message(let m) = try socket.receiveMessage(deadline: deadline, limits: .headerOnly) else { continue }
                guard case .logEvent(let event) = m.body, event.wallTimeUnixNs != 0 else { continue }
                let skew = Double(event.wallTimeUnixNs) / 1e9 - Date().timeIntervalSince1970
                best = max(best ?? skew, skew)
            }
            guard let best else { return .failure(.init(.warn, "no log event within \(timeout) s")) }
            return .success(best)
        } catch {
            return .failure(.init(.warn, "log stream: \(error)"))
        }
    }
}
