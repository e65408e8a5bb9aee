// ResNeSt split attention: radix splits weighted by a per-channel softmax computed from their global average.
import Foundation

extension Kernels {
    /// The attention half of timm's `SplitAttn` with cardinality 1 (ResNeSt; timm `layers/split_attn.py`), given the radix
    /// splits its grouped convolution, `bn0` and ReLU produced:
    ///
    /// ```
    /// g = mean_{H,W}(Σ_r split_r)                  // [C]
    /// h = relu(fc1Weight · g + fc1Bias)            // [A]   fc1 with bn1 folded in
    /// a = fc2Weight · h + fc2Bias                  // [R·C] logit of split r, channel c at r·C + c
    /// att_r[c] = softmax_r(a[r·C + c])             // timm's RadixSoftmax: view(N, 1, R, C).transpose(1, 2)
    /// out[c] = Σ_r att_r[c] · split_r[c]
    /// ```
    ///
    /// - Parameters:
    ///   - splits: `[N, R·C, H, W]`, split `r` in channels `r·C ..< (r+1)·C`.
    ///   - radix: `R ≥ 1` (1 gives a sigmoid gate, as timm).
    ///   - fc1Weight: `A·C` values (`[A, C]` or `[A, C, 1, 1]`); fc1Bias: `A` values.
    ///   - fc2Weight: `R·C·A` values (`[R·C, A]` or `[R·C, A, 1, 1]`); fc2Bias: `R·C` values.
    /// - Returns: `[N, C, H, W]`.
    package static func splitAttention(_ splits: Tensor, radix: Int, fc1Weight: Tensor, fc1Bias: [Float],
                                      fc2Weight: Tensor, fc2Bias: [Float]) -> Tensor {
        let (n, c, hw, a) = checkSplitAttention(splits, radix: radix, fc1Weight: fc1Weight, fc1Bias: fc1Bias,
                                                fc2Weight: fc2Weight, fc2Bias: fc2Bias)
        let planes = radix * c
        var attention = [Float](repeating: 0, count: n * planes)
        splits.withUnsafeBufferPointer { xp in
            guard let src = xp.baseAddress else { return }
            var sums = [Float](repeating: 0, count: n * planes)
            sums.withUnsafeMutableBufferPointer { sp in
                guard let dst = sp.baseAddress else { return }
                WorkSplit.forEachRange(n * planes, work: n * planes * hw) { range in
                    for plane in range { dst[plane] = planeSum(src + plane * hw, count: hw) }
                }
            }
            for b in 0..<n {
                let gap = (0..<c).map { ch in
                    (0..<radix).reduce(Float(0)) { $0 + sums[b * planes + $1 * c + ch] } / Float(hw)
                }
                let weights = attentionWeights(gap, radix: radix, fc1Weight: fc1Weight.scalars, fc1Bias: fc1Bias,
                                               fc2Weight: fc2Weight.scalars, fc2Bias: fc2Bias, hidden: a)
                for i in 0..<planes { attention[b * planes + i] = weights[i] }
            }
        }
        return Tensor(shape: [n, c, splits.h, splits.w], unsafeUninitialized: { out in
            splits.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress, let dst = out.baseAddress else { return }
                WorkSplit.forEachRange(n * c, work: n * planes * hw) { range in
                    for plane in range {
                        let b = plane / c, ch = plane % c
                        let o = dst + plane * hw
                        let w0 = attention[b * planes + ch], x0 = src + (b * planes + ch) * hw
                        for p in 0..<hw { o[p] = w0 * x0[p] }
                        for r in 1..<max(radix, 1) {
                            let wr = attention[b * planes + r * c + ch], xr = src + (b * planes + r * c + ch) * hw
                            for p in 0..<hw { o[p] += wr * xr[p] }
                        }
                    }
                }
            }
        })
    }

    /// Plain reference for ``splitAttention(_:radix:fc1Weight:fc1Bias:fc2Weight:fc2Bias:)``, in Double.
    package static func splitAttentionReference(_ splits: Tensor, radix: Int, fc1Weight: Tensor, fc1Bias: [Float],
                                               fc2Weight: Tensor, fc2Bias: [Float]) -> Tensor {
        let (n, c, hw, a) = checkSplitAttention(splits, radix: radix, fc1Weight: fc1Weight, fc1Bias: fc1Bias,
                                                fc2Weight: fc2Weight, fc2Bias: fc2Bias)
        let planes = radix * c
        var out = Tensor(shape: [n, c, splits.h, splits.w])
        for b in 0..<n {
            func x(_ r: Int, _ ch: Int, _ p: Int) -> Double { Double(splits.scalars[((b * planes) + r * c + ch) * hw + p]) }
            var gap = [Double](repeating: 0, count: c)
            for ch in 0..<c {
                for r in 0..<radix { for p in 0..<hw { gap[ch] += x(r, ch, p) } }
                gap[ch] /= Double(hw)
            }
            var hidden = [Double](repeating: 0, count: a)
            for i in 0..<a {
                var s = Double(fc1Bias[i])
                for ch in 0..<c { s += Double(fc1Weight.scalars[i * c + ch]) * gap[ch] }
                hidden[i] = max(s, 0)
            }
            var logits = [Double](repeating: 0, count: planes)
            for j in 0..<planes {
                logits[j] = Double(fc2Bias[j])
                for i in 0..<a { logits[j] += Double(fc2Weight.scalars[j * a + i]) * hidden[i] }
            }
            for ch in 0..<c {
                let l = (0..<radix).map { logits[$0 * c + ch] }
                let weights: [Double]
                if radix == 1 {
                    weights = [1 / (1 + Foundation.exp(-l[0]))]
                } else {
                    let m = l.max()!, e = l.map { Foundation.exp($0 - m) }, total = e.reduce(0, +)
                    weights = e.map { $0 / total }
                }
                for p in 0..<hw {
                    var s = 0.0
                    for r in 0..<radix { s += weights[r] * x(r, ch, p) }
                    out.scalars[(b * c + ch) * hw + p] = Float(s)
                }
            }
        }
        return out
    }

    /// fc1 → ReLU → fc2 → radix softmax for one image's pooled vector `gap` (`C` values); returns `R·C`
    /// weights, split-major like the logits.
    private static func attentionWeights(_ gap: [Float], radix: Int, fc1Weight: [Float], fc1Bias: [Float],
                                         fc2Weight: [Float], fc2Bias: [Float], hidden a: Int) -> [Float] {
        let c = gap.count, planes = radix * c
        var hidden = [Float](repeating: 0, count: a)
        for i in 0..<a {
            var s = fc1Bias[i]
            for ch in 0..<c { s += fc1Weight[i * c + ch] * gap[ch] }
            hidden[i] = max(s, 0)
        }
        var logits = [Float](repeating: 0, count: planes)
        for j in 0..<planes {
            var s = fc2Bias[j]
            for i in 0..<a { s += fc2Weight[j * a + i] * hidden[i] }
            logits[j] = s
        }
        guard radix > 1 else { return logits.map { 1 / (1 + Foundation.exp(-$0)) } }
        var weights = [Float](repeating: 0, count: planes)
        for ch in 0..<c {
            // Stable softmax over the radix: subtract the largest logit.
            var m = logits[ch]
            for r in 1..<radix { m = max(m, logits[r * c + ch]) }
            var total: Float = 0
            for r in 0..<radix {
                let e = Foundation.exp(logits[r * c + ch] - m)
                weights[r * c + ch] = e
                total += e
            }
            for r in 0..<radix { weights[r * c + ch] /= total }
        }
        return weights
    }

    /// Checks the operands; returns `(N, C, H·W, A)`.
    private static func checkSplitAttention(_ splits: Tensor, radix: Int, fc1Weight: Tensor, fc1Bias: [Float],
                                            fc2Weight: Tensor, fc2Bias: [Float]) -> (Int, Int, Int, Int) {
        precondition(splits.rank == 4 && radix >= 1 && splits.c % radix == 0 && splits.h * splits.w > 0,
                     "splitAttention: splits \(splits.shape) are not radix \(radix) splits of a non-empty map")
        let c = splits.c / radix, a = fc1Bias.count
        precondition(fc1Weight.count == a * c, "splitAttention: fc1 weight \(fc1Weight.shape) is not [\(a), \(c)]")
        precondition(fc2Weight.count == radix * c * a && fc2Bias.count == radix * c,
                     "splitAttention: fc2 weight \(fc2Weight.shape) / bias \(fc2Bias.count) are not [\(radix * c), \(a)]")
        return (splits.n, c, splits.h * splits.w, a)
    }
}
