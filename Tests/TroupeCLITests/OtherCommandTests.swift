import ArgumentParser
import Foundation
import Testing
import TroupeCLI
import TroupeRuntime

/// The commands that do not run a model directly: tokenize, report, algo, replay, run, monitor, the
/// run's processes (learner, actor, config) and the benchmarks.
@Suite struct OtherCommandTests {
    let scratch: Scratch
    init() throws { scratch = try Scratch() }

    @Test func rootCommandListsEverySubcommand() {
        let names = Troupe.configuration.subcommands.map { $0.configuration.commandName ?? "" }
        #expect(Set(names) == ["report", "tokenize", "algo", "generate", "score", "sft", "bench", "learner", "actor",
                               "eval", "replay", "run", "monitor", "config", "keygen", "doctor", "probe"])
        expectUsageError(["frobnicate"], "Unexpected argument 'frobnicate'")
    }

    // MARK: tokenize

    @Test func tokenizeDefaults() throws {
        let encode = try parse(["tokenize", "--model", scratch.model, "Hello"], as: TokenizeCommand.self)
        #expect(encode.model == scratch.model && encode.tokenizer == nil && encode.text == "Hello")
        #expect(encode.ids == nil && !encode.decode && !encode.bos && !encode.noSpecialTokens)
        let decode = try parse(["tokenize", "--tokenizer", scratch.pairs, "--decode", "1, 2"], as: TokenizeCommand.self)
        #expect(decode.decode && decode.text == "1, 2")
    }

    @Test func tokenizeRefusals() {
        let model = ["tokenize", "--model", scratch.model]
        expectUsageError(["tokenize", "x"], "give --model DIR or --tokenizer FILE")
        expectUsageError(["tokenize", "--model", scratch.model, "--tokenizer", scratch.pairs, "x"], "give only one of --model and --tokenizer")
        expectUsageError(model, "give the text to encode, or --ids to decode")
        expectUsageError(model + ["--decode"], "--decode needs the ids to decode as the argument")
        expectUsageError(model + ["--ids", "1", "x"], "give either text to encode or --ids to decode, not both")
        expectUsageError(model + ["--ids", "1,a"], "--ids: \"a\" is not a token id")
        expectUsageError(model + ["--decode", "1 b"], "TEXT: \"b\" is not a token id")
        expectUsageError(model + ["--ids", "1", "--bos"], "--bos and --no-special-tokens apply to encoding only")
        // Missing files are command-line mistakes (64), as in the other commands.
        expectUsageError(["tokenize", "--model", scratch.missing, "x"], "--model \(scratch.missing) does not exist")
        expectUsageError(["tokenize", "--tokenizer", scratch.missing, "x"], "--tokenizer \(scratch.missing) does not exist")
        expectUsageError(["tokenize", "--tokenizer", scratch.model, "x"], "--tokenizer \(scratch.model) is a directory")
    }

    // MARK: report

    @Test func reportDefaultsAndRefusals() throws {
        let command = try parse(["report", scratch.run], as: ReportCommand.self)
        #expect(command.runs == [scratch.run] && command.out == nil && command.title == nil)
        #expect(command.screenshot == nil && command.screenshotWidth == 1280)
        expectUsageError(["report"], "Missing expected argument '<runs> ...'")
        expectUsageError(["report", scratch.missing], "run directory \(scratch.missing) does not exist")
        expectUsageError(["report", scratch.pairs], "\(scratch.pairs) is not a directory")
        expectUsageError(["report", scratch.model], "metrics.jsonl does not exist; is \(scratch.model) a run directory?")
        expectUsageError(["report", scratch.run, "--out", "dir/"], "--out must name a file, got the directory dir/")
        expectUsageError(["report", scratch.run, "--screenshot", "page.jpg"], "--screenshot must name a .png file")
        expectUsageError(["report", scratch.run, "--screenshot", scratch.root + "/s.png", "--screenshot-width", "100"], "--screenshot-width must be in 320...4000, got 100")
        expectUsageError(["report", scratch.run, "--screenshot-width", "wide"], "The value 'wide' is invalid for '--screenshot-width")
    }

    // MARK: algo

    @Test func algoDefaultsAndRefusals() throws {
        let command = try parse(["algo", "-"], as: AlgoCommand.self)
        #expect(command.input == "-" && command.preset == nil && command.showPreset == nil && !command.compact)
        #expect(try parse(["algo", "--show-preset", "ttrl"], as: AlgoCommand.self).showPreset == "ttrl")
        expectUsageError(["algo"], "Give an input file (or - for stdin), or --show-preset NAME.")
        expectUsageError(["algo", "-", "--show-preset", "ttrl"], "--show-preset takes no input file.")
        expectUsageError(["algo", scratch.root], "Cannot read \(scratch.root): is a directory, not a file.")
        expectUsageError(["algo", "--show-preset", "nope"], "Unknown preset \"nope\"; known presets: ")
        expectUsageError(["algo", "-", "--preset", "nope"], "Unknown preset \"nope\"")
        expectUsageError(["algo", scratch.missing], "Cannot read \(scratch.missing): No such file or directory.")
    }

    // MARK: replay, run, monitor

    @Test func replayDefaultsAndRefusals() throws {
        let command = try parse(["replay", scratch.run], as: ReplayCommand.self)
        #expect(command.runDirectory == scratch.run && !command.verify)
        #expect(try parse(["replay", scratch.run, "--verify"], as: ReplayCommand.self).verify)
        expectUsageError(["replay"], "Missing expected argument '<run-directory>'")
        expectUsageError(["replay", scratch.model], "\(scratch.model) has no run.log")
    }

    @Test func runDefaultsAndRefusals() throws {
        let command = try parse(["run"], as: RunCommand.self)
        #expect(command.actors == nil && !command.noEval)
        #expect(try parse(["run", "--actors", "64", "--no-eval", "--set", "run.max_steps=2"], as: RunCommand.self).actors == 64)
        expectUsageError(["run", "--actors", "0"], "--actors must be in 1 … 1024 (as actors.count), got 0")
        expectUsageError(["run", "--actors", "1025"], "--actors must be in 1 … 1024 (as actors.count), got 1025")
        expectUsageError(["run", "--actors", "many"], "The value 'many' is invalid for '--actors")
        #expect(try parse(["run", "--resume", scratch.run, "--actors", "3", "--set", "run.max_steps=9"], as: RunCommand.self).resume == scratch.run)
        for (option, value) in [("--model", "m"), ("--file", "t.jsonl"), ("--config", "c.json")] {
            expectUsageError(["run", "--resume", scratch.run, option, value], "\(option) cannot be given with --resume")
        }
        // A run directory that is not there is a command-line mistake (64), for the learner too.
        for command in ["run", "learner"] {
            expectUsageError([command, "--resume", scratch.missing], "--resume: run directory \(scratch.missing) does not exist")
            expectUsageError([command, "--resume", scratch.pairs], "--resume: \(scratch.pairs) is a file")
        }
    }

    @Test func monitorDefaultsAndRefusals() throws {
        let command = try parse(["monitor", "tcp://127.0.0.1:5558"], as: MonitorCommand.self)
        #expect(command.endpoint == "tcp://127.0.0.1:5558" && !command.json && command.duration == nil)
        #expect(!command.untilFinished && command.refresh == 4)
        expectUsageError(["monitor"], "give ENDPOINT (the learner's log endpoint) or --learner-file")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--learner-file", "run"], "give ENDPOINT or --learner-file, not both")
        expectUsageError(["monitor", "--learner-file", "run", "--connect-timeout", "0"], "--connect-timeout must be a positive number of seconds")
        #expect(try parse(["monitor", "--learner-file", "run"], as: MonitorCommand.self).learnerFile == "run")
        expectUsageError(["monitor", "nowhere"], "ENDPOINT: ")
        expectUsageError(["monitor", "inproc://logs"], "ENDPOINT: inproc endpoints exist only inside one process")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--duration", "0"], "--duration must be a positive number of seconds up to 1e9")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--duration", "1e16"], "--duration must be a positive number of seconds up to 1e9")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--refresh", "100"], "--refresh must be between 0.5 and 30")
    }

    /// A negative number after an option is its value, refused by the option's own check rather than
    /// read as an unknown flag ("Missing value for '--duration'").
    @Test func negativeValuesAreTheOptionsOwn() {
        #expect(Troupe.joiningNegativeValues(["monitor", "--duration", "-1", "--refresh", "-0.5", "--", "--x", "-2"])
                == ["monitor", "--duration=-1", "--refresh=-0.5", "--", "--x", "-2"])
        #expect(Troupe.joiningNegativeValues(["run", "-v", "-1", "--set=a", "-2"]) == ["run", "-v", "-1", "--set=a", "-2"])
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--duration", "-1"], "--duration must be a positive number of seconds up to 1e9")
    }

    // MARK: learner, actor, config

    @Test func runProcessesParse() throws {
        #expect(String(describing: type(of: try Troupe.parseAsRoot(["learner", "--set", "run.max_steps=2"]))) == "LearnerCommand")
        #expect(String(describing: type(of: try Troupe.parseAsRoot(["learner", "--resume", scratch.run]))) == "LearnerCommand")
        #expect(String(describing: type(of: try Troupe.parseAsRoot(["config", "--config", scratch.pairs]))) == "ConfigCommand")
        #expect(String(describing: type(of: try Troupe.parseAsRoot(["actor", "--learner", "tcp://127.0.0.1:5555"]))) == "ActorCommand")
        // One configuration file: a second --config is refused, not silently preferred.
        expectUsageError(["config", "--config", scratch.pairs, "--config", scratch.pairs], "--config is given 2 times")
    }

    /// A configuration file that is not JSON (a TOML one, say) or cannot be read says what it must be, or why.
    @Test func configFilesThatCannotBeReadSayWhy() throws {
        let toml = scratch.run + "/config.toml"
        try Data("[run]\nname = \"x\"\n".utf8).write(to: URL(fileURLWithPath: toml))
        let refused = { (path: String) -> String in
            do { _ = try RunConfig.load(path: path, overrides: []); return "accepted" } catch { return "\(error)" }
        }
        #expect(refused(toml).contains("a configuration file is one JSON object, `{…}` (TOML is not accepted"))
        #expect(refused(scratch.run + "/absent.json").contains("cannot read \(scratch.run)/absent.json: No such file or directory"))
        // A run directory's config.json (replay, resume) is no --config: errors name the file alone.
        let frozen = { (path: String) -> String in
            do { _ = try RunConfig.loadFrozen(path: path); return "accepted" } catch { return "\(error)" }
        }
        #expect(frozen(toml).hasPrefix("\(toml):1:") && !frozen(toml).contains("--config") && !frozen(toml).contains("TOML"), "\(frozen(toml))")
        #expect(frozen(scratch.run + "/absent.json") == "\(scratch.run)/absent.json: cannot be read: No such file or directory")
    }

    @Test func actorRefusals() {
        let actor = ["actor", "--learner", "tcp://127.0.0.1:5555"]
        expectUsageError(["actor"], "give --learner tcp://HOST:PORT or --learner-file RUN_DIR/endpoints.json")
        expectUsageError(actor + ["--learner-file", "run"], "give --learner or --learner-file, not both")
        expectUsageError(["actor", "--learner", "nowhere"], "--learner: ")
        expectUsageError(["actor", "--learner-file", ""], "--learner-file must not be empty")
        expectUsageError(actor + ["--connect-timeout", "0"], "--connect-timeout must be a positive number of seconds")
        expectUsageError(actor + ["--learner-gone-timeout", "0"], "--learner-gone-timeout must be a positive number of seconds")
        expectUsageError(actor + ["--learner-gone-timeout", "inf"], "--learner-gone-timeout must be a positive number of seconds")
        expectUsageError(actor + ["--connect-timeout", "soon"], "The value 'soon' is invalid for '--connect-timeout")
        expectUsageError(actor + ["--identity", "a#b"], "--identity must be non-empty and without '#'")
        expectUsageError(actor + ["--relay-advertise", "127.0.0.1", "--no-relay"], "--relay-advertise and --no-relay contradict each other")
    }

    @Test func doctorRefusals() throws {
        #expect(String(describing: type(of: try Troupe.parseAsRoot(["doctor"]))) == "DoctorCommand", "doctor runs without a learner")
        // With an endpoints file the learner's key may come from it.
        #expect(String(describing: type(of: try Troupe.parseAsRoot(["actor", "--learner-file", "run", "--key", scratch.file]))) == "ActorCommand")
        expectUsageError(["doctor", "--learner", "tcp://0.0.0.0:5555"], "--learner: ")
        expectUsageError(["doctor", "--learner", "tcp://h:1", "--learner-file", "run"], "give --learner or --learner-file, not both")
        expectUsageError(["doctor", "--timeout", "0"], "--timeout must be between 0 and 60 seconds")
    }

    // MARK: keys

    @Test func keyFlagsGoTogetherAndContradictPlaintext() {
        let actor = ["actor", "--learner", "tcp://127.0.0.1:5555"]
        expectUsageError(actor + ["--key", "a.key_secret"], "--key and --learner-key go together")
        expectUsageError(["actor", "--learner-file", "run", "--learner-key", "l.key"], "--key and --learner-key go together")
        expectUsageError(actor + ["--key", "a.key_secret", "--learner-key", "l.key", "--insecure-plaintext"], "--insecure-plaintext contradicts --key")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--learner-key", "l.key"], "--key and --learner-key go together")
        expectUsageError(["learner", "--key", "learner.key_secret"], "--key and --allow go together")
        expectUsageError(["learner", "--key", "l", "--allow", "d", "--insecure-plaintext"], "--insecure-plaintext contradicts --key and --allow")
        expectUsageError(["keygen", "a", "--role", "admin"], "--role must be one of learner, actor, monitor, reward-worker, got admin")
        expectUsageError(["keygen", "../a"], "NAME must be letters, digits")
    }

    @Test func tableAndPresetFlagsDoNotCombineWithWhatTheyIgnore() {
        expectUsageError(["config", "--doc-table", "--algorithm-doc-table"], "give --doc-table or --algorithm-doc-table, not both")
        expectUsageError(["config", "--doc-table", "--set", "run.seed=2"], "--doc-table prints the built-in keys and defaults")
        expectUsageError(["algo", "--show-preset", "ttrl", "--preset", "grpo"], "--show-preset prints the preset it names")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--connect-timeout", "5"], "--connect-timeout is how long to wait for --learner-file")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--json", "--refresh", "10"], "--refresh sets the dashboard's redraws")
        expectUsageError(["doctor", "--learner", "tcp://127.0.0.1:5555", "--connect-timeout", "5"], "--connect-timeout is how long to wait for --learner-file")
        expectUsageError(["report", scratch.run, "--screenshot-width", "1000"], "--screenshot-width goes with --screenshot PNG")
    }

    /// A key file or directory an option names that is missing or of the wrong kind is a command-line
    /// mistake (64) naming the option, in every command that takes keys.
    @Test func missingKeyFilesAreUsageErrorsNamingTheOption() {
        let missing = scratch.missing + ".key_secret"
        expectUsageError(["actor", "--learner", "tcp://127.0.0.1:5555", "--key", missing, "--learner-key", scratch.file],
                         "--key \(missing) does not exist")
        expectUsageError(["actor", "--learner", "tcp://127.0.0.1:5555", "--key", scratch.file, "--learner-key", scratch.model],
                         "--learner-key \(scratch.model) is a directory")
        expectUsageError(["monitor", "tcp://127.0.0.1:5558", "--key", missing, "--learner-key", scratch.file], "--key \(missing) does not exist")
        expectUsageError(["doctor", "--learner", "tcp://127.0.0.1:5555", "--key", missing, "--learner-key", scratch.file],
                         "--key \(missing) does not exist")
        expectUsageError(["learner", "--key", missing, "--allow", scratch.model], "--key \(missing) does not exist")
        expectUsageError(["learner", "--key", scratch.file, "--allow", scratch.missing], "--allow \(scratch.missing) does not exist")
        expectUsageError(["learner", "--key", scratch.file, "--allow", scratch.file], "--allow \(scratch.file) is a file")
        expectUsageError(["keygen", "a1", "--directory", scratch.file], "--directory \(scratch.file) is a file")
        expectUsageError(["report", scratch.run, "--out", scratch.model], "--out must name a file, got the directory \(scratch.model)")
    }

    @Test func keygenWritesAPairThatReadsBack() throws {
        let dir = scratch.run + "-keys"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var command = try parse(["keygen", "a1", "--directory", dir], as: KeygenCommand.self)
        try command.run()
        #expect(FileManager.default.fileExists(atPath: dir + "/a1.key") && FileManager.default.fileExists(atPath: dir + "/a1.key_secret"))
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/a1.key_secret")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        // Never overwritten.
        command = try parse(["keygen", "a1", "--directory", dir], as: KeygenCommand.self)
        #expect(throws: (any Error).self) { try command.run() }
    }

    // MARK: probe, --status-file

    @Test func probeAndStatusFileRefusals() {
        expectUsageError(["probe"], "Missing expected argument '<file>'")
        expectUsageError(["probe", "s.json", "--max-age", "0.5"], "--max-age must be at least 1 s")
        expectUsageError(["probe", "s.json", "--max-age", "nan"], "--max-age must be at least 1 s")
        expectUsageError(["probe", "s.json", "--require", "ready"], "The value 'ready' is invalid for '--require <require>'")
        expectUsageError(["learner", "--status-file", scratch.missing + "/status.json"], "--status-file: directory \(scratch.missing) does not exist")
        expectUsageError(["actor", "--learner", "tcp://127.0.0.1:5555", "--status-file", scratch.run + "/"], "--status-file must name a file")
        // It is replaced every 2 s: only an earlier status file (or an empty file) may be there already.
        expectUsageError(["learner", "--status-file", "/dev/null"], "--status-file: /dev/null exists and is not a status file troupe wrote (not a regular file)")
        expectUsageError(["actor", "--learner", "tcp://127.0.0.1:5555", "--status-file", scratch.pairs],
                         "--status-file: \(scratch.pairs) exists and is not a status file troupe wrote (its content is something else)")
    }

    @Test func probeExitsZeroOnlyForAFreshStatusInTheRequiredState() throws {
        let file = scratch.run + "/status.json"
        func status(_ arguments: [String]) throws -> Int32 {
            let command = try parse(["probe", file] + arguments, as: ProbeCommand.self)
            do { try command.run(); return 0 } catch let exit as ExitCode { return exit.rawValue }
        }
        #expect(try status([]) == 1, "no file yet")
        try StatusFileWriter(path: file).write(.actor(joined: false, learnerSilentSeconds: 3))
        #expect(try status([]) == 0)
        #expect(try status(["--require", "joined"]) == 1)
        #expect(try status(["--require", "listening"]) == 1, "an actor's file never passes a learner's requirement")
        try StatusFileWriter(path: file).write(.actor(writtenUnix: Date().timeIntervalSince1970 - 60, joined: true, learnerSilentSeconds: 0))
        #expect(try status(["--require", "joined"]) == 1, "stale")
        #expect(try status(["--require", "joined", "--max-age", "90"]) == 0)
        try Data("{\"role\": ".utf8).write(to: URL(fileURLWithPath: file))
        #expect(try status([]) == 1, "damaged")
    }

    // MARK: bench (troupe-bench is its own executable: Tests/TroupeIntegrationTests checks its refusals)

    @Test func benchPassesEverythingToTroupeBench() throws {
        let parsed = try Troupe.parseAsRoot(["bench", "model", "--quick", "--help"])
        #expect(String(describing: type(of: parsed)) == "BenchForwarder")
    }

    // MARK: exit statuses

    /// A status thrown as `ExitCode` (a failed replay, learner, actor or run) is the process's status,
    /// with no message.
    @Test func thrownStatusIsTheExitStatus() {
        #expect(Troupe.exitCode(for: ExitCode(3)).rawValue == 3)
        #expect(Troupe.message(for: ExitCode(3)).isEmpty)
        #expect(Troupe.exitCode(for: ExitCode.failure).rawValue == 1)
    }
}
