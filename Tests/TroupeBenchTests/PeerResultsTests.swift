import Foundation
import Testing
import TroupeBench

/// The peers' results file: what it must hold, when its figures are from the same sitting as ours,
/// and when a ratio is refused.
@Suite struct PeerResultsTests {
    let here = MachineFingerprint(cpuModel: "Test CPU", cpus: 2, machineId: "m1", bootId: "b1")

    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("peers-\(UUID().uuidString).json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func document(unixTime: Double = 1_000_000, machine: String = #"{"cpu_model": "Test CPU", "cpus": 2, "machine_id": "m1", "boot_id": "b1"}"#,
                  figures: String = #"{"rl_step/trl_grpo": {"peer": "TRL GRPOTrainer", "unit": "seconds_per_step", "values": [10.0, 11.0, 10.5]}}"#) -> String {
        #"{"format": "troupe-peers/1", "unix_time": \#(unixTime), "machine": \#(machine), "software": {"torch": "2.15.0"}, "figures": \#(figures)}"#
    }

    @Test func aFileFromThisBootWithinItsAgeGivesRatiosFromTheMedians() throws {
        let path = try write(document())
        let peers = try PeerResults.load(path)
        #expect(peers.software["torch"] == "2.15.0")
        #expect(peers.figures["rl_step/trl_grpo"]?.median == 10.5)
        #expect(peers.sittingProblem(machine: here, now: Date(timeIntervalSince1970: 1_000_000 + 3600), maxAgeHours: 12) == nil)
        let comparison = PeerComparison.compare(ours: [5.0, 5.5, 5.25], peers: peers, key: "rl_step/trl_grpo", maxSpread: 0.3)
        #expect(comparison == .ratio(0.5, peer: 10.5))
    }

    @Test func anotherMachineOrBootOrAnOldFileIsRefusedNamingWhy() throws {
        let peers = try PeerResults.load(try write(document()))
        let now = Date(timeIntervalSince1970: 1_000_000 + 60)
        let cases: [(MachineFingerprint, String)] = [
            (MachineFingerprint(cpuModel: "Other CPU", cpus: 2, machineId: "m1", bootId: "b1"), #"CPU "Test CPU", this one "Other CPU""#),
            (MachineFingerprint(cpuModel: "Test CPU", cpus: 16, machineId: "m1", bootId: "b1"), "2 CPUs, this one 16"),
            (MachineFingerprint(cpuModel: "Test CPU", cpus: 2, machineId: "m2", bootId: "b1"), "machine-id m1, this one m2"),
            (MachineFingerprint(cpuModel: "Test CPU", cpus: 2, machineId: "m1", bootId: "b2"), "the machine was restarted since"),
        ]
        for (machine, words) in cases {
            let problem = try #require(peers.sittingProblem(machine: machine, now: now, maxAgeHours: 12))
            #expect(problem.contains("another machine") && problem.contains(words), "\(problem)")
        }
        let old = try #require(peers.sittingProblem(machine: here, now: Date(timeIntervalSince1970: 1_000_000 + 13 * 3600), maxAgeHours: 12))
        #expect(old.contains("13.0 h old, more than --peers-max-age 12.0 h"))
        let future = try #require(peers.sittingProblem(machine: here, now: Date(timeIntervalSince1970: 1_000_000 - 3600), maxAgeHours: 12))
        #expect(future.contains("dated in the future"))
    }

    @Test func malformedFilesAreRefusedNamingTheField() throws {
        let cases: [(String, String)] = [
            ("not json", "not JSON"),
            (#"{"format": "troupe-peers/2"}"#, "format is \"troupe-peers/2\", expected \"troupe-peers/1\""),
            (document().replacingOccurrences(of: #""unix_time": 1000000.0, "#, with: ""), "unix_time is missing"),
            (document(machine: #"{"cpu_model": "Test CPU", "cpus": 2}"#), "machine needs cpu_model, cpus, machine_id and boot_id"),
            (document(figures: #"{"training/small": {"peer": "PyTorch", "unit": "tokens_per_s", "values": []}}"#),
             "figures.training/small needs peer, unit and a non-empty list of positive values"),
            (document(figures: #"{"training/small": {"peer": "PyTorch", "unit": "tokens_per_s", "values": [1000, -1]}}"#),
             "figures.training/small needs"),
        ]
        for (text, words) in cases {
            let path = try write(text)
            #expect(performing: { try PeerResults.load(path) }, throws: { "\($0)".contains(words) && "\($0)".contains(path) })
        }
        #expect(performing: { try PeerResults.load("/nonexistent/peers.json") }, throws: { "\($0)".contains("cannot read the file") })
    }

    @Test func aNoisyOrMissingFigureGivesNoRatio() throws {
        let peers = try PeerResults.load(try write(document(figures: #"""
            {"rl_step/trl_grpo": {"peer": "TRL GRPOTrainer", "unit": "seconds_per_step", "values": [10.0, 16.0, 10.5]},
             "training/small": {"peer": "PyTorch", "unit": "tokens_per_s", "values": [1000]}}
            """#)))
        #expect(PeerComparison.compare(ours: [5, 5, 5], peers: peers, key: "rl_step/trl_grpo", maxSpread: 0.25)
                == .refused("the peer's repeats spread 29% (interquartile range / median), beyond the 25% bound: too noisy to judge"))
        #expect(PeerComparison.compare(ours: [1000, 1600, 1000], peers: peers, key: "training/small", maxSpread: 0.25)
                == .refused("our repeats spread 30% (interquartile range / median), beyond the 25% bound: too noisy to judge"))
        #expect(PeerComparison.compare(ours: [1000, 1100, 1000], peers: peers, key: "training/small", maxSpread: 0.3)
                == .ratio(1.0, peer: 1000))
        if case .refused(let why) = PeerComparison.compare(ours: [5], peers: peers, key: "sampling_batch1/small", maxSpread: 0.3) {
            #expect(why.contains("has no figure sampling_batch1/small"))
        } else {
            Issue.record("a missing figure gave a ratio")
        }
        #expect(PeerComparison.compare(ours: [5], peers: nil, unavailable: "no peer results at x", key: "training/small", maxSpread: 0.3)
                == .refused("no peer results at x"))
        #expect(PeerComparison.compare(ours: [], peers: peers, key: "training/small", maxSpread: 0.3) == .refused("no figure of ours"))
    }

    @Test func theSpreadIsTheInterquartileRangeOverTheMedian() {
        #expect(BenchStats.quantile([4, 1, 3, 2], 0.25) == 1.75 && BenchStats.quantile([4, 1, 3, 2], 0.75) == 3.25)
        #expect(BenchStats.relativeSpread([12.5, 13, 14.5, 15.5, 17]) == (15.5 - 13) / 14.5)
        #expect(BenchStats.relativeSpread([7]) == 0)
        // One outlier among five moves the spread little.
        #expect(BenchStats.relativeSpread([10, 10.2, 10.1, 10.3, 30]) < 0.05)
    }

    @Test func thisMachinesFingerprintIsReadFromTheSystem() {
        let current = MachineFingerprint.current()
        #expect(current.cpus >= 1)
        #expect(current == MachineFingerprint.current())
        #expect(current.difference(from: current) == nil)
    }
}

/// A target is judged only on trials that held still: the first list spread past the bound is named.
@Test func trialsTooFarApartGiveNoVerdict() throws {
    #expect(RuntimeTargets.noiseProblem([("raw", [13_150, 13_160, 13_170, 13_140, 13_155]), ("durable", [12_900, 13_000, 12_950, 12_100, 13_050])]) == nil)
    // One outlier in five moves neither quartile.
    #expect(RuntimeTargets.noiseProblem([("durable", [60, 100, 100, 100, 140])]) == nil)
    let problem = try #require(RuntimeTargets.noiseProblem([("raw", [100, 101, 99]), ("the trials of durable", [60, 80, 100, 120, 140])]))
    #expect(problem.hasPrefix("the trials of durable spread 40%") && problem.contains("25% bound"), "\(problem)")
    // No trials at all is no measurement.
    #expect(RuntimeTargets.noiseProblem([("raw", [])]) != nil)
}
