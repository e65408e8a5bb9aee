// Opt-in GEMM and convolution throughput figures (swift test -c release --filter Perf).
import Foundation
import LadonTestSupport
import Testing
@testable import LadonCore

/// CPU time consumed by the whole process so far, in seconds (all threads).
private func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Medians over `runs` timings of `body` (each timing repeats it until it lasts ≥ 20 ms), per call:
/// `wall` seconds, and `cpu` = process CPU seconds. On a shared, loaded machine `wall` is inflated by
/// time-slicing while `cpu` is not, so both are reported.
private func measure(runs: Int = 7, _ body: () -> Void) -> (wall: Double, cpu: Double) {
    body()  // warm-up: scratch buffers, page faults, caches
    let clock = ContinuousClock()
    let reps = repetitions(body)
    var walls: [Double] = [], cpus: [Double] = []
    for _ in 0..<runs {
        let c0 = processCPUSeconds()
        let t = clock.measure { for _ in 0..<reps { body() } }
        cpus.append((processCPUSeconds() - c0) / Double(reps))
        walls.append(t.seconds / Double(reps))
    }
    walls.sort()
    cpus.sort()
    return (walls[runs / 2], cpus[runs / 2])
}

/// How many calls of `body` in a row last at least 20 ms (a power of two, at most 4,096), so that one timing is
/// long enough for the clock and short enough to repeat.
private func repetitions(_ body: () -> Void) -> Int {
    let clock = ContinuousClock()
    var reps = 1
    while clock.measure({ for _ in 0..<reps { body() } }) < .milliseconds(20) && reps < 1 << 12 { reps *= 2 }
    return reps
}

/// `a` and `b` timed in alternation (`rounds` rounds, each timing repeated until it lasts ≥ 20 ms), so that a spell of
/// host contention hits both: the median over rounds of `b`'s time divided by `a`'s.
private func medianTimeRatio(rounds: Int = 7, _ a: () -> Void, _ b: () -> Void) -> Double {
    a(); b()  // warm-up
    let clock = ContinuousClock()
    let (repsA, repsB) = (repetitions(a), repetitions(b))
    var ratios: [Double] = []
    for _ in 0..<rounds {
        let ta = clock.measure { for _ in 0..<repsA { a() } }.seconds / Double(repsA)
        let tb = clock.measure { for _ in 0..<repsB { b() } }.seconds / Double(repsB)
        ratios.append(tb / ta)
    }
    ratios.sort()
    return ratios[rounds / 2]
}

#if LADON_FMA
/// 12 independent FMA chains on 8-lane vectors (ymm) or 16-lane ones (zmm with AVX-512).
@inline(never) private func fmaChains8(_ iterations: Int, _ seed: Float) -> Float {
    typealias V = SIMD8<Float>
    var a0 = V(repeating: seed), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0
    var a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0
    let x = V(repeating: 0.999_999), y = V(repeating: 1e-7)
    for _ in 0..<iterations {
        a0 = a0.addingProduct(x, y); a1 = a1.addingProduct(x, y); a2 = a2.addingProduct(x, y)
        a3 = a3.addingProduct(x, y); a4 = a4.addingProduct(x, y); a5 = a5.addingProduct(x, y)
        a6 = a6.addingProduct(x, y); a7 = a7.addingProduct(x, y); a8 = a8.addingProduct(x, y)
        a9 = a9.addingProduct(x, y); a10 = a10.addingProduct(x, y); a11 = a11.addingProduct(x, y)
    }
    return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).sum()
}

@inline(never) private func fmaChains16(_ iterations: Int, _ seed: Float) -> Float {
    typealias V = SIMD16<Float>
    var a0 = V(repeating: seed), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0
    var a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0
    let x = V(repeating: 0.999_999), y = V(repeating: 1e-7)
    for _ in 0..<iterations {
        a0 = a0.addingProduct(x, y); a1 = a1.addingProduct(x, y); a2 = a2.addingProduct(x, y)
        a3 = a3.addingProduct(x, y); a4 = a4.addingProduct(x, y); a5 = a5.addingProduct(x, y)
        a6 = a6.addingProduct(x, y); a7 = a7.addingProduct(x, y); a8 = a8.addingProduct(x, y)
        a9 = a9.addingProduct(x, y); a10 = a10.addingProduct(x, y); a11 = a11.addingProduct(x, y)
    }
    return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).sum()
}
#endif

/// The FMA peak loop: `iterations` rounds of 12 chains on each of `threads` threads.
private func runPeakLoop(lanes: Int, threads: Int, iterations: Int) {
    #if LADON_FMA
    DispatchQueue.concurrentPerform(iterations: threads) { i in
        let s = lanes == 16 ? fmaChains16(iterations, Float(i)) : fmaChains8(iterations, Float(i))
        if s == 42 { print("") }  // keeps the result alive
    }
    #endif
}

/// The flops of one ``runPeakLoop(lanes:threads:iterations:)``.
private func peakLoopFlops(lanes: Int, threads: Int, iterations: Int) -> Double {
    Double(threads * iterations * 12 * 2 * lanes)
}

/// Sustained FMA throughput of this machine, GFLOP/s (wall, and per CPU-second × threads).
private func measuredPeak(lanes: Int, threads: Int) -> (wall: Double, cpu: Double) {
    #if LADON_FMA
    let iterations = 10_000_000
    let t = measure(runs: 5) { runPeakLoop(lanes: lanes, threads: threads, iterations: iterations) }
    let flops = peakLoopFlops(lanes: lanes, threads: threads, iterations: iterations)
    return (flops / t.wall / 1e9, flops / (t.cpu / Double(threads)) / 1e9)
    #else
    return (.nan, .nan)
    #endif
}

/// A product's wall-clock speed as a share of the FMA peak loop's on the same threads, the two timed in alternation
/// (``medianTimeRatio(rounds:_:_:)``): a spell in which the host runs a vCPU slower slows both, so the share is the
/// kernel's, not the spell's.
private func shareOfPeakAlongside(flops: Double, lanes: Int, threads: Int, _ product: () -> Void) -> Double {
    #if LADON_FMA
    let iterations = 1_000_000
    let peakFlops = peakLoopFlops(lanes: lanes, threads: threads, iterations: iterations)
    // Time of one peak loop over one product's: (flops / t_product) / (peakFlops / t_peak).
    let ratio = medianTimeRatio(product, { runPeakLoop(lanes: lanes, threads: threads, iterations: iterations) })
    return flops / peakFlops * ratio
    #else
    return .nan
    #endif
}

/// The 1-minute load average, printed beside the figures (the machine is shared).
private func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3)
        .joined(separator: " ") ?? "n/a"
}

@Suite(.enabled(if: PerfGate.enabled, Comment(rawValue: PerfGate.reason)),
       .serialized)
struct GEMMPerfTests {
    init() { PerfGate.announce() }

    /// ResNet-50 @416 im2col GEMM shapes (M, K, N) from the performance anchors, and the Ladon decoder's.
    static let shapes: [(String, Int, Int, Int)] = [
        ("conv1 7x7 3->64", 64, 147, 43264),
        ("enc.2 5x5/s2 96->48", 48, 2400, 10816),
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
        // The Ladon decoder's GEMMs (2×2 convolutions through im2col, IGDN's gamma): half the body's work.
        ("dec.0 2x2 24->512", 512, 96, 10816),
        ("dec.1 igdn 512", 512, 512, 10816),
        ("dec.2 2x2 512->256", 256, 2048, 10609),
        ("dec.4 2x2 256->256", 256, 1024, 10816),
    ]

    /// AVX-512 FMA peak of the Zen 5 machine in performance-anchors §1, GFLOP/s for 1 and 2 threads.
    static let anchorPeak = [1: 259.0, 2: 517.0]

    @Test func gemmThroughput() {
        #if LADON_FMA
        let build = "LADON_FMA, -target-cpu native"
        #else
        let build = "portable (no FMA define, baseline CPU)"
        #endif
        let kernel = GEMMBlocking.preferred
        // The peak loop uses the vector width the micro-kernel uses per register (zmm with AVX-512, else 8 lanes).
        let lanes = kernel.wide ? 16 : 8
        let peak = [1: measuredPeak(lanes: lanes, threads: 1), 2: measuredPeak(lanes: lanes, threads: 2)]
        print("GEMM GFLOP/s, C[M×N] = W[M×K]·col[K×N], median of 7 (\(build), \(kernel.kernel.rawValue) kernel); "
              + "load avg before: \(loadAverage())")
        print(String(format: "FMA peak measured here (%d-lane chains): wall %.0f GFLOP/s 1T, %.0f 2T; "
                     + "per CPU-second %.0f 1T, %.0f 2T (anchor AVX-512 machine: 259 / 517)",
                     lanes, peak[1]!.wall, peak[2]!.wall, peak[1]!.cpu, peak[2]!.cpu))
        print("wall = flops / wall time; cpu = flops / (process CPU time / threads), i.e. as if the threads had the cores.")
        print("% peak = cpu GFLOP/s / cpu peak measured again just before each shape (the host's speed moves by tens of")
        print("per cent within minutes; the figure above is this run's first reading), given in the last column.")
        print("Rows \"packed\": A prepacked once (PackedMatrix), as the model's layers run it.")
        print("2T / two 1T: the two-thread product's speed against two one-thread products of the same shape run at the")
        print("same time (each thread its own C), alternated round by round: what the split keeps of what the two cores")
        print("deliver together. Near 100 %, the rest of the gap to the peak is the machine (shared caches, host).")
        print("% peak alongside, 1T / 2T: wall GFLOP/s over the FMA peak loop's on as many threads, the two timed in")
        print("alternation (7 rounds, median of the per-round shares), so that a slow spell of a vCPU slows both.")
        print("| shape | M | K | N | A | 1T wall | 1T cpu | % peak | 2T wall | 2T cpu | % peak | 2T % anchor peak "
              + "| 2T / two 1T | % peak alongside 1T / 2T | peak 1T / 2T |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        let only = ProcessInfo.processInfo.environment["LADON_PERF_SHAPES"]?.split(separator: ",").map(String.init)
        for (name, m, k, n) in Self.shapes where only.map({ $0.contains { name.hasPrefix($0) } }) ?? true {
            var rng = SplitMix64(seed: 7)
            let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) }
            var c = [Float](repeating: 0, count: m * n)
            let packed = a.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: m, columns: k, lda: k) }
            for prepacked in ProcessInfo.processInfo.environment["LADON_PERF_PACKED_ONLY"] != nil ? [true] : [false, true] {
                let shapePeak = [1: measuredPeak(lanes: lanes, threads: 1), 2: measuredPeak(lanes: lanes, threads: 2)]
                var cells: [String] = [], alongside: [String] = []
                for threads in [1, 2] {
                    let flops = 2.0 * Double(m * n * k)
                    let (t, share) = a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            c.withUnsafeMutableBufferPointer { cp in
                                let product = {
                                    if prepacked {
                                        Kernels.gemm(packed: packed, n: n, b: bp.baseAddress!, ldb: n,
                                                     c: cp.baseAddress!, ldc: n, threads: threads)
                                    } else {
                                        Kernels.gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!,
                                                     ldb: n, c: cp.baseAddress!, ldc: n, threads: threads)
                                    }
                                }
                                return (measure(product),
                                        shareOfPeakAlongside(flops: flops, lanes: lanes, threads: threads, product))
                            }
                        }
                    }
                    alongside.append(String(format: "%.0f%%", 100 * share))
                    let wall = flops / t.wall / 1e9, cpu = flops / (t.cpu / Double(threads)) / 1e9
                    cells.append(String(format: "%.0f | %.0f | %.0f%%", wall, cpu, 100 * cpu / shapePeak[threads]!.cpu))
                    if threads == 2 { cells.append(String(format: "%.0f%%", 100 * wall / Self.anchorPeak[2]!)) }
                }
                if prepacked {
                    var c2 = c
                    let ratio = b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            c2.withUnsafeMutableBufferPointer { cp2 in
                                let outputs = [cp.baseAddress!, cp2.baseAddress!]
                                // Time of the pair (twice the work) over the two-thread product's.
                                return medianTimeRatio({
                                    Kernels.gemm(packed: packed, n: n, b: bp.baseAddress!, ldb: n, c: outputs[0], ldc: n,
                                                 threads: 2)
                                }, {
                                    WorkSplit.forEachPart(2) { part in
                                        Kernels.gemm(packed: packed, n: n, b: bp.baseAddress!, ldb: n, c: outputs[part],
                                                     ldc: n, threads: 1)
                                    }
                                })
                            }
                        }
                    }
                    cells.append(String(format: "%.0f%%", 100 * ratio / 2))
                } else {
                    cells.append("")
                }
                cells.append(alongside.joined(separator: " / "))
                cells.append(String(format: "%.0f / %.0f", shapePeak[1]!.cpu, shapePeak[2]!.cpu))
                print("| \(name) | \(m) | \(k) | \(n) | \(prepacked ? "packed" : "plain") | \(cells.joined(separator: " | ")) |")
            }
        }
        print("load avg after: \(loadAverage())")
    }

    /// Ladon convolutions at 416×416 input: (name, inC, outC, kernel, stride, padding, dilation, input size).
    static let convShapes: [(String, Int, Int, Int, Int, Int, Int, Int)] = [
        ("encoder.0 5x5/s2 3->96", 3, 96, 5, 2, 2, 1, 416),
        ("encoder.2 5x5/s2 96->48", 96, 48, 5, 2, 2, 1, 208),
        ("encoder.4 2x2/p0 48->24", 48, 24, 2, 1, 0, 1, 104),
        ("decoder.0 2x2/p1 24->512", 24, 512, 2, 1, 1, 1, 103),
        ("decoder.2 2x2/p0 512->256", 512, 256, 2, 1, 0, 1, 104),
        ("decoder.4 2x2/p1 256->256", 256, 256, 2, 1, 1, 1, 103),
        ("layer2 3x3 128->128 @52", 128, 128, 3, 1, 1, 1, 52),
        ("layer3 3x3 256->256 @26", 256, 256, 3, 1, 1, 1, 26),
        ("layer4 3x3 512->512 @13", 512, 512, 3, 1, 1, 1, 13),
        ("layer3.0 downsample 1x1/s2 512->1024", 512, 1024, 1, 2, 0, 1, 52),
        ("ASPP 3x3 d12 2048->256 @13", 2048, 256, 3, 1, 12, 12, 13),
        ("ASPP 3x3 d24 2048->256 @13", 2048, 256, 3, 1, 24, 24, 13),
    ]

    @Test func conv2dTimings() {
        print("conv2d, median of 5, bias + ReLU fused; load avg before: \(loadAverage())")
        print("wall ms; cpu ms = process CPU time / threads; GFLOP/s of the dense MACs per cpu ms")
        print("| layer | algorithm | 1T wall ms | 1T cpu ms | 1T GFLOP/s | 2T wall ms | 2T cpu ms | 2T GFLOP/s |")
        print("|---|---|---|---|---|---|---|---|")
        for (name, cin, cout, k, stride, pad, dilation, size) in Self.convShapes {
            let p = Conv2dParameters(inChannels: cin, outChannels: cout, kernelSize: k, stride: stride,
                                     padding: pad, dilation: dilation)
            var rng = SplitMix64(seed: 11)
            let x = Tensor.random([1, cin, size, size], using: &rng)
            let weight = Tensor.random(p.weightShape, in: -0.1...0.1, using: &rng)
            let bias = (0..<cout).map { _ in Float.random(in: -1...1, using: &rng) }
            let flops = 2.0 * Double(cout * cin * k * k * p.outputHeight(size) * p.outputWidth(size))
            var algorithms: [Conv2dAlgorithm?] = [nil, .automatic, .im2col, .direct]
            if Kernels.isPointwise(p) { algorithms.insert(.pointwise, at: 2) }
            // nil: the model's layer (prepacked weights where its algorithm is a GEMM).
            let layer = Conv2d(parameters: p, weight: weight, bias: bias, activation: .relu)
            let packed: PackedConvWeights? = if case .packed(let w) = layer.storage { w } else { nil }
            for algorithm in algorithms {
                if algorithm == nil && packed == nil { continue }
                var cells: [String] = []
                for threads in [1, 2] {
                    let t = measure(runs: 5) {
                        if algorithm == nil, let packed {
                            _ = Kernels.conv2d(x, packed: packed, bias: bias, activation: .relu, threads: threads)
                        } else {
                            _ = Kernels.conv2d(x, weight: weight, bias: bias, p, activation: .relu,
                                               algorithm: algorithm ?? .automatic, threads: threads)
                        }
                    }
                    cells.append(String(format: "%.2f | %.2f | %.0f", t.wall * 1e3, t.cpu / Double(threads) * 1e3,
                                        flops / (t.cpu / Double(threads)) / 1e9))
                }
                let label = switch algorithm {
                case nil: "layer, packed (\(packed!.perTap.isEmpty ? "panels" : "per tap"))"
                case .automatic?: "automatic (\(Kernels.conv2dAlgorithm(for: p).rawValue)), plain weights"
                case let other?: other.rawValue
                }
                print("| \(name) | \(label) | \(cells[0]) | \(cells[1]) |")
            }
        }
        print("load avg after: \(loadAverage())")
    }

    /// The device-side encoder at 416² layer by layer (the stage `compare_ort.py` times as "encoder"):
    /// random weights of the Ladon ResNet-50 shapes, GDN parameters in their trained range; `encoder.2` also with
    /// each algorithm forced.
    @Test func encoderLayerTimings() {
        var rng = SplitMix64(seed: 5)
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ stride: Int, _ pad: Int) -> Conv2d {
            let p = Conv2dParameters(inChannels: cin, outChannels: cout, kernelSize: k, stride: stride, padding: pad)
            return Conv2d(parameters: p, weight: Tensor.random(p.weightShape, in: -0.1...0.1, using: &rng), bias: nil)
        }
        func gdn(_ c: Int) -> GDN {
            GDN(beta: (0..<c).map { _ in Float.random(in: 0.5...1.5, using: &rng) },
                gamma: Tensor.random([c, c], in: 0...0.1, using: &rng), inverse: false)
        }
        let (conv1, gdn1, conv2, gdn2, conv3) = (conv(3, 96, 5, 2, 2), gdn(96), conv(96, 48, 5, 2, 2), gdn(48),
                                                 conv(48, 24, 2, 1, 0))
        let image = Tensor.random([1, 3, 416, 416], using: &rng)
        let inputs = [image, conv1(image)]
        let x2 = gdn1(inputs[1]), x3 = conv2(x2), x4 = gdn2(x3)
        let steps: [(String, () -> Tensor)] = [
            ("encoder.0 conv 5x5/s2 3->96", { conv1(image) }), ("encoder.1 GDN(96) @208", { gdn1(inputs[1]) }),
            ("encoder.2 conv 5x5/s2 96->48", { conv2(x2) }),
            // Both algorithms whatever the automatic choice (direct on the C tiles, im2col on the portable ones), to
            // revisit it per CPU.
            ("encoder.2, direct forced", { conv2(x2, algorithm: .direct) }),
            ("encoder.2, im2col forced", { conv2(x2, algorithm: .im2col) }),
            ("encoder.3 GDN(48) @104", { gdn2(x3) }),
            ("encoder.4 conv 2x2 48->24", { conv3(x4) }),
            ("whole encoder, GDN unfused", { conv3(gdn2(conv2(gdn1(conv1(image))))) }),
            ("whole encoder, conv→GDN fused (as the model runs it)",
             { conv3(conv2(conv1(image, thenGDN: gdn1), thenGDN: gdn2)) }),
            // Each fusion alone, to see which one pays on this CPU.
            ("whole encoder, only encoder.0→GDN fused", { conv3(gdn2(conv2(conv1(image, thenGDN: gdn1)))) }),
            ("whole encoder, only encoder.2→GDN fused", { conv3(conv2(gdn1(conv1(image)), thenGDN: gdn2)) }),
        ]
        print("encoder layers at 416x416, median of 7 (kernel \(Kernels.gemmKernelName)); load avg before: \(loadAverage())")
        print("| layer | 1T wall ms | 1T cpu ms | 2T wall ms | 2T cpu ms |")
        print("|---|---|---|---|---|")
        let saved = Kernels.threadCount
        defer { Kernels.threadCount = saved }
        for (name, step) in steps {
            var cells: [String] = []
            for threads in [1, 2] {
                Kernels.threadCount = threads
                let t = measure { _ = step() }
                cells.append(String(format: "%.2f | %.2f", t.wall * 1e3, t.cpu / Double(threads) * 1e3))
            }
            print("| \(name) | \(cells.joined(separator: " | ")) |")
        }
        print("load avg after: \(loadAverage())")
    }
}
