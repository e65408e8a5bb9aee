// The fully connected kernel and layer against nn.Linear.
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct LinearTests {
    @Test func layerMatchesPyTorch() throws {
        let f = try KernelFixture("linear")
        let x = try f.tensor("x")
        let fc = try Linear(weights: WeightScope(file: f.file).scope("fc"), inFeatures: 37, outFeatures: 19)
        expectClose(fc(x), try f.tensor("y"), rtol: 1e-5, atol: 1e-6, "linear")
        let fused = try Linear(weights: WeightScope(file: f.file).scope("fc"), inFeatures: 37, outFeatures: 19,
                               activation: .relu)
        expectClose(fused(x), try f.tensor("y_relu"), rtol: 1e-5, atol: 1e-6, "linear+relu")
    }

    @Test func kernelMatchesPlainLoops() {
        var rng = SplitMix64(seed: 21)
        for (n, k, m) in [(1, 1, 1), (3, 17, 5), (7, 64, 33), (2, 0, 4)] {
            let x = Tensor.random([n, k], using: &rng), w = Tensor.random([m, k], using: &rng)
            let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
            var expected = Tensor(shape: [n, m])
            for i in 0..<n {
                for j in 0..<m {
                    var s = Double(bias[j])
                    for p in 0..<k { s += Double(x.scalars[i * k + p]) * Double(w.scalars[j * k + p]) }
                    expected.scalars[i * m + j] = Float(s)
                }
            }
            expectClose(Kernels.linear(x, weight: w, bias: bias), expected, rtol: 1e-5, atol: 1e-6, "\(n)x\(k)x\(m)")
        }
    }

    @Test func rejectsMissingWeights() throws {
        let f = try KernelFixture("linear")
        #expect(throws: LadonError.self) {
            _ = try Linear(weights: WeightScope(file: f.file).scope("fc"), inFeatures: 36, outFeatures: 19)
        }
    }
}
