// Fully connected layer kernel: y[N×out] = x[N×in]·Wᵀ + b.
import CLadonKernels

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

extension Kernels {
    /// ``linear(_:weight:bias:activation:)`` with the weight prepacked (``PackedMatrix`` of `[out, in]`):
    /// one input row is a ``gemv(packed:x:y:bias:relu:threads:)``; more rows compute `W·xᵀ` with the bias and
    /// activation fused into the GEMM, then transpose it into `[N, out]`.
    package static func linear(_ x: Tensor, packed w: PackedMatrix, bias: [Float]?, activation: Activation = .none,
                               threads: Int? = nil) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == w.columns, "linear: x \(x.shape) and weight [\(w.rows), \(w.columns)] do not match")
        precondition(bias == nil || bias!.count == w.rows, "linear: bias count != \(w.rows)")
        let (n, k, m) = (x.shape[0], w.columns, w.rows)
        let workers = resolvedThreads(threads)
        guard n > 0, m > 0 else { return Tensor(shape: [n, m]) }
        if k == 0 {
            return Tensor(shape: [n, m], scalars: (0..<n * m).map { activation.apply(bias?[$0 % m] ?? 0) })
        }
        return Tensor(shape: [n, m], unsafeUninitialized: { y in
            x.withUnsafeBufferPointer { xp in
                (bias ?? []).withUnsafeBufferPointer { bp in
                    let biasPointer = bias == nil ? nil : bp.baseAddress
                    if n == 1 {
                        gemv(packed: w, x: xp.baseAddress!, y: y.baseAddress!, bias: biasPointer,
                             relu: activation == .relu, threads: workers)
                        return
                    }
                    KernelScratch.shared.withBuffer(count: m * n) { transposed in
                        gemm(packed: w, n: n, b: xp.baseAddress!, ldb: k, transposeB: true, c: transposed, ldc: n,
                             epilogue: GEMMEpilogue(bias: biasPointer, residual: nil, ldr: 0, relu: activation == .relu),
                             threads: workers)
                        transpose(transposed, rows: m, columns: n, into: y.baseAddress!, threads: workers)
                    }
                }
            }
        })
    }

    /// `dst[columns × rows] = srcᵀ` (8×8 register blocks in C), the row blocks split over the threads (the box head's
    /// 1024 × 1000 results).
    static func transpose(_ src: UnsafePointer<Float>, rows: Int, columns: Int, into dst: UnsafeMutablePointer<Float>,
                          threads: Int? = nil, level: Int32 = 0) {
        let block = 8
        WorkSplit.forEachRange((rows + block - 1) / block, work: rows * columns, threads: threads) { range in
            cladon_transpose_rows(level, dst, src, rows, columns, range.lowerBound * block, min(rows, range.upperBound * block))
        }
    }
}
