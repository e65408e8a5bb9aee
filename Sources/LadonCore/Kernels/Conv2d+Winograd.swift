// Stride-1 3×3 and 2×2 convolutions by Winograd's minimal filtering (Lavin & Gray, 2016): F(2×2, 3×3) does 16
// GEMMs per 2×2 output tile instead of 36 multiply-adds' worth, F(2×2, 2×2) 9 instead of 16; plus input and output
// transforms.
//
// F(2, 3): Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]], G = [[1, 0, 0], [½, ½, ½], [½, −½, ½],
//          [0, 0, 1]], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
// F(2, 2) (points 0, 1, ∞): Bᵀ = [[1, −1, 0], [0, 1, 0], [0, −1, 1]], G = [[1, 0], [1, 1], [0, 1]],
//          Aᵀ = [[1, 1, 0], [0, 1, 1]] (every coefficient ±1).

/// The transformed weight matrices of a 3×3 or 2×2 convolution: `U_ξ = (G g Gᵀ)_ξ` for each (output, input) channel
/// pair, `α²` of them (`α` = 4 or 3), each `[outC × inC]` packed for the GEMM.
package struct WinogradWeights: Sendable {
    /// The kernel size `r` (3 or 2).
    package let kernelSize: Int
    package let matrices: [PackedMatrix]

    /// Transforms `weight` (`[outC, inC, r, r]`, `r` = 3 or 2); each element is computed in Double and rounded once.
    package init(_ weight: Tensor) {
        precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3] && (2...3).contains(weight.shape[2]),
                     "winograd: 3×3 or 2×2 weights only, got \(weight.shape)")
        let (cout, cin, r) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let alpha = r + 1
        kernelSize = r
        let pairs = cout * cin
        /// G times one column (or row) of `r` values (`v2` unused when `r` = 2), into `out[0 ..< α]`.
        @inline(__always) func applyG(_ v0: Double, _ v1: Double, _ v2: Double, into out: UnsafeMutablePointer<Double>) {
            if r == 3 {
                (out[0], out[1], out[2], out[3]) = (v0, 0.5 * (v0 + v1 + v2), 0.5 * (v0 - v1 + v2), v2)
            } else {
                (out[0], out[1], out[2]) = (v0, v0 + v1, v1)
            }
        }
        // `transformed[ξ · pairs + k]`: matrix ξ, element k = oc · inC + ic.
        let transformed = [Float](unsafeUninitializedCapacity: alpha * alpha * pairs) { dst, initialized in
            weight.withUnsafeBufferPointer { wp in
                // `gg[j · α + i]` = (G g)[i][j]; `u` one row of (G g) Gᵀ.
                withUnsafeTemporaryAllocation(of: Double.self, capacity: 3 * 4 + 4) { buffer in
                    let gg = buffer.baseAddress!, u = gg + 3 * 4
                    for k in 0..<pairs {
                        let g = wp.baseAddress! + k * r * r
                        @inline(__always) func at(_ row: Int, _ column: Int) -> Double {
                            row < r ? Double(g[row * r + column]) : 0
                        }
                        for j in 0..<r { applyG(at(0, j), at(1, j), at(2, j), into: gg + j * alpha) }
                        for i in 0..<alpha {
                            applyG(gg[i], gg[alpha + i], r == 3 ? gg[2 * alpha + i] : 0, into: u)
                            for j in 0..<alpha { dst[(i * alpha + j) * pairs + k] = Float(u[j]) }
                        }
                    }
                }
            }
            initialized = alpha * alpha * pairs
        }
        matrices = transformed.withUnsafeBufferPointer { t in
            (0..<alpha * alpha).map { xi in PackedMatrix(t.baseAddress! + xi * pairs, rows: cout, columns: cin, lda: cin) }
        }
    }
}

extension Kernels {
    /// Whether a convolution runs by ``conv2dWinograd(_:weights:padding:bias:activation:residual:threads:)`` on an
    /// input of `height × width`: 3×3 with padding 1 or 2×2 with padding 0 or 1, stride 1, no dilation, one group, at
    /// least 64 channels in and out, and at least 128 output tiles (2×2 each). Below that the GEMMs' columns are too
    /// few for the transforms to pay (ResNet's layer4 at 13×13: 49 tiles). At 416² this is ResNet-50's stride-1 3×3
    /// convolutions of layer2 and layer3, the FPN's 3×3 ones and the decoder's 512→256 and 256→256 2×2 ones
    /// (`decoder.0`, 24 channels in, stays on im2col).
    package static func usesWinograd(_ p: Conv2dParameters, height: Int, width: Int) -> Bool {
        let shapeFits = (p.kernelHeight == 3 && p.kernelWidth == 3 && p.paddingHeight == 1 && p.paddingWidth == 1)
            || (p.kernelHeight == 2 && p.kernelWidth == 2 && p.paddingHeight <= 1 && p.paddingHeight == p.paddingWidth)
        let (oh, ow) = (p.outputHeight(height), p.outputWidth(width))
        return shapeFits && p.strideHeight == 1 && p.strideWidth == 1 && p.dilationHeight == 1 && p.dilationWidth == 1
            && p.groups == 1 && p.inChannels >= 64 && p.outChannels >= 64 && oh > 0 && ow > 0
            && ((oh + 1) / 2) * ((ow + 1) / 2) >= 128
    }

    /// A stride-1 convolution by F(2×2, r×r) (`r` = `weights.kernelSize`, padding `padding` on every side): the
    /// output is cut into 2×2 tiles, each reading an `α × α` input tile (`α = r + 1`, zero outside the image)
    /// transformed to `V = Bᵀ d B`; the `α²` products `M_ξ = U_ξ · V_ξ` are GEMMs over the tiles
    /// (`[outC × inC] · [inC × tiles]`, split over the threads by ξ); each tile's 2×2 output is `Aᵀ M A`, then bias,
    /// residual and ReLU. The tiles go in chunks of whole tile rows whose `V` and `M` fit 8 MB (a detection map of
    /// 200×267 would otherwise need 440 MB of them). Not bit-identical to the direct sums (its rounding differs: within
    /// 1e-5 of the output scale on the ResNet and decoder layers; the full-size parity check passes).
    package static func conv2dWinograd(_ x: Tensor, weights: WinogradWeights, padding: Int, bias: [Float]?,
                                       activation: Activation, residual: Tensor?, threads: Int? = nil) -> Tensor {
        let (n, cin, h, w) = (x.n, x.c, x.h, x.w)
        let r = weights.kernelSize, alpha = r + 1, count = alpha * alpha
        let cout = weights.matrices[0].rows
        precondition(weights.matrices[0].columns == cin, "winograd: input has \(cin) channels, weights \(weights.matrices[0].columns)")
        precondition(padding >= 0 && padding < r, "winograd: padding \(padding) with a \(r)×\(r) kernel")
        let (oh, ow) = (h + 2 * padding - r + 1, w + 2 * padding - r + 1)
        if let res = residual { precondition(res.shape == [n, cout, oh, ow], "winograd: residual \(res.shape)") }
        let workers = resolvedThreads(threads)
        guard n > 0, oh > 0, ow > 0 else { return Tensor(shape: [n, cout, max(oh, 0), max(ow, 0)]) }
        let (th, tw) = ((oh + 1) / 2, (ow + 1) / 2)
        // Tile rows per chunk: V and M of a chunk (α² · (inC + outC) floats per tile) within 8 MB, at least one row.
        let chunkRows = max(1, min(th, (1 << 21) / (count * (cin + cout)) / tw))
        let geometry = WinogradGeometry(r: r, padding: padding, h: h, w: w, oh: oh, ow: ow, tw: tw)
        return Tensor(shape: [n, cout, oh, ow], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                (residual ?? Tensor(shape: [0])).withUnsafeBufferPointer { rp in
                    KernelScratch.shared.withBuffer(count: count * (cin + cout) * chunkRows * tw) { scratch in
                        for b in 0..<n {
                            for ty0 in stride(from: 0, to: th, by: chunkRows) {
                                let rows = ty0..<min(th, ty0 + chunkRows), tiles = rows.count * tw
                                let v = scratch, m = scratch + count * cin * tiles
                                // V_ξ[ic][t], channel by channel.
                                WorkSplit.forEachRange(cin, work: 40 * cin * tiles, threads: workers) { range in
                                    withUnsafeTemporaryAllocation(of: Float.self, capacity: geometry.rowBufferCount) { buffer in
                                        for ic in range {
                                            geometry.inputTransform(xp.baseAddress! + (b * cin + ic) * h * w, tileRows: rows,
                                                                    into: v + ic * tiles, xiStride: cin * tiles,
                                                                    rows: buffer.baseAddress!)
                                        }
                                    }
                                }
                                // M_ξ = U_ξ · V_ξ, the GEMMs split over the threads.
                                let parts = min(workers, count)
                                WorkSplit.forEachPart(parts) { part in
                                    for xi in count * part / parts..<count * (part + 1) / parts {
                                        gemm(packed: weights.matrices[xi], n: tiles, b: v + xi * cin * tiles, ldb: tiles,
                                             c: m + xi * cout * tiles, ldc: tiles, threads: 1)
                                    }
                                }
                                // Y = Aᵀ M A (+ bias, + residual, ReLU).
                                WorkSplit.forEachRange(cout, work: 40 * cout * tiles, threads: workers) { range in
                                    for oc in range {
                                        let plane = (b * cout + oc) * oh * ow
                                        geometry.outputTransform(m + oc * tiles, xiStride: cout * tiles, tileRows: rows,
                                                                 bias: bias?[oc] ?? 0,
                                                                 residual: residual == nil ? nil : rp.baseAddress! + plane,
                                                                 relu: activation == .relu, into: out.baseAddress! + plane)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

/// The tile geometry of one Winograd convolution and its two transforms.
private struct WinogradGeometry {
    typealias V16 = SIMD16<Float>
    typealias V8 = SIMD8<Float>
    /// Kernel size (3 or 2), padding, input and output sizes, tiles per row.
    let r: Int, padding: Int, h: Int, w: Int, oh: Int, ow: Int, tw: Int

    var alpha: Int { r + 1 }
    /// Floats per combined input row: padded column `c + padding` is input column `c`; tile `tx` reads padded columns
    /// `2tx … 2tx + α − 1`, and the vector steps read up to 16 past `2tx`.
    var span: Int { 2 * tw + 18 }
    var rowBufferCount: Int { alpha * span }

    /// One input channel's tiles of the tile rows `tileRows`: `v[ξ · xiStride + t]`, `t = (ty − first row) · tw + tx`.
    /// Rows first: the `α` input rows of a tile row (`2ty − padding …`) combine as `Bᵀ d` into `α` padded rows (zero
    /// outside the image), then each tile's `α` padded columns combine as `· B`, eight tiles per step (even and odd
    /// lanes of two 16-float loads).
    func inputTransform(_ x: UnsafePointer<Float>, tileRows: Range<Int>, into v: UnsafeMutablePointer<Float>,
                        xiStride: Int, rows: UnsafeMutablePointer<Float>) {
        let (span, alpha) = (self.span, self.alpha)
        rows.update(repeating: 0, count: alpha * span)
        for ty in tileRows {
            let y0 = 2 * ty - padding
            @inline(__always) func row(_ i: Int) -> UnsafePointer<Float>? { y0 + i >= 0 && y0 + i < h ? x + (y0 + i) * w : nil }
            let t0 = rows + padding, t1 = t0 + span, t2 = t1 + span
            if r == 3 {
                let t3 = t2 + span
                let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
                for c in 0..<w {
                    let a0 = d0?[c] ?? 0, a1 = d1?[c] ?? 0, a2 = d2?[c] ?? 0, a3 = d3?[c] ?? 0
                    t0[c] = a0 - a2
                    t1[c] = a1 + a2
                    t2[c] = a2 - a1
                    t3[c] = a1 - a3
                }
            } else {
                let (d0, d1, d2) = (row(0), row(1), row(2))
                for c in 0..<w {
                    let a0 = d0?[c] ?? 0, a1 = d1?[c] ?? 0, a2 = d2?[c] ?? 0
                    t0[c] = a0 - a1
                    t1[c] = a1
                    t2[c] = a2 - a1
                }
            }
            let out = v + (ty - tileRows.lowerBound) * tw
            for i in 0..<alpha {
                let f = rows + i * span, raw = UnsafeRawPointer(f)
                let o = out + i * alpha * xiStride
                var tx = 0
                while tx + 8 <= tw {
                    let a = raw.loadUnaligned(fromByteOffset: 8 * tx, as: V16.self)
                    let b = raw.loadUnaligned(fromByteOffset: 8 * tx + 8, as: V16.self)
                    let (c0, c1, c2) = (a.evenHalf, a.oddHalf, b.evenHalf)
                    if r == 3 {
                        let c3 = b.oddHalf
                        store(c0 - c2, o + tx)
                        store(c1 + c2, o + xiStride + tx)
                        store(c2 - c1, o + 2 * xiStride + tx)
                        store(c1 - c3, o + 3 * xiStride + tx)
                    } else {
                        store(c0 - c1, o + tx)
                        store(c1, o + xiStride + tx)
                        store(c2 - c1, o + 2 * xiStride + tx)
                    }
                    tx += 8
                }
                while tx < tw {
                    let c0 = f[2 * tx], c1 = f[2 * tx + 1], c2 = f[2 * tx + 2]
                    if r == 3 {
                        let c3 = f[2 * tx + 3]
                        o[tx] = c0 - c2
                        o[xiStride + tx] = c1 + c2
                        o[2 * xiStride + tx] = c2 - c1
                        o[3 * xiStride + tx] = c1 - c3
                    } else {
                        o[tx] = c0 - c1
                        o[xiStride + tx] = c1
                        o[2 * xiStride + tx] = c2 - c1
                    }
                    tx += 1
                }
            }
        }
    }

    @inline(__always) private func store(_ value: V8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: V8.self)
    }

    /// One output channel over the tile rows `tileRows`: tile `t`'s 2×2 block from `m[ξ · xiStride + t]` (`t` counted
    /// from the first of those rows), written where it lies inside the `oh × ow` map, with `+ bias`, `+ residual` and
    /// ReLU (`v > 0 ? v : 0`) in the GEMM epilogue's order; eight tiles of a tile row per step where all their outputs
    /// lie inside the map.
    func outputTransform(_ m: UnsafePointer<Float>, xiStride: Int, tileRows: Range<Int>, bias: Float,
                         residual: UnsafePointer<Float>?, relu: Bool, into out: UnsafeMutablePointer<Float>) {
        let (oh, ow, tw, alpha) = (self.oh, self.ow, self.tw, self.alpha)
        @inline(__always) func finish(_ value: V16, _ offset: Int) {
            var v = value + V16(repeating: bias)
            if let residual { v += UnsafeRawPointer(residual + offset).loadUnaligned(as: V16.self) }
            if relu { v.replace(with: 0, where: .!(v .> 0)) }
            UnsafeMutableRawPointer(out + offset).storeBytes(of: v, as: V16.self)
        }
        @inline(__always) func interleave(_ a: V8, _ b: V8) -> V16 {
            V16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
        }
        @inline(__always) func put(_ value: Float, _ y: Int, _ x: Int) {
            guard y < oh && x < ow else { return }
            var v = value + bias
            if let residual { v += residual[y * ow + x] }
            out[y * ow + x] = relu ? (v > 0 ? v : 0) : v
        }
        /// `Aᵀ M A` of one tile (or eight, lane-wise) from its `α²` values `e(ξ)`.
        @inline(__always) func outputs<T: SIMD>(_ e: (Int) -> T) -> (T, T, T, T) where T.Scalar == Float {
            if alpha == 4 {
                let r00 = e(0) + e(4) + e(8), r01 = e(1) + e(5) + e(9), r02 = e(2) + e(6) + e(10), r03 = e(3) + e(7) + e(11)
                let r10 = e(4) - e(8) - e(12), r11 = e(5) - e(9) - e(13), r12 = e(6) - e(10) - e(14)
                let r13 = e(7) - e(11) - e(15)
                return (r00 + r01 + r02, r01 - r02 - r03, r10 + r11 + r12, r11 - r12 - r13)
            }
            let r00 = e(0) + e(3), r01 = e(1) + e(4), r02 = e(2) + e(5)
            let r10 = e(3) + e(6), r11 = e(4) + e(7), r12 = e(5) + e(8)
            return (r00 + r01, r01 + r02, r10 + r11, r11 + r12)
        }
        for ty in tileRows {
            var tx = 0
            // Vector steps: 8 tiles whose 16 output columns and both rows lie inside the map.
            while tx + 8 <= tw && 2 * tx + 16 <= ow && 2 * ty + 1 < oh {
                let t = (ty - tileRows.lowerBound) * tw + tx
                let (y00, y01, y10, y11) = outputs { xi in UnsafeRawPointer(m + xi * xiStride + t).loadUnaligned(as: V8.self) }
                finish(interleave(y00, y01), 2 * ty * ow + 2 * tx)
                finish(interleave(y10, y11), (2 * ty + 1) * ow + 2 * tx)
                tx += 8
            }
            while tx < tw {
                let t = (ty - tileRows.lowerBound) * tw + tx
                let (y00, y01, y10, y11) = outputs { xi in SIMD2<Float>(repeating: m[xi * xiStride + t]) }
                put(y00[0], 2 * ty, 2 * tx)
                put(y01[0], 2 * ty, 2 * tx + 1)
                put(y10[0], 2 * ty + 1, 2 * tx)
                put(y11[0], 2 * ty + 1, 2 * tx + 1)
                tx += 1
            }
        }
    }
}
