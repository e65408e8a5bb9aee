// Generalised divisive normalisation, CompressAI's simplified GDN1 and its inverse.

extension Kernels {
    /// GDN1 over the channels of an NCHW tensor, with *effective* parameters (already reparametrised):
    /// `norm[i] = beta[i] + Σ_j gamma[i, j]·|x[j]|`; forward `y = x · (1 / norm)`, inverse `y = x · norm`.
    ///
    /// - Parameters:
    ///   - beta: `C` effective offsets.
    ///   - gamma: `[C, C]` effective weights, row `i` = output channel.
    public static func gdn(_ x: Tensor, beta: [Float], gamma: Tensor, inverse: Bool) -> Tensor {
        let (n, c, hw) = (x.n, x.c, x.h * x.w)
        precondition(beta.count == c && gamma.shape == [c, c], "gdn: parameters do not match \(c) channels")
        var out = Tensor(shape: x.shape)
        var absx = [Float](repeating: 0, count: c * hw)
        var norm = [Float](repeating: 0, count: c * hw)
        for b in 0..<n {
            let base = b * c * hw
            for i in 0..<(c * hw) { absx[i] = abs(x.scalars[base + i]) }
            gamma.withUnsafeBufferPointer { g in
                absx.withUnsafeBufferPointer { a in
                    norm.withUnsafeMutableBufferPointer { nm in
                        gemm(m: c, n: hw, k: c, a: g.baseAddress!, lda: c, b: a.baseAddress!, ldb: hw,
                             c: nm.baseAddress!, ldc: hw)
                    }
                }
            }
            for ch in 0..<c {
                for i in 0..<hw {
                    let v = norm[ch * hw + i] + beta[ch]
                    let xv = x.scalars[base + ch * hw + i]
                    out.scalars[base + ch * hw + i] = inverse ? xv * v : xv * (1 / v)
                }
            }
        }
        return out
    }
}
