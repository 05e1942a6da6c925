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
package struct RunConfig: Sendable {
    package struct Run: Sendable, Equatable {
        package var name = "ttrl"
        package var seed: UInt64 = 1
        package var maxSteps = 2400
        /// Run directory; default `runs/<name>`.
        package var directory: String?
    }
    package struct Model: Sendable, Equatable {
        /// A Hugging Face style model directory.
        package var path = "models/arith-base"
    }
    package struct Task: Sendable, Equatable {
        /// A built-in generated task (`arith:add2`, docs/tasks.md) or nil when `file` is set.
        package var spec: String? = "arith:add2"
        /// A JSONL file of `{"prompt", "answer"?}` lines.
        package var file: String?
        package var split = "test"
        package var count = 64
        /// What to do with bad lines of `file`: "refuse" or "skip".
        package var badLines = "refuse"
        /// Test-time mode: answers are held back from the learner and the reward (used for monitoring only).
        package var labelFree = true
        /// "auto": prompts go through the model directory's chat template when it has one; "none": as written.
        package var chatTemplate = "auto"
        /// The system message of a chat-template prompt (nil: none, the template may write its default).
        package var systemPrompt: String?
        /// What a chat template's `strftime_now()` writes (ChatDate's form); nil leaves it undefined.
        package var chatDate: String?
    }
    package struct Sampling: Sendable, Equatable {
        package var temperature = 1.0
        package var topK = 0
        package var topP = 1.0
        package var maxNewTokens = 8
        /// Completions per prompt (G).
        package var groupSize = 16
        /// A multi-temperature group: sample j at `temperatures[j mod n]`; nil: every sample at `temperature`.
        package var temperatures: [Double]?
        /// `preset` (the algorithm's `sampling.shape`), `independent`, `serial` or `tree`.
        package var shape = "preset"
        /// Appended to the path's prefix at each serial exit: S-GRPO's exit prompt.
        package var serialExitPhrase = "Time is limited, stop thinking and start answering.\n</think>\n\n"
        /// Most answer tokens a serial exit samples after the phrase.
        package var serialAnswerTokens = 16
        /// Tree groups: the highest-entropy tokens each root forks at (ETTRL's N).
        package var treeForks = 2
        /// Tree groups: branches started at each fork (ETTRL's B).
        package var treeBranching = 2

        /// The temperature of sample j of every group.
        package func temperature(ofSample j: Int) -> Double {
            temperatures.map { $0[j % $0.count] } ?? temperature
        }
    }
    package struct Learner: Sendable, Equatable {
        /// Groups per optimizer step.
        package var batchGroups = 8
        /// Versions a group may lag behind the learner; 0 is synchronous on-policy training.
        package var maxStaleness = 0
        package var publishEvery = 1
        package var checkpointEvery = 5
        /// Packed tokens per forward/backward micro-batch (bounds activation memory).
        package var microBatchTokens = 4096
        package var leaseSize = 1
        package var leaseTimeoutSeconds = 60.0
        package var heartbeatTimeoutSeconds = 10.0
        /// Groups an actor may have unacknowledged at once. An ack waits for the run log's fsync (group
        /// commit), so all actors' credit must cover the wire's rate times a group's round trip
        /// (docs/configuration.md, learner.credit).
        package var credit = 64
        package var threads = 1
        /// `fp32` or `bf16`: how the backward pass multiplies the linear layers' matrices.
        package var backwardPrecision = "fp32"
        /// Where published weights go as files that actors on this host map instead of fetching
        /// chunks (a tmpfs); empty: ZeroMQ chunks for every actor.
        package var sharedMemoryDirectory = "/dev/shm"
        /// Actors each node of the weight relay tree serves (RelayPlan): 1 is a chain, 0 has every
        /// chunk-fetching actor fetch from the learner.
        package var relayFanout = 1
    }
    package struct Endpoints: Sendable, Equatable {
        /// Address the learner's sockets bind to (`*` for every interface).
        package var bindHost = "127.0.0.1"
        /// Address actors and monitors are told to connect to (never 0.0.0.0).
        package var advertiseHost = "127.0.0.1"
        package var controlPort = 5555
        package var weightsPort = 5556
        package var announcePort = 5557
        /// Monitors subscribe here (the proxy's XPUB side).
        package var logsPort = 5558
        /// Processes publish their log events here (the proxy's XSUB side).
        package var logsInPort = 5559
        /// HTTP `/metrics` (Prometheus) on `bindHost`; 0: none.
        package var metricsPort = 0
    }
    package struct Actors: Sendable, Equatable {
        /// Actors `troupe run` starts.
        package var count = 2
        package var threads = 1
        /// `auto`, `idle` or `normal`: see `sampleAtIdlePriority`.
        package var samplingPriority = "auto"
    }
    package struct Eval: Sendable, Equatable {
        /// Evaluate every this many steps (0: only at the start and the end).
        package var every = 150
        package var samples = 16
        package var temperature = 1.0
        /// Multi-temperature evaluation: sample j of each prompt at entry j mod n; nil: all at `temperature`.
        package var temperatures: [Double]? = nil
    }
    /// Out-of-process reward workers the learner asks for each sample's score (docs/rewards.md).
    package struct RewardWorkers: Sendable, Equatable {
        /// Each worker's ROUTER address; empty: no workers, the run's own reward.
        package var endpoints: [String] = []
        /// The reward definition the workers must answer with; part of the cache key.
        package var version = ""
        /// Seconds one attempt may take, the wait for a free worker included.
        package var deadlineSeconds = 10.0
        /// Attempts per sample (each on a worker not yet tried when there is one).
        package var attempts = 2
        /// Requests in flight per worker.
        package var maxInFlight = 8
        /// The score of a sample no worker scored; nil: its group is refused (`reward_unavailable`).
        package var fallbackReward: Double?
        /// Scores kept in the learner's cache (least recently used go first); 0 turns it off.
        package var cacheEntries = 65_536
        /// The learner stops (a checkpoint, status 1) when samples went unscored and no worker answered for
        /// this long; 0: never. Without it, workers that never recover would keep a run resampling for ever.
        package var outageStopSeconds = 600.0
        /// Public key files of the workers (one for all, or one per endpoint in order); empty: plaintext.
        package var serverKeys: [String] = []
        /// The secret key file the learner presents to its workers; empty: the learner's own key pair.
        package var clientKey = ""
        package var enabled: Bool { !endpoints.isEmpty }
    }

    package var run = Run()
    package var model = Model()
    package var task = Task()
    package var algorithm: AlgorithmOptions
    /// The algorithm section as written (preset plus overrides), kept for the frozen config.
    package var algorithmJSON: JSONValue
    package var optimizer = AdamWOptions(learningRate: 3e-5, weightDecay: 0, maxGradNorm: 1.0)
    /// Learning-rate schedule over `run.max_steps`: linear warm-up, then constant or cosine decay to 10%.
    package var schedule = Schedule()
    package struct Schedule: Sendable, Equatable {
        package var kind = "constant"
        package var warmupSteps = 0

        /// The learning rate of step `step` (1-based) of `total`, for a peak of `peak`: the schedule SFT
        /// uses too (`LearningRateSchedule`, cosine decay to 10%).
        package func learningRate(peak: Double, step: Int, total: Int) -> Double {
            LearningRateSchedule(peak: peak, warmupSteps: warmupSteps, totalSteps: total,
                                 decay: kind == "cosine" ? .cosine : .constant, finalRatio: 0.1).rate(step: step)
        }
    }
    package var sampling = Sampling()
    package var learner = Learner()
    package var endpoints = Endpoints()
    package var actors = Actors()
    package var eval = Eval()
    package var rewardWorkers = RewardWorkers()

    package var runDirectory: String { run.directory ?? "runs/\(run.name)" }

    /// The shape the actors sample: `sampling.shape`, or the algorithm's when that is `preset`.
    package var groupShape: GroupShapeKind {
        GroupShapeKind(rawValue: sampling.shape) ?? algorithm.sampling.shape
    }

    /// Whether actors sample at idle priority (`actors.sampling_priority`). In a synchronous run the
    /// actors and the learner take turns, so there is nothing to yield; in an asynchronous one the
    /// learner's step sets the pace and sampling fills the cycles it leaves.
    package var sampleAtIdlePriority: Bool {
        switch actors.samplingPriority {
        case "idle": true
        case "normal": false
        default: learner.maxStaleness >= 1
        }
    }

    /// The environment for this run's learner. OpenBLAS's workers wait for the next product by
    /// spinning with `sched_yield` for about 0.1 s (2^28 cycles) before they sleep, so while the
    /// learner's step does anything but OpenBLAS products they hold a core: one that actors at idle
    /// priority would sample on, or that a bf16 backward's products (on their own two threads) need.
    /// 2^4 cycles lets them sleep at once. A value the user set is kept. OpenBLAS reads it when the
    /// library loads, so only a launcher can set it.
    package func learnerEnvironment(_ inherited: [String: String]) -> [String: String] {
        let workersInTheWay = sampleAtIdlePriority || (learner.backwardPrecision == "bf16" && learner.threads > 1)
        guard workersInTheWay, inherited[Self.blasThreadTimeoutVariable] == nil else { return inherited }
        return inherited.merging([Self.blasThreadTimeoutVariable: "4"]) { _, new in new }
    }

    package static let blasThreadTimeoutVariable = "OPENBLAS_THREAD_TIMEOUT"

    /// The built-in algorithm: TTRL's majority-vote reward with CISPO, every sample of a group voting
    /// and trained on (`group_size` decides how many), and no KL term, which would cost a second forward
    /// pass on a reference model for a coefficient of 0.001. Naming a preset (in a file's `algorithm`
    /// section or with `--set algorithm.preset=…`) starts from that preset alone instead.
    package static let defaultAlgorithm: JSONValue = [
        "preset": "ttrl", "loss.kind": "cispo", "kl.coefficient": 0,
        "sampling.samples_per_prompt": nil, "sampling.train_samples": nil,
    ]

    package init() {
        algorithmJSON = RunConfig.defaultAlgorithm
        algorithm = (try? AlgorithmOptions.resolve(algorithmJSON)) ?? AlgorithmOptions()
    }
}

/// A refused configuration: the key, what is wrong, and where it was written when that is known
/// (`config.json:3:14`, or `--set run.max_steps=ten`).
package struct ConfigError: Error, CustomStringConvertible, Equatable {
    package let key: String
    package let problem: String
    package var location: JSONLocation?
    package init(key: String, problem: String, location: JSONLocation? = nil) {
        self.key = key
        self.problem = problem
        self.location = location
    }
    package var description: String {
        // An option (`--config`) at fault is named as itself, not as a key.
        guard let location else { return key.hasPrefix("-") ? "\(key): \(problem)" : "config key \(key): \(problem)" }
        // A file that does not parse has no key at fault: its position says where.
        return key.isEmpty ? "\(location): \(problem)" : "\(location): \(key): \(problem)"
    }
}
