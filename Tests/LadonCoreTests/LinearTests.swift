// The fully connected kernel and layer against nn.Linear.
import CLadonKernels
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

    /// The C packers and 8×8-block transposes at every instruction set this CPU runs, on shapes with partial blocks
    /// on both axes: the result transpose (over row ranges), the transposed and the plain B packing (partial panels
    /// zeroed).
    @Test func packersAndTransposesAtEveryLevel() {
        var rng = SplitMix64(seed: 41)
        for (rows, columns) in [(1, 1), (8, 8), (13, 21), (17, 9), (3, 40), (64, 33)] {
            let src = (0..<rows * columns).map { _ in Float.random(in: -1...1, using: &rng) }
            var expected = [Float](repeating: 0, count: rows * columns)
            for i in 0..<rows { for j in 0..<columns { expected[j * rows + i] = src[i * columns + j] } }
            for level: Int32 in 1...3 {
                var dst = [Float](repeating: .nan, count: rows * columns)
                let split = rows / 8 * 8 == rows ? rows / 2 / 8 * 8 : rows / 8 * 8  // a range boundary on a block edge
                cladon_transpose_rows(level, &dst, src, rows, columns, 0, split)
                cladon_transpose_rows(level, &dst, src, rows, columns, split, rows)
                #expect(dst == expected, "transpose \(rows)x\(columns) level \(level)")
            }
        }
        // B panels from B stored transposed ([N×K], `cladon_pack_transposed_panels`) and plain ([K×N]).
        for transposed in [true, false] {
            for (n, k, nr) in [(45, 19, 32), (32, 8, 32), (9, 23, 16), (70, 40, 16)] {
                let ldb = transposed ? k + 3 : n + 5
                let b = (0..<(transposed ? n : k) * ldb).map { _ in Float.random(in: -1...1, using: &rng) }
                let panels = (n + nr - 1) / nr
                var expected = [Float](repeating: 0, count: panels * k * nr)
                for j in 0..<n {
                    for p in 0..<k { expected[(j / nr * k + p) * nr + j % nr] = b[transposed ? j * ldb + p : p * ldb + j] }
                }
                for level: Int32 in 1...3 {
                    var dst = [Float](repeating: .nan, count: panels * k * nr)
                    if transposed {
                        cladon_pack_transposed_panels(level, &dst, b, ldb, k, n, nr)
                    } else {
                        cladon_pack_matrix_panels(level, &dst, b, ldb, k, n, nr)
                    }
                    #expect(dst == expected, "\(transposed ? "transposed" : "plain") panels n \(n) k \(k) nr \(nr) level \(level)")
                }
            }
        }
    }
}
