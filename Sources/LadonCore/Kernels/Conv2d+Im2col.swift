// im2col + GEMM convolution for any kernel, stride, padding, dilation and group count.
import CLadonKernels
import Foundation

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
                let layout = StridePhases.layout(p, taps: taps, h: job.h, w: job.w, oh: job.oh, ow: job.ow,
                                                 channels: p.inChannels, allowBorder: job.borderedPlanes)
                KernelScratch.shared.withBuffer(count: layout.count) { scratch in
                    for b in 0..<job.batch {
                        var op = GEMMOperands(
                            m: p.outChannels, n: plane, k: k, a: panels.base, lda: k, transposeA: false,
                            b: job.input, ldb: plane, transposeB: false,
                            c: job.output + b * p.outChannels * plane, ldc: plane, accumulate: false,
                            epilogue: job.epilogue(batch: b, channel: 0, row: 0), packedA: panels)
                        let phases = StridePhases(p, layout: layout,
                                                  input: job.input + b * p.inChannels * job.h * job.w,
                                                  h: job.h, w: job.w, channels: p.inChannels,
                                                  scratch: layout.count > 0 ? scratch : nil, threads: job.threads)
                        op.im2col = Im2colPanels(p: p, taps: taps, phases: phases, ow: job.ow)
                        gemmBlocked(op, threads: job.threads)
                    }
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
                        WorkSplit.forEachRange(groups, work: k * n, minimumWork: 1 << 16, threads: job.threads) {
                            fill.rowGroups($0)
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
///
/// A strided convolution reads a stride-phase-split copy of the input (``StridePhases``): in phase plane
/// (φy, φx) every tap reads a contiguous run of columns, as in a stride-1 convolution.
struct Im2colPanels {
    let p: Conv2dParameters
    let taps: Im2colTaps
    let phases: StridePhases
    let ow: Int
    /// Per tap (`ky` index · |kx| + `kx` index): offset of channel 0 of the plane it reads from `phases.base`,
    /// and its row and column shift, computed once per image so that packing does no division per row.
    private let tapPlane: [Int], tapY: [Int], tapX: [Int]

    init(p: Conv2dParameters, taps: Im2colTaps, phases: StridePhases, ow: Int) {
        (self.p, self.taps, self.phases, self.ow) = (p, taps, phases, ow)
        var plane: [Int] = [], dy: [Int] = [], dx: [Int] = []
        for ky in taps.ky {
            for kx in taps.kx {
                let (channel, y, x) = phases.channel(0, ky: ky, kx: kx)
                plane.append(channel - phases.base)
                dy.append(y)
                dx.append(x)
            }
        }
        (tapPlane, tapY, tapX) = (plane, dy, dx)
    }

    /// Writes rows `k0..<k0+kc`, columns `j0..<j0+nc` into panels `dst[(q·kc + p)·nr + j]`, zero past `nc`.
    func pack(k0: Int, kc: Int, j0: Int, nc: Int, nr: Int, into dst: UnsafeMutablePointer<Float>) {
        if phases.bordered {
            packBordered(k0: k0, kc: kc, j0: j0, nc: nc, nr: nr, into: dst)
            return
        }
        let tapCount = taps.ky.count * taps.kx.count
        let (h, w) = (phases.height, phases.width), planeStride = h * w
        // Output position of the first column; each panel's start is then found by adding, not dividing.
        let (y0, x0) = (j0 / ow, j0 % ow)
        var icg = k0 / tapCount, tap = k0 % tapCount
        tapPlane.withUnsafeBufferPointer { tapPlane in
            tapY.withUnsafeBufferPointer { tapY in
                tapX.withUnsafeBufferPointer { tapX in
                    for row in 0..<kc {
                        let channel = phases.base + tapPlane[tap] + icg * planeStride
                        let (yOffset, xOffset) = (tapY[tap], tapX[tap])
                        var y = y0, x = x0, q = 0
                        while q * nr < nc {
                            let out = dst + (q * kc + row) * nr
                            let cols = min(nr, nc - q * nr)
                            let iy = y + yOffset, ix = x + xOffset
                            if cols == nr && x + nr <= ow && iy >= 0 && iy < h && ix >= 0 && ix + nr <= w {
                                // The common case: the whole panel row is one run inside the image.
                                copyFloats(out, channel + iy * w + ix, nr)
                            } else {
                                packRuns(out, channel: channel, y: y, x: x, cols: cols, nr: nr,
                                         yOffset: yOffset, xOffset: xOffset, h: h, w: w)
                            }
                            x += nr
                            while x >= ow { x -= ow; y += 1 }
                            q += 1
                        }
                        tap += 1
                        if tap == tapCount { tap = 0; icg += 1 }
                    }
                }
            }
        }
    }

    /// ``pack(k0:kc:j0:nc:nr:into:)`` from bordered planes: every element is `base[row offset + column offset]`
    /// with no bounds to check, so the C packer copies whole runs.
    private func packBordered(k0: Int, kc: Int, j0: Int, nc: Int, nr: Int, into dst: UnsafeMutablePointer<Float>) {
        let tapCount = taps.ky.count * taps.kx.count
        let planeStride = phases.height * phases.width, width = phases.width
        withUnsafeTemporaryAllocation(of: Int.self, capacity: kc + nc) { offsets in
            let rows = offsets.baseAddress!, columns = rows + kc
            var icg = k0 / tapCount, tap = k0 % tapCount
            for r in 0..<kc {
                rows[r] = tapPlane[tap] + icg * planeStride + tapY[tap] * width + tapX[tap]
                tap += 1
                if tap == tapCount { tap = 0; icg += 1 }
            }
            var y = j0 / ow, x = j0 % ow
            for j in 0..<nc {
                columns[j] = (y + phases.top) * width + x + phases.left
                x += 1
                if x == ow { x = 0; y += 1 }
            }
            cladon_pack_im2col_panels(dst, phases.base, rows, kc, columns, nc, nr)
        }
    }

    /// One panel row that crosses an output row or reads padding: run by run, zero outside the image.
    private func packRuns(_ out: UnsafeMutablePointer<Float>, channel: UnsafePointer<Float>, y: Int, x: Int,
                          cols: Int, nr: Int, yOffset: Int, xOffset: Int, h: Int, w: Int) {
        var t = 0, y = y, x = x
        while t < cols {
            let count = min(ow - x, cols - t)
            let iy = y + yOffset
            if iy < 0 || iy >= h {
                (out + t).update(repeating: 0, count: count)
            } else {
                // Positions x + u with 0 <= x + u + xOffset < w read the image.
                let ix0 = x + xOffset
                let lo = min(count, max(0, -ix0)), hi = max(lo, min(count, w - ix0))
                for u in 0..<lo { out[t + u] = 0 }
                copyFloats(out + t + lo, channel + iy * w + ix0 + lo, hi - lo)
                for u in hi..<count { out[t + u] = 0 }
            }
            t += count
            x = 0
            y += 1
        }
        (out + cols).update(repeating: 0, count: nr - cols)
    }
}

/// The planes an im2col convolution reads: the input itself, or a copy split by stride phase and, when that
/// costs little, given a zero border.
///
/// Strided: plane (φy, φx) holds rows `φy, φy+sh, …` and columns `φx, φx+sw, …` of every channel,
/// zero where the phase runs past the image. Input row `y·sh + ky·dh − ph` is then row
/// `y + ⌊(ky·dh − ph)/sh⌋` of phase `(ky·dh − ph) mod sh`, so each tap is a plain shift. Only the phases some
/// tap reads are copied.
///
/// Bordered (``bordered``): every plane also gets the zero rows and columns that the taps read outside the
/// image (`top`, `left` and what lies past the image), so every read of every tap at every output position lies
/// inside the planes and ``Im2colPanels`` packs with block copies and no bounds checks
/// (`cladon_pack_im2col_panels`). Chosen when the border at most doubles the planes (not for the wide
/// dilations of ASPP on small maps, which are packed per tap anyway).
struct StridePhases {
    let p: Conv2dParameters
    /// Channel 0 of phase slot 0 (the input itself when not copied).
    let base: UnsafePointer<Float>
    /// Plane size, border included.
    let height: Int, width: Int
    /// Where phase row 0, column 0 lies in a plane (0 without a border).
    let top: Int, left: Int
    /// Whether the border holds every read (see the type's comment).
    let bordered: Bool
    /// Slot of phase (φy, φx) at `φy·sw + φx`, −1 when no tap reads it.
    let slots: [Int]
    let channels: Int

    /// Where ``StridePhases`` puts its planes, and the floats its copy needs (0 when it reads the input itself).
    struct Layout {
        var slots: [Int]
        var height: Int, width: Int, top: Int, left: Int
        var bordered: Bool
        var count: Int
    }

    /// The planes for `taps` of a convolution from `h×w` to `oh×ow`; `allowBorder: false` keeps the unbordered
    /// layout (tests compare the two).
    static func layout(_ p: Conv2dParameters, taps: Im2colTaps, h: Int, w: Int, oh: Int, ow: Int, channels: Int,
                       allowBorder: Bool = true) -> Layout {
        let (sh, sw) = (p.strideHeight, p.strideWidth)
        var slots = [Int](repeating: -1, count: sh * sw), used = 0
        var (dyMin, dyMax, dxMin, dxMax) = (0, 0, 0, 0)
        for ky in taps.ky {
            let oy = ky * p.dilationHeight - p.paddingHeight
            (dyMin, dyMax) = (min(dyMin, floorDivide(oy, sh)), max(dyMax, floorDivide(oy, sh)))
            for kx in taps.kx {
                let ox = kx * p.dilationWidth - p.paddingWidth
                (dxMin, dxMax) = (min(dxMin, floorDivide(ox, sw)), max(dxMax, floorDivide(ox, sw)))
                let phase = floorModulo(oy, sh) * sw + floorModulo(ox, sw)
                if slots[phase] < 0 { slots[phase] = used; used += 1 }
            }
        }
        let (ph, pw) = (ceilDivide(h, sh), ceilDivide(w, sw))
        // Bordered: rows −dyMin … oh−1+dyMax and columns likewise must exist.
        let (top, left) = (-dyMin, -dxMin)
        let height = top + max(ph, oh + dyMax), width = left + max(pw, ow + dxMax)
        if allowBorder && Kernels.borderedIm2col && height * width <= 2 * ph * pw {
            if sh == 1 && sw == 1 && top == 0 && left == 0 && height == h && width == w {
                // No tap reads outside the image (padding 0, e.g. decoder.2): the input already is its bordered plane.
                return Layout(slots: [0], height: h, width: w, top: 0, left: 0, bordered: true, count: 0)
            }
            return Layout(slots: slots, height: height, width: width, top: top, left: left, bordered: true,
                          count: used * channels * height * width)
        }
        if sh == 1 && sw == 1 {
            return Layout(slots: [0], height: h, width: w, top: 0, left: 0, bordered: false, count: 0)
        }
        return Layout(slots: slots, height: ph, width: pw, top: 0, left: 0, bordered: false,
                      count: used * channels * ph * pw)
    }

    /// The input itself (`layout.count == 0`), or the planes of `layout` copied from `input` into `scratch`.
    init(_ p: Conv2dParameters, layout: Layout, input: UnsafePointer<Float>, h: Int, w: Int, channels: Int,
         scratch: UnsafeMutablePointer<Float>?, threads: Int) {
        self.p = p
        self.slots = layout.slots
        self.channels = channels
        (height, width, top, left, bordered) = (layout.height, layout.width, layout.top, layout.left, layout.bordered)
        guard layout.count > 0, let scratch else {
            base = input
            return
        }
        let (sh, sw) = (p.strideHeight, p.strideWidth)
        base = UnsafePointer(scratch)
        let used = layout.slots.enumerated().filter { $0.element >= 0 }
        let (height, width, top, left) = (height, width, top, left)
        // Channels in chunks taken as threads come free (about 6 per thread), as the direct convolution's planes.
        WorkSplit.forEachChunk(channels, work: used.count * channels * height * width, threads: threads,
                               chunksPerPart: 6) { range in
            // Channel by channel: its phases read the same input rows, which then come from L2, not memory.
            for c in range {
                for (phase, slot) in used {
                    cladon_copy_bordered_plane(scratch + (slot * channels + c) * height * width, height, width, top,
                                               left, input + c * h * w, h, w, sh, sw, phase / sw, phase % sw)
                }
            }
        }
    }

    /// Channel `c` of the plane tap (`ky`, `kx`) reads, and the row and column shift of that read (in phase
    /// coordinates: add ``top`` and ``left`` for the position in a bordered plane).
    @inline(__always)
    func channel(_ c: Int, ky: Int, kx: Int) -> (UnsafePointer<Float>, Int, Int) {
        let oy = ky * p.dilationHeight - p.paddingHeight, ox = kx * p.dilationWidth - p.paddingWidth
        let (sh, sw) = (p.strideHeight, p.strideWidth)
        let slot = slots[floorModulo(oy, sh) * sw + floorModulo(ox, sw)]
        return (base + (slot * channels + c) * height * width, floorDivide(oy, sh), floorDivide(ox, sw))
    }
}

extension Kernels {
    /// Whether im2col convolutions may read bordered planes (``StridePhases``); `LADON_IM2COL_BORDER=0` turns
    /// it off for side-by-side measurements. Results are identical either way.
    static let borderedIm2col = ProcessInfo.processInfo.environment["LADON_IM2COL_BORDER"] != "0"
}

/// Copies `count` floats with inline vector moves (the runs here are short: a panel is 16 or 32 wide).
@inline(__always)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
    var i = 0
    while i + 16 <= count {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), toByteOffset: i * 4,
                     as: SIMD16<Float>.self)
        i += 16
    }
    if i + 8 <= count {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), toByteOffset: i * 4,
                     as: SIMD8<Float>.self)
        i += 8
    }
    if i + 4 <= count {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self), toByteOffset: i * 4,
                     as: SIMD4<Float>.self)
        i += 4
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

@inline(__always) func floorModulo(_ a: Int, _ b: Int) -> Int { a - floorDivide(a, b) * b }
