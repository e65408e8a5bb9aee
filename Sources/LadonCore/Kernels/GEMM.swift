// Single-precision matrix multiplication, the workhorse behind 1x1 and im2col convolutions and linear layers.

extension Kernels {
    /// `C[M×N] = op(A)·op(B) (+ C if accumulate)`, row-major with leading dimensions; same contract as
    /// ``gemmReference(m:n:k:a:lda:transposeA:b:ldb:transposeB:c:ldc:accumulate:)``.
    public static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false
    ) {
        // Placeholder-free simple kernel: i-p-j loop order (vectorises over j); replaced by the packed kernel.
        for i in 0..<m {
            let crow = c + i * ldc
            if !accumulate { for j in 0..<n { crow[j] = 0 } }
            for p in 0..<k {
                let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                if transposeB {
                    for j in 0..<n { crow[j] += av * b[j * ldb + p] }
                } else {
                    let brow = b + p * ldb
                    for j in 0..<n { crow[j] += av * brow[j] }
                }
            }
        }
    }
}
