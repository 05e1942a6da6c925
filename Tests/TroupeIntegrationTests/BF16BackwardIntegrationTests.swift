import Foundation
import Testing
import TroupeTensor

/// `learner.backward_precision = "bf16"` end to end: refused where the CPU lacks AVX-512 BF16, and
/// replayable anywhere, because the portable kernel gives the hardware's bits.
@Suite struct BF16BackwardIntegrationTests {
    /// A learner, and `troupe run`, on a CPU without the instructions (here told so with
    /// TROUPE_BF16_HARDWARE=off) refuse the setting, naming it, before they make the run directory.
    @Test func aLearnerWithoutTheInstructionsRefusesBF16() throws {
        let run = try IntegrationRun("bf16-refused")
        defer { run.finish() }
        run.environmentOverrides["TROUPE_BF16_HARDWARE"] = "off"
        let learner = try run.startLearner(maxSteps: 2, ["learner.backward_precision=bf16"])
        let status = learner.waitForExit(within: 30)
        run.check(status != nil && status != .code(0), "the learner ended with \(status?.description ?? "nothing: still running")")
        run.check(learner.stderr.contains("learner.backward_precision") && learner.stderr.contains("AVX-512 BF16"),
                  "the refusal does not name the setting and what is missing: \(learner.stderr.suffix(400))")
        run.check(!FileManager.default.fileExists(atPath: run.runDirectory), "the refused learner made the run directory")

        // troupe run checks before it writes the run directory or starts anything.
        let (status2, child) = try run.runToCompletion("run", ["run", "--no-eval", "--insecure-plaintext", "--actors", "1"]
                                                       + run.learnerSettings(maxSteps: 2, ["learner.backward_precision=bf16"]), within: 30)
        run.check(status2 != nil && status2 != .code(0), "troupe run: \(status2?.description ?? "timeout")")
        run.check(child.stderr.contains("learner.backward_precision") && child.stderr.contains("AVX-512 BF16"),
                  "troupe run's refusal does not name the setting: \(child.stderr.suffix(400))")
        run.check(!FileManager.default.fileExists(atPath: run.runDirectory), "troupe run made the run directory")
    }

    /// Trained with VDPBF16PS, the run replays bit for bit on the portable kernel; replayed with an fp32
    /// backward instead, its hashes do not match (the setting changes the weights, and replay honours it).
    @Test(.enabled(if: BF16GEMM.hardwareAvailable, "this CPU has no AVX-512 BF16"))
    func aBF16RunReplaysBitForBitOnThePortableKernel() throws {
        let run = try IntegrationRun("bf16")
        defer { run.finish() }
        let learner = try run.startLearner(maxSteps: 3, ["learner.backward_precision=bf16"])
        let actor = try run.startActor("a1")
        try run.require(run.expectExit(learner, .code(0), within: 60) == .code(0), "the learner did not finish the run")
        run.expectExit(actor, .code(0), within: 10)
        run.environmentOverrides["TROUPE_BF16_HARDWARE"] = "off"
        try RuntimeIntegrationTests.expectReplayVerifies(run, steps: 3)

        let fp32 = try RuntimeIntegrationTests.copyOfRun(run, named: "fp32", section: "learner") { $0["backward_precision"] = "fp32" }
        let (status, child) = try run.runToCompletion("replay-fp32", ["replay", fp32, "--verify"], within: 60)
        run.check(status == .code(1) && child.stdout.contains("replay FAILED"),
                  "replay with an fp32 backward: \(status?.description ?? "timeout"), expected exit 1: \(child.stdout.suffix(400))")
    }
}
