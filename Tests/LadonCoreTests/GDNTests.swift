// GDN1 / IGDN1: the tiled kernel against the Double reference, CompressAI and the layer loader.
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

    @Test func tileWidthIsBoundedAndAligned() {
        for c in [1, 24, 48, 96, 256, 512, 2048] {
            let t = Kernels.gdnTileWidth(channels: c, pixels: 1 << 20)
            #expect(t >= 256 && t <= 2048 && t % 16 == 0, "C \(c): \(t)")
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
