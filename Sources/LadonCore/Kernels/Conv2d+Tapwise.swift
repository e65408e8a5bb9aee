// Dilated convolutions computed tap by tap, each tap only over the outputs where it reads the image.

extension Kernels {
    /// `out = epilogue(Σ_taps W_tap · shift_tap(x))` for a one-group convolution packed per tap.
    ///
    /// Tap (ky, kx) reads the image only for the output rows `Y` and columns `X` where its input row and column
    /// fall inside (a rectangle); elsewhere it adds zeros, so it is skipped there. The first tap that covers the
    /// whole output writes `C` directly (later whole-output taps accumulate); a tap covering part of it is
    /// multiplied into a scratch block that is added into its rectangle. Bias, residual and ReLU come last.
    /// On a 13×13 map a rate-12 3×3 convolution does 225 of its 1,521 output-tap products this way.
    static func conv2dTapwise(_ job: ConvJob, _ taps: [PackedMatrix]) {
        let p = job.p
        let (cin, cout, plane) = (p.inChannels, p.outChannels, job.oh * job.ow)
        // Output range [lo, hi) where input index o·stride − pad + t·dilation lies in [0, size).
        func valid(_ t: Int, stride: Int, pad: Int, dilation: Int, size: Int, outputs: Int) -> Range<Int> {
            let offset = t * dilation - pad
            let lo = min(outputs, max(0, ceilDivide(-offset, stride)))
            let hi = max(lo, min(outputs, ceilDivide(size - offset, stride)))
            return lo..<hi
        }
        for b in 0..<job.batch {
            let input = job.input + b * cin * job.h * job.w
            let output = job.output + b * cout * plane
            var written = false
            for ky in 0..<p.kernelHeight {
                let ys = valid(ky, stride: p.strideHeight, pad: p.paddingHeight, dilation: p.dilationHeight,
                               size: job.h, outputs: job.oh)
                for kx in 0..<p.kernelWidth {
                    let xs = valid(kx, stride: p.strideWidth, pad: p.paddingWidth, dilation: p.dilationWidth,
                                   size: job.w, outputs: job.ow)
                    guard !ys.isEmpty && !xs.isEmpty else { continue }
                    let weights = taps[ky * p.kernelWidth + kx]
                    let n = ys.count * xs.count
                    let whole = n == plane
                    KernelScratch.shared.withBuffer(count: cin * n + (whole ? 0 : cout * n)) { scratch in
                        // The tap's input rows over its rectangle: [cin × |Y|·|X|].
                        let shifted = scratch
                        let iy0 = ky * p.dilationHeight - p.paddingHeight
                        let ix0 = kx * p.dilationWidth - p.paddingWidth
                        for c in 0..<cin {
                            var dst = shifted + c * n
                            let channel = input + c * job.h * job.w
                            for y in ys {
                                let row = channel + (y * p.strideHeight + iy0) * job.w
                                if p.strideWidth == 1 {
                                    dst.update(from: row + xs.lowerBound + ix0, count: xs.count)
                                } else {
                                    for (i, x) in xs.enumerated() { dst[i] = row[x * p.strideWidth + ix0] }
                                }
                                dst += xs.count
                            }
                        }
                        if whole {
                            gemm(packed: weights, n: n, b: shifted, ldb: n, c: output, ldc: plane,
                                 accumulate: written, threads: job.threads)
                            written = true
                            return
                        }
                        let block = scratch + cin * n
                        gemm(packed: weights, n: n, b: shifted, ldb: n, c: block, ldc: n, threads: job.threads)
                        if !written {
                            output.update(repeating: 0, count: cout * plane)
                            written = true
                        }
                        for oc in 0..<cout {
                            var src = block + oc * n
                            for y in ys {
                                let dst = output + oc * plane + y * job.ow + xs.lowerBound
                                for i in 0..<xs.count { dst[i] += src[i] }
                                src += xs.count
                            }
                        }
                    }
                }
            }
            if !written { output.update(repeating: 0, count: cout * plane) }
            // Epilogue: bias, residual, ReLU, in the GEMM epilogue's order.
            let e = job.epilogue(batch: b, channel: 0, row: 0)
            guard !e.isNone else { continue }
            for oc in 0..<cout {
                let out = output + oc * plane
                for i in 0..<plane { out[i] = e.apply(out[i], row: oc, column: i) }
            }
        }
    }
}
