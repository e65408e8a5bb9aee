// GDN1 / IGDN1: the tiled kernel against the Double reference, CompressAI and the layer loader.
import CLadonKernels
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct GDNTests {
    @Test(arguments: [("gdn", 13, false), ("igdn", 48, true)])
    func layerMatchesCompressAI(prefix: String, channels: Int, inverse: Bool) throws {
        let f = try KernelFixture("gdn")
        let layer = try GDN(weights: WeightScope(file: f.file).scope(prefix), channels: channels, inverse: inverse)
        // The loader's reparametrisation is bit-exact with NonNegativeParametrizer.forward.
        let effectiveBeta = try f.tensor("\(prefix)_effective_beta").scalars
        #expect(layer.beta == effectiveBeta)
        expectIdentical(layer.gamma, try f.tensor("\(prefix)_effective_gamma"), "\(prefix) gamma")
        let x = try f.tensor("\(prefix)_x"), expected = try f.tensor("\(prefix)_y")
        expectClose(layer(x), expected, rtol: 2e-6, atol: 0, "\(prefix) kernel")
        expectClose(Kernels.gdnReference(x, beta: layer.beta, gamma: layer.gamma, inverse: inverse), expected,
                    rtol: 2e-6, atol: 0, "\(prefix) reference")
    }

    @Test func kernelMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 51)
        // Shapes that cover partial tiles, several tiles per image, batches and SIMD tails.
        for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 5, 7), (1, 13, 17, 19), (3, 7, 11, 13), (1, 96, 23, 29), (2, 200, 9, 31), (1, 24, 64, 80)] {
            let x = Tensor.random([n, c, h, w], in: -3...3, using: &rng)
            let beta = (0..<c).map { _ in Float.random(in: 0.001...1.5, using: &rng) }
            let gamma = Tensor.random([c, c], in: 0...0.3, using: &rng)
            for inverse in [false, true] {
                let reference = Kernels.gdnReference(x, beta: beta, gamma: gamma, inverse: inverse)
                expectClose(Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse), reference,
                            rtol: 2e-6, atol: 0, "\(n)x\(c)x\(h)x\(w) inverse \(inverse)")
                // Narrow tiles: several per image, a partial last one, tails shorter than a SIMD block.
                for tile in [16, 37] {
                    expectClose(Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse, tileWidth: tile), reference,
                                rtol: 2e-6, atol: 0, "\(n)x\(c)x\(h)x\(w) inverse \(inverse) tile \(tile)")
                }
            }
        }
    }

    /// The in-place kernel (what the layer runs) gives the same bits as the one that allocates, over several
    /// threads and tile widths, and never changes a tensor another holder still sees.
    @Test func inPlaceMatchesOutOfPlaceAndKeepsSharedInputs() {
        var rng = SplitMix64(seed: 52)
        for (n, c, h, w) in [(1, 1, 1, 1), (2, 7, 11, 13), (1, 96, 23, 29), (3, 24, 40, 41)] {
            let x = Tensor.random([n, c, h, w], in: -3...3, using: &rng)
            let beta = (0..<c).map { _ in Float.random(in: 0.001...1.5, using: &rng) }
            let gamma = Tensor.random([c, c], in: 0...0.3, using: &rng)
            for inverse in [false, true] {
                for tile in [16, 37, 4096] {
                    let expected = Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse, tileWidth: tile)
                    var y = x  // shares x's storage: the kernel must copy before writing
                    Kernels.gdnInPlace(&y, beta: beta, gamma: gamma, inverse: inverse, tileWidth: tile)
                    expectIdentical(y, expected, "\(n)x\(c)x\(h)x\(w) inverse \(inverse) tile \(tile)")
                }
                let layer = GDN(beta: beta, gamma: gamma, inverse: inverse)
                let kept = x
                expectIdentical(layer(x), Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse), "layer")
                expectIdentical(x, kept, "input left as it was")
                // A temporary is consumed: the result is still right.
                expectIdentical(layer(Tensor(shape: x.shape, scalars: x.scalars.map { $0 })), Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse), "temporary")
            }
        }
    }

    /// The fused pass (|x| packed into the GEMM's panels, the product applied per column block) computes exactly what
    /// the GEMM of `gamma` by `|x|` followed by the element-wise pass computes: same sums, same order, same bits.
    @Test func fusedPassIsBitIdenticalToGEMMThenElementwise() {
        var rng = SplitMix64(seed: 53)
        // One depth block, two depth blocks (300 → 2×150, 512 → 2×256), partial row and column tiles.
        for (c, h, w) in [(13, 9, 11), (96, 23, 29), (300, 7, 9), (512, 4, 37)] {
            let x = Tensor.random([1, c, h, w], in: -3...3, using: &rng)
            let beta = (0..<c).map { _ in Float.random(in: 0.001...1.5, using: &rng) }
            let gamma = Tensor.random([c, c], in: 0...0.3, using: &rng)
            let hw = h * w, absolute = x.scalars.map { abs($0) }
            var norm = [Float](repeating: 0, count: c * hw)
            absolute.withUnsafeBufferPointer { b in
                norm.withUnsafeMutableBufferPointer { n in
                    Kernels.gemm(packed: PackedMatrix(gamma), n: hw, b: b.baseAddress!, ldb: hw, c: n.baseAddress!,
                                 ldc: hw, threads: 1)
                }
            }
            for inverse in [false, true] {
                let expected = Tensor(shape: x.shape, scalars: (0..<c * hw).map { i in
                    let m = norm[i] + beta[i / hw]
                    return inverse ? x.scalars[i] * m : x.scalars[i] * (1 / m)
                })
                for tile in [nil, 16, 37, 64] {
                    let y = tile.map { Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse, tileWidth: $0) }
                        ?? Kernels.gdn(x, beta: beta, gamma: gamma, inverse: inverse)
                    expectIdentical(y, expected, "C \(c) \(h)x\(w) inverse \(inverse) tile \(tile.map(String.init) ?? "default")")
                }
            }
        }
    }

    /// The C halves of the fused pass (|x| panels, the final scale) at every instruction set this CPU runs, on a
    /// width that leaves a partial panel and a vector tail, with zeros of both signs: equal to the plain formulas.
    @Test func elementwiseHalvesAtEveryLevel() {
        var rng = SplitMix64(seed: 31)
        let (rows, width, stride, nr) = (5, 45, 50, 32)
        var x = (0..<rows * stride).map { _ in Float.random(in: -2...2, using: &rng) }
        x[3] = -0.0
        x[4] = 0.0
        let norm = (0..<rows * 64).map { _ in Float.random(in: 0...3, using: &rng) }
        let beta = (0..<rows).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
        let panels = (width + nr - 1) / nr
        var expectedPanels = [Float](repeating: 0, count: panels * rows * nr)
        for p in 0..<rows {
            for j in 0..<width { expectedPanels[(j / nr * rows + p) * nr + j % nr] = abs(x[p * stride + j]) }
        }
        for level: Int32 in 1...3 {
            var packed = [Float](repeating: .nan, count: panels * rows * nr)
            cladon_pack_abs_panels(level, &packed, x, stride, rows, width, nr)
            #expect(packed.map(\.bitPattern) == expectedPanels.map(\.bitPattern), "level \(level): |x| panels")
            for inverse in [false, true] {
                var y = [Float](repeating: 7, count: rows * stride)
                cladon_gdn_scale(level, &y, x, stride, norm, 64, beta, rows, width, inverse)
                for c in 0..<rows {
                    for i in 0..<stride {
                        let m = norm[c * 64 + i] + beta[c], v = x[c * stride + i]
                        let want: Float = i < width ? (inverse ? v * m : v * (1 / m)) : 7
                        #expect(y[c * stride + i].bitPattern == want.bitPattern, "level \(level) inverse \(inverse) [\(c), \(i)]")
                    }
                }
            }
        }
    }

    @Test func tileWidthIsBoundedAndAligned() {
        for c in [1, 24, 48, 96, 256, 512, 2048] {
            let t = Kernels.gdnTileWidth(channels: c, pixels: 1 << 20)
            #expect(t >= 32 && t <= 1024 && t % 32 == 0, "C \(c): \(t)")
        }
        #expect(Kernels.gdnTileWidth(channels: 96, pixels: 50) == 50)
    }

    @Test func loaderRejectsWrongShapes() throws {
        let f = try KernelFixture("gdn")
        #expect(throws: LadonError.self) {
            _ = try GDN(weights: WeightScope(file: f.file).scope("gdn"), channels: 12, inverse: false)
        }
    }
}
