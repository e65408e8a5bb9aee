// Every convolution algorithm against the reference on odd shapes, plus PyTorch golden fixtures.
import CLadonKernels
import Testing
import LadonTestSupport
@testable import LadonCore

/// One random convolution problem.
private struct ConvCase: CustomStringConvertible {
    var p: Conv2dParameters
    var batch: Int, h: Int, w: Int
    var bias: Bool, residual: Bool, relu: Bool

    var description: String {
        "N\(batch) \(p.inChannels)->\(p.outChannels) \(h)x\(w) k\(p.kernelHeight)x\(p.kernelWidth) "
            + "s\(p.strideHeight),\(p.strideWidth) p\(p.paddingHeight),\(p.paddingWidth) "
            + "d\(p.dilationHeight),\(p.dilationWidth) g\(p.groups) bias \(bias) res \(residual) relu \(relu)"
    }
}

/// Runs `algorithm` and the reference on `c` and compares them relative to the output scale.
private func checkConv(_ c: ConvCase, _ algorithm: Conv2dAlgorithm, threads: Int, seed: UInt64,
                       im2colBudget: Int = Kernels.im2colBudget,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    var rng = SplitMix64(seed: seed)
    let x = Tensor.random([c.batch, c.p.inChannels, c.h, c.w], using: &rng)
    let weight = Tensor.random(c.p.weightShape, using: &rng)
    let bias: [Float]? = c.bias ? (0..<c.p.outChannels).map { _ in Float.random(in: -1...1, using: &rng) } : nil
    let outShape = [c.batch, c.p.outChannels, max(c.p.outputHeight(c.h), 0), max(c.p.outputWidth(c.w), 0)]
    let residual = c.residual ? Tensor.random(outShape, using: &rng) : nil
    let activation: Activation = c.relu ? .relu : .none
    let expected = Kernels.conv2dReference(x, weight: weight, bias: bias, c.p, activation: activation, residual: residual)
    let actual = Kernels.conv2d(x, weight: weight, bias: bias, c.p, activation: activation, residual: residual,
                                algorithm: algorithm, threads: threads, im2colBudget: im2colBudget)
    expectClose(actual, expected, rtol: 1e-5, atol: 1e-5, "\(algorithm) threads \(threads) \(c)",
                sourceLocation: sourceLocation)
}

@Suite struct Conv2dTests {
    static let forced: [Conv2dAlgorithm] = [.automatic, .pointwise, .im2col, .direct]

    /// Random shapes over H/W 1…17, kernels 1/2/3/5/7, strides 1–3, paddings 0–3, dilations 1–3,
    /// groups 1–2, with and without bias, residual and ReLU (output-empty shapes included).
    @Test(arguments: forced, [1, 2])
    func randomShapes(algorithm: Conv2dAlgorithm, threads: Int) {
        var rng = SplitMix64(seed: 0xC0DE + UInt64(threads))
        for _ in 0..<60 {
            let groups = Int.random(in: 1...2, using: &rng)
            let kernel = [1, 2, 3, 5, 7].randomElement(using: &rng)!
            let kernelW = Bool.random(using: &rng) ? kernel : [1, 2, 3].randomElement(using: &rng)!
            let p = Conv2dParameters(
                inChannels: groups * Int.random(in: 1...5, using: &rng),
                outChannels: groups * Int.random(in: 1...9, using: &rng),
                kernelHeight: kernel, kernelWidth: kernelW,
                strideHeight: Int.random(in: 1...3, using: &rng), strideWidth: Int.random(in: 1...3, using: &rng),
                paddingHeight: Int.random(in: 0...3, using: &rng), paddingWidth: Int.random(in: 0...3, using: &rng),
                dilationHeight: Int.random(in: 1...3, using: &rng), dilationWidth: Int.random(in: 1...3, using: &rng),
                groups: groups)
            let c = ConvCase(p: p, batch: Int.random(in: 1...2, using: &rng), h: Int.random(in: 1...17, using: &rng),
                             w: Int.random(in: 1...17, using: &rng), bias: Bool.random(using: &rng),
                             residual: Bool.random(using: &rng), relu: Bool.random(using: &rng))
            checkConv(c, algorithm, threads: threads, seed: rng.next())
        }
    }

    /// 1×1 convolutions (the pointwise path and its strided subsampling), wider channel counts.
    @Test(arguments: forced, [1, 2])
    func pointwiseShapes(algorithm: Conv2dAlgorithm, threads: Int) {
        var rng = SplitMix64(seed: 0x1111 + UInt64(threads))
        for stride in 1...3 {
            for (cin, cout) in [(1, 1), (3, 7), (13, 29), (64, 40)] {
                let p = Conv2dParameters(inChannels: cin, outChannels: cout, kernelSize: 1, stride: stride)
                let c = ConvCase(p: p, batch: stride == 2 ? 2 : 1, h: Int.random(in: 1...17, using: &rng),
                                 w: Int.random(in: 1...17, using: &rng), bias: stride != 3, residual: cin > 3,
                                 relu: cout != 7)
                checkConv(c, algorithm, threads: threads, seed: rng.next())
            }
        }
    }

    /// The Ladon layer shapes at tiny channel counts: encoder, decoder, ResNet, ASPP, FPN/RPN.
    @Test(arguments: forced, [1, 2])
    func ladonShapes(algorithm: Conv2dAlgorithm, threads: Int) {
        let cases: [(Conv2dParameters, Int)] = [
            (Conv2dParameters(inChannels: 3, outChannels: 8, kernelSize: 5, stride: 2, padding: 2), 21),   // encoder 3->96
            (Conv2dParameters(inChannels: 8, outChannels: 6, kernelSize: 5, stride: 2, padding: 2), 11),   // 96->48
            (Conv2dParameters(inChannels: 6, outChannels: 5, kernelSize: 2, stride: 1, padding: 0), 6),    // 48->24
            (Conv2dParameters(inChannels: 5, outChannels: 16, kernelSize: 2, stride: 1, padding: 1), 6),   // 24->512
            (Conv2dParameters(inChannels: 16, outChannels: 8, kernelSize: 2, stride: 1, padding: 0), 7),   // 512->256
            (Conv2dParameters(inChannels: 8, outChannels: 8, kernelSize: 2, stride: 1, padding: 1), 6),    // 256->256
            (Conv2dParameters(inChannels: 8, outChannels: 12, kernelSize: 3, stride: 1, padding: 1), 13),  // ResNet 3x3
            (Conv2dParameters(inChannels: 8, outChannels: 12, kernelSize: 3, stride: 2, padding: 1), 13),  // ResNet s2
            (Conv2dParameters(inChannels: 8, outChannels: 16, kernelSize: 1, stride: 2), 13),              // downsample
            (Conv2dParameters(inChannels: 8, outChannels: 7, kernelSize: 3, padding: 12, dilation: 12), 13), // ASPP
            (Conv2dParameters(inChannels: 8, outChannels: 7, kernelSize: 3, padding: 24, dilation: 24), 13),
            (Conv2dParameters(inChannels: 8, outChannels: 7, kernelSize: 3, padding: 36, dilation: 36), 13),
            (Conv2dParameters(inChannels: 12, outChannels: 6, kernelSize: 1), 13),                         // FPN/RPN 1x1
        ]
        for (i, (p, size)) in cases.enumerated() {
            let c = ConvCase(p: p, batch: 1, h: size, w: size + 1, bias: true, residual: i % 3 == 0, relu: i % 2 == 0)
            checkConv(c, algorithm, threads: threads, seed: UInt64(500 + i))
        }
    }

    @Test(arguments: forced)
    func edgeCases(algorithm: Conv2dAlgorithm) {
        let cases: [ConvCase] = [
            // Output size 1.
            ConvCase(p: Conv2dParameters(inChannels: 3, outChannels: 5, kernelSize: 3), batch: 1, h: 3, w: 3,
                     bias: true, residual: true, relu: true),
            // Kernel larger than the input, with padding.
            ConvCase(p: Conv2dParameters(inChannels: 2, outChannels: 3, kernelSize: 7, padding: 3), batch: 2, h: 3, w: 2,
                     bias: true, residual: false, relu: false),
            ConvCase(p: Conv2dParameters(inChannels: 2, outChannels: 4, kernelSize: 5, stride: 3, padding: 2), batch: 1,
                     h: 1, w: 1, bias: false, residual: true, relu: false),
            // Every tap in the padding: the output is bias + residual only.
            ConvCase(p: Conv2dParameters(inChannels: 2, outChannels: 3, kernelSize: 2, padding: 3, dilation: 5),
                     batch: 1, h: 1, w: 1, bias: true, residual: true, relu: true),
            // Empty output (input smaller than the dilated kernel, no padding).
            ConvCase(p: Conv2dParameters(inChannels: 2, outChannels: 3, kernelSize: 3, dilation: 3), batch: 1,
                     h: 4, w: 9, bias: true, residual: false, relu: false),
            // 1×1 on a 1×1 map.
            ConvCase(p: Conv2dParameters(inChannels: 5, outChannels: 2, kernelSize: 1), batch: 3, h: 1, w: 1,
                     bias: true, residual: true, relu: true),
        ]
        for (i, c) in cases.enumerated() {
            checkConv(c, algorithm, threads: 2, seed: UInt64(900 + i))
        }
    }

    /// The im2col buffer tiled over output rows (budget lowered so one image needs several tiles).
    @Test(arguments: [1, 2])
    func im2colRowTiling(threads: Int) {
        let p = Conv2dParameters(inChannels: 6, outChannels: 14, kernelSize: 3, stride: 1, padding: 1, groups: 2)
        let c = ConvCase(p: p, batch: 2, h: 15, w: 17, bias: true, residual: true, relu: true)
        for budget in [1, 9 * 3 * 17 * 2, 9 * 3 * 17 * 4 + 5] {
            checkConv(c, .im2col, threads: threads, seed: 77, im2colBudget: budget)
        }
    }

    /// Bigger maps so the GEMMs and direct tiles run multi-threaded and cover full 16-wide tiles.
    @Test func largerMaps() {
        let cases: [ConvCase] = [
            ConvCase(p: Conv2dParameters(inChannels: 3, outChannels: 20, kernelSize: 5, stride: 2, padding: 2),
                     batch: 1, h: 70, w: 67, bias: true, residual: true, relu: true),
            ConvCase(p: Conv2dParameters(inChannels: 16, outChannels: 30, kernelSize: 3, stride: 1, padding: 1),
                     batch: 1, h: 40, w: 37, bias: true, residual: false, relu: true),
            ConvCase(p: Conv2dParameters(inChannels: 32, outChannels: 24, kernelSize: 1), batch: 1, h: 50, w: 45,
                     bias: true, residual: true, relu: false),
        ]
        for (i, c) in cases.enumerated() {
            for algorithm in Self.forced { checkConv(c, algorithm, threads: 2, seed: UInt64(40 + i)) }
        }
    }

    /// Direct convolutions whose taps span several depth blocks (the 96→48 encoder conv has 2,400: ten blocks on the AVX2
    /// and Swift tiles, one on the AVX-512 tiles; 320→45 3×3 has 2,880, two blocks on any tiles): each block's sum is
    /// added to the tile, and bias, residual and ReLU come once, after the last. Widths with a tail of at most 8
    /// columns (two rows' tails make one tile; an odd row count leaves one alone) and of more than 8.
    @Test(arguments: [1, 2])
    func directDepthBlocks(threads: Int) {
        let cases: [ConvCase] = [
            ConvCase(p: Conv2dParameters(inChannels: 96, outChannels: 13, kernelSize: 5, stride: 2, padding: 2),
                     batch: 1, h: 23, w: 37, bias: true, residual: true, relu: true),      // 12×19 output: tail 3
            ConvCase(p: Conv2dParameters(inChannels: 40, outChannels: 7, kernelSize: 3, padding: 2, dilation: 2),
                     batch: 2, h: 9, w: 28, bias: false, residual: true, relu: false),    // 360 taps, 9×28: tail 12
            ConvCase(p: Conv2dParameters(inChannels: 30, outChannels: 6, kernelSize: 3, stride: 1, padding: 1),
                     batch: 1, h: 11, w: 40, bias: true, residual: false, relu: true),    // 270 taps, 11×40: tail 8
            ConvCase(p: Conv2dParameters(inChannels: 320, outChannels: 45, kernelSize: 3, stride: 1, padding: 1),
                     batch: 1, h: 5, w: 37, bias: true, residual: true, relu: true),      // 2,880 taps, 5×37: tail 5
        ]
        for (i, c) in cases.enumerated() { checkConv(c, .direct, threads: threads, seed: UInt64(60 + i)) }
    }

    /// The direct tiles' depth blocks: the GEMM's on the AVX2 and Swift tiles; on the AVX-512 tiles as many taps as keep
    /// one block's packed weights within 512 KB, in even blocks, never fewer taps than the GEMM's.
    @Test func directDepthBlockRule() {
        let gemm = GEMMBlocking.preferred
        for taps in [0, 1, 75, 192, 257, 2400, 2880, 20_000] {
            for path in [DirectKernelPath.avx2, .swift] {
                #expect(Kernels.directDepthBlock(taps: taps, channels: 48, path: path) == gemm.depthBlock(taps))
            }
        }
        #expect(Kernels.directDepthBlock(taps: 0, channels: 48, path: .avx512) == 1)
        #expect(Kernels.directDepthBlock(taps: 75, channels: 96, path: .avx512) == 75)           // encoder.0
        #expect(Kernels.directDepthBlock(taps: 2400, channels: 48, path: .avx512) == 2400)       // encoder.2: 460 KB
        #expect(Kernels.directDepthBlock(taps: 2880, channels: 48, path: .avx512) == 1440)       // 553 KB: two blocks
        #expect(Kernels.directDepthBlock(taps: 2880, channels: 42, path: .avx512) == 2880)       // 484 KB
        #expect(Kernels.directDepthBlock(taps: 20_000, channels: 6, path: .avx512) == 20_000)
        // Very many channels: never below the GEMM's depth block.
        #expect(Kernels.directDepthBlock(taps: 2400, channels: 4096, path: .avx512) == gemm.depthBlock(2400))
    }

    /// The C AVX2 direct tile kernel and ``Kernels/directMicroKernel`` give the same bits (an FMA build) on plain
    /// tiles, edge tiles and two-row tail tiles, with and without `+ C` and an epilogue.
    @Test func directTileKernelsAgree() throws {
        #if LADON_FMA && arch(x86_64) && (os(Linux) || os(macOS))
        try #require(CPUFeatures.avx2FMA)
        var rng = SplitMix64(seed: 0xD1EC)
        let taps = 37, ldc = 50, span = 200
        let offsets = (0..<taps).map { _ in Int.random(in: 0..<span, using: &rng) }
        let source = (0..<span + 64).map { _ in Float.random(in: -1...1, using: &rng) }
        let weights = (0..<taps * 6).map { _ in Float.random(in: -1...1, using: &rng) }
        let c0 = (0..<6 * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
        let bias = (0..<6).map { _ in Float.random(in: -1...1, using: &rng) }
        let residual = (0..<6 * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
        // (high source offset, cHigh offset, rows, lowCols, highCols): plain, edge, tail pair, lone tail.
        for (highOffset, cHighOffset, rows, lowCols, highCols) in [(8, 8, 6, 8, 8), (8, 8, 4, 8, 3), (29, 30, 6, 5, 5),
                                                                   (0, 0, 6, 7, 0)] {
            for (loadC, withEpilogue) in [(false, false), (true, false), (true, true)] {
                var results: [[Float]] = []
                for kernel in [Kernels.directMicroKernel, Kernels.directKernel] {
                    var c = c0, tile = [Float](repeating: 0, count: 96)
                    offsets.withUnsafeBufferPointer { o in
                        source.withUnsafeBufferPointer { x in
                            weights.withUnsafeBufferPointer { w in
                                bias.withUnsafeBufferPointer { b in
                                    residual.withUnsafeBufferPointer { r in
                                        c.withUnsafeMutableBufferPointer { cp in
                                            let e = withEpilogue ? GEMMEpilogue(bias: b.baseAddress!, residual: r.baseAddress! + 2,
                                                                                ldr: ldc, relu: true) : nil
                                            kernel(taps, o.baseAddress!, x.baseAddress!, x.baseAddress! + highOffset,
                                                   w.baseAddress!, cp.baseAddress! + 2, cp.baseAddress! + 2 + cHighOffset,
                                                   ldc, rows, lowCols, highCols, loadC, e, &tile)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    results.append(c)
                }
                #expect(zip(results[0], results[1]).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "high +\(highOffset) rows \(rows) cols \(lowCols)/\(highCols) loadC \(loadC) epilogue \(withEpilogue)")
            }
        }
        #endif
    }

    /// The AVX2 tiles' driver gives the bits of the plain 6×16 tile run on every tile and 6-channel block, both where
    /// the taps come in runs of five at one pattern of offsets (the encoder's 5-wide kernel rows, which take the
    /// run-of-five kernel) and where one tap breaks the pattern (the plain kernel): plain, edge and tail-pair tiles,
    /// 13 channels (a last block of one), with and without `+ C` and an epilogue. Runs wherever the CPU has AVX2.
    @Test func directAVX2TilesInRunsOfFiveAgree() throws {
        #if LADON_FMA && arch(x86_64) && (os(Linux) || os(macOS))
        try #require(CPUFeatures.avx2FMA)
        var rng = SplitMix64(seed: 0x5F1E)
        let runs = 9, taps = 45, channels = 13, blocks = 3, plane = 64, span = 400
        let pattern = [0, 171, 1, 172, 2]  // stride 2: phase planes 171 floats apart
        let patterned = (0..<runs).flatMap { _ in
            let base = Int.random(in: 0..<(span - 200), using: &rng)
            return pattern.map { base + $0 }
        }
        var broken = patterned
        broken[7] += 3
        let source = (0..<span + 80).map { _ in Float.random(in: -1...1, using: &rng) }
        let weights = (0..<blocks * taps * 6).map { _ in Float.random(in: -1...1, using: &rng) }
        let c0 = (0..<channels * plane).map { _ in Float.random(in: -1...1, using: &rng) }
        let bias = (0..<channels).map { _ in Float.random(in: -1...1, using: &rng) }
        let residual = (0..<channels * plane).map { _ in Float.random(in: -1...1, using: &rng) }
        // (low, high) source offsets, (c_low, c_high), (low_cols, high_cols): plain, edge, tail pair.
        let layout = [(0, 8, 0, 8, 8, 8), (16, 24, 16, 24, 8, 3), (40, 61, 30, 50, 5, 5)]
        source.withUnsafeBufferPointer { x in
            weights.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    residual.withUnsafeBufferPointer { r in
                        let tiles = layout.map { CLadonDirectTile(low: x.baseAddress! + $0.0, high: x.baseAddress! + $0.1,
                                                                  c_low: $0.2, c_high: $0.3, low_cols: $0.4, high_cols: $0.5) }
                        for offsets in [patterned, broken] {
                            for (loadC, withEpilogue) in [(false, false), (true, false), (true, true)] {
                                var epilogue = CLadonEpilogue(bias: b.baseAddress!, residual: r.baseAddress!, ldr: plane,
                                                              relu: true, gdn: 0)
                                var driver = c0, plain = c0
                                var tile = [Float](repeating: 0, count: 96)
                                withUnsafePointer(to: &epilogue) { e in
                                    cladon_conv_direct_tiles_avx2(taps, offsets, tiles, tiles.count, w.baseAddress!,
                                                                  taps * 6, channels, &driver, plane, loadC,
                                                                  withEpilogue ? e : nil, nil, nil, false, nil, &tile)
                                }
                                for d in tiles {
                                    for block in 0..<blocks {
                                        let channel = block * 6
                                        var moved = CLadonEpilogue(bias: b.baseAddress! + channel,
                                                                   residual: r.baseAddress! + channel * plane + d.c_low,
                                                                   ldr: plane, relu: true, gdn: 0)
                                        plain.withUnsafeMutableBufferPointer { c in
                                            withUnsafePointer(to: &moved) { e in
                                                cladon_conv_direct_6x16_avx2(
                                                    taps, offsets, d.low, d.high, w.baseAddress! + block * taps * 6,
                                                    c.baseAddress! + channel * plane + d.c_low,
                                                    c.baseAddress! + channel * plane + d.c_high, plane,
                                                    min(6, channels - channel), d.low_cols, d.high_cols, loadC,
                                                    withEpilogue ? e : nil, &tile)
                                            }
                                        }
                                    }
                                }
                                #expect(zip(driver, plain).allSatisfy { $0.bitPattern == $1.bitPattern },
                                        "runs of five \(offsets == patterned) loadC \(loadC) epilogue \(withEpilogue)")
                            }
                        }
                    }
                }
            }
        }
        #endif
    }

    /// The C AVX-512 6×32 direct tile kernel gives the bits of ``Kernels/directMicroKernel`` run on each of its two
    /// 16-column halves (an FMA build): plain, edge, two-row tail and lone tail tiles, with and without `+ C` and an
    /// epilogue. Runs where the CPU has AVX-512, or in the emulated check build (`Scripts/check/emulated-avx512.sh`).
    @Test func directAVX512KernelAgrees() throws {
        #if LADON_FMA && arch(x86_64) && (os(Linux) || os(macOS))
        guard CPUFeatures.avx512 else { return }
        var rng = SplitMix64(seed: 0xD512)
        let taps = 41, ldc = 90, span = 200
        let offsets = (0..<taps).map { _ in Int.random(in: 0..<span, using: &rng) }
        let source = (0..<span + 96).map { _ in Float.random(in: -1...1, using: &rng) }
        let weights = (0..<taps * 6).map { _ in Float.random(in: -1...1, using: &rng) }
        let c0 = (0..<6 * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
        let bias = (0..<6).map { _ in Float.random(in: -1...1, using: &rng) }
        let residual = (0..<6 * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
        // (high source offset, cHigh offset, rows, lowCols, highCols): plain, edge rows, a short high half, a tail
        // pair, a lone tail of at most 8 and of more than 8 columns.
        let cases = [(16, 16, 6, 16, 16), (16, 16, 4, 16, 16), (16, 16, 6, 16, 11), (61, 70, 6, 13, 13), (0, 0, 5, 7, 0),
                     (0, 0, 6, 12, 0)]
        for (highOffset, cHighOffset, rows, lowCols, highCols) in cases {
            for (loadC, withEpilogue) in [(false, false), (true, false), (true, true)] {
                var viaC = c0, viaSwift = c0
                var tile = [Float](repeating: .nan, count: 6 * 32)
                offsets.withUnsafeBufferPointer { o in
                    source.withUnsafeBufferPointer { x in
                        weights.withUnsafeBufferPointer { w in
                            bias.withUnsafeBufferPointer { b in
                                residual.withUnsafeBufferPointer { r in
                                    func epilogue(_ column: Int) -> GEMMEpilogue? {
                                        withEpilogue ? GEMMEpilogue(bias: b.baseAddress!, residual: r.baseAddress! + 2 + column,
                                                                    ldr: ldc, relu: true) : nil
                                    }
                                    let (low, high) = (x.baseAddress!, x.baseAddress! + highOffset)
                                    viaC.withUnsafeMutableBufferPointer { c in
                                        Kernels.withCEpilogue(epilogue(0)) { e in
                                            cladon_conv_direct_6x32_avx512(taps, o.baseAddress!, low, high, w.baseAddress!,
                                                                           c.baseAddress! + 2, c.baseAddress! + 2 + cHighOffset,
                                                                           ldc, rows, lowCols, highCols, loadC, e, &tile)
                                        }
                                    }
                                    viaSwift.withUnsafeMutableBufferPointer { c in
                                        for (source, column, cols) in [(low, 0, lowCols), (high, cHighOffset, highCols)] where cols > 0 {
                                            let out = c.baseAddress! + 2 + column
                                            Kernels.directMicroKernel(taps, o.baseAddress!, source, source + 8, w.baseAddress!,
                                                                      out, out + 8, ldc, rows, min(8, cols), max(0, cols - 8),
                                                                      loadC, epilogue(column), &tile)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                #expect(zip(viaC, viaSwift).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "high +\(highOffset) rows \(rows) cols \(lowCols)/\(highCols) loadC \(loadC) epilogue \(withEpilogue)")
            }
        }
        #endif
    }

    /// F(2×2, 3×3) (padding 1) and F(3×3, 2×2) (padding 0 and 1, the decoder's) against the direct sums: sizes of
    /// every remainder (partial tiles at the right and bottom edges, vector and scalar steps), batch 2, maps cut into
    /// two chunks of tile rows, bias, residual and ReLU, one to three threads. Its rounding differs from the direct
    /// sums', within 1e-4 of the output scale.
    @Test(arguments: [1, 2, 3])
    func winogradMatchesReference(threads: Int) {
        var rng = SplitMix64(seed: 0x3170 + UInt64(threads))
        for (k, pad, cin, cout, n, h, w, bias, residual, relu) in [(3, 1, 64, 64, 1, 16, 16, true, false, true),
                                                                    (3, 1, 70, 65, 2, 23, 37, true, true, true),
                                                                    (3, 1, 64, 96, 1, 1, 1, false, true, false),
                                                                    (3, 1, 65, 64, 1, 2, 45, true, false, false),
                                                                    (3, 1, 64, 64, 1, 34, 3, false, false, true),
                                                                    (3, 1, 64, 64, 1, 70, 66, true, true, true),  // 2 chunks
                                                                    (2, 0, 64, 70, 1, 24, 41, true, true, true),
                                                                    (2, 0, 66, 64, 2, 2, 2, false, false, false),
                                                                    (2, 1, 64, 64, 1, 19, 36, true, false, true),
                                                                    (2, 1, 72, 64, 1, 1, 1, true, true, false),
                                                                    (2, 0, 64, 64, 1, 40, 61, false, true, false),
                                                                    (2, 0, 64, 64, 1, 100, 100, true, true, true),  // 2 chunks
                                                                    (2, 1, 64, 66, 1, 98, 101, true, false, true)] {  // 2 chunks
            let p = Conv2dParameters(inChannels: cin, outChannels: cout, kernelSize: k, padding: pad)
            let x = Tensor.random([n, cin, h, w], using: &rng)
            let weight = Tensor.random(p.weightShape, in: -0.1...0.1, using: &rng)
            let (oh, ow) = (p.outputHeight(h), p.outputWidth(w))
            let b: [Float]? = bias ? (0..<cout).map { _ in Float.random(in: -1...1, using: &rng) } : nil
            let r = residual ? Tensor.random([n, cout, oh, ow], using: &rng) : nil
            let activation: Activation = relu ? .relu : .none
            let expected = Kernels.conv2dReference(x, weight: weight, bias: b, p, activation: activation, residual: r)
            let actual = Kernels.conv2dWinograd(x, weights: WinogradWeights(weight), padding: pad, bias: b,
                                                activation: activation, residual: r, threads: threads)
            expectClose(actual, expected, rtol: 1e-4, atol: 1e-4,
                        "winograd \(k)x\(k) p\(pad) \(cin)->\(cout) \(n)x\(h)x\(w) threads \(threads)")
        }
    }

    /// The transformed weights (`WinogradWeights`: eight channel pairs per `Double` vector, split over the threads) are
    /// bit for bit those of the plain computation, one pair at a time: `G` times each column of `g`, then `G` times each
    /// row of that, in `Double`, rounded once. 3×3 and 2×2 kernels, pair counts that leave 1 to 7 lanes of a last step.
    @Test func winogradWeightsMatchPlainTransform() {
        var rng = SplitMix64(seed: 0x3173)
        for (r, cout, cin) in [(3, 5, 3), (3, 64, 65), (2, 7, 9), (2, 70, 64), (3, 1, 1)] {
            let weight = Tensor.random([cout, cin, r, r], in: -1...1, using: &rng)
            let made = WinogradWeights(weight), scalars = weight.scalars
            func g(_ v0: Double, _ v1: Double, _ v2: Double) -> [Double] {
                r == 3 ? [v0, 0.5 * (v0 + v1 + v2), 0.5 * (v0 - v1 + v2), v2] : [v0, 0.5 * (v0 + v1), 0.5 * (v0 - v1), -v1]
            }
            for xi in 0..<16 {
                let got = made.matrices[xi].unpacked()
                let expected = (0..<cout * cin).map { k -> Float in
                    let at = { (row: Int, column: Int) -> Double in
                        row < r ? Double(scalars[k * r * r + row * r + column]) : 0
                    }
                    let columns = (0..<r).map { j in g(at(0, j), at(1, j), at(2, j)) }  // columns[j][i] = (G g)[i][j]
                    let row = g(columns[0][xi / 4], columns[1][xi / 4], r == 3 ? columns[2][xi / 4] : 0)
                    return Float(row[xi % 4])
                }
                #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "r \(r) \(cout)x\(cin) xi \(xi)")
            }
        }
    }

    /// The C input transform (`cladon_winograd_input_transform`, every build the CPU runs: baseline, AVX2, AVX-512)
    /// gives the plain reference's bits on odd shapes: tile rows of 16 or more tiles (16-tile steps, the last one
    /// moved back), of 8 to 15 (8-tile steps) and under 8 (one tile at a time), maps narrower than a tile, padding 0
    /// and 1, tile-row ranges that start mid-map and touch the bottom edge, and planes spaced with a gap. Values
    /// outside the planes stay untouched.
    @Test func winogradInputTransformMatchesReference() {
        var rng = SplitMix64(seed: 0x3171)
        // Tiles per row: 8, 17, 32, 34, 1, 16, 13, 15 (m = 2); 16, 17, 16, 1, 1, 35, 35, 10, 14 (m = 3).
        for (m, padding, h, w) in [(2, 1, 16, 16), (2, 1, 7, 33), (2, 1, 5, 64), (2, 1, 9, 67), (2, 1, 1, 1), (2, 1, 2, 31),
                                   (2, 1, 6, 26), (2, 1, 3, 29),
                                   (3, 0, 12, 49), (3, 0, 7, 50), (3, 1, 11, 47), (3, 1, 1, 2), (3, 0, 2, 2),
                                   (3, 0, 10, 104), (3, 1, 8, 103), (3, 0, 5, 30), (3, 1, 4, 40)] {
            let r = 4 - m
            let (oh, ow) = (h + 2 * padding - r + 1, w + 2 * padding - r + 1)
            let (th, tw) = ((oh + m - 1) / m, (ow + m - 1) / m)
            let geometry = WinogradGeometry(m: m, padding: padding, h: h, w: w, oh: oh, ow: ow, tw: tw)
            let x = (0..<h * w).map { _ in Float.random(in: -4...4, using: &rng) }
            for tileRows in Set([0..<th, (th / 2)..<th, 0..<max(1, th / 2)]) {
                let xiStride = tileRows.count * tw + 5
                let sentinel: Float = 1234.5
                var expected = [Float](repeating: sentinel, count: 16 * xiStride)
                x.withUnsafeBufferPointer { xp in
                    geometry.inputTransformReference(xp.baseAddress!, tileRows: tileRows, into: &expected, xiStride: xiStride)
                }
                for level: Int32 in [1, 2, 3] {
                    var got = [Float](repeating: sentinel, count: 16 * xiStride)
                    var rows = [Float](repeating: .nan, count: geometry.rowBufferCount)
                    x.withUnsafeBufferPointer { xp in
                        geometry.inputTransform(xp.baseAddress!, tileRows: tileRows, into: &got, xiStride: xiStride,
                                                rows: &rows, level: level)
                    }
                    #expect(zip(got, expected).allSatisfy { $0.bitPattern == $1.bitPattern },
                            "m \(m) padding \(padding) \(h)x\(w) tile rows \(tileRows) level \(level)")
                }
            }
        }
    }

    /// The C output transform (`cladon_winograd_output_transform`, every build the CPU runs) gives the plain
    /// reference's bits, bias, residual and ReLU included (NaN and −0 among the products): rows of 16 or more whole
    /// tiles, of 8 to 15 and under 8, a partial tile at the right and bottom edges, tile-row ranges that start mid-map.
    /// Outputs outside the range's rows stay untouched.
    @Test func winogradOutputTransformMatchesReference() {
        var rng = SplitMix64(seed: 0x3172)
        // (m, oh, ow): whole tiles per row 8, 16, 17, 33, 12, 0 (m = 2); 16, 34, 11, 9, 0 (m = 3).
        for (m, oh, ow) in [(2, 16, 16), (2, 7, 33), (2, 9, 34), (2, 5, 67), (2, 6, 25), (2, 1, 1), (3, 12, 49), (3, 7, 104),
                            (3, 11, 33), (3, 8, 29), (3, 2, 2), (3, 9, 103)] {
            let (th, tw) = ((oh + m - 1) / m, (ow + m - 1) / m)
            let geometry = WinogradGeometry(m: m, padding: 0, h: oh + 4 - m - 1, w: ow + 4 - m - 1, oh: oh, ow: ow, tw: tw)
            for tileRows in Set([0..<th, (th / 2)..<th, 0..<max(1, th / 2)]) {
                let xiStride = tileRows.count * tw + 3
                var products = (0..<16 * xiStride).map { _ in Float.random(in: -2...2, using: &rng) }
                products[5] = .nan
                products[xiStride + 1] = -0.0
                let residual = (0..<oh * ow).map { _ in Float.random(in: -1...1, using: &rng) }
                for (bias, withResidual, relu) in [(Float(0.25), true, true), (0, false, false), (-0.5, false, true)] {
                    let sentinel: Float = 1234.5
                    var expected = [Float](repeating: sentinel, count: oh * ow)
                    residual.withUnsafeBufferPointer { r in
                        geometry.outputTransformReference(products, xiStride: xiStride, tileRows: tileRows, bias: bias,
                                                          residual: withResidual ? r.baseAddress! : nil, relu: relu,
                                                          into: &expected)
                    }
                    for level: Int32 in [1, 2, 3] {
                        var got = [Float](repeating: sentinel, count: oh * ow)
                        residual.withUnsafeBufferPointer { r in
                            geometry.outputTransform(products, xiStride: xiStride, tileRows: tileRows, bias: bias,
                                                     residual: withResidual ? r.baseAddress! : nil, relu: relu,
                                                     into: &got, level: level)
                        }
                        #expect(zip(got, expected).allSatisfy { $0.bitPattern == $1.bitPattern },
                                "m \(m) \(oh)x\(ow) tile rows \(tileRows) residual \(withResidual) relu \(relu) level \(level)")
                    }
                }
            }
        }
    }

    /// The 16 `ξ` planes of `V` and `M` lie an odd number of 64-byte lines apart (at most 31 floats of padding), so that
    /// they start in 16 different L1 sets even where `channels · tiles` is a multiple of 4 KB (256 · 208 floats).
    @Test func winogradPlanesStartInDifferentCacheSets() {
        guard Kernels.winogradPlanePadding else { return }  // LADON_WINOGRAD_PAD=0
        for floats in [1, 15, 16, 17, 1024, 256 * 208, 128 * 494, 512 * 225, 64 * 128 + 1] {
            let stride = Kernels.winogradPlaneStride(floats)
            #expect(stride >= floats && stride - floats < 32 && stride % 16 == 0 && stride / 16 % 2 == 1, "\(floats)")
            #expect(Set((0..<16).map { $0 * stride / 16 % 64 }).count == 16, "\(floats): \(stride)")
        }
    }

    /// A layer with packed weights runs Winograd exactly where ``Kernels/usesWinograd(_:height:width:)`` says (3×3 with
    /// padding 1 or 2×2 with padding ≤ 1, stride 1, ≥ 64 channels, ≥ 128 tiles) and im2col elsewhere; both agree
    /// with the reference.
    @Test func winogradChoiceInLayers() {
        let p = Conv2dParameters(inChannels: 64, outChannels: 64, kernelSize: 3, padding: 1)
        #expect(Kernels.usesWinograd(p, height: 26, width: 26))
        #expect(!Kernels.usesWinograd(p, height: 13, width: 13))  // 49 tiles
        #expect(!Kernels.usesWinograd(Conv2dParameters(inChannels: 64, outChannels: 64, kernelSize: 3, stride: 2, padding: 1),
                                      height: 52, width: 52))
        #expect(!Kernels.usesWinograd(Conv2dParameters(inChannels: 32, outChannels: 64, kernelSize: 3, padding: 1),
                                      height: 52, width: 52))
        #expect(!Kernels.usesWinograd(Conv2dParameters(inChannels: 64, outChannels: 64, kernelSize: 3, padding: 2,
                                                       dilation: 2), height: 52, width: 52))
        // The decoder's 2×2 convolutions: 512→256 (padding 0) and 256→256 (padding 1) run it; 24→512 does not.
        #expect(Kernels.usesWinograd(Conv2dParameters(inChannels: 512, outChannels: 256, kernelSize: 2), height: 104, width: 104))
        #expect(Kernels.usesWinograd(Conv2dParameters(inChannels: 256, outChannels: 256, kernelSize: 2, padding: 1),
                                     height: 103, width: 103))
        #expect(!Kernels.usesWinograd(Conv2dParameters(inChannels: 24, outChannels: 512, kernelSize: 2, padding: 1),
                                      height: 103, width: 103))
        #expect(!Kernels.usesWinograd(Conv2dParameters(inChannels: 64, outChannels: 64, kernelSize: 2, padding: 2),
                                      height: 52, width: 52))
        var rng = SplitMix64(seed: 0x1A7E)
        let weight = Tensor.random(p.weightShape, in: -0.1...0.1, using: &rng)
        let bias = (0..<64).map { _ in Float.random(in: -1...1, using: &rng) }
        let layer = Conv2d(parameters: p, weight: weight, bias: bias, activation: .relu)
        for (h, w) in [(26, 26), (13, 13), (21, 30)] {
            let x = Tensor.random([1, 64, h, w], using: &rng)
            let expected = Kernels.conv2dReference(x, weight: weight, bias: bias, p, activation: .relu, residual: nil)
            expectClose(layer(x), expected, rtol: 1e-4, atol: 1e-4, "layer at \(h)x\(w)")
        }
    }

    /// A direct convolution with its GDN applied to each finished tile gives the same bits as the GDN over the whole
    /// output (the encoder's pairs; paired row tails, several depth blocks, forward and inverse). Without the C tiles
    /// the layer runs the GDN after the convolution, and the same bits are expected.
    @Test func directConvolutionThenGDNIsBitIdentical() {
        var rng = SplitMix64(seed: 0x6D11)
        for (cin, cout, k, stride, pad, h, w, inverse) in [(3, 96, 5, 2, 2, 21, 37, false), (96, 48, 5, 2, 2, 23, 37, false),
                                                           (10, 30, 3, 1, 1, 9, 20, true), (4, 12, 2, 1, 0, 5, 17, false)] {
            let p = Conv2dParameters(inChannels: cin, outChannels: cout, kernelSize: k, stride: stride, padding: pad)
            let layer = Conv2d(parameters: p, weight: Tensor.random(p.weightShape, in: -0.2...0.2, using: &rng), bias: nil)
            let gdn = GDN(beta: (0..<cout).map { _ in Float.random(in: 0.5...1.5, using: &rng) },
                          gamma: Tensor.random([cout, cout], in: 0...0.1, using: &rng), inverse: inverse)
            let x = Tensor.random([1, cin, h, w], using: &rng)
            // The fused path runs wherever the C tiles (AVX2 or AVX-512) run these convolutions directly (elsewhere the
            // layer runs GDN after).
            let direct = Kernels.conv2dAlgorithm(for: p) == .direct
            #expect(Kernels.directCanFuse(p, gdn) == (Kernels.directPath != .swift))
            if Kernels.directTilesAreC { #expect(direct) }
            expectIdentical(layer(x, thenGDN: gdn), gdn(layer(x)), "\(cin)->\(cout) \(k)x\(k)/s\(stride) \(h)x\(w)")
        }
    }

    /// On the C tiles (AVX2 or AVX-512) the direct path and im2col + GEMM give the encoder's convolutions the same bits
    /// wherever they cut the taps into the same depth blocks: each output is the same FMA chain over the taps in the
    /// same order and depth blocks, then `+ C` and the epilogue. Where they do not (96 → 48 on the AVX-512 tiles, one
    /// block of 2,400 taps against the GEMM's ten), the two agree to float rounding. Odd sizes, several depth blocks,
    /// bias, residual, ReLU, two images, packed weights and a small im2col buffer. (The portable Swift tiles, where no
    /// C tiles run, may round differently from the GEMM's kernel.)
    @Test(.enabled(if: Kernels.directPath != .swift, "the direct path runs on the C tiles"), arguments: [1, 2])
    func directAndIm2colGiveTheSameBits(threads: Int) {
        var rng = SplitMix64(seed: 0xC401CE)
        let cases: [(Conv2dParameters, n: Int, h: Int, w: Int, bias: Bool, residual: Bool, relu: Bool)] = [
            (.init(inChannels: 3, outChannels: 96, kernelSize: 5, stride: 2, padding: 2), 1, 21, 37, false, false, false),
            (.init(inChannels: 96, outChannels: 48, kernelSize: 5, stride: 2, padding: 2), 2, 23, 19, false, false, false),
            (.init(inChannels: 48, outChannels: 24, kernelSize: 2, stride: 1, padding: 0), 1, 13, 17, true, true, true),
            (.init(inChannels: 30, outChannels: 13, kernelSize: 3, stride: 1, padding: 1), 2, 9, 26, true, false, true),
            (.init(inChannels: 4, outChannels: 70, kernelSize: 7, stride: 2, padding: 3), 1, 15, 40, true, true, false),
        ]
        for (p, n, h, w, hasBias, hasResidual, relu) in cases {
            let label = "\(p.inChannels)->\(p.outChannels) \(p.kernelHeight)x\(p.kernelWidth)/s\(p.strideHeight) N\(n) \(h)x\(w)"
            let x = Tensor.random([n, p.inChannels, h, w], using: &rng)
            let weight = Tensor.random(p.weightShape, in: -0.2...0.2, using: &rng)
            let bias: [Float]? = hasBias ? (0..<p.outChannels).map { _ in Float.random(in: -1...1, using: &rng) } : nil
            let residual = hasResidual ? Tensor.random([n, p.outChannels, p.outputHeight(h), p.outputWidth(w)], using: &rng) : nil
            let activation: Activation = relu ? .relu : .none
            func run(_ algorithm: Conv2dAlgorithm, packed: PackedConvWeights? = nil, budget: Int = Kernels.im2colBudget) -> Tensor {
                Kernels.conv2d(x, weight: weight, bias: bias, p, activation: activation, residual: residual,
                               algorithm: algorithm, threads: threads, im2colBudget: budget, packed: packed)
            }
            let direct = run(.direct)
            let taps = p.inChannels / p.groups * p.kernelHeight * p.kernelWidth
            let sameBlocks = Kernels.directDepthBlock(taps: taps, channels: (p.outChannels + 5) / 6 * 6,
                                                      path: Kernels.directPath) == GEMMBlocking.preferred.depthBlock(taps)
            func expectSame(_ actual: Tensor, _ what: String) {
                if sameBlocks {
                    expectIdentical(actual, direct, "\(label) \(what)")
                } else {
                    expectClose(actual, direct, rtol: 1e-5, atol: 1e-5, "\(label) \(what), other depth blocks")
                }
            }
            expectSame(run(.im2col), "im2col")
            expectSame(run(.im2col, packed: PackedConvWeights(weight, p)), "im2col, packed")
            expectSame(run(.im2col, budget: 4096), "im2col, small buffer")
        }
    }

    @Test func outputSizeUsesFloorDivision() {
        // (4 + 2·1 − 6 − 1) / 2 = −0.5 → floor −1 → 0 rows, as PyTorch (truncation would give 1).
        let p = Conv2dParameters(inChannels: 1, outChannels: 1, kernelHeight: 7, kernelWidth: 1, strideHeight: 2,
                                 strideWidth: 1, paddingHeight: 1, paddingWidth: 0)
        #expect(p.outputHeight(4) == 0)
        #expect(p.outputHeight(5) == 1)
        #expect(p.outputWidth(3) == 3)
    }

    @Test func automaticRule() {
        #expect(Kernels.conv2dAlgorithm(for: Conv2dParameters(inChannels: 64, outChannels: 256, kernelSize: 1)) == .pointwise)
        #expect(Kernels.conv2dAlgorithm(for: Conv2dParameters(inChannels: 256, outChannels: 512, kernelSize: 1, stride: 2))
                == .pointwise)
        #expect(Kernels.conv2dAlgorithm(for: Conv2dParameters(inChannels: 3, outChannels: 96, kernelSize: 5, stride: 2,
                                                              padding: 2)) == .direct)
        #expect(Kernels.conv2dAlgorithm(for: Conv2dParameters(inChannels: 48, outChannels: 24, kernelSize: 2)) == .direct)
        #expect(Kernels.conv2dAlgorithm(for: Conv2dParameters(inChannels: 96, outChannels: 48, kernelSize: 5, stride: 2,
                                                              padding: 2)) == (Kernels.directTilesAreC ? .direct : .im2col))
        #expect(Kernels.conv2dAlgorithm(for: Conv2dParameters(inChannels: 128, outChannels: 128, kernelSize: 3,
                                                              padding: 1)) == .im2col)
    }
}

/// Golden outputs from PyTorch (`Scripts/make_conv_fixtures.py`): `F.conv2d` on the Ladon layer shapes at
/// tiny channel counts, and `Conv2d` + eval `BatchNorm2d` for the layer's BatchNorm folding.
@Suite struct Conv2dGoldenTests {
    static let caseNames = [
        "encoder_stem_5x5_s2", "encoder_5x5_s2", "encoder_2x2_p0", "decoder_2x2_p1", "decoder_2x2_p0",
        "decoder_2x2_p1b", "resnet_stem_7x7_s2", "resnet_3x3_s1", "resnet_3x3_s2", "resnet_1x1_s2_downsample",
        "fpn_1x1", "aspp_3x3_d12", "aspp_3x3_d24", "aspp_3x3_d36", "grouped_3x3_g2",
    ]

    @Test(arguments: Conv2dTests.forced + [.reference])
    func torchConv2d(algorithm: Conv2dAlgorithm) throws {
        let file = try Fixtures.safetensors("conv/conv_cases.safetensors")
        #expect(Set(file.names.filter { $0.hasSuffix(".params") }.map { String($0.dropLast(7)) }) == Set(Self.caseNames))
        for name in Self.caseNames {
            let q = try file.integers("\(name).params")
            let p = Conv2dParameters(inChannels: q[0], outChannels: q[1], kernelSize: q[2], stride: q[3],
                                     padding: q[4], dilation: q[5], groups: q[6])
            let x = try file.tensor("\(name).input")
            let weight = try file.tensor("\(name).weight", shape: p.weightShape)
            let bias = q[7] == 1 ? try file.tensor("\(name).bias", shape: [p.outChannels]).scalars : nil
            let expected = try file.tensor("\(name).output")
            for threads in [1, 2] {
                let y = Kernels.conv2d(x, weight: weight, bias: bias, p, activation: q[8] == 1 ? .relu : .none,
                                       algorithm: algorithm, threads: threads)
                expectClose(y, expected, rtol: 1e-5, atol: 1e-6, "\(name) \(algorithm) threads \(threads)")
            }
        }
    }

    @Test(arguments: ["nobias", "bias"])
    func batchNormFolding(name: String) throws {
        let file = try Fixtures.safetensors("conv/conv_bn.safetensors")
        let root = WeightScope(file: file, prefix: name)
        let p = Conv2dParameters(inChannels: 6, outChannels: 10, kernelSize: 3, stride: name == "bias" ? 2 : 1, padding: 1)
        let layer = try Conv2d(weights: root.scope("conv"), parameters: p, hasBias: name == "bias",
                               batchNorm: root.scope("bn"), activation: .relu)
        let x = try file.tensor("\(name).input")
        let expected = try file.tensor("\(name).output")
        for algorithm in Conv2dTests.forced {
            expectClose(layer(x, algorithm: algorithm), expected, rtol: 1e-5, atol: 1e-6, "\(name) \(algorithm)")
        }
    }
}
