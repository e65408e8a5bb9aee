// Fully connected layer kernel: y[N×out] = x[N×in]·Wᵀ + b.

extension Kernels {
    /// `y = x·Wᵀ + bias` for `x: [N, in]`, `weight: [out, in]` (PyTorch `nn.Linear` layout), with an
    /// optional fused activation.
    package static func linear(_ x: Tensor, weight: Tensor, bias: [Float]?, activation: Activation = .none) -> Tensor {
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linear: x \(x.shape) and weight \(weight.shape) do not match")
        let (n, k, m) = (x.shape[0], x.shape[1], weight.shape[0])
        precondition(bias == nil || bias!.count == m, "linear: bias count != \(m)")
        var y = Tensor(shape: [n, m])
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    guard n > 0, m > 0 else { return }
                    if k > 0 {
                        gemm(m: n, n: m, k: k, a: xp.baseAddress!, lda: k,
                             b: wp.baseAddress!, ldb: k, transposeB: true, c: yp.baseAddress!, ldc: m)
                    }
                    for i in 0..<n {
                        for j in 0..<m { yp[i * m + j] = activation.apply(yp[i * m + j] + (bias?[j] ?? 0)) }
                    }
                }
            }
        }
        return y
    }
}
