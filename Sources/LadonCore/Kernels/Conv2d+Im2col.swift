// im2col + GEMM convolution for any kernel, stride, padding, dilation and group count.

extension Kernels {
    /// The im2col buffer is tiled over output rows so it holds at most this many floats (8 MiB).
    static let im2colBudget = 1 << 21

    /// im2col + GEMM per image, group and tile of output rows (with prepacked weights: one GEMM per image,
    /// the im2col matrix packed block by block by ``Im2colPanels``). Kernel taps that fall entirely in the
    /// padding for every output position (e.g. dilation 24/36 on a 13×13 map) are dropped from the
    /// reduction, with the matching weight columns.
    static func conv2dIm2col(_ job: ConvJob) {
        let p = job.p
        let cinG = p.inChannels / p.groups, coutG = p.outChannels / p.groups
        let taps = Im2colTaps(p, h: job.h, w: job.w, oh: job.oh, ow: job.ow)
        let fullK = cinG * p.kernelHeight * p.kernelWidth
        let k = cinG * taps.ky.count * taps.kx.count
        let plane = job.oh * job.ow
        if k == 0 {
            // Every tap reads padding: the sums are zero.
            for b in 0..<job.batch {
                for oc in 0..<p.outChannels {
                    let e = job.epilogue(batch: b, channel: oc, row: 0)
                    let out = job.output + (b * p.outChannels + oc) * plane
                    for i in 0..<plane {
                        var v = e.bias?[0] ?? 0
                        if let r = e.residual { v += r[i] }
                        out[i] = e.relu ? (v > 0 ? v : 0) : v
                    }
                }
            }
            return
        }
        if let packed = job.packed, !packed.perTap.isEmpty {
            conv2dTapwise(job, packed.perTap)
            return
        }
        if let packed = job.packed {
            // Prepacked weights: one GEMM per image whose B panels are packed straight from the input.
            packed.matrix(for: taps).withPanels { panels in
                for b in 0..<job.batch {
                    var op = GEMMOperands(
                        m: p.outChannels, n: plane, k: k, a: panels.base, lda: k, transposeA: false,
                        b: job.input, ldb: plane, transposeB: false,
                        c: job.output + b * p.outChannels * plane, ldc: plane, accumulate: false,
                        epilogue: job.epilogue(batch: b, channel: 0, row: 0), packedA: panels)
                    op.im2col = Im2colPanels(p: p, taps: taps, input: job.input + b * p.inChannels * job.h * job.w,
                                             h: job.h, w: job.w, ow: job.ow)
                    gemmBlocked(op, threads: job.threads)
                }
            }
            return
        }
        let rowsPerTile = max(1, min(job.oh, job.im2colBudget / max(k * job.ow, 1)))
        let weightCount = k < fullK ? p.outChannels * k : 0
        KernelScratch.shared.withBuffer(count: weightCount + k * rowsPerTile * job.ow) { scratch in
            // Weights as [outC × k]: the original layout when no tap was dropped, else a compacted copy.
            var weights = job.weight
            if k < fullK {
                taps.compactWeights(job.weight, p, into: scratch)
                weights = UnsafePointer(scratch)
            }
            let col = scratch + weightCount
            for b in 0..<job.batch {
                for g in 0..<p.groups {
                    let input = job.input + (b * p.inChannels + g * cinG) * job.h * job.w
                    var y0 = 0
                    while y0 < job.oh {
                        let y1 = min(job.oh, y0 + rowsPerTile)
                        let n = (y1 - y0) * job.ow
                        let fill = Im2colFill(p: p, taps: taps, input: input, h: job.h, w: job.w, ow: job.ow,
                                              y0: y0, y1: y1, col: col)
                        let groups = k / taps.kx.count  // (input channel, kernel row) pairs
                        let parts = k * n >= 1 << 16 ? min(job.threads, groups) : 1
                        WorkSplit.forEachPart(parts) { part in
                            fill.rowGroups(groups * part / parts..<groups * (part + 1) / parts)
                        }
                        let channel = g * coutG
                        let op = GEMMOperands(
                            m: coutG, n: n, k: k, a: weights + channel * k, lda: k, transposeA: false,
                            b: col, ldb: n, transposeB: false,
                            c: job.output + (b * p.outChannels + channel) * plane + y0 * job.ow, ldc: plane,
                            accumulate: false, epilogue: job.epilogue(batch: b, channel: channel, row: y0))
                        gemmBlocked(op, threads: job.threads)
                        y0 = y1
                    }
                }
            }
        }
    }
}

/// The kernel rows and columns that read real input for at least one output position.
struct Im2colTaps {
    var ky: [Int] = []
    var kx: [Int] = []

    init(_ p: Conv2dParameters, h: Int, w: Int, oh: Int, ow: Int) {
        for t in 0..<p.kernelHeight where (0..<oh).contains(where: {
            let iy = $0 * p.strideHeight - p.paddingHeight + t * p.dilationHeight
            return iy >= 0 && iy < h
        }) { ky.append(t) }
        for t in 0..<p.kernelWidth where (0..<ow).contains(where: {
            let ix = $0 * p.strideWidth - p.paddingWidth + t * p.dilationWidth
            return ix >= 0 && ix < w
        }) { kx.append(t) }
    }

    /// Copies the weight columns of the kept taps: `[outC × cinG·|ky|·|kx|]`.
    func compactWeights(_ weight: UnsafePointer<Float>, _ p: Conv2dParameters, into dst: UnsafeMutablePointer<Float>) {
        let cinG = p.inChannels / p.groups
        var o = 0
        for oc in 0..<p.outChannels {
            for icg in 0..<cinG {
                let base = weight + (oc * cinG + icg) * p.kernelHeight * p.kernelWidth
                for y in ky { for x in kx { dst[o] = base[y * p.kernelWidth + x]; o += 1 } }
            }
        }
    }
}

/// Fills the im2col matrix `col[k × (y1−y0)·ow]` of one image and group for output rows `y0..<y1`.
/// Row `(icg·|ky| + a)·|kx| + b` holds input channel `icg` shifted by tap (`ky[a]`, `kx[b]`).
/// Kernel columns never dropped from `taps.kx` all fit: a pruned `kx` only skips rows, and the phase rows
/// are wide enough for the largest kernel column.
struct Im2colFill {
    let p: Conv2dParameters
    let taps: Im2colTaps
    let input: UnsafePointer<Float>
    let h: Int, w: Int, ow: Int, y0: Int, y1: Int
    let col: UnsafeMutablePointer<Float>

    /// Fills the rows of (input channel, kernel row) groups `range`; each group is `|kx|` consecutive rows.
    func rowGroups(_ range: Range<Int>) {
        let nky = taps.ky.count, nkx = taps.kx.count
        let n = (y1 - y0) * ow
        let (sw, pw, dw) = (p.strideWidth, p.paddingWidth, p.dilationWidth)
        // Strided: each input row is first split into `sw` zero-padded phases (phase φ, index x' holds padded
        // column x'·sw + φ), so every tap's row segment becomes one contiguous copy.
        let phaseWidth = ow + ((p.kernelWidth - 1) * dw) / sw
        withUnsafeTemporaryAllocation(of: Float.self, capacity: sw > 1 ? sw * phaseWidth : 0) { phaseBuffer in
            for group in range {
                let icg = group / nky, ky = taps.ky[group % nky]
                let channel = input + icg * h * w
                var out = col + group * nkx * n
                for y in y0..<y1 {
                    let iy = y * p.strideHeight - p.paddingHeight + ky * p.dilationHeight
                    if iy < 0 || iy >= h {
                        for a in 0..<nkx { (out + a * n).update(repeating: 0, count: ow) }
                        out += ow
                        continue
                    }
                    let row = channel + iy * w
                    if sw == 1 {
                        for a in 0..<nkx {
                            let shift = taps.kx[a] * dw - pw
                            // Output columns whose input column is inside the image: xLo..<xHi.
                            let xLo = min(ow, max(0, -shift))
                            let xHi = max(xLo, min(ow, w - shift))
                            let dst = out + a * n
                            dst.update(repeating: 0, count: xLo)
                            (dst + xLo).update(from: row + xLo + shift, count: xHi - xLo)
                            (dst + xHi).update(repeating: 0, count: ow - xHi)
                        }
                    } else {
                        let phases = phaseBuffer.baseAddress!
                        for phase in 0..<sw {
                            let dst = phases + phase * phaseWidth
                            let shift = phase - pw
                            let lo = min(phaseWidth, max(0, ceilDivide(-shift, sw)))
                            let hi = max(lo, min(phaseWidth, floorDivide(w - 1 - shift, sw) + 1))
                            dst.update(repeating: 0, count: lo)
                            for x in lo..<hi { dst[x] = row[x * sw + shift] }
                            (dst + hi).update(repeating: 0, count: phaseWidth - hi)
                        }
                        for a in 0..<nkx {
                            let offset = taps.kx[a] * dw
                            (out + a * n).update(from: phases + (offset % sw) * phaseWidth + offset / sw, count: ow)
                        }
                    }
                    out += ow
                }
            }
        }
    }
}

@inline(__always) func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
@inline(__always) func ceilDivide(_ a: Int, _ b: Int) -> Int { -floorDivide(-a, b) }

/// The im2col matrix of one image (one group), `[cinG·|ky|·|kx| × oh·ow]`, never materialised: the GEMM
/// asks for `KC×NC` blocks and they are written straight into its `NR`-column panels, so the matrix does not
/// go through memory twice (once written whole, once re-read by the packing).
/// Row `(icg·|ky| + a)·|kx| + b` is input channel `icg` shifted by tap (`ky[a]`, `kx[b]`), as in ``Im2colFill``.
struct Im2colPanels {
    let p: Conv2dParameters
    let taps: Im2colTaps
    /// Channel 0 of the image (and group).
    let input: UnsafePointer<Float>
    let h: Int, w: Int, ow: Int

    /// Writes rows `k0..<k0+kc`, columns `j0..<j0+nc` into panels `dst[(q·kc + p)·nr + j]`, zero past `nc`.
    func pack(k0: Int, kc: Int, j0: Int, nc: Int, nr: Int, into dst: UnsafeMutablePointer<Float>) {
        let nky = taps.ky.count, nkx = taps.kx.count
        let (sh, sw) = (p.strideHeight, p.strideWidth)
        for row in k0..<(k0 + kc) {
            let icg = row / (nky * nkx), tap = row % (nky * nkx)
            let yOffset = taps.ky[tap / nkx] * p.dilationHeight - p.paddingHeight
            let xOffset = taps.kx[tap % nkx] * p.dilationWidth - p.paddingWidth
            let channel = input + icg * h * w
            var q = 0
            while q * nr < nc {
                let out = dst + (q * kc + row - k0) * nr
                let first = j0 + q * nr, cols = min(nr, nc - q * nr)
                var t = 0, y = first / ow, x = first % ow
                while t < cols {
                    let count = min(ow - x, cols - t)
                    let iy = y * sh + yOffset
                    if iy < 0 || iy >= h {
                        (out + t).update(repeating: 0, count: count)
                    } else {
                        let src = channel + iy * w
                        let ix0 = x * sw + xOffset
                        // Positions u in lo..<hi read inside the row: 0 <= ix0 + u·sw < w.
                        let lo = min(count, max(0, ceilDivide(-ix0, sw)))
                        let hi = max(lo, min(count, ceilDivide(w - ix0, sw)))
                        (out + t).update(repeating: 0, count: lo)
                        if sw == 1 {
                            (out + t + lo).update(from: src + ix0 + lo, count: hi - lo)
                        } else {
                            var s = src + ix0 + lo * sw
                            for u in lo..<hi { out[t + u] = s.pointee; s += sw }
                        }
                        (out + t + hi).update(repeating: 0, count: count - hi)
                    }
                    t += count
                    x = 0
                    y += 1
                }
                (out + cols).update(repeating: 0, count: nr - cols)
                q += 1
            }
        }
    }
}
