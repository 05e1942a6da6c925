import ArgumentParser
import Foundation
import Logging
import TroupeFuzz
import TroupeJSON
import TroupeRuntime

/// `troupe-fuzz`: every decoder and handler that takes bytes from outside the process, run on mutated
/// valid inputs (docs/testing.md). Exits 1 at the first failure (the input is written to --out); a
/// crash or hang ends the process with the input written the same way.
@main
struct FuzzCommand: ParsableCommand {
    static func main() {
        // The conversation fuzzer's learner would log every step and every refusal: only the fuzzer speaks.
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        LibFuzzerMode.runIfAsked()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "troupe-fuzz",
        abstract: "Fuzz Troupe's decoders, its learner's handlers and a live learner's conversations.",
        discussion: """
        Each target starts from valid inputs and runs --inputs seeded mutations of them; the same --seed \
        gives the same inputs. `conversation` drives a learner (in process, on its in-memory transport) \
        with mutated conversations from hostile peers and checks that a well-behaved actor is still served. \
        Progress goes to a terminal; piped, one JSON line per target.
        """)

    @Option(name: .long, help: "Targets to run (repeatable; default: all). --list names them.")
    var target: [String] = []

    @Option(name: .long, help: "Mutated inputs per target.")
    var inputs = 100_000

    @Option(name: .long, help: "Messages the conversation fuzzer sends.")
    var messages = 20_000

    @Option(name: .long, help: "Seed of the mutations.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Where failing inputs are written.")
    var out = "fuzz-failures"

    @Option(name: .long, help: "The model directory the conversation fuzzer's learner trains.")
    var model = "models/arith-base"

    @Option(name: .long, help: "Seconds one input may take before it counts as a hang.")
    var hangSeconds: Double = 10

    @Flag(name: .long, help: "List the targets and exit.")
    var list = false

    @Option(name: .long, help: "Run one target (--target) on this input file only, as a crash or hang left it.")
    var reproduce: String?

    @Option(name: .long, help: "Write one target's (--target) valid inputs into this folder, one file each (a libFuzzer corpus), and exit.")
    var seedsTo: String?

    func validate() throws {
        guard inputs >= 0 else { throw ValidationError("--inputs must be ≥ 0") }
        guard messages >= 0 else { throw ValidationError("--messages must be ≥ 0") }
        guard hangSeconds > 0 else { throw ValidationError("--hang-seconds must be > 0") }
    }

    func run() throws {
        let targets = try FuzzTarget.all()
        let names = targets.map(\.name) + ["conversation"]
        if list {
            print(names.joined(separator: "\n"))
            return
        }
        if let unknown = target.first(where: { !names.contains($0) }) {
            throw ValidationError("--target \(unknown): no such target (\(names.count) targets; --list names them)")
        }
        if let folder = seedsTo {
            guard target.count == 1, let only = targets.first(where: { $0.name == target[0] }) else {
                throw ValidationError("--seeds-to needs exactly one --target other than conversation")
            }
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (i, seed) in only.seeds.enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: folder + "/seed-\(i)"))
            }
            return
        }
        if let file = reproduce {
            guard target.count == 1, let only = targets.first(where: { $0.name == target[0] }) else {
                throw ValidationError("--reproduce needs exactly one --target other than conversation")
            }
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("--reproduce: cannot read \(file)") }
            only.run(Array(data))
            print("\(only.name): \(file) ran to completion")
            return
        }
        let chosen = target.isEmpty ? names : target
        let terminal = isatty(STDOUT_FILENO) == 1
        var runner = FuzzRunner(inputs: inputs, seed: seed, outputDirectory: out)
        runner.hangSeconds = hangSeconds
        for t in targets where chosen.contains(t.name) {
            let report = try runner.run(t) { done in
                if terminal { print("\r\(t.name): \(done)/\(inputs)", terminator: ""); fflush(stdout) }
            }
            emit(terminal, ["target": report.target, "inputs": "\(report.inputs)", "seconds": String(format: "%.1f", report.seconds),
                            "slowest_input_ms": String(format: "%.2f", report.slowestInputMs),
                            "resident_mb": String(format: "%.0f", report.residentMB), "result": "ok"])
        }
        if chosen.contains("conversation") {
            let fuzzer = ConversationFuzzer(modelDirectory: model, messages: messages, seed: seed)
            let report = try fuzzer.run { sent in
                if terminal { print("\rconversation: \(sent)/\(messages)", terminator: ""); fflush(stdout) }
            }
            var fields = ["target": "conversation", "inputs": "\(report.messages)", "seconds": String(format: "%.1f", report.seconds),
                          "honest_groups": "\(report.honestGroups)", "steps": "\(report.steps)",
                          "honest_wait_s": "\(report.honestWaitSeconds)", "result": "ok"]
            for (reason, n) in report.refusedByReason { fields["refused/\(reason)"] = "\(n)" }
            emit(terminal, fields)
        }
    }

    private func emit(_ terminal: Bool, _ fields: [String: String]) {
        if terminal {
            print("\r" + fields.keys.sorted().map { "\($0)=\(fields[$0]!)" }.joined(separator: " "))
        } else {
            let object = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, JSONValue.string($0.value)) })
            print(JSONValue.object(object).serializedString(pretty: false))
        }
        fflush(stdout) // a crash in the next target must not take this line with it
    }
}
