// The micro-kernels one by one against a scalar fused-multiply-add reference (bit for bit), and the choice
// of kernel from CPU features.
import Foundation
import LadonTestSupport
import Testing
@testable import LadonCore

/// One tile computed the way every FMA kernel must: `fma` over `p` in order from 0, then `+ C`, `+ bias`,
/// `+ residual`, ReLU; elements outside the `rows×cols` corner keep their value.
private func referenceTile(kc: Int, mr: Int, nr: Int, a: [Float], b: [Float], c: [Float], ldc: Int,
                           rows: Int, cols: Int, loadC: Bool, bias: [Float]?, residual: [Float]?, ldr: Int,
                           relu: Bool) -> [Float] {
    var out = c
    for i in 0..<rows {
        for j in 0..<cols {
            var v: Float = 0
            for p in 0..<kc { v = v.addingProduct(a[p * mr + i], b[p * nr + j]) }
            if loadC { v += c[i * ldc + j] }
            if let bias { v += bias[i] }
            if let residual { v += residual[i * ldr + j] }
            if relu { v = v > 0 ? v : 0 }
            out[i * ldc + j] = v
        }
    }
    return out
}

/// Calls `body` with the epilogue `+ bias[row] + residual, ReLU` over `bias` and `residual` (leading dimension `ldr`)
/// when `enabled`, else with `nil`.
private func withTestEpilogue(_ enabled: Bool, bias: [Float], residual: [Float], ldr: Int,
                              _ body: (GEMMEpilogue?) -> Void) {
    bias.withUnsafeBufferPointer { biasp in
        residual.withUnsafeBufferPointer { rp in
            body(enabled ? GEMMEpilogue(bias: biasp.baseAddress!, residual: rp.baseAddress!, ldr: ldr, relu: true) : nil)
        }
    }
}

@Suite struct GEMMDispatchTests {
    /// The kernels whose products are fused: the C ones always, the Swift ones in a `LADON_FMA` build.
    static var fusedKernels: [GEMMKernel] {
        GEMMKernel.allCases.filter { kernel in
            guard kernel.isSupported else { return false }
            #if LADON_FMA
            return true
            #else
            return kernel != .swift12x32 && kernel != .swift6x16
            #endif
        }
    }

    @Test(arguments: fusedKernels)
    func microKernelIsBitExact(kernel: GEMMKernel) {
        let blocking = GEMMBlocking(kernel)
        let (mr, nr) = (blocking.mr, blocking.nr)
        let ldc = nr + 3, ldr = nr + 5
        var rng = SplitMix64(seed: 0xD15 + UInt64(mr))
        var checked = 0
        for kc in [1, 2, 7, 64, 256] {
            // Half-width tiles too (AVX-512: at most 16 columns run a 16-column variant).
            for (rows, cols) in [(mr, nr), (mr - 1, nr), (mr, nr - 5), (1, 1), (mr / 2, 3), (mr, nr / 2),
                                 (mr / 3, nr / 2 + 1), (mr - 3, nr / 2 - 7)] {
                for (loadC, epilogueCase) in [(false, 0), (true, 0), (false, 1), (true, 2), (true, 3)] {
                    let a = (0..<kc * mr).map { _ in Float.random(in: -1...1, using: &rng) }
                    let b = (0..<kc * nr).map { _ in Float.random(in: -1...1, using: &rng) }
                    let c = (0..<mr * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
                    let bias = (0..<mr).map { _ in Float.random(in: -1...1, using: &rng) }
                    let residual = (0..<mr * ldr).map { _ in Float.random(in: -1...1, using: &rng) }
                    // 0: none; 1: bias + ReLU; 2: residual; 3: bias + residual + ReLU.
                    let useBias = epilogueCase == 1 || epilogueCase == 3
                    let useResidual = epilogueCase >= 2
                    let relu = epilogueCase == 1 || epilogueCase == 3
                    let expected = referenceTile(kc: kc, mr: mr, nr: nr, a: a, b: b, c: c, ldc: ldc,
                                                 rows: rows, cols: cols, loadC: loadC,
                                                 bias: useBias ? bias : nil, residual: useResidual ? residual : nil,
                                                 ldr: ldr, relu: relu)
                    var actual = c
                    var tile = [Float](repeating: .nan, count: mr * nr)
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            bias.withUnsafeBufferPointer { biasp in
                                residual.withUnsafeBufferPointer { rp in
                                    let epilogue = epilogueCase == 0 ? nil
                                        : GEMMEpilogue(bias: useBias ? biasp.baseAddress! : nil,
                                                       residual: useResidual ? rp.baseAddress! : nil,
                                                       ldr: ldr, relu: relu)
                                    kernel.function(kc, ap.baseAddress!, bp.baseAddress!, &actual, ldc, rows, cols,
                                                    loadC, epilogue, &tile)
                                }
                            }
                        }
                    }
                    let same = zip(actual, expected).allSatisfy { $0.bitPattern == $1.bitPattern }
                    #expect(same, "\(kernel.rawValue) kc \(kc) rows \(rows) cols \(cols) loadC \(loadC) epilogue \(epilogueCase)")
                    checked += 1
                }
            }
        }
        #expect(checked == 200)
    }

    /// A kernel's block loop that packs a plain `B` inside its first row tiles gives the same bits as packing `B` first
    /// and running the plain block loop, and leaves the same packed panels (narrower last panel zero-padded): blocks
    /// of fewer than 12 rows, a partial last panel, a padded leading dimension of `B`, with and without `+ C` and an
    /// epilogue.
    @Test(arguments: GEMMKernel.allCases.filter { $0.isSupported && $0.packingBlockFunction != nil })
    func packingBlockLoopMatchesPackingFirst(kernel: GEMMKernel) throws {
        let packing = try #require(kernel.packingBlockFunction)
        let blocking = GEMMBlocking(kernel)
        let (mr, nr) = (blocking.mr, blocking.nr)
        var rng = SplitMix64(seed: 0xFAC4 + UInt64(mr))
        for (kc, mc, nc) in [(5, 2 * mr + 1, 2 * nr + 3), (40, mr, nr), (1, 1, 1), (17, 3 * mr, nr - 2), (33, 5, 3 * nr),
                             (9, mr - 1, nr + 1)] {
            let ldb = nc + 3, ldc = nc + 4, ldr = nc + 1
            let a = (0..<kc * Kernels.roundUp(mc, mr)).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<kc * ldb).map { _ in Float.random(in: -1...1, using: &rng) }
            let c0 = (0..<mc * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
            let bias = (0..<mc).map { _ in Float.random(in: -1...1, using: &rng) }
            let residual = (0..<mc * ldr).map { _ in Float.random(in: -1...1, using: &rng) }
            let panelCount = kc * Kernels.roundUp(nc, nr)
            for (loadC, withEpilogue) in [(false, false), (true, false), (true, true)] {
                var packedFirst = c0, packedInTiles = c0
                var panels = [Float](repeating: .nan, count: panelCount), tilePanels = panels
                var tile = [Float](repeating: 0, count: mr * nr)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        withTestEpilogue(withEpilogue, bias: bias, residual: residual, ldr: ldr) { e in
                            tile.withUnsafeMutableBufferPointer { unused in  // `packB` reads only B's fields
                                let op = GEMMOperands(m: mc, n: nc, k: kc, a: ap.baseAddress!, lda: kc,
                                                      transposeA: false, b: bp.baseAddress!, ldb: ldb,
                                                      transposeB: false, c: unused.baseAddress!, ldc: nc,
                                                      accumulate: false, epilogue: .none)
                                Kernels.packB(op, k0: 0, kc: kc, j0: 0, nc: nc, nr: nr, into: &panels)
                            }
                            packedFirst.withUnsafeMutableBufferPointer { cp in
                                kernel.blockFunction(kc, ap.baseAddress!, mc, panels, nc, cp.baseAddress!, ldc, loadC,
                                                     e, &tile)
                            }
                            packedInTiles.withUnsafeMutableBufferPointer { cp in
                                tilePanels.withUnsafeMutableBufferPointer { pp in
                                    packing(kc, ap.baseAddress!, mc, bp.baseAddress!, ldb, nc, pp.baseAddress!,
                                            cp.baseAddress!, ldc, loadC, e, &tile)
                                }
                            }
                        }
                    }
                }
                let what = "\(kernel.rawValue) kc \(kc) mc \(mc) nc \(nc) loadC \(loadC) epilogue \(withEpilogue)"
                #expect(zip(packedFirst, packedInTiles).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(what): C")
                #expect(zip(panels, tilePanels).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(what): panels")
            }
        }
    }

    /// A kernel's block loop (in C for the C kernels) gives the same bits as calling its tile kernel tile by tile,
    /// on blocks with edge tiles in both directions, with and without `+ C` and an epilogue.
    @Test(arguments: GEMMKernel.allCases.filter(\.isSupported))
    func blockLoopMatchesTileByTile(kernel: GEMMKernel) {
        let blocking = GEMMBlocking(kernel)
        let (mr, nr) = (blocking.mr, blocking.nr)
        var rng = SplitMix64(seed: 0xB10C + UInt64(mr))
        for (kc, mc, nc) in [(5, 2 * mr + 1, 2 * nr + 3), (40, mr, nr), (1, 1, 1), (17, 3 * mr, nr - 2)] {
            let ldc = nc + 4, ldr = nc + 1
            let a = (0..<kc * Kernels.roundUp(mc, mr)).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<kc * Kernels.roundUp(nc, nr)).map { _ in Float.random(in: -1...1, using: &rng) }
            let c0 = (0..<mc * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
            let bias = (0..<mc).map { _ in Float.random(in: -1...1, using: &rng) }
            let residual = (0..<mc * ldr).map { _ in Float.random(in: -1...1, using: &rng) }
            for (loadC, withEpilogue) in [(false, false), (true, false), (true, true)] {
                var byTile = c0, byBlock = c0
                var tile = [Float](repeating: 0, count: mr * nr)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        withTestEpilogue(withEpilogue, bias: bias, residual: residual, ldr: ldr) { e in
                            byTile.withUnsafeMutableBufferPointer { cp in
                                for jr in stride(from: 0, to: nc, by: nr) {
                                    for ir in stride(from: 0, to: mc, by: mr) {
                                        kernel.function(kc, ap.baseAddress! + ir * kc, bp.baseAddress! + jr * kc,
                                                        cp.baseAddress! + ir * ldc + jr, ldc, min(mr, mc - ir),
                                                        min(nr, nc - jr), loadC, e?.offset(row: ir, column: jr), &tile)
                                    }
                                }
                            }
                            byBlock.withUnsafeMutableBufferPointer { cp in
                                kernel.blockFunction(kc, ap.baseAddress!, mc, bp.baseAddress!, nc, cp.baseAddress!, ldc,
                                                     loadC, e, &tile)
                            }
                        }
                    }
                }
                #expect(zip(byTile, byBlock).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(kernel.rawValue) kc \(kc) mc \(mc) nc \(nc) loadC \(loadC) epilogue \(withEpilogue)")
            }
        }
    }

    /// The blocked GEMM gives the same bits with the C kernels as with the Swift ones of the `LADON_FMA` build.
    @Test func cKernelsMatchSwiftKernels() {
        let pairs = Self.fusedKernels.filter { $0 != .swift12x32 && $0 != .swift6x16 }
            .map { ($0, $0.isWide ? GEMMKernel.swift12x32 : .swift6x16) }
        var rng = SplitMix64(seed: 0xFA57)
        for (m, n, k) in [(13, 70, 300), (150, 33, 5), (7, 2100, 1)] {
            let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) }
            for (fast, swift) in pairs {
                var results: [[Float]] = []
                for kernel in [fast, swift] {
                    var c = [Float](repeating: 0, count: m * n)
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            c.withUnsafeMutableBufferPointer { cp in
                                let op = GEMMOperands(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, transposeA: false,
                                                      b: bp.baseAddress!, ldb: n, transposeB: false,
                                                      c: cp.baseAddress!, ldc: n, accumulate: false, epilogue: .none)
                                Kernels.gemmBlocked(op, threads: 2, blocking: GEMMBlocking(kernel), parallelFlops: 0)
                            }
                        }
                    }
                    results.append(c)
                }
                #if LADON_FMA
                #expect(zip(results[0], results[1]).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(fast.rawValue) vs \(swift.rawValue) m \(m) n \(n) k \(k)")
                #else
                let tolerance = 1e-6 * Float(k) + 1e-6
                #expect(zip(results[0], results[1]).allSatisfy { abs($0 - $1) <= tolerance },
                        "\(fast.rawValue) vs \(swift.rawValue) m \(m) n \(n) k \(k)")
                #endif
            }
        }
    }

    @Test func forcedKernelName() {
        for kernel in GEMMKernel.allCases {
            #expect(GEMMKernel.choose(forced: kernel.rawValue) == (kernel.isSupported ? kernel : GEMMKernel.detected))
        }
        #expect(GEMMKernel.choose(forced: nil) == GEMMKernel.detected)
        #expect(GEMMKernel.choose(forced: "avx512") == GEMMKernel.detected)
        #expect(GEMMKernel.selected.isSupported)
        #expect(Kernels.gemmKernelName == GEMMKernel.selected.rawValue)
    }

    /// CPUID agrees with the kernel's `/proc/cpuinfo` flags, and every build picks a C kernel wherever the CPU
    /// has AVX2 + FMA.
    @Test func detectionFollowsCPUFlags() throws {
        #if arch(x86_64) && os(Linux)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: " ").map(String.init))
        // An emulated-AVX-512 check build reports AVX-512 on any AVX2 + FMA machine.
        let hasAVX512 = flags.contains("avx512f") || CPUFeatures.avx512Emulated
        #expect(CPUFeatures.avx512 == hasAVX512)
        #expect(CPUFeatures.avx2FMA == (flags.contains("avx2") && flags.contains("fma")))
        let expected: GEMMKernel = hasAVX512 ? .avx512
            : CPUFeatures.avx2FMA ? .avx2 : .swift6x16
        #expect(GEMMKernel.detected == expected)
        #elseif !arch(x86_64)
        #expect(!CPUFeatures.avx512 && !CPUFeatures.avx2FMA)
        #endif
    }
}
