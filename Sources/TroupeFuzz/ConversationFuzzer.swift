import Foundation
import TroupeLearner
import TroupeProto
import TroupeRL
import TroupeRuntime
import TroupeTensor
import TroupeWire

/// A live learner (its real `LearnerServer`, on the in-memory transport with a clock this fuzzer
/// moves) fed mutated versions of valid conversations by several hostile peers, while one
/// well-behaved actor goes on with its work. The learner must keep serving that actor: every one of
/// its groups accepted, the steps trained, the accounting identity true, and no turn of the learner
/// throwing.
package struct ConversationFuzzer {
    package struct Report: Sendable {
        package var messages: Int
        package var honestGroups: Int
        package var steps: Int
        package var refusedByReason: [String: Int]
        /// Seconds (on the learner's clock) the honest actor waited for a lease while hostile peers held them.
        package var honestWaitSeconds: Int
        package var seconds: Double
    }

    package enum Failure: Error, CustomStringConvertible {
        case honestActorNotServed(String)
        package var description: String {
            switch self { case .honestActorNotServed(let why): return "the well-behaved actor was not served: \(why)" }
        }
    }

    package var modelDirectory: String
    package var messages: Int
    package var seed: UInt64
    /// Hostile messages between two of the honest actor's groups.
    package var burst = 40

    package init(modelDirectory: String, messages: Int, seed: UInt64) {
        self.modelDirectory = modelDirectory
        self.messages = messages
        self.seed = seed
    }

    package func run(progress: (Int) -> Void = { _ in }) throws -> Report {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("troupe-conversation-fuzz-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try RunConfig.load(path: nil, overrides: [
            "model.path=\(modelDirectory)", "run.directory=\(directory)", "task.count=16", "sampling.group_size=4",
            "learner.batch_groups=2", "run.max_steps=1000000", "learner.checkpoint_every=1000000", "learner.shared_memory_dir=",
            "learner.lease_timeout_s=30", "learner.heartbeat_timeout_s=10", "learner.lease_size=1",
        ])
        let network = InMemoryLearnerNetwork()
        var now = 1000.0
        let learner = try LearnerServer(config: config, resume: false, clock: { now }, makeEndpoints: { _ in network.endpoints },
                                        runLogWriting: .inline)
        let honest = HonestActor(control: network.control.connect(identity: "honest#1"), admission: learner.admission)
        var mutator = Mutator(seed: seed, dictionary: FuzzSeeds.protobufTokens)
        let templates = try Self.templates(epoch: learner.epoch)
        var hostile: [InMemoryDealer] = (0..<4).map { network.control.connect(identity: "hostile-\($0)") }
        let weightsPeer = network.weights.connect(identity: "hostile-weights")
        let start = monotonicSeconds()
        var sent = 0
        func turn() throws {
            now += 0.01
            guard try learner.turn() != .failed else { throw Failure.honestActorNotServed("a training step failed") }
        }

        try honest.join(turn: turn)
        var honestGroups = 0
        var secondsWaited = 0
        while sent < messages {
            for _ in 0..<burst where sent < messages {
                let template = templates[mutator.below(templates.count)]
                let frames = Self.mutated(template, by: &mutator)
                if template.toWeights {
                    _ = weightsPeer.send(frames: frames)
                    _ = try? weightsPeer.receiveAll()
                } else {
                    let peer = hostile[mutator.below(hostile.count)]
                    _ = peer.send(frames: frames)
                    _ = try? peer.receiveAll()
                }
                sent += 1
                if sent % 16 == 0 { try turn() }
                // Now and then a hostile peer reconnects as someone new (ZeroMQ gives each connection an id).
                if mutator.below(64) == 0 { hostile[mutator.below(hostile.count)] = network.control.connect(identity: "hostile-\(sent)") }
            }
            try turn()
            secondsWaited += try honest.submitOneGroup(turn: turn, wait: {
                try honest.heartbeat()
                now += 1
                try turn()
            })
            honestGroups += 1
            if !learner.core.training && learner.core.pending.count >= 2 { try turn() }
            _ = try learner.settleTraining()
            progress(sent)
        }
        try turn()
        _ = try learner.settleTraining()
        try turn()
        let accounting = learner.core.accounting
        guard accounting.identityHolds else { throw Failure.honestActorNotServed("the accounting identity does not hold: \(accounting.summary)") }
        guard learner.core.step >= honestGroups / 2 - 1 else {
            throw Failure.honestActorNotServed("\(honestGroups) honest groups but only \(learner.core.step) steps trained")
        }
        var refused: [String: Int] = [:]
        for event in network.logs.events(kind: "rejection") { refused[event.fields["reason"] ?? "?", default: 0] += 1 }
        return Report(messages: sent, honestGroups: honestGroups, steps: learner.core.step, refusedByReason: refused,
                      honestWaitSeconds: secondsWaited, seconds: monotonicSeconds() - start)
    }

    /// A message a hostile peer starts from, unsealed (`FramedBytes`), and the endpoint it goes to.
    struct Template {
        let frames: [Frame]
        let toWeights: Bool
    }

    static func templates(epoch: UInt64) throws -> [Template] {
        let messages = try FuzzSeeds.messages()
        var out: [Template] = []
        for kind in [MessageKind.hello, .leaseRequest, .groupSubmit, .heartbeat, .bye, .ack, .lease] {
            var message = messages[kind]!
            if case .groupSubmit(var h) = message.body {
                h.version = PolicyVersion(epoch: epoch, step: 0).proto
                message = WireMessage(.groupSubmit(h), frames: message.frames)
            }
            out.append(Template(frames: try message.encode(), toWeights: false))
        }
        for kind in [MessageKind.weightManifestRequest, .chunkRequest, .weightSourceRequest] {
            out.append(Template(frames: try messages[kind]!.encode(), toWeights: true))
        }
        return out
    }

    /// Mutates the envelope's protobuf bytes or a raw frame and reseals it (so most mutations get past
    /// the checksum), or, one time in eight, mutates the sealed frames as they are.
    static func mutated(_ template: Template, by mutator: inout Mutator) -> [Frame] {
        if mutator.below(8) == 0 {
            let joined = FramedBytes.join(template.frames)
            return FramedBytes.split(mutator.mutate(joined, splicingWith: joined))
        }
        var header = WireMessage.unsealedHeader(template.frames)
        var raw = Array(template.frames.dropFirst())
        if raw.isEmpty || mutator.below(2) == 0 {
            header = mutator.mutate(header, splicingWith: header)
        } else {
            let i = mutator.below(raw.count)
            raw[i] = Frame(mutator.mutate(raw[i].bytes, splicingWith: raw[i].bytes))
        }
        return WireMessage.seal(header: header, rawFrames: raw)
    }
}

/// The one actor that plays by the rules: Hello, a lease at a time, one honest group per lease.
private final class HonestActor {
    let control: InMemoryDealer
    let admission: GroupAdmission
    var sequence: UInt64 = 0
    var minVersion = PolicyVersion(epoch: 0, step: 0)

    init(control: InMemoryDealer, admission: GroupAdmission) {
        self.control = control
        self.admission = admission
    }

    func join(turn: () throws -> Void) throws {
        var hello = Troupe_V1_Hello()
        hello.actorIdentity = "honest"
        hello.actorRunID = 1
        hello.protocolMajor = WireProtocol.major
        _ = try control.send(WireMessage(.hello(hello)), deadline: .now)
        try turn()
        guard try control.receiveAll().contains(where: { if case .welcome = $0.body { true } else { false } }) else {
            throw ConversationFuzzer.Failure.honestActorNotServed("no Welcome")
        }
    }

    /// A lease, asking again each second while hostile peers hold the staleness window (their leases
    /// expire, and silent ones are evicted); returns it with the seconds waited.
    func lease(turn: () throws -> Void, wait: () throws -> Void) throws -> (Troupe_V1_Lease, Int) {
        for waited in 0..<120 {
            var request = Troupe_V1_LeaseRequest()
            request.maxPrompts = 1
            _ = try control.send(WireMessage(.leaseRequest(request)), deadline: .now)
            try turn()
            let replies = try control.receiveAll()
            guard let lease = replies.lazy.compactMap({ if case .lease(let l) = $0.body { l } else { nil } }).first else {
                throw ConversationFuzzer.Failure.honestActorNotServed("no Lease among \(replies.map(\.kind))")
            }
            if !lease.prompts.isEmpty { return (lease, waited) }
            try wait()
        }
        throw ConversationFuzzer.Failure.honestActorNotServed("no prompt leased in 120 s")
    }

    /// One group for one leased prompt; returns the seconds it waited for the lease.
    func submitOneGroup(turn: () throws -> Void, wait: () throws -> Void) throws -> Int {
        let (lease, waited) = try self.lease(turn: turn, wait: wait)
        let prompt = lease.prompts[0]
        sequence += 1
        var header = Troupe_V1_GroupSubmit()
        header.leaseID = lease.leaseID
        header.promptID = prompt.promptID
        header.sequence = sequence
        header.actorRunID = 1
        header.version = lease.minVersion
        let samples = try admission.scorer!.honestSamples([[52, 50, 257], [52, 50, 257], [55, 257], [52, 50, 257]], finishReason: .stop,
                                                          temperature: prompt.sampling.temperature, logprob: -0.5,
                                                          stopSequences: admission.stopSequences, groundTruth: admission.groundTruth(prompt.promptID))
        _ = try control.send(GroupSubmission(header: header, samples: samples).wireMessage(), deadline: .now)
        try turn()
        let acks = try control.receiveAll().compactMap { if case .ack(let a) = $0.body { a } else { nil } }
        guard let ack = acks.first(where: { $0.sequence == sequence }), ack.status == .accepted else {
            throw ConversationFuzzer.Failure.honestActorNotServed("group \(sequence) not accepted: \(acks.map { "\($0.status) \($0.text)" })")
        }
        return waited
    }

    /// Keeps the actor alive while it waits.
    func heartbeat() throws {
        _ = try control.send(WireMessage(.heartbeat(Troupe_V1_Heartbeat())), deadline: .now)
        _ = try control.receiveAll()
    }
}
