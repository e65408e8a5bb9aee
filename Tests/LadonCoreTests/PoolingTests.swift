// Max pooling, adaptive and global average pooling against PyTorch and the references.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct PoolingTests {
    @Test func maxPoolMatchesPyTorch() throws {
        let f = try KernelFixture("pooling")
        for (name, k, s, p) in [("stem", 3, 2, 1), ("lastlevel", 1, 2, 0), ("k2s2", 2, 2, 0),
                                ("k3s1p1", 3, 1, 1), ("k5s3p2", 5, 3, 2)] {
            let x = try f.tensor("max_\(name)_x")
            expectIdentical(Kernels.maxPool2d(x, kernelSize: k, stride: s, padding: p), try f.tensor("max_\(name)_y"), name)
        }
    }

    @Test func maxPoolMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 3)
        for trial in 0..<40 {
            let k = rng.extent(1...5), s = rng.extent(1...3), p = rng.extent(0...(k / 2))
            let h = rng.extent(max(1, k - 2 * p)...40), w = rng.extent(max(1, k - 2 * p)...40)
            var x = Tensor.random([rng.extent(1...2), rng.extent(1...5), h, w], using: &rng)
            if trial % 4 == 0 { x.scalars[rng.extent(0...(x.count - 1))] = .nan }
            if trial % 5 == 0 { x.scalars[rng.extent(0...(x.count - 1))] = -.infinity }
            expectIdentical(Kernels.maxPool2d(x, kernelSize: k, stride: s, padding: p),
                            Kernels.maxPool2dReference(x, kernelSize: k, stride: s, padding: p),
                            "k\(k) s\(s) p\(p) \(x.shape)")
        }
    }

    @Test func maxPoolPropagatesNaN() {
        var x = Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map(Float.init))
        x[0, 0, 1, 1] = .nan
        let y = Kernels.maxPool2d(x, kernelSize: 2, stride: 2)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.scalars[0].isNaN && y.scalars[1] == 7 && y.scalars[2] == 13 && y.scalars[3] == 15)
    }

    @Test func adaptiveAveragePoolMatchesPyTorch() throws {
        let f = try KernelFixture("pooling")
        for (name, oh, ow) in [("13to5", 5, 5), ("7to3", 3, 3), ("13x11to5x3", 5, 3), ("4x6to7x9", 7, 9)] {
            let x = try f.tensor("avg_\(name)_x")
            // Not a 1×1 output: a port of ATen's kernel, same summation order, so identical.
            expectIdentical(Kernels.adaptiveAvgPool2d(x, outputHeight: oh, outputWidth: ow), try f.tensor("avg_\(name)_y"), name)
        }
        for name in ["13to1", "global"] {
            let x = try f.tensor("avg_\(name)_x")
            let expected = try f.tensor("avg_\(name)_y")
            expectClose(Kernels.adaptiveAvgPool2d(x, outputHeight: 1, outputWidth: 1), expected, rtol: 1e-6, atol: 0, name)
            expectClose(Kernels.globalAveragePool(x), expected, rtol: 1e-6, atol: 0, name)
            expectClose(Kernels.globalAveragePoolReference(x), expected, rtol: 1e-6, atol: 0, name)
        }
    }

    @Test func adaptiveBinsCoverPyTorchRanges() {
        // 13 → 5: starts ⌊i·13/5⌋, ends ⌈(i+1)·13/5⌉.
        #expect((0..<5).map { Kernels.adaptiveStart($0, output: 5, input: 13) } == [0, 2, 5, 7, 10])
        #expect((0..<5).map { Kernels.adaptiveEnd($0, output: 5, input: 13) } == [3, 6, 8, 11, 13])
    }

    @Test func globalPoolMatchesReferenceOnOddShapes() {
        var rng = SplitMix64(seed: 8)
        for _ in 0..<20 {
            let x = Tensor.random([rng.extent(1...2), rng.extent(1...6), rng.extent(1...70), rng.extent(1...70)],
                                  in: -1...3, using: &rng)
            expectClose(Kernels.globalAveragePool(x), Kernels.globalAveragePoolReference(x), rtol: 1e-6, atol: 1e-7, "\(x.shape)")
        }
    }

    /// Above 64K values the planes are split over the threads; each plane's sum must not depend on which thread
    /// took it or how many there are (layer4's 2048 × 13 × 13, odd plane and channel counts, batch 2).
    @Test func globalPoolSplitOverThreadsIsBitIdentical() {
        var rng = SplitMix64(seed: 9)
        for shape in [[1, 2048, 13, 13], [2, 333, 17, 15], [1, 3, 200, 111], [1, 1, 300, 300]] {
            let x = Tensor.random(shape, in: -2...5, using: &rng)
            #expect(shape.reduce(1, *) >= 1 << 16)
            let one = Kernels.globalAveragePool(x, threads: 1)
            for threads in [2, 3, 4] {
                expectIdentical(Kernels.globalAveragePool(x, threads: threads), one, "\(shape), \(threads) threads")
            }
            expectClose(one, Kernels.globalAveragePoolReference(x), rtol: 1e-6, atol: 1e-7, "\(shape)")
        }
    }
}
