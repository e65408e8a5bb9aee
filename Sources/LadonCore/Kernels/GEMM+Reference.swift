// Plain matrix multiplication: the specification and test oracle for the optimised GEMM.

extension Kernels {
    /// Reference `C[M×N] = op(A)·op(B) (+ C if accumulate)`, row-major with leading dimensions.
    ///
    /// `op(A)` is `A[M×K]` (`lda ≥ K`) or, when `transposeA`, `A` stored as `[K×M]` (`lda ≥ M`).
    /// `op(B)` is `B[K×N]` (`ldb ≥ N`) or, when `transposeB`, `B` stored as `[N×K]` (`ldb ≥ K`).
    /// Sums in `Double` so it is a trustworthy oracle.
    package static func gemmReference(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = accumulate ? Double(c[i * ldc + j]) : 0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                c[i * ldc + j] = Float(s)
            }
        }
    }
}
