import Foundation
import TroupeJSON

/// The peers' side of the benchmarks, measured by `bench/peers/run.sh` on this machine and read by
/// `troupe bench` to print ratios from one sitting (docs/benchmarks.md, "The peers' side"). A ratio is
/// refused, with the reason, when the file was written on another machine or boot, is older than the
/// allowed age, or its figure is missing or spread too widely.
package struct PeerResults: Sendable {
    package static let format = "troupe-peers/1"

    /// One peer figure: every measured repeat, in `unit`.
    package struct Figure: Sendable, Equatable {
        package let peer: String
        package let unit: String
        package let values: [Double]
        package var median: Double { BenchStats.median(values) }
        package var spread: Double { BenchStats.relativeSpread(values) }
    }

    package let path: String
    package let machine: MachineFingerprint
    package let writtenAt: Date
    package let software: [String: String]
    package let figures: [String: Figure]

    /// Parses the file; every malformed field is an error naming it.
    package static func load(_ path: String) throws -> PeerResults {
        guard let data = FileManager.default.contents(atPath: path) else { throw PeerResultsError(path, "cannot read the file") }
        let document: JSONValue
        do { document = try JSONValue.parse(data, source: path) } catch { throw PeerResultsError(path, "not JSON: \(error)") }
        guard document["format"]?.string == format else {
            throw PeerResultsError(path, "format is \(document["format"].map { "\($0)" } ?? "missing"), expected \"\(format)\"")
        }
        guard let unixTime = document["unix_time"]?.double, unixTime.isFinite else { throw PeerResultsError(path, "unix_time is missing") }
        guard let m = document["machine"]?.object, let cpu = m["cpu_model"]?.string, let cpus = m["cpus"]?.int,
              let machineId = m["machine_id"]?.string, let bootId = m["boot_id"]?.string else {
            throw PeerResultsError(path, "machine needs cpu_model, cpus, machine_id and boot_id")
        }
        var software: [String: String] = [:]
        for (k, v) in document["software"]?.object ?? [:] { software[k] = v.string ?? "\(v)" }
        guard let entries = document["figures"]?.object else { throw PeerResultsError(path, "figures is missing") }
        var figures: [String: Figure] = [:]
        for (key, value) in entries {
            guard let peer = value["peer"]?.string, let unit = value["unit"]?.string,
                  let values = value["values"]?.array?.map(\.double), !values.isEmpty,
                  values.allSatisfy({ $0 != nil && $0!.isFinite && $0! > 0 }) else {
                throw PeerResultsError(path, "figures.\(key) needs peer, unit and a non-empty list of positive values")
            }
            figures[key] = Figure(peer: peer, unit: unit, values: values.map { $0! })
        }
        return PeerResults(path: path, machine: MachineFingerprint(cpuModel: cpu, cpus: cpus, machineId: machineId, bootId: bootId),
                           writtenAt: Date(timeIntervalSince1970: unixTime), software: software, figures: figures)
    }

    /// Why these figures cannot be compared with ours measured now on `machine`, or nil when they can.
    package func sittingProblem(machine current: MachineFingerprint, now: Date, maxAgeHours: Double) -> String? {
        if let difference = machine.difference(from: current) { return "\(path) was written on another machine (\(difference))" }
        let age = now.timeIntervalSince(writtenAt) / 3600
        if age > maxAgeHours {
            return String(format: "%@ is %.1f h old, more than --peers-max-age %.1f h: run bench/peers/run.sh again", path, age, maxAgeHours)
        }
        if age < -0.1 { return "\(path) is dated in the future" }
        return nil
    }
}

package struct PeerResultsError: Error, CustomStringConvertible {
    package let description: String
    package init(_ path: String, _ problem: String) { description = "peer results \(path): \(problem)" }
}

/// What identifies the machine and its current boot: a ratio is only honest between figures from
/// the same boot of the same machine (a reboot or a migrated VM changes the figures).
package struct MachineFingerprint: Sendable, Equatable {
    package let cpuModel: String
    package let cpus: Int
    package let machineId: String
    package let bootId: String

    package init(cpuModel: String, cpus: Int, machineId: String, bootId: String) {
        self.cpuModel = cpuModel
        self.cpus = cpus
        self.machineId = machineId
        self.bootId = bootId
    }

    /// This machine's, read from /proc and /etc (empty strings where a file is missing).
    package static func current() -> MachineFingerprint {
        func read(_ path: String) -> String {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var model = "", cpus = 0
        for line in read("/proc/cpuinfo").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "processor" { cpus += 1 }
            if parts[0] == "model name" && model.isEmpty { model = parts[1] }
        }
        return MachineFingerprint(cpuModel: model, cpus: cpus, machineId: read("/etc/machine-id"),
                                  bootId: read("/proc/sys/kernel/random/boot_id"))
    }

    /// The first field that differs, named, or nil when the two are the same machine and boot.
    package func difference(from other: MachineFingerprint) -> String? {
        if cpuModel != other.cpuModel { return "CPU \"\(cpuModel)\", this one \"\(other.cpuModel)\"" }
        if cpus != other.cpus { return "\(cpus) CPUs, this one \(other.cpus)" }
        if machineId != other.machineId { return "machine-id \(machineId), this one \(other.machineId)" }
        if bootId != other.bootId { return "boot \(bootId), this one \(other.bootId): the machine was restarted since" }
        return nil
    }
}

/// Ours against a peer's figure from the same sitting, or the reason there is no ratio.
package enum PeerComparison: Sendable, Equatable {
    case ratio(Double, peer: Double)
    case refused(String)

    /// `ours` over the peer's median. `maxSpread` bounds the spread (interquartile range / median) of
    /// both sides' repeats; a figure noisier than that gives no ratio.
    /// `unavailable` is the reason when `peers` is nil.
    package static func compare(ours: [Double], peers: PeerResults?, unavailable: String = "no peer results (run bench/peers/run.sh)",
                                key: String, maxSpread: Double) -> PeerComparison {
        guard let peers else { return .refused(unavailable) }
        guard let figure = peers.figures[key] else { return .refused("\(peers.path) has no figure \(key)") }
        guard !ours.isEmpty, ours.allSatisfy({ $0.isFinite && $0 > 0 }) else { return .refused("no figure of ours") }
        if let problem = RuntimeTargets.spreadProblem("our repeats", spread: BenchStats.relativeSpread(ours), maxSpread: maxSpread)
            ?? RuntimeTargets.spreadProblem("the peer's repeats", spread: figure.spread, maxSpread: maxSpread) {
            return .refused(problem)
        }
        return .ratio(BenchStats.median(ours) / figure.median, peer: figure.median)
    }
}
