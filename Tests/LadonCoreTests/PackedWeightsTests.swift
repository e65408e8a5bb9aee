// Prepacked weights (convolutions, linear layers, GDN) and the im2col matrix packed straight into GEMM panels,
// against the plain reference kernels on odd shapes.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore
import CLadonKernels

@Suite struct PackedWeightsTests {
    /// The micro-kernel blockings this machine can run (the packing layout depends on MR and KC).
    static var blockings: [GEMMBlocking] { GEMMKernel.allCases.filter(\.isSupported).map(GEMMBlocking.init) }

    /// `a·b` for `[M, K]` and `[K, N]` matrices by the plain reference GEMM, row-major `M × N`.
    private func referenceProduct(_ a: Tensor, _ b: Tensor) -> [Float] {
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        var product = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                Kernels.gemmReference(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                                      c: &product, ldc: n)
            }
        }
        return product
    }

    /// `relu(product + start + bias[row] + residual)`, elementwise over `M × N` (`start` only when accumulating): what
    /// the GEMM's bias + residual + ReLU epilogue should leave in `C`.
    private func withEpilogue(_ product: [Float], start: Tensor? = nil, bias: [Float], residual: Tensor, n: Int) -> [Float] {
        product.indices.map { i in max(0, product[i] + (start?.scalars[i] ?? 0) + bias[i / n] + residual.scalars[i]) }
    }

    @Test func packingIsLosslessForEveryBlocking() {
        var rng = SplitMix64(seed: 41)
        for blocking in Self.blockings {
            for (m, k) in [(1, 1), (5, 7), (12, 256), (13, 257), (25, 600), (64, 513), (7, 0)] {
                let a = Tensor.random([m, k], using: &rng)
                let packed = PackedMatrix(a, blocking: blocking)
                #expect(packed.matches(blocking))
                #expect(packed.unpacked() == a.scalars, "\(blocking.kernel) \(m)x\(k)")
            }
        }
    }

    /// `packA` (C register transposes for a row-major `A`) writes exactly the plain loop's panels: odd row counts
    /// and depths, offsets into a wider matrix, every MR in use and a few others, both storage orders.
    @Test func packAMatchesReference() {
        var rng = SplitMix64(seed: 43)
        for mr in [4, 6, 8, 12, 16] {
            for _ in 0..<10 {
                let (mc, kc) = (rng.extent(1...40), rng.extent(1...90))
                let (i0, k0) = (rng.extent(0...5), rng.extent(0...9))
                for transposed in [false, true] {
                    // Row-major [rows × lda], or [K × M] when transposed, with a margin past what is read.
                    let rows = transposed ? k0 + kc : i0 + mc
                    let lda = (transposed ? i0 + mc : k0 + kc) + rng.extent(0...3)
                    let a = (0..<rows * lda).map { _ in Float.random(in: -1...1, using: &rng) }
                    let count = Kernels.roundUp(mc, mr) * kc
                    var got = [Float](repeating: .nan, count: count), want = got
                    a.withUnsafeBufferPointer { ap in
                        got.withUnsafeMutableBufferPointer {
                            Kernels.packA(ap.baseAddress!, lda: lda, transposed: transposed, i0: i0, mc: mc, k0: k0,
                                          kc: kc, mr: mr, into: $0.baseAddress!)
                        }
                        want.withUnsafeMutableBufferPointer {
                            Kernels.packAReference(ap.baseAddress!, lda: lda, transposed: transposed, i0: i0, mc: mc,
                                                   k0: k0, kc: kc, mr: mr, into: $0.baseAddress!)
                        }
                    }
                    #expect(got == want, "mr \(mr) mc \(mc) kc \(kc) i0 \(i0) k0 \(k0) lda \(lda) transposed \(transposed)")
                }
            }
        }
    }

    /// Dilated convolutions are packed per tap; unpacking gives the weights back, with more (channel, tap) pairs
    /// than one de-interleaving step takes and odd kernel shapes.
    @Test func dilatedWeightsArePackedPerTapLosslessly() {
        var rng = SplitMix64(seed: 44)
        for (outC, inC, kh, kw) in [(13, 37, 3, 3), (70, 101, 3, 3), (5, 3, 3, 2), (1, 1, 2, 3)] {
            let p = Conv2dParameters(inChannels: inC, outChannels: outC, kernelHeight: kh, kernelWidth: kw,
                                     strideHeight: 1, strideWidth: 1, paddingHeight: 2, paddingWidth: 2,
                                     dilationHeight: 2, dilationWidth: 2)
            let w = Tensor.random(p.weightShape, using: &rng)
            let packed = PackedConvWeights(w, p)
            #expect(packed.full == nil && packed.perTap.count == kh * kw)
            for (tap, matrix) in packed.perTap.enumerated() {
                let values = matrix.unpacked()
                #expect((0..<outC * inC).allSatisfy { values[$0] == w.scalars[$0 * kh * kw + tap] }, "tap \(tap)")
            }
            #expect(packed.unpacked().scalars == w.scalars, "\(outC)x\(inC)x\(kh)x\(kw)")
        }
    }

    /// Rows scaled where they lie in the panels equal rows scaled before packing, for every blocking and odd shapes
    /// (several depth blocks, a partial last panel).
    @Test func scalingPackedRowsEqualsScalingFirst() {
        var rng = SplitMix64(seed: 45)
        for blocking in Self.blockings {
            for (m, k) in [(1, 1), (5, 7), (13, 257), (25, 600), (64, 1100)] {
                let a = Tensor.random([m, k], using: &rng)
                let scale = (0..<m).map { _ in Float.random(in: -2...2, using: &rng) }
                var scaledFirst = a
                for i in 0..<m * k { scaledFirst.scalars[i] *= scale[i / k] }
                var packed = PackedMatrix(a, blocking: blocking)
                packed.scaleRows(by: scale)
                #expect(packed.unpacked() == scaledFirst.scalars, "\(blocking.kernel) \(m)x\(k)")
            }
        }
    }

    /// `Conv2d(weights:)` packs straight from a file's bytes with the BatchNorm's scale applied while packing; the
    /// layer equals folding a loaded copy first, bit for bit: every algorithm's storage, with and without bias and
    /// BatchNorm, read from a mapped file, from memory, from an unaligned F32 tensor and from F64.
    @Test func convolutionsPackedFromTheFileEqualFoldingACopy() throws {
        var rng = SplitMix64(seed: 46)
        // Packed whole (pointwise, im2col), packed per tap (dilated), plain (grouped, direct).
        let cases: [(Conv2dParameters, packed: Bool)] = [
            (.init(inChannels: 37, outChannels: 29, kernelSize: 1), true),
            (.init(inChannels: 13, outChannels: 53, kernelSize: 3, padding: 1), true),
            (.init(inChannels: 11, outChannels: 57, kernelSize: 3, padding: 2, dilation: 2), true),
            (.init(inChannels: 12, outChannels: 18, kernelSize: 3, padding: 1, groups: 3), false),
            (.init(inChannels: 3, outChannels: 8, kernelSize: 5, stride: 2, padding: 2), false),
        ]
        for (n, (p, packed)) in cases.enumerated() {
            let w = Tensor.random(p.weightShape, using: &rng)
            let bias = Tensor.random([p.outChannels], using: &rng)
            let stats = (0..<4).map { i in
                Tensor(shape: [p.outChannels], scalars: (0..<p.outChannels).map { _ in
                    i == 3 ? Float.random(in: 0.1...2, using: &rng) : Float.random(in: -1...1, using: &rng) })
            }
            for layout in ["f32", "unaligned", "f64"] {
                var writer = SafeTensorsWriter()
                if layout == "unaligned" { writer.add("pad", dtype: .u8, shape: [1], bytes: [7]) }
                if layout == "f64" {
                    writer.add("conv.weight", dtype: .f64, shape: w.shape,
                               bytes: w.scalars.map { Double($0).bitPattern.littleEndian }.withUnsafeBytes { [UInt8]($0) })
                } else {
                    writer.add("conv.weight", w)
                }
                writer.add("conv.bias", bias)
                for (i, key) in ["weight", "bias", "running_mean", "running_var"].enumerated() { writer.add("bn.\(key)", stats[i]) }
                let data = writer.serialized()
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-conv-\(UUID().uuidString).safetensors").path
                try data.write(to: URL(fileURLWithPath: path))
                defer { try? FileManager.default.removeItem(atPath: path) }
                for file in [try SafeTensorsFile(path: path), try SafeTensorsFile(data: data)] {
                    let root = WeightScope(file: file)
                    for (hasBias, withNorm) in [(false, false), (true, false), (false, true), (true, true)] {
                        let layer = try Conv2d(weights: root.scope("conv"), parameters: p, hasBias: hasBias,
                                               batchNorm: withNorm ? root.scope("bn") : nil, activation: .relu)
                        var (weight, b) = (try root.tensor("conv.weight"), hasBias ? bias.scalars : nil)
                        if withNorm {
                            (weight, b) = try BatchNorm2d(weights: root.scope("bn"), channels: p.outChannels).fold(weight: weight, bias: b)
                        }
                        let expected = Conv2d(parameters: p, weight: weight, bias: b, activation: .relu)
                        let label = "case \(n) \(layout) \(file.source) bias \(hasBias) bn \(withNorm)"
                        #expect(layer.weight == expected.weight && layer.bias == expected.bias, "\(label)")
                        #expect(Conv2d.keepsPacked(p) == packed, "\(label)")
                    }
                }
            }
        }
    }

    /// A packed and a plain layer refuse a wrong weight shape, a missing bias and a missing BatchNorm tensor with the
    /// same errors, checked in the same order (weight, bias, BatchNorm).
    @Test func convolutionLoadErrorsAreTheSameForPackedAndPlainLayers() throws {
        var rng = SplitMix64(seed: 47)
        for p in [Conv2dParameters(inChannels: 13, outChannels: 53, kernelSize: 3, padding: 1),
                  Conv2dParameters(inChannels: 3, outChannels: 8, kernelSize: 5, stride: 2, padding: 2)] {
            var wrong = SafeTensorsWriter()
            wrong.add("conv.weight", Tensor.random([p.outChannels, p.inChannels, 1, 1], using: &rng))
            let scope = WeightScope(file: try SafeTensorsFile(data: wrong.serialized()))
            // The weight's shape is reported before the missing bias.
            #expect(throws: LadonError.shapeMismatch(name: "conv.weight", expected: p.weightShape,
                                                     actual: [p.outChannels, p.inChannels, 1, 1])) {
                _ = try Conv2d(weights: scope.scope("conv"), parameters: p, hasBias: true)
            }
            var partial = SafeTensorsWriter()
            partial.add("conv.weight", Tensor.random(p.weightShape, using: &rng))
            partial.add("bn.weight", Tensor.random([p.outChannels], using: &rng))
            let partialScope = WeightScope(file: try SafeTensorsFile(data: partial.serialized()))
            #expect(throws: LadonError.missingTensor(name: "conv.bias", file: "<memory>")) {
                _ = try Conv2d(weights: partialScope.scope("conv"), parameters: p, hasBias: true, batchNorm: partialScope.scope("bn"))
            }
            #expect(throws: LadonError.missingTensor(name: "bn.bias", file: "<memory>")) {
                _ = try Conv2d(weights: partialScope.scope("conv"), parameters: p, hasBias: false, batchNorm: partialScope.scope("bn"))
            }
        }
    }

    /// `gemm(packed:)` equals the Double reference for each micro-kernel, split over 1–3 threads, with and
    /// without an epilogue, including depths that make several (uneven) depth blocks.
    @Test func packedGEMMMatchesReference() {
        var rng = SplitMix64(seed: 42)
        for blocking in Self.blockings {
            for _ in 0..<12 {
                let (m, n, k) = (rng.extent(1...70), rng.extent(1...90), rng.extent(1...700))
                let a = Tensor.random([m, k], using: &rng), b = Tensor.random([k, n], using: &rng)
                let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
                let expected = referenceProduct(a, b)
                let withBias = expected.enumerated().map { max(0, $0.element + bias[$0.offset / n]) }
                let packed = PackedMatrix(a, blocking: blocking)
                for threads in 1...3 {
                    for fused in [false, true] {
                        var c = [Float](repeating: .nan, count: m * n)
                        b.withUnsafeBufferPointer { bp in
                            bias.withUnsafeBufferPointer { biasPointer in
                                let epilogue = fused
                                    ? GEMMEpilogue(bias: biasPointer.baseAddress, residual: nil, ldr: 0, relu: true)
                                    : GEMMEpilogue.none
                                Kernels.gemm(packed: packed, n: n, b: bp.baseAddress!, ldb: n, c: &c, ldc: n,
                                             epilogue: epilogue, threads: threads, blocking: blocking)
                            }
                        }
                        expectElementwiseClose(c, fused ? withBias : expected, rtol: 1e-5, atol: 1e-6 * Float(k),
                                               "\(blocking.kernel) \(m)x\(n)x\(k) threads \(threads) fused \(fused)")
                    }
                }
            }
        }
    }

    /// Products wide enough that `gemmBlocked` hands column blocks out as threads come free (at least three blocks
    /// per thread) give the same bits on 2 and 3 threads as on one, with a partial last tile and a fused epilogue, and
    /// match the reference. A chunk boundary off the block grid, or a chunk computed twice or not at all, breaks it.
    @Test func wideProductsInChunksMatchOneThread() {
        var rng = SplitMix64(seed: 0xC4A7)
        for blocking in Self.blockings {
            let (m, k) = (29, 300)
            let n = 3 * 3 * blocking.ncSmall + 3 * blocking.nr + 5  // three column blocks per thread on three threads
            let a = Tensor.random([m, k], using: &rng), b = Tensor.random([k, n], using: &rng)
            let residual = Tensor.random([m, n], using: &rng)
            let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
            let expected = withEpilogue(referenceProduct(a, b), bias: bias, residual: residual, n: n)
            let packed = PackedMatrix(a, blocking: blocking)
            var results: [[Float]] = []
            for threads in 1...3 {
                var c = [Float](repeating: .nan, count: m * n)
                b.withUnsafeBufferPointer { bp in
                    bias.withUnsafeBufferPointer { biasPointer in
                        residual.withUnsafeBufferPointer { rp in
                            let epilogue = GEMMEpilogue(bias: biasPointer.baseAddress, residual: rp.baseAddress,
                                                        ldr: n, relu: true)
                            Kernels.gemm(packed: packed, n: n, b: bp.baseAddress!, ldb: n, c: &c, ldc: n,
                                         epilogue: epilogue, threads: threads, blocking: blocking)
                        }
                    }
                }
                expectElementwiseClose(c, expected, rtol: 1e-5, atol: 1e-6 * Float(k),
                                       "\(blocking.kernel) \(m)x\(n)x\(k) threads \(threads)")
                results.append(c)
            }
            for threads in 2...3 {
                #expect(zip(results[0], results[threads - 1]).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(blocking.kernel) threads \(threads) differs from one thread")
            }
        }
    }

    /// The two-ended chunk splits (``Kernels/gemmRowChunks`` by row tiles, ``Kernels/gemmColumnChunks`` by column
    /// tiles, chunks of 1–3 tiles handed out per depth block) give the single-threaded loop nest's bits: three uneven
    /// depth blocks, a partial last row and column tile, two row blocks (the first packing B in its tiles where the
    /// kernel can), a fused bias + residual + ReLU, and `+ C`. Then through `gemm(packed:)` on two threads, shapes
    /// shaped like layer4's (split by rows) and layer3's (by columns), against one thread.
    @Test func narrowProductsInTwoEndedChunksMatchOneThread() {
        var rng = SplitMix64(seed: 0x2E2D)
        for blocking in Self.blockings {
            let (m, k, n) = (13 * blocking.mr + 5, 600, 5 * blocking.nr + 3)
            let a = Tensor.random([m, k], using: &rng), b = Tensor.random([k, n], using: &rng)
            let residual = Tensor.random([m, n], using: &rng), start = Tensor.random([m, n], using: &rng)
            let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
            let packed = PackedMatrix(a, blocking: blocking)
            let product = referenceProduct(a, b)
            for accumulate in [false, true] {
                func run(_ body: (GEMMOperands) -> Void) -> [Float] {
                    var c = accumulate ? start.scalars : [Float](repeating: .nan, count: m * n)
                    b.withUnsafeBufferPointer { bp in
                        bias.withUnsafeBufferPointer { biasPointer in
                            residual.withUnsafeBufferPointer { rp in
                                c.withUnsafeMutableBufferPointer { cp in
                                    packed.withPanels { panels in
                                        body(GEMMOperands(
                                            m: m, n: n, k: k, a: panels.base, lda: k, transposeA: false,
                                            b: bp.baseAddress!, ldb: n, transposeB: false, c: cp.baseAddress!, ldc: n,
                                            accumulate: accumulate,
                                            epilogue: GEMMEpilogue(bias: biasPointer.baseAddress, residual: rp.baseAddress,
                                                                   ldr: n, relu: true),
                                            packedA: panels))
                                    }
                                }
                            }
                        }
                    }
                    return c
                }
                let serial = run { Kernels.gemmSerial($0, blocking) }
                let expected = withEpilogue(product, start: accumulate ? start : nil, bias: bias, residual: residual, n: n)
                expectElementwiseClose(serial, expected, rtol: 1e-5, atol: 1e-6 * Float(k), "\(blocking.kernel) serial")
                for chunkTiles in 1...3 {
                    let byRows = run { Kernels.gemmRowChunks($0, chunkTiles: chunkTiles, blocking) }
                    let byColumns = run { Kernels.gemmColumnChunks($0, chunkTiles: chunkTiles, blocking) }
                    #expect(zip(serial, byRows).allSatisfy { $0.bitPattern == $1.bitPattern },
                            "\(blocking.kernel) row chunks of \(chunkTiles), accumulate \(accumulate)")
                    #expect(zip(serial, byColumns).allSatisfy { $0.bitPattern == $1.bitPattern },
                            "\(blocking.kernel) column chunks of \(chunkTiles), accumulate \(accumulate)")
                }
            }
            // Through the dispatch on two threads: 200 rows × 37 columns splits by rows (48-row chunks: 17 or 34 tiles,
            // enough for 4 chunks), 150 × 17 tiles + 3 by columns (64-column chunks: 18 tiles, 4 chunks at 16 columns).
            for (m, n) in [(200, 37), (150, 17 * blocking.nr + 3)] {
                let a = Tensor.random([m, k], using: &rng), b = Tensor.random([k, n], using: &rng)
                let packed = PackedMatrix(a, blocking: blocking)
                let results = [1, 2].map { threads in
                    var c = [Float](repeating: .nan, count: m * n)
                    b.withUnsafeBufferPointer { bp in
                        Kernels.gemm(packed: packed, n: n, b: bp.baseAddress!, ldb: n, c: &c, ldc: n, threads: threads,
                                     blocking: blocking)
                    }
                    return c
                }
                expectElementwiseClose(results[0], referenceProduct(a, b), rtol: 1e-5, atol: 1e-6 * Float(k),
                                       "\(blocking.kernel) \(m)x\(n)")
                #expect(zip(results[0], results[1]).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(blocking.kernel) \(m)x\(n): two threads differ from one")
            }
        }
    }

    /// Packed 1×1 and im2col convolutions (the layer's default path) against the reference: strides 1–3,
    /// padding, dilation with taps that only read padding (pruned), batch 2, residual + ReLU, outputs narrower
    /// than one micro-tile and wider than one packing block. Over 48 output channels, so no layer picks `.direct`.
    @Test(arguments: [
        Conv2dParameters(inChannels: 3, outChannels: 30, kernelSize: 1),
        Conv2dParameters(inChannels: 5, outChannels: 13, kernelSize: 1, stride: 2),
        Conv2dParameters(inChannels: 7, outChannels: 61, kernelSize: 3, padding: 1),
        Conv2dParameters(inChannels: 6, outChannels: 57, kernelSize: 3, stride: 2, padding: 1),
        Conv2dParameters(inChannels: 9, outChannels: 58, kernelSize: 5, stride: 2, padding: 2),
        Conv2dParameters(inChannels: 5, outChannels: 63, kernelSize: 2, padding: 1),
        Conv2dParameters(inChannels: 8, outChannels: 59, kernelSize: 3, stride: 3, padding: 0),
        Conv2dParameters(inChannels: 5, outChannels: 60, kernelSize: 3, padding: 12, dilation: 12),
        Conv2dParameters(inChannels: 5, outChannels: 60, kernelSize: 3, padding: 24, dilation: 24),
        Conv2dParameters(inChannels: 70, outChannels: 62, kernelSize: 3, stride: 2, padding: 2, dilation: 2),
        Conv2dParameters(inChannels: 6, outChannels: 34, kernelSize: 1, dilation: 3),
        Conv2dParameters(inChannels: 6, outChannels: 57, kernelHeight: 3, kernelWidth: 2, strideHeight: 1,
                         strideWidth: 2, paddingHeight: 1, paddingWidth: 0, dilationHeight: 2, dilationWidth: 1),
    ])
    func packedConvolutionMatchesReference(_ p: Conv2dParameters) {
        var rng = SplitMix64(seed: UInt64(p.inChannels * 131 + p.outChannels * 7 + p.kernelHeight))
        let weight = Tensor.random(p.weightShape, using: &rng)
        let bias = (0..<p.outChannels).map { _ in Float.random(in: -1...1, using: &rng) }
        let layer = Conv2d(parameters: p, weight: weight, bias: bias, activation: .relu)
        guard case .packed(let packed) = layer.storage else {
            Issue.record("\(p): expected packed weights")
            return
        }
        #expect(layer.weight == weight)
        for (h, w) in [(1, 1), (5, 9), (13, 13), (17, 40), (33, 3)] {
            let oh = p.outputHeight(h), ow = p.outputWidth(w)
            guard oh > 0 && ow > 0 else { continue }
            let x = Tensor.random([2, p.inChannels, h, w], using: &rng)
            let residual = Tensor.random([2, p.outChannels, oh, ow], using: &rng)
            let expected = Kernels.conv2dReference(x, weight: weight, bias: bias, p, activation: .relu, residual: residual)
            for threads in [1, 2, 3] {
                let actual = Kernels.conv2d(x, packed: packed, bias: bias, activation: .relu, residual: residual,
                                            threads: threads)
                expectClose(actual, expected, rtol: 1e-5, atol: 1e-5, "\(p) input \(h)x\(w) threads \(threads)")
                // Bordered planes only change how the same panels are packed: bit-identical results.
                let unbordered = Kernels.conv2d(x, packed: packed, bias: bias, activation: .relu, residual: residual,
                                                threads: threads, borderedPlanes: false)
                #expect(actual == unbordered, "\(p) input \(h)x\(w) threads \(threads): bordered != unbordered")
            }
            expectClose(layer(x, residual: residual), expected, rtol: 1e-5, atol: 1e-5, "\(p) layer \(h)x\(w)")
        }
    }

    /// The C packer over bordered planes against the bounds-checked Swift packer over plain ones, element for
    /// element: strides 1–3, a dilated kernel, padding on one side only, panels of 4, 16 and 32
    /// columns, blocks that start mid-row, cross output rows, end short of a panel, or span several rows.
    @Test func borderedPackingMatchesUnbordered() {
        var rng = SplitMix64(seed: 47)
        let cases: [(Conv2dParameters, Int, Int)] = [
            (Conv2dParameters(inChannels: 3, outChannels: 8, kernelSize: 5, stride: 2, padding: 2), 21, 38),
            (Conv2dParameters(inChannels: 2, outChannels: 8, kernelSize: 3, padding: 1), 7, 19),
            (Conv2dParameters(inChannels: 2, outChannels: 8, kernelSize: 3, padding: 1), 13, 13),
            (Conv2dParameters(inChannels: 3, outChannels: 8, kernelSize: 3, stride: 3, padding: 2), 20, 29),
            (Conv2dParameters(inChannels: 2, outChannels: 8, kernelSize: 3, stride: 2, padding: 2, dilation: 2), 9, 40),
            (Conv2dParameters(inChannels: 2, outChannels: 8, kernelHeight: 2, kernelWidth: 4, strideHeight: 1,
                              strideWidth: 2, paddingHeight: 0, paddingWidth: 3, dilationHeight: 1, dilationWidth: 1), 6, 33),
        ]
        for (p, h, w) in cases {
            let (oh, ow) = (p.outputHeight(h), p.outputWidth(w))
            let taps = Im2colTaps(p, h: h, w: w, oh: oh, ow: ow)
            let k = p.inChannels * taps.ky.count * taps.kx.count, n = oh * ow
            let x = Tensor.random([1, p.inChannels, h, w], using: &rng)
            let bordered = StridePhases.layout(p, taps: taps, h: h, w: w, oh: oh, ow: ow, channels: p.inChannels)
            let plain = StridePhases.layout(p, taps: taps, h: h, w: w, oh: oh, ow: ow, channels: p.inChannels,
                                            allowBorder: false)
            #expect(bordered.bordered, "\(p) on \(h)x\(w) should take bordered planes")
            x.withUnsafeBufferPointer { input in
                func packed(_ layout: StridePhases.Layout, k0: Int, kc: Int, j0: Int, nc: Int, nr: Int) -> [Float] {
                    var scratch = [Float](repeating: .nan, count: max(layout.count, 1))
                    var out = [Float](repeating: .nan, count: kc * Kernels.roundUp(nc, nr))
                    scratch.withUnsafeMutableBufferPointer { scratch in
                        let phases = StridePhases(p, layout: layout, input: input.baseAddress!, h: h, w: w,
                                                  channels: p.inChannels, scratch: scratch.baseAddress!, threads: 1)
                        let panels = Im2colPanels(p: p, taps: taps, phases: phases, ow: ow)
                        out.withUnsafeMutableBufferPointer { panels.pack(k0: k0, kc: kc, j0: j0, nc: nc, nr: nr, into: $0.baseAddress!) }
                    }
                    return out
                }
                for nr in [4, 16, 32] {
                    for (k0, j0) in [(0, 0), (k / 3, ow / 2 + 1), (k - 1, n - 1), (1, max(0, n - nr - 3))] {
                        let kc = min(k - k0, 37), nc = min(n - j0, 5 * nr + 3)
                        let expected = packed(plain, k0: k0, kc: kc, j0: j0, nc: nc, nr: nr)
                        let actual = packed(bordered, k0: k0, kc: kc, j0: j0, nc: nc, nr: nr)
                        #expect(actual == expected, "\(p) on \(h)x\(w), nr \(nr), rows \(k0)+\(kc), columns \(j0)+\(nc)")
                    }
                }
            }
        }
    }

    /// Panels of 16 and 32 columns (the block copies and the lane-select merge), at every instruction-set level of
    /// the packer this CPU runs: one run, two runs split at every column, runs that overlap or go backwards, a gather,
    /// and a short last panel.
    @Test func im2colPackerBlockPathsAtEveryLevel() {
        let base = (0..<1024).map { Float($0) + 0.5 }
        let rows = [0, 300, 17]
        for nr in [16, 32] {
            var columnSets: [[Int]] = [Array(100..<100 + nr), (0..<nr).map { ($0 * 7) % 61 }]
            for split in 1..<nr {
                let first = (0..<split).map { 200 + $0 }
                columnSets.append(first + (split..<nr).map { 200 + $0 + 9 })       // next output row, gap 9
                columnSets.append(first + (split..<nr).map { 200 + $0 - split })   // second run overlaps the first
            }
            for columns in columnSets {
                for nc in [nr, nr - 3] {
                    let expected = rows.flatMap { r in (0..<nr).map { j in j < nc ? base[r + columns[j]] : 0 } }
                    for level: Int32 in [1, 2, 3] {
                        var out = [Float](repeating: .nan, count: rows.count * nr)
                        base.withUnsafeBufferPointer { b in
                            out.withUnsafeMutableBufferPointer { o in
                                cladon_pack_im2col_panels_at_level(level, o.baseAddress!, b.baseAddress!, rows, rows.count,
                                                                   columns, nc, nr)
                            }
                        }
                        #expect(out == expected, "nr \(nr), columns \(columns), nc \(nc), level \(level)")
                    }
                }
            }
        }
    }

    /// The C packer on hand-made offsets (one run, two runs far apart, overlapping or reversed, none; full and
    /// short panels): every element equals `base[row + column]`, zero past `nc`. Two runs too close together are
    /// gathered column by column, so no block read leaves the addressed elements (with row 0 and the reversed
    /// runs, a block read from `split` before the second run would start before the buffer: AddressSanitizer
    /// would flag it).
    @Test func im2colPackerHandlesAnyColumnOffsets() {
        let base = (0..<256).map(Float.init)
        let rows = [0, 40, 7]
        let columnSets: [[Int]] = [
            Array(0..<8),                      // one run
            [10, 11, 12, 30, 31, 32, 33, 34],  // two runs, the second well past the first
            [20, 21, 22, 21, 22, 23, 24, 25],  // two runs, the second overlapping the first
            [50, 51, 52, 53, 0, 1, 2, 3],      // two runs, the second before the first
            [5, 9, 2, 7, 7, 1, 0, 3],          // no runs
        ]
        for columns in columnSets {
            for nc in [8, 5] {
                var out = [Float](repeating: .nan, count: rows.count * 8)
                base.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { o in
                        cladon_pack_im2col_panels(o.baseAddress!, b.baseAddress!, rows, rows.count, columns, nc, 8)
                    }
                }
                let expected = rows.flatMap { r in (0..<8).map { j in j < nc ? base[r + columns[j]] : 0 } }
                #expect(out == expected, "columns \(columns), nc \(nc)")
            }
        }
    }

    /// The GEMV (one input row) sums each output as one chain over the inputs in order, whether it runs a panel at a
    /// time or four panels together: bit-exact against that chain written out.
    @Test func gemvIsOneChainPerRow() {
        var rng = SplitMix64(seed: 45)
        for (m, k) in [(1000, 2048), (61, 300), (13, 7), (48, 600)] {
            let w = Tensor.random([m, k], using: &rng), x = Tensor.random([1, k], using: &rng)
            let packed = PackedMatrix(w)
            var y = [Float](repeating: .nan, count: m)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    Kernels.gemv(packed: packed, x: xp.baseAddress!, y: yp.baseAddress!, bias: nil, relu: false, threads: 2)
                }
            }
            let expected = (0..<m).map { i in
                (0..<k).reduce(Float(0)) { acc, p in
                    #if LADON_FMA
                    acc.addingProduct(w.scalars[i * k + p], x.scalars[p])
                    #else
                    acc + w.scalars[i * k + p] * x.scalars[p]
                    #endif
                }
            }
            #expect(y == expected, "\(m)x\(k)")
        }
    }

    /// A 1×1 layer with a shortcut written over the shortcut's storage: the same bits as the out-of-place call, the
    /// storage reused when the caller gave it up, a shortcut still held elsewhere left as it was (copy on write), and
    /// no in-place write where partial sums would be stored before the residual is added (more input channels than
    /// one depth block) or the layer is not a stride-1 1×1 GEMM.
    @Test(arguments: [1, 2])
    func shortcutIsOverwrittenOnlyWhereEachOutputIsOneStore(threads: Int) {
        var rng = SplitMix64(seed: 47)
        let kc = GEMMBlocking.preferred.kc
        let cases: [(inC: Int, outC: Int, h: Int, w: Int, n: Int, stride: Int)] = [
            (3, 5, 1, 1, 1, 1), (17, 13, 7, 9, 2, 1), (64, 70, 13, 13, 1, 1), (kc, 40, 5, 11, 1, 1),
            (kc + 1, 24, 6, 5, 1, 1), (300, 12, 3, 4, 2, 1), (16, 32, 9, 9, 1, 2),
        ]
        for c in cases {
            let p = Conv2dParameters(inChannels: c.inC, outChannels: c.outC, kernelSize: 1, stride: c.stride)
            let layer = Conv2d(parameters: p, weight: Tensor.random(p.weightShape, using: &rng),
                               bias: (0..<c.outC).map { _ in Float.random(in: -1...1, using: &rng) }, activation: .relu)
            let x = Tensor.random([c.n, c.inC, c.h, c.w], using: &rng)
            let shape = [c.n, c.outC, p.outputHeight(c.h), p.outputWidth(c.w)]
            let shortcut = Tensor.random(shape, using: &rng)
            let expected = Kernels.conv2dReference(x, weight: layer.weight, bias: layer.bias, p, activation: .relu,
                                                   residual: shortcut)
            let outOfPlace = layer(x, residual: shortcut)
            expectClose(outOfPlace, expected, rtol: 1e-5, atol: 1e-5, "\(c)")
            let qualifies = c.inC <= kc && c.stride == 1
            // Given up: written in place when the layer qualifies.
            let given = Tensor(shape: shape, scalars: shortcut.scalars.map { $0 })
            let storage = given.withUnsafeBufferPointer { $0.baseAddress }
            let inPlace = layer(x, residualInPlace: consume given)
            #expect(inPlace == outOfPlace, "\(c)")
            #expect((inPlace.withUnsafeBufferPointer { $0.baseAddress } == storage) == qualifies, "\(c)")
            // Still held: the holder's tensor does not change.
            let held = shortcut
            #expect(layer(x, residualInPlace: held) == outOfPlace, "\(c)")
            #expect(held == shortcut && held.scalars == shortcut.scalars, "\(c)")
            // The kernel says whether it wrote, and leaves the shortcut alone when it did not.
            guard case .packed(let packed) = layer.storage else { Issue.record("\(c): weights not packed"); continue }
            var direct = Tensor(shape: shape, scalars: shortcut.scalars.map { $0 })
            let wrote = Kernels.conv2dAddingInPlace(x, packed: packed, bias: layer.bias, activation: .relu,
                                                    residual: &direct, threads: threads)
            #expect(wrote == qualifies, "\(c)")
            #expect(direct == (wrote ? outOfPlace : shortcut), "\(c)")
        }
    }

    /// A ResNet-50 bottleneck without a downsample, given its input with `consume`, returns its result in the input's
    /// storage (the shortcut conv3 wrote over), with the values of the out-of-place chain; one with a downsample too.
    @Test func bottleneckWritesOverItsConsumedInput() throws {
        var rng = SplitMix64(seed: 48)
        var writer = SafeTensorsWriter()
        let (inC, planes) = (32, 8)
        func bn(_ name: String, _ c: Int) {
            writer.add(name + ".weight", Tensor.random([c], in: 0.8...1.2, using: &rng))
            writer.add(name + ".bias", Tensor.random([c], in: -0.1...0.1, using: &rng))
            writer.add(name + ".running_mean", Tensor.random([c], in: -0.1...0.1, using: &rng))
            writer.add(name + ".running_var", Tensor.random([c], in: 0.8...1.2, using: &rng))
        }
        for (prefix, input) in [("plain", inC), ("down", 16)] {
            writer.add(prefix + ".conv1.weight", Tensor.random([planes, input, 1, 1], using: &rng))
            writer.add(prefix + ".conv2.weight", Tensor.random([planes, planes, 3, 3], using: &rng))
            writer.add(prefix + ".conv3.weight", Tensor.random([4 * planes, planes, 1, 1], using: &rng))
            bn(prefix + ".bn1", planes); bn(prefix + ".bn2", planes); bn(prefix + ".bn3", 4 * planes)
        }
        writer.add("down.downsample.0.weight", Tensor.random([4 * planes, 16, 1, 1], using: &rng))
        bn("down.downsample.1", 4 * planes)
        let root = WeightScope(file: try SafeTensorsFile(data: writer.serialized()))
        let plain = try ResNetBottleneckBlock(weights: root.scope("plain"), inChannels: inC, planes: planes, expansion: 4,
                                              stride: 1)
        let down = try ResNetBottleneckBlock(weights: root.scope("down"), inChannels: 16, planes: planes, expansion: 4,
                                             stride: 2)
        #expect(plain.downsample == nil && down.downsample != nil)
        for (block, input) in [(plain, inC), (down, 16)] {
            let x = Tensor.random([1, input, 11, 9], using: &rng)
            let identity = block.downsample.map { $0(x) } ?? x
            let expected = block.conv3(block.conv2(block.conv1(x)), residual: identity)
            let given = Tensor(shape: x.shape, scalars: x.scalars.map { $0 })
            let storage = given.withUnsafeBufferPointer { $0.baseAddress }
            let out = ResNetBlock.bottleneck(block)(consume given)
            #expect(out == expected)
            if block.downsample == nil { #expect(out.withUnsafeBufferPointer { $0.baseAddress } == storage) }
            // A caller that keeps its input sees it unchanged.
            let kept = Tensor(shape: x.shape, scalars: x.scalars.map { $0 })
            #expect(block(kept) == expected && kept == x)
        }
    }

    /// Layers whose algorithm is not a GEMM, or grouped ones, keep their plain weights.
    @Test func directAndGroupedLayersStayPlain() {
        var rng = SplitMix64(seed: 43)
        for p in [Conv2dParameters(inChannels: 3, outChannels: 8, kernelSize: 5, stride: 2, padding: 2),
                  Conv2dParameters(inChannels: 8, outChannels: 16, kernelSize: 3, padding: 1, groups: 2)] {
            let layer = Conv2d(parameters: p, weight: Tensor.random(p.weightShape, using: &rng), bias: nil)
            if case .packed = layer.storage { Issue.record("\(p) should keep plain weights") }
        }
    }

    /// Linear layers: one row (GEMV), a few rows and many rows (transposed GEMM), with bias and ReLU.
    @Test func packedLinearMatchesReference() {
        var rng = SplitMix64(seed: 44)
        for (n, k, m) in [(1, 2048, 1000), (1, 7, 5), (3, 37, 29), (50, 300, 70), (1, 600, 13), (2, 1, 1), (2, 0, 4)] {
            let w = Tensor.random([m, k], using: &rng), x = Tensor.random([n, k], using: &rng)
            let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
            var expected = [Float](repeating: 0, count: n * m)
            for i in 0..<n {
                for j in 0..<m {
                    var s = Double(bias[j])
                    for p in 0..<k { s += Double(x.scalars[i * k + p]) * Double(w.scalars[j * k + p]) }
                    expected[i * m + j] = Float(max(0, s))
                }
            }
            let layer = Linear(weight: w, bias: bias, activation: .relu)
            #expect(layer.weight == w && layer.inFeatures == k && layer.outFeatures == m)
            for threads in [1, 2] {
                let y = Kernels.linear(x, packed: layer.packedWeight, bias: bias, activation: .relu, threads: threads)
                #expect(y.shape == [n, m])
                expectElementwiseClose(y.scalars, expected, rtol: 1e-5, atol: 1e-6 * Float(k),
                                       "linear \(n)x\(k) -> \(m), threads \(threads)")
            }
            expectElementwiseClose(layer(x).scalars, expected, rtol: 1e-5, atol: 1e-6 * Float(k), "layer \(n)x\(k)")
        }
    }

    /// GDN and IGDN with the layer's packed gamma against the Double reference.
    @Test func packedGDNMatchesReference() {
        var rng = SplitMix64(seed: 45)
        for (c, h, w) in [(3, 5, 7), (13, 9, 11), (40, 17, 3)] {
            let beta = (0..<c).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
            let gamma = Tensor.random([c, c], in: 0...0.1, using: &rng)
            let x = Tensor.random([2, c, h, w], using: &rng)
            for inverse in [false, true] {
                let layer = GDN(beta: beta, gamma: gamma, inverse: inverse)
                expectClose(layer(x), Kernels.gdnReference(x, beta: beta, gamma: gamma, inverse: inverse),
                            rtol: 1e-5, atol: 1e-6, "gdn \(c)x\(h)x\(w) inverse \(inverse)")
            }
        }
    }
}
