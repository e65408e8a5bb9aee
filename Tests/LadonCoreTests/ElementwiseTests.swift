// ReLU, residual add and add+ReLU: SIMD kernels against references and PyTorch.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct ElementwiseTests {
    @Test func matchesPyTorch() throws {
        let f = try KernelFixture("elementwise")
        let x = try f.tensor("x"), y = try f.tensor("y")
        var r = x
        Kernels.relu(&r)
        expectIdentical(r, try f.tensor("relu"), "relu")
        var s = x
        Kernels.add(&s, y)
        expectIdentical(s, try f.tensor("add"), "add")
        var t = x
        Kernels.addRelu(&t, y)
        expectIdentical(t, try f.tensor("add_relu"), "addRelu")
    }

    @Test func matchesReferenceOnOddSizes() {
        var rng = SplitMix64(seed: 11)
        // Sizes around the SIMD width and above the two-thread threshold.
        for count in [0, 1, 15, 16, 17, 33, 1000, (1 << 20) + 5] {
            let x = Tensor.random([count], in: -2...2, using: &rng)
            let y = Tensor.random([count], in: -2...2, using: &rng)
            var r = x
            Kernels.relu(&r)
            expectIdentical(r, Kernels.reluReference(x), "relu \(count)")
            var s = x
            Kernels.add(&s, y)
            expectIdentical(s, Kernels.addReference(x, y), "add \(count)")
            var t = x
            Kernels.addRelu(&t, y)
            expectIdentical(t, Kernels.addReference(x, y, relu: true), "addRelu \(count)")
        }
    }

    @Test func reluKeepsNaN() {
        var x = Tensor(shape: [20], scalars: (0..<20).map { $0 == 3 || $0 == 18 ? .nan : Float($0) - 10 })
        Kernels.relu(&x)
        #expect(x.scalars[3].isNaN && x.scalars[18].isNaN)
        #expect(x.scalars[0] == 0 && x.scalars[19] == 9)
    }
}
