// Opt-in GEMM and convolution throughput figures (LADON_PERF=1 swift test -c release --filter Perf).
import Foundation
import Testing
@testable import LadonCore

/// Median wall time in seconds of `runs` timings of `body`, each timing repeating it enough to last ≥ 20 ms.
private func medianSeconds(runs: Int = 7, _ body: () -> Void) -> Double {
    body()  // warm-up: scratch buffers, page faults, caches
    let clock = ContinuousClock()
    var reps = 1
    while true {
        let t = clock.measure { for _ in 0..<reps { body() } }
        if t >= .milliseconds(20) || reps >= 1 << 12 { break }
        reps *= 2
    }
    var samples: [Double] = []
    for _ in 0..<runs {
        let t = clock.measure { for _ in 0..<reps { body() } }
        samples.append(Double(t.components.seconds) + Double(t.components.attoseconds) * 1e-18)
    }
    samples.sort()
    return samples[samples.count / 2] / Double(reps)
}

/// The 1-minute load average, printed beside the figures (the machine is shared).
private func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3)
        .joined(separator: " ") ?? "n/a"
}

@Suite(.enabled(if: ProcessInfo.processInfo.environment["LADON_PERF"] != nil, "set LADON_PERF=1"),
       .serialized)
struct GEMMPerfTests {
    /// ResNet-50 @416 im2col GEMM shapes (M, K, N) from the performance anchors.
    static let shapes: [(String, Int, Int, Int)] = [
        ("conv1 7x7 3->64", 64, 147, 43264),
        ("l1 1x1 64->64", 64, 64, 10816),
        ("l1 3x3 64->64", 64, 576, 10816),
        ("l1 1x1 64->256", 256, 64, 10816),
        ("l1 1x1 256->64", 64, 256, 10816),
        ("l2 3x3 128->128", 128, 1152, 2704),
        ("l2 1x1 128->512", 512, 128, 2704),
        ("l2 1x1 512->128", 128, 512, 2704),
        ("l3 3x3 256->256", 256, 2304, 676),
        ("l3 1x1 256->1024", 1024, 256, 676),
        ("l3 1x1 1024->256", 256, 1024, 676),
        ("l4 3x3 512->512", 512, 4608, 169),
        ("l4 1x1 512->2048", 2048, 512, 169),
        ("l4 1x1 2048->512", 512, 2048, 169),
        ("dlv3 3x3 512->512", 512, 4608, 2704),
        ("square 1024", 1024, 1024, 1024),
    ]

    /// FMA peak of the project machine (performance-anchors §1), GFLOP/s for 1 and 2 threads.
    static let peak = [1: 259.0, 2: 517.0]

    @Test func gemmThroughput() {
        #if LADON_FMA
        let build = "LADON_FMA, -target-cpu native"
        #else
        let build = "portable (no FMA define, baseline CPU)"
        #endif
        print("GEMM GFLOP/s, C[M×N] = W[M×K]·col[K×N], median of 7 (\(build)); load avg before: \(loadAverage())")
        print("| shape | M | K | N | 1T | % peak | 2T | % peak |")
        print("|---|---|---|---|---|---|---|---|")
        for (name, m, k, n) in Self.shapes {
            var rng = SplitMix64(seed: 7)
            let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) }
            var c = [Float](repeating: 0, count: m * n)
            var cells: [String] = []
            for threads in [1, 2] {
                let seconds = a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            medianSeconds {
                                Kernels.gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!,
                                             ldb: n, c: cp.baseAddress!, ldc: n, threads: threads)
                            }
                        }
                    }
                }
                let gflops = 2.0 * Double(m * n * k) / seconds / 1e9
                cells.append(String(format: "%.0f | %.0f%%", gflops, 100 * gflops / Self.peak[threads]!))
            }
            print("| \(name) | \(m) | \(k) | \(n) | \(cells[0]) | \(cells[1]) |")
        }
        print("load avg after: \(loadAverage())")
    }
}
