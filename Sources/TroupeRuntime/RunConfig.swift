import Foundation
import TroupeJSON
import TroupeModel
import TroupeRL
import TroupeTensor

/// The whole configuration of a run, read from a JSON file with `section.key=value` overrides from the
/// command line. Unknown keys, wrong types and out-of-range values are errors naming the key (and the
/// line and column in the file); the resolved configuration is printed and frozen in the run directory.
/// The fields' initial values are the defaults; `RunConfig.settings` (RunConfigFields.swift) declares
/// each key's name, range and doc, from which docs/configuration.md's table is generated.
public struct RunConfig: Sendable {
    public struct Run: Sendable, Equatable {
        public var name = "ttrl"
        public var seed: UInt64 = 1
        public var maxSteps = 1500
        /// Run directory; default `runs/<name>`.
        public var directory: String?
    }
    public struct Model: Sendable, Equatable {
        /// A Hugging Face style model directory.
        public var path = "models/arith-base"
    }
    public struct Task: Sendable, Equatable {
        /// A built-in generated task (`arith:add2`, docs/tasks.md) or nil when `file` is set.
        public var spec: String? = "arith:add2"
        /// A JSONL file of `{"prompt", "answer"?}` lines.
        public var file: String?
        public var split = "test"
        public var count = 64
        /// What to do with bad lines of `file`: "refuse" or "skip".
        public var badLines = "refuse"
        /// Test-time mode: answers are held back from the learner and the reward (used for monitoring only).
        public var labelFree = true
    }
    public struct Sampling: Sendable, Equatable {
        public var temperature = 1.0
        public var topK = 0
        public var topP = 1.0
        public var maxNewTokens = 8
        /// Completions per prompt (G).
        public var groupSize = 16
    }
    public struct Learner: Sendable, Equatable {
        /// Groups per optimizer step.
        public var batchGroups = 8
        /// Versions a group may lag behind the learner; 0 is synchronous on-policy training.
        public var maxStaleness = 0
        public var publishEvery = 1
        public var checkpointEvery = 5
        /// Packed tokens per forward/backward micro-batch (bounds activation memory).
        public var microBatchTokens = 4096
        public var leaseSize = 1
        public var leaseTimeoutSeconds = 60.0
        public var heartbeatTimeoutSeconds = 10.0
        /// Groups an actor may have unacknowledged at once. An ack waits for the run log's fsync
        /// (group commit, ~0.25 ms here), so the window must cover several fsyncs for an actor that
        /// produces fast: with 4, simulated actors on 1 Gbit/s links got 78% of the wire's rate, with 16
        /// all of it (docs/benchmarks.md). Unacknowledged groups are resent after a reconnect and
        /// de-duplicated, so a larger window loses nothing.
        public var credit = 16
        public var threads = 1
        /// Where published weights go as files that actors on this host map instead of fetching
        /// chunks (a tmpfs); empty: ZeroMQ chunks for every actor.
        public var sharedMemoryDirectory = "/dev/shm"
        /// Actors each node of the weight relay tree serves (RelayPlan): 1 is a chain, 0 has every
        /// chunk-fetching actor fetch from the learner.
        public var relayFanout = 1
    }
    public struct Endpoints: Sendable, Equatable {
        /// Address the learner's sockets bind to (`*` for every interface).
        public var bindHost = "127.0.0.1"
        /// Address actors and monitors are told to connect to (never 0.0.0.0).
        public var advertiseHost = "127.0.0.1"
        public var controlPort = 5555
        public var weightsPort = 5556
        public var announcePort = 5557
        /// Monitors subscribe here (the proxy's XPUB side).
        public var logsPort = 5558
        /// Processes publish their log events here (the proxy's XSUB side).
        public var logsInPort = 5559
    }
    public struct Actors: Sendable, Equatable {
        /// Actors `troupe run` starts.
        public var count = 2
        public var threads = 1
    }
    public struct Eval: Sendable, Equatable {
        /// Evaluate every this many steps (0: only at the start and the end).
        public var every = 150
        public var samples = 16
        public var temperature = 1.0
    }

    public var run = Run()
    public var model = Model()
    public var task = Task()
    public var algorithm: AlgorithmOptions
    /// The algorithm section as written (preset plus overrides), kept for the frozen config.
    public var algorithmJSON: JSONValue
    public var optimizer = AdamWOptions(learningRate: 3e-5, weightDecay: 0, maxGradNorm: 1.0)
    /// Learning-rate schedule over `run.max_steps`: linear warm-up, then constant or cosine decay to 10%.
    public var schedule = Schedule()
    public struct Schedule: Sendable, Equatable {
        public var kind = "constant"
        public var warmupSteps = 0

        /// The learning rate of step `step` (1-based) of `total`, for a peak of `peak`: the schedule SFT
        /// uses too (`LearningRateSchedule`, cosine decay to 10%).
        public func learningRate(peak: Double, step: Int, total: Int) -> Double {
            LearningRateSchedule(peak: peak, warmupSteps: warmupSteps, totalSteps: total,
                                 decay: kind == "cosine" ? .cosine : .constant, finalRatio: 0.1).rate(step: step)
        }
    }
    public var sampling = Sampling()
    public var learner = Learner()
    public var endpoints = Endpoints()
    public var actors = Actors()
    public var eval = Eval()

    public var runDirectory: String { run.directory ?? "runs/\(run.name)" }

    /// The built-in algorithm: TTRL's majority-vote reward with CISPO, every sample of a group voting
    /// and trained on (`group_size` decides how many), and no KL term, which would cost a second forward
    /// pass on a reference model for a coefficient of 0.001. Naming a preset (in a file's `algorithm`
    /// section or with `--set algorithm.preset=…`) starts from that preset alone instead.
    public static let defaultAlgorithm: JSONValue = [
        "preset": "ttrl", "loss.kind": "cispo", "kl.coefficient": 0,
        "sampling.samples_per_prompt": nil, "sampling.train_samples": nil,
    ]

    public init() {
        algorithmJSON = RunConfig.defaultAlgorithm
        algorithm = (try? AlgorithmOptions.resolve(algorithmJSON)) ?? AlgorithmOptions()
    }
}

/// A refused configuration: the key, what is wrong, and where it was written when that is known
/// (`config.json:3:14`, or `--set run.max_steps=ten`).
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let key: String
    public let problem: String
    public var location: JSONLocation?
    public init(key: String, problem: String, location: JSONLocation? = nil) {
        self.key = key
        self.problem = problem
        self.location = location
    }
    public var description: String {
        guard let location else { return "config key \(key): \(problem)" }
        return "\(location): \(key): \(problem)"
    }
}
