// Softmax, channel argmax and top-k against PyTorch and the references.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct SoftmaxTests {
    @Test func softmaxMatchesPyTorch() throws {
        let f = try KernelFixture("softmax")
        let v = try f.tensor("softmax_x").scalars
        expectElementwiseClose(Kernels.softmax(v), try f.tensor("softmax_y").scalars, rtol: 2e-6, atol: 1e-30, "vector")
        let rows = Kernels.softmax(try f.tensor("rows_x"))
        expectElementwiseClose(rows.scalars, try f.tensor("rows_y").scalars, rtol: 2e-6, atol: 1e-30, "rows")
        #expect(rows.shape == [7, 91])
    }

    @Test func softmaxMatchesReference() {
        var rng = SplitMix64(seed: 31)
        for count in [1, 2, 5, 91, 1000] {
            let x = (0..<count).map { _ in Float.random(in: -30...30, using: &rng) }
            // exp(x − max) in float carries |x − max|·ulp relative error (≤ 60 · 6e-8 here), as in PyTorch.
            expectElementwiseClose(Kernels.softmax(x), Kernels.softmaxReference(x), rtol: 1e-5, atol: 1e-30, "\(count)")
        }
    }

    @Test func softmaxEdgeCases() {
        #expect(Kernels.softmax([]).isEmpty)
        #expect(Kernels.softmax([3]) == [1])
        let withInf = Kernels.softmax([-.infinity, 0, -.infinity])
        #expect(withInf == [0, 1, 0])
        #expect(Kernels.softmax([1, .nan, 2]).allSatisfy { $0.isNaN })
        #expect(Kernels.softmax([-.infinity, -.infinity]).allSatisfy { $0.isNaN })   // as torch
    }

    @Test func argmaxMatchesPyTorch() throws {
        let f = try KernelFixture("softmax")
        let got = Kernels.argmaxChannels(try f.tensor("argmax_x")).map(Int.init)
        let expected = try f.integers("argmax_y")
        #expect(got == expected)
    }

    @Test func argmaxMatchesReferenceWithTiesAndNaN() {
        var rng = SplitMix64(seed: 17)
        for trial in 0..<12 {
            var x = Tensor.random([rng.extent(1...2), rng.extent(1...23), rng.extent(1...20), rng.extent(1...40)],
                                  in: -3...3, using: &rng)
            x.scalars = x.scalars.map { ($0 * 2).rounded() / 2 }        // many ties
            if trial % 3 == 0 {
                for _ in 0..<5 { x.scalars[rng.extent(0...(x.count - 1))] = .nan }
            }
            #expect(Kernels.argmaxChannels(x) == Kernels.argmaxChannelsReference(x), "\(x.shape)")
        }
    }

    @Test func argmaxSemantics() {
        // One pixel, channels [1, 3, 3, NaN, NaN]: the first NaN wins; without NaN the first 3 wins.
        let x = Tensor(shape: [1, 5, 1, 1], scalars: [1, 3, 3, .nan, .nan])
        #expect(Kernels.argmaxChannels(x) == [3])
        let y = Tensor(shape: [1, 3, 1, 1], scalars: [1, 3, 3])
        #expect(Kernels.argmaxChannels(y) == [1])
    }

    @Test func topKMatchesPyTorch() throws {
        let f = try KernelFixture("softmax")
        let top = Kernels.topK(try f.tensor("topk_x").scalars, k: 37)
        let indices = try f.integers("topk_indices"), values = try f.tensor("topk_values").scalars
        #expect(top.map(\.index) == indices)
        #expect(top.map(\.value) == values)
    }

    @Test func topKMatchesReferenceWithTies() {
        var rng = SplitMix64(seed: 23)
        for trial in 0..<30 {
            let n = rng.extent(0...300)
            var x = (0..<n).map { _ in Float(rng.extent(-20...20)) / 4 }
            if trial % 5 == 0 && n > 0 { x[rng.extent(0...(n - 1))] = .nan }
            for k in [0, 1, 7, n, n + 3] {
                let a = Kernels.topK(x, k: k), b = Kernels.topKReference(x, k: k)
                #expect(a.map(\.index) == b.map(\.index), "n \(n) k \(k)")
            }
        }
        let ties = Kernels.topK([1, 5, 5, 2, 5], k: 3)
        #expect(ties.map(\.index) == [1, 2, 4])
    }
}
