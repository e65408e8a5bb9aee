// Bilinear and nearest resizing against F.interpolate and the references.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct ResizeTests {
    /// Cases ATen runs through its generic (separable) kernel: bit-identical with fused multiply-add.
    static let genericCases = [("down_96x128_to_62x83", 62, 83), ("up_9x7_to_101x89", 101, 89),
                               ("keep_w_13x20_to_130x20", 130, 20)]
    /// Cases with `oh + ow ≤ 128`, which ATen runs through its channels-last kernel (another order).
    static let smallCases = [("small_48x64_to_31x41", 31, 41), ("small_13x13_to_52x52", 52, 52),
                             ("odd_37x53_to_41x23", 41, 23)]

    @Test func bilinearMatchesPyTorch() throws {
        let f = try KernelFixture("resize")
        for (name, oh, ow) in Self.genericCases {
            let y = Kernels.resizeBilinear(try f.tensor("bilinear_\(name)_x"), outputHeight: oh, outputWidth: ow)
            let expected = try f.tensor("bilinear_\(name)_y")
            #if LADON_FMA
            expectIdentical(y, expected, name)
            #else
            expectClose(y, expected, rtol: 1e-6, atol: 0, name)
            #endif
        }
        for (name, oh, ow) in Self.smallCases {
            let y = Kernels.resizeBilinear(try f.tensor("bilinear_\(name)_x"), outputHeight: oh, outputWidth: ow)
            expectClose(y, try f.tensor("bilinear_\(name)_y"), rtol: 1e-6, atol: 0, name)
        }
    }

    @Test func bilinearReferenceIsBitExactWithPyTorch() throws {
        let f = try KernelFixture("resize")
        for (name, oh, ow) in Self.genericCases {
            let y = Kernels.resizeBilinearReference(try f.tensor("bilinear_\(name)_x"), outputHeight: oh, outputWidth: ow)
            expectIdentical(y, try f.tensor("bilinear_\(name)_y"), name)
        }
    }

    @Test func bilinearUpsampleBy32MatchesPyTorch() throws {
        let f = try KernelFixture("resize_up32")
        let y = Kernels.resizeBilinear(try f.tensor("x"), outputHeight: 416, outputWidth: 160)
        #if LADON_FMA
        expectIdentical(y, try f.tensor("y"), "13x5 -> 416x160")
        #else
        expectClose(y, try f.tensor("y"), rtol: 1e-6, atol: 0, "13x5 -> 416x160")
        #endif
    }

    @Test func bilinearScaleFactorMatchesPyTorch() throws {
        let f = try KernelFixture("resize")
        let x = try f.tensor("bilinear_down_96x128_to_62x83_x")
        let s = 416.0 / 640.0
        #expect(Kernels.interpolatedExtent(96, scaleFactor: s) == 62 && Kernels.interpolatedExtent(128, scaleFactor: s) == 83)
        let recomputed = Kernels.resizeBilinear(x, scaleFactor: s)
        let kept = Kernels.resizeBilinear(x, scaleFactor: s, recomputeScaleFactor: false)
        #if LADON_FMA
        expectIdentical(recomputed, try f.tensor("scale_recompute1_y"), "recompute")
        expectIdentical(kept, try f.tensor("scale_recompute0_y"), "no recompute")
        #else
        expectClose(recomputed, try f.tensor("scale_recompute1_y"), rtol: 1e-6, atol: 0, "recompute")
        expectClose(kept, try f.tensor("scale_recompute0_y"), rtol: 1e-6, atol: 0, "no recompute")
        #endif
        // The two scale rules really differ on this input (so the test tells them apart).
        #expect(recomputed != kept)
    }

    @Test func bilinearMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 41)
        for _ in 0..<30 {
            let x = Tensor.random([rng.extent(1...2), rng.extent(1...3), rng.extent(1...30), rng.extent(1...30)], using: &rng)
            let oh = rng.extent(1...70), ow = rng.extent(1...70)
            let y = Kernels.resizeBilinear(x, outputHeight: oh, outputWidth: ow)
            let r = Kernels.resizeBilinearReference(x, outputHeight: oh, outputWidth: ow)
            #if LADON_FMA
            expectIdentical(y, r, "\(x.shape) -> \(oh)x\(ow)")
            #else
            expectClose(y, r, rtol: 1e-6, atol: 0, "\(x.shape) -> \(oh)x\(ow)")
            #endif
        }
    }

    /// The 8-bit RGB entry point looks up only the pixels it reads: bit for bit the resize of the mapped tensor,
    /// on random shapes both below and above `oh + ow = 128` (ATen's two index formulas).
    @Test func bilinearOfRGB8EqualsBilinearOfTheMappedTensor() {
        var rng = SplitMix64(seed: 43)
        let lookup = (0..<3).map { _ in (0..<256).map { _ in Float.random(in: -3...3, using: &rng) } }
        for _ in 0..<30 {
            let (h, w) = (rng.extent(1...90), rng.extent(1...90))
            let pixels = (0..<(3 * h * w)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let mapped = Tensor(shape: [1, 3, h, w], scalars: (0..<3).flatMap { c in
                (0..<(h * w)).map { i in lookup[c][Int(pixels[3 * i + c])] }
            })
            let (oh, ow) = (rng.extent(1...120), rng.extent(1...120))
            let direct = pixels.withUnsafeBufferPointer {
                Kernels.resizeBilinear(rgb8: $0, width: w, height: h, lookup: lookup, outputHeight: oh, outputWidth: ow)
            }
            expectIdentical(direct, Kernels.resizeBilinear(mapped, outputHeight: oh, outputWidth: ow), "\(h)x\(w) -> \(oh)x\(ow)")
        }
    }

    @Test func bilinearIdentitySizeCopies() {
        var rng = SplitMix64(seed: 2)
        let x = Tensor.random([1, 2, 7, 9], using: &rng)
        expectIdentical(Kernels.resizeBilinear(x, outputHeight: 7, outputWidth: 9), x, "identity")
    }

    @Test func nearestMatchesPyTorch() throws {
        let f = try KernelFixture("resize")
        for (name, oh, ow) in [("2x_13_to_26", 26, 26), ("7x5_to_13x11", 13, 11), ("26_to_13", 13, 13),
                               ("big_10x12_to_70x81", 70, 81)] {
            let x = try f.tensor("nearest_\(name)_x")
            expectIdentical(Kernels.upsampleNearest(x, outputHeight: oh, outputWidth: ow), try f.tensor("nearest_\(name)_y"), name)
        }
    }

    @Test func nearestMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 43)
        for _ in 0..<30 {
            let x = Tensor.random([rng.extent(1...2), rng.extent(1...3), rng.extent(1...25), rng.extent(1...25)], using: &rng)
            let oh = rng.extent(1...60), ow = rng.extent(1...60)
            expectIdentical(Kernels.upsampleNearest(x, outputHeight: oh, outputWidth: ow),
                            Kernels.upsampleNearestReference(x, outputHeight: oh, outputWidth: ow), "\(x.shape) -> \(oh)x\(ow)")
        }
    }
}
