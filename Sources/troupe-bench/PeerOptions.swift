import ArgumentParser
import Foundation
import TroupeBench

/// The options every benchmark with peer ratios shares: where the peers' figures are, how old they
/// may be, and how noisy a figure may be before it gives no ratio.
struct PeerOptions: ParsableArguments {
    static let defaultPath = "bench/peers/results.json"

    @Option(name: .long, help: ArgumentHelp("The peers' results, written by bench/peers/run.sh on this machine (default \(PeerOptions.defaultPath) when it exists).",
                                            valueName: "file"))
    var peers: String?

    @Option(name: .customLong("peers-max-age"), help: ArgumentHelp("Hours the peers' results stay comparable (default 12).", valueName: "hours"))
    var peersMaxAgeHours = 12.0

    @Option(name: .customLong("max-spread"), help: ArgumentHelp("Largest interquartile range / median of a figure's repeats, ours or the peer's, that still gives a ratio (default \(RuntimeTargets.maxTrialSpread)); rl-step's own targets use it too.",
                                                                valueName: "fraction"))
    var maxSpread = RuntimeTargets.maxTrialSpread

    func validate() throws {
        guard peersMaxAgeHours > 0, peersMaxAgeHours.isFinite else { throw ValidationError("--peers-max-age must be a positive number of hours") }
        guard maxSpread >= 0, maxSpread.isFinite else { throw ValidationError("--max-spread must be a fraction ≥ 0, got \(maxSpread)") }
        if let peers {
            let results = try PeerResults.load(peers)
            if let problem = results.sittingProblem(machine: .current(), now: Date(), maxAgeHours: peersMaxAgeHours) {
                throw ValidationError(problem)
            }
        }
    }

    /// The peers' results when they are from this sitting; otherwise nil and the reason, which the
    /// benchmark prints in place of each ratio. A file named by --peers was checked in `validate()`.
    func load() -> (results: PeerResults?, problem: String?) {
        let path = peers ?? Self.defaultPath
        guard peers != nil || FileManager.default.fileExists(atPath: path) else {
            return (nil, "no peer results at \(path): run bench/peers/run.sh for ratios")
        }
        do {
            let results = try PeerResults.load(path)
            if let problem = results.sittingProblem(machine: .current(), now: Date(), maxAgeHours: peersMaxAgeHours) {
                return (nil, problem)
            }
            return (results, nil)
        } catch {
            return (nil, "\(error)")
        }
    }
}
