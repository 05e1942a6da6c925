import Foundation
import Synchronization
import Testing
import TroupeTensor

@Suite struct StreamingGEMMTests {
    /// The decode arithmetic written out once per element: 8-lane partial sums over k in order, the
    /// lanes added as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), the bias, then the k % 8 tail
    /// in order. Sampled log-probs (and so the whole RL trajectory) depend on every bit of this, so the
    /// kernel must match it exactly. `fused`: the opt-in variant, one rounding per multiply-add step.
    static func reference(x: [Float], w: [Float], bias: [Float]?, n: Int, k: Int, out: Int, fused: Bool = false) -> [Float] {
        var y = [Float](repeating: 0, count: n * out)
        let full = k & ~7
        for r in 0..<n {
            for o in 0..<out {
                var acc = [Float](repeating: 0, count: 8)
                var i = 0
                while i < full {
                    for l in 0..<8 {
                        let product = (w[o * k + i + l], x[r * k + i + l])
                        if fused { acc[l].addProduct(product.0, product.1) } else { acc[l] += product.0 * product.1 }
                    }
                    i += 8
                }
                var s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + (bias?[o] ?? 0)
                for j in full..<k {
                    if fused { s.addProduct(w[o * k + j], x[r * k + j]) } else { s += w[o * k + j] * x[r * k + j] }
                }
                y[r * out + o] = s
            }
        }
        return y
    }

    static func random(_ count: Int, _ rng: inout Xoshiro256) -> [Float] {
        (0..<count).map { _ in Float(rng.nextGaussian()) }
    }

    /// Every row count (single-row kernel, 2…8-row groups, more than 8 rows, odd counts that leave
    /// the wide kernel a row without a partner), tails of k, output counts that do not divide into
    /// chunks or blocks of 4, with and without bias, small matrices (one thread) and large ones (split
    /// between this thread and the paired worker); each kernel this CPU runs.
    @Test(arguments: [(out: 7, k: 5), (out: 45, k: 48), (out: 300, k: 333), (out: 1030, k: 128), (out: 64, k: 1408), (out: 33, k: 12)])
    func matchesTheReferenceArithmeticBitForBit(out: Int, k: Int) {
        for kernel in StreamingGEMM.Kernel.allCases where kernel.isAvailable {
            for fused in [false, true] { check(out: out, k: k, fused: fused, kernel: kernel) }
        }
    }

    /// The wide kernel is the one decoding uses wherever the CPU runs it, so the test above covers
    /// what samples are drawn with; `TROUPE_DECODE_KERNEL=portable` is the only way back.
    @Test func decodingUsesTheWideKernelWhereTheCPUHasIt() {
        let forcedPortable = ProcessInfo.processInfo.environment["TROUPE_DECODE_KERNEL"] == "portable"
        let expected: StreamingGEMM.Kernel = StreamingGEMM.Kernel.avx512.isAvailable && !forcedPortable ? .avx512 : .portable
        #expect(StreamingGEMM.kernel == expected)
    }

    /// The CPUID check agrees with Linux's view of this CPU, so a machine with AVX-512 does run the
    /// C kernel's cases above instead of skipping them.
    @Test func theWideKernelIsAvailableWhereLinuxListsAVX512FAndDQ() {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(flagLine.split(separator: " ").map(String.init))
        #expect(StreamingGEMM.Kernel.avx512.isAvailable == (flags.contains("avx512f") && flags.contains("avx512dq")))
    }

    func check(out: Int, k: Int, fused: Bool, kernel: StreamingGEMM.Kernel) {
        var rng = Xoshiro256(seed: UInt64(out * 1000 + k))
        let maxRows = 19
        let x = Self.random(maxRows * k, &rng), w = Self.random(out * k, &rng), bias = Self.random(out, &rng)
        let expected = Self.reference(x: x, w: w, bias: bias, n: maxRows, k: k, out: out, fused: fused)
        let expectedNoBias = Self.reference(x: x, w: w, bias: nil, n: maxRows, k: k, out: out, fused: fused)
        for n in 1...maxRows {
            for withBias in [true, false] {
                var y = [Float](repeating: .nan, count: n * out)
                x.withUnsafeBufferPointer { xp in
                    w.withUnsafeBufferPointer { wp in
                        bias.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                StreamingGEMM.forward(x: xp.baseAddress!, weight: wp.baseAddress!,
                                                      bias: withBias ? bp.baseAddress! : nil, y: yp.baseAddress!,
                                                      n: n, inFeatures: k, outFeatures: out, fused: fused,
                                                      kernel: kernel)
                            }
                        }
                    }
                }
                let want = withBias ? expected : expectedNoBias
                let mismatches = (0..<(n * out)).filter { y[$0].bitPattern != want[$0].bitPattern }
                #expect(mismatches.isEmpty,
                        "\(kernel) n=\(n) out=\(out) k=\(k) bias=\(withBias) fused=\(fused): \(mismatches.count) elements differ, first at \(mismatches.first ?? -1)")
            }
        }
    }

    /// Each chunk runs exactly once per job, whatever the chunk count, also when several threads
    /// post jobs at the same time (only one of them gets the helper; the others run alone).
    @Test func pairedWorkerRunsEveryChunkOnce() {
        final class Counts: @unchecked Sendable {
            let slots: UnsafeMutablePointer<Int>
            let count: Int
            init(_ count: Int) {
                self.count = count
                slots = .allocate(capacity: count)
                slots.initialize(repeating: 0, count: count)
            }
            deinit { slots.deallocate() }
        }
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for job in 0..<300 {
                let chunks = [0, 1, 2, 3, 17, 64, 1000][(job + caller) % 7]
                let counts = Counts(max(chunks, 1))
                PairedWorker.shared.run(chunks: chunks) { c, worker in
                    // Distinct chunks write distinct slots; a chunk run twice would count 2.
                    counts.slots[c] += 1
                    if worker != 0 && worker != 1 { failures.add(1, ordering: .relaxed) }
                }
                for c in 0..<chunks where counts.slots[c] != 1 { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
