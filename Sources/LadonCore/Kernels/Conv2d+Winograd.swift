// Stride-1 3×3 and 2×2 convolutions by Winograd's minimal filtering (Lavin & Gray, 2016), both on 4×4 input tiles:
// F(2×2, 3×3) does 16 GEMMs per 2×2 output tile instead of 36 multiply-adds' worth, F(3×3, 2×2) 16 per 3×3 tile
// instead of 36; plus input and output transforms.
//
// Both use the points 0, 1, −1, ∞ and so share Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]:
// F(2, 3): G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
// F(3, 2): G = [[1, 0], [½, ½], [½, −½], [0, −1]], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, 0], [0, 1, 1, 1]].
// (F(3, 2) replaced F(2×2, 2×2) on points 0, 1, ∞, which did 9 GEMMs per 2×2 tile: 2.25 per output against 1.78, and
// as many transformed values per output streamed through memory.)
import Foundation

/// The transformed weight matrices of a 3×3 or 2×2 convolution: `U_ξ = (G g Gᵀ)_ξ` for each (output, input) channel
/// pair, `α² = 16` of them, each `[outC × inC]` packed for the GEMM.
package struct WinogradWeights: Sendable {
    /// The kernel size `r` (3 or 2).
    package let kernelSize: Int
    package let matrices: [PackedMatrix]

    /// The input tile's side `α` (4 for both kernel sizes).
    package static let inputTile = 4
    /// The output tile's side `m = α − r + 1` for kernel size `r`: 2 for 3×3 kernels, 3 for 2×2 ones.
    package static func outputTile(kernelSize r: Int) -> Int { inputTile - r + 1 }

    /// Transforms `weight` (`[outC, inC, r, r]`, `r` = 3 or 2); each element is computed in Double and rounded once.
    package init(_ weight: Tensor) {
        precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3] && (2...3).contains(weight.shape[2]),
                     "winograd: 3×3 or 2×2 weights only, got \(weight.shape)")
        let (cout, cin, r) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let alpha = Self.inputTile
        kernelSize = r
        let pairs = cout * cin
        /// G times one column (or row) of `r` values (`v2` unused when `r` = 2), into `out[0 ..< α]`.
        @inline(__always) func applyG(_ v0: Double, _ v1: Double, _ v2: Double, into out: UnsafeMutablePointer<Double>) {
            if r == 3 {
                (out[0], out[1], out[2], out[3]) = (v0, 0.5 * (v0 + v1 + v2), 0.5 * (v0 - v1 + v2), v2)
            } else {
                (out[0], out[1], out[2], out[3]) = (v0, 0.5 * (v0 + v1), 0.5 * (v0 - v1), -v1)
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
    /// least 64 channels in and out, and at least 128 output tiles (2×2 for 3×3 kernels, 3×3 for 2×2 ones). Below
    /// that the GEMMs' columns are too few for the transforms to pay (ResNet's layer4 at 13×13: 49 tiles). At 416²
    /// this is ResNet-50's stride-1 3×3 convolutions of layer2 and layer3, the FPN's 3×3 ones and the decoder's
    /// 512→256 and 256→256 2×2 ones (`decoder.0`, 24 channels in, stays on im2col).
    package static func usesWinograd(_ p: Conv2dParameters, height: Int, width: Int) -> Bool {
        let shapeFits = (p.kernelHeight == 3 && p.kernelWidth == 3 && p.paddingHeight == 1 && p.paddingWidth == 1)
            || (p.kernelHeight == 2 && p.kernelWidth == 2 && p.paddingHeight <= 1 && p.paddingHeight == p.paddingWidth)
        let (oh, ow) = (p.outputHeight(height), p.outputWidth(width))
        let m = WinogradWeights.outputTile(kernelSize: p.kernelHeight)  // used only once `shapeFits` holds
        return shapeFits && p.strideHeight == 1 && p.strideWidth == 1 && p.dilationHeight == 1 && p.dilationWidth == 1
            && p.groups == 1 && p.inChannels >= 64 && p.outChannels >= 64 && oh > 0 && ow > 0
            && tileCount(oh, m) * tileCount(ow, m) >= 128
    }

    /// Floats from one of the 16 `ξ` planes of `V` (or `M`) to the next, for planes of `floats` values: whole 64-byte
    /// lines, an odd number of them, so that the 16 planes start in 16 different L1 sets. The transforms write (read)
    /// one value of every plane per tile; planes a multiple of 4 KB apart (`cin · tiles` with 16 | `tiles`, e.g. 256
    /// channels of a 208-tile chunk of the detection head's 104 × 104 maps) put all 16 streams in one set of 8 ways.
    static func winogradPlaneStride(_ floats: Int) -> Int {
        guard winogradPlanePadding else { return floats }
        return ((floats + 15) / 16 | 1) * 16
    }

    /// Experiments only: `LADON_WINOGRAD_PAD=0` packs the planes back to back (``winogradPlaneStride(_:)``).
    static let winogradPlanePadding = ProcessInfo.processInfo.environment["LADON_WINOGRAD_PAD"] != "0"

    /// Tiles of side `m` along an output side of `size`: the last one may be partial.
    private static func tileCount(_ size: Int, _ m: Int) -> Int { (size + m - 1) / m }

    /// A stride-1 convolution by F(m×m, r×r) (`r` = `weights.kernelSize`, `m` = 2 for `r` = 3 and 3 for `r` = 2, padding
    /// `padding` on every side): the output is cut into m×m tiles, each reading a 4×4 input tile (zero outside the
    /// image) transformed to `V = Bᵀ d B`; the 16 products `M_ξ = U_ξ · V_ξ` are GEMMs over the tiles
    /// (`[outC × inC] · [inC × tiles]`, split over the threads by ξ); each tile's m×m output is `Aᵀ M A`, then bias,
    /// residual and ReLU. The tiles go in chunks of whole tile rows whose `V` and `M` fit 8 MB (a detection map of
    /// 200×267 would otherwise need 440 MB of them). Not bit-identical to the direct sums (its rounding differs: within
    /// 1e-5 of the output scale on the ResNet and decoder layers; the full-size parity check passes).
    package static func conv2dWinograd(_ x: Tensor, weights: WinogradWeights, padding: Int, bias: [Float]?,
                                       activation: Activation, residual: Tensor?, threads: Int? = nil) -> Tensor {
        let (n, cin, h, w) = (x.n, x.c, x.h, x.w)
        let r = weights.kernelSize, m = WinogradWeights.outputTile(kernelSize: r)
        let count = WinogradWeights.inputTile * WinogradWeights.inputTile
        let cout = weights.matrices[0].rows
        precondition(weights.matrices[0].columns == cin, "winograd: input has \(cin) channels, weights \(weights.matrices[0].columns)")
        precondition(padding >= 0 && padding < r, "winograd: padding \(padding) with a \(r)×\(r) kernel")
        let (oh, ow) = (h + 2 * padding - r + 1, w + 2 * padding - r + 1)
        if let res = residual { precondition(res.shape == [n, cout, oh, ow], "winograd: residual \(res.shape)") }
        let workers = resolvedThreads(threads)
        guard n > 0, oh > 0, ow > 0 else { return Tensor(shape: [n, cout, max(oh, 0), max(ow, 0)]) }
        let (th, tw) = (tileCount(oh, m), tileCount(ow, m))
        // Tile rows per chunk: V and M of a chunk (16 · (inC + outC) floats per tile) within 8 MB, at least one row.
        let chunkRows = max(1, min(th, (1 << 21) / (count * (cin + cout)) / tw))
        let geometry = WinogradGeometry(m: m, padding: padding, h: h, w: w, oh: oh, ow: ow, tw: tw)
        return Tensor(shape: [n, cout, oh, ow], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                (residual ?? Tensor(shape: [0])).withUnsafeBufferPointer { rp in
                    let most = chunkRows * tw
                    let scratchCount = count * (winogradPlaneStride(cin * most) + winogradPlaneStride(cout * most))
                    KernelScratch.shared.withBuffer(count: scratchCount) { scratch in
                        for b in 0..<n {
                            for ty0 in stride(from: 0, to: th, by: chunkRows) {
                                let rows = ty0..<min(th, ty0 + chunkRows), tiles = rows.count * tw
                                let (vStride, mStride) = (winogradPlaneStride(cin * tiles), winogradPlaneStride(cout * tiles))
                                let v = scratch, products = scratch + count * vStride
                                // V_ξ[ic][t], channel by channel.
                                WorkSplit.forEachRange(cin, work: 40 * cin * tiles, threads: workers) { range in
                                    withUnsafeTemporaryAllocation(of: Float.self, capacity: geometry.rowBufferCount) { buffer in
                                        for ic in range {
                                            geometry.inputTransform(xp.baseAddress! + (b * cin + ic) * h * w, tileRows: rows,
                                                                    into: v + ic * tiles, xiStride: vStride,
                                                                    rows: buffer.baseAddress!)
                                        }
                                    }
                                }
                                // M_ξ = U_ξ · V_ξ, one GEMM at a time per thread, taken as threads come free.
                                WorkSplit.forEachChunk(count, chunk: 1, parts: workers) { range in
                                    for xi in range {
                                        gemm(packed: weights.matrices[xi], n: tiles, b: v + xi * vStride, ldb: tiles,
                                             c: products + xi * mStride, ldc: tiles, threads: 1)
                                    }
                                }
                                // Y = Aᵀ M A (+ bias, + residual, ReLU).
                                WorkSplit.forEachRange(cout, work: 40 * cout * tiles, threads: workers) { range in
                                    for oc in range {
                                        let plane = (b * cout + oc) * oh * ow
                                        geometry.outputTransform(products + oc * tiles, xiStride: mStride, tileRows: rows,
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

/// The tile geometry of one Winograd convolution (4×4 input tiles, m×m output tiles) and its two transforms.
private struct WinogradGeometry {
    typealias V16 = SIMD16<Float>
    typealias V8 = SIMD8<Float>
    /// Output tile side (2 or 3), padding, input and output sizes, tiles per row.
    let m: Int, padding: Int, h: Int, w: Int, oh: Int, ow: Int, tw: Int

    var alpha: Int { WinogradWeights.inputTile }
    /// Floats per combined input row: padded column `c + padding` is input column `c`; tile `tx` reads padded columns
    /// `m·tx … m·tx + 3`, and a vector step of 8 tiles reads the 24 (m = 2) or 25 (m = 3) floats from `m·tx` on.
    var span: Int { m * tw + 32 }
    var rowBufferCount: Int { alpha * span }

    /// One input channel's tiles of the tile rows `tileRows`: `v[ξ · xiStride + t]`, `t = (ty − first row) · tw + tx`.
    /// Rows first: the 4 input rows of a tile row (`m·ty − padding …`) combine as `Bᵀ d` into 4 padded rows (zero
    /// outside the image), then each tile's 4 padded columns combine as `· B`, eight tiles per step (for m = 2 the even
    /// and odd lanes of two 16-float loads, for m = 3 every third lane of three 8-float loads).
    func inputTransform(_ x: UnsafePointer<Float>, tileRows: Range<Int>, into v: UnsafeMutablePointer<Float>,
                        xiStride: Int, rows: UnsafeMutablePointer<Float>) {
        let (span, alpha, m) = (self.span, self.alpha, self.m)
        rows.update(repeating: 0, count: alpha * span)
        for ty in tileRows {
            let y0 = m * ty - padding
            @inline(__always) func row(_ i: Int) -> UnsafePointer<Float>? { y0 + i >= 0 && y0 + i < h ? x + (y0 + i) * w : nil }
            let t0 = rows + padding, t1 = t0 + span, t2 = t1 + span, t3 = t2 + span
            let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
            for c in 0..<w {
                let a0 = d0?[c] ?? 0, a1 = d1?[c] ?? 0, a2 = d2?[c] ?? 0, a3 = d3?[c] ?? 0
                t0[c] = a0 - a2
                t1[c] = a1 + a2
                t2[c] = a2 - a1
                t3[c] = a1 - a3
            }
            let out = v + (ty - tileRows.lowerBound) * tw
            for i in 0..<alpha {
                let f = rows + i * span, raw = UnsafeRawPointer(f)
                let o = out + i * alpha * xiStride
                @inline(__always) func columns(_ c0: V8, _ c1: V8, _ c2: V8, _ c3: V8, _ tx: Int) {
                    store(c0 - c2, o + tx)
                    store(c1 + c2, o + xiStride + tx)
                    store(c2 - c1, o + 2 * xiStride + tx)
                    store(c1 - c3, o + 3 * xiStride + tx)
                }
                var tx = 0
                if m == 2 {
                    while tx + 8 <= tw {
                        let a = raw.loadUnaligned(fromByteOffset: 8 * tx, as: V16.self)
                        let b = raw.loadUnaligned(fromByteOffset: 8 * tx + 8, as: V16.self)
                        columns(a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf, tx)
                        tx += 8
                    }
                } else {
                    while tx + 8 <= tw {
                        let a = raw.loadUnaligned(fromByteOffset: 12 * tx, as: V8.self)
                        let b = raw.loadUnaligned(fromByteOffset: 12 * tx + 32, as: V8.self)
                        let c = raw.loadUnaligned(fromByteOffset: 12 * tx + 64, as: V8.self)
                        let d = f[3 * tx + 24]
                        columns(V8(a[0], a[3], a[6], b[1], b[4], b[7], c[2], c[5]),
                                V8(a[1], a[4], a[7], b[2], b[5], c[0], c[3], c[6]),
                                V8(a[2], a[5], b[0], b[3], b[6], c[1], c[4], c[7]),
                                V8(a[3], a[6], b[1], b[4], b[7], c[2], c[5], d), tx)
                        tx += 8
                    }
                }
                while tx < tw {
                    let c0 = f[m * tx], c1 = f[m * tx + 1], c2 = f[m * tx + 2], c3 = f[m * tx + 3]
                    o[tx] = c0 - c2
                    o[xiStride + tx] = c1 + c2
                    o[2 * xiStride + tx] = c2 - c1
                    o[3 * xiStride + tx] = c1 - c3
                    tx += 1
                }
            }
        }
    }

    @inline(__always) private func store(_ value: V8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: V8.self)
    }

    /// One output channel over the tile rows `tileRows`: tile `t`'s m×m block from `products[ξ · xiStride + t]` (`t`
    /// counted from the first of those rows), written where it lies inside the `oh × ow` map, with `+ bias`,
    /// `+ residual` and ReLU (`v > 0 ? v : 0`) in the GEMM epilogue's order; eight tiles of a tile row per step where
    /// all their outputs lie inside the map.
    func outputTransform(_ products: UnsafePointer<Float>, xiStride: Int, tileRows: Range<Int>, bias: Float,
                         residual: UnsafePointer<Float>?, relu: Bool, into out: UnsafeMutablePointer<Float>) {
        let (oh, ow, tw, m) = (self.oh, self.ow, self.tw, self.m)
        // (Two concrete copies: a generic one was not specialised, and the loads went through a generic thunk.)
        @inline(__always) func finish(_ value: V16, _ offset: Int) {
            var v = value + V16(repeating: bias)
            if let residual { v += UnsafeRawPointer(residual + offset).loadUnaligned(as: V16.self) }
            if relu { v.replace(with: 0, where: .!(v .> 0)) }
            UnsafeMutableRawPointer(out + offset).storeBytes(of: v, as: V16.self)
        }
        @inline(__always) func finish(_ value: V8, _ offset: Int) {
            var v = value + V8(repeating: bias)
            if let residual { v += UnsafeRawPointer(residual + offset).loadUnaligned(as: V8.self) }
            if relu { v.replace(with: 0, where: .!(v .> 0)) }
            UnsafeMutableRawPointer(out + offset).storeBytes(of: v, as: V8.self)
        }
        @inline(__always) func put(_ value: Float, _ y: Int, _ x: Int) {
            guard y < oh && x < ow else { return }
            var v = value + bias
            if let residual { v += residual[y * ow + x] }
            out[y * ow + x] = relu ? (v > 0 ? v : 0) : v
        }
        /// `Aᵀ M A` of one F(2, 3) tile (or eight, lane-wise) from its 16 values `e(ξ)`: rows of the 2×2 output.
        @inline(__always) func outputs2<T: SIMD>(_ e: (Int) -> T) -> (T, T, T, T) where T.Scalar == Float {
            let r00 = e(0) + e(4) + e(8), r01 = e(1) + e(5) + e(9), r02 = e(2) + e(6) + e(10), r03 = e(3) + e(7) + e(11)
            let r10 = e(4) - e(8) - e(12), r11 = e(5) - e(9) - e(13), r12 = e(6) - e(10) - e(14)
            let r13 = e(7) - e(11) - e(15)
            return (r00 + r01 + r02, r01 - r02 - r03, r10 + r11 + r12, r11 - r12 - r13)
        }
        /// `Aᵀ M A` of one F(3, 2) tile (or eight, lane-wise) from its 16 values `e(ξ)`: the 3×3 output, row by row.
        @inline(__always) func outputs3<T: SIMD>(_ e: (Int) -> T) -> ((T, T, T), (T, T, T), (T, T, T)) where T.Scalar == Float {
            // Aᵀ M: rows [1, 1, 1, 0], [0, 1, −1, 0] and [0, 1, 1, 1] over M's rows; then the same over its columns.
            let s0 = e(4) + e(8), s1 = e(5) + e(9), s2 = e(6) + e(10), s3 = e(7) + e(11)
            let r00 = e(0) + s0, r01 = e(1) + s1, r02 = e(2) + s2
            let r10 = e(4) - e(8), r11 = e(5) - e(9), r12 = e(6) - e(10), r13 = e(7) - e(11)
            let r21 = s1 + e(13), r22 = s2 + e(14), r23 = s3 + e(15), r20 = s0 + e(12)
            @inline(__always) func columns(_ a: T, _ b: T, _ c: T, _ d: T) -> (T, T, T) { (a + b + c, b - c, b + c + d) }
            return (columns(r00, r01, r02, s3 + e(3)), columns(r10, r11, r12, r13), columns(r20, r21, r22, r23))
        }
        for ty in tileRows {
            var tx = 0
            let first = (ty - tileRows.lowerBound) * tw
            @inline(__always) func load(_ xi: Int, _ t: Int) -> V8 {
                UnsafeRawPointer(products + xi * xiStride + t).loadUnaligned(as: V8.self)
            }
            if m == 2 {
                // Vector steps: 8 tiles whose 16 output columns and both rows lie inside the map.
                while tx + 8 <= tw && 2 * tx + 16 <= ow && 2 * ty + 1 < oh {
                    let (y00, y01, y10, y11) = outputs2 { xi in load(xi, first + tx) }
                    finish(interleave(y00, y01), 2 * ty * ow + 2 * tx)
                    finish(interleave(y10, y11), (2 * ty + 1) * ow + 2 * tx)
                    tx += 8
                }
                while tx < tw {
                    let (y00, y01, y10, y11) = outputs2 { xi in SIMD2<Float>(repeating: products[xi * xiStride + first + tx]) }
                    put(y00[0], 2 * ty, 2 * tx)
                    put(y01[0], 2 * ty, 2 * tx + 1)
                    put(y10[0], 2 * ty + 1, 2 * tx)
                    put(y11[0], 2 * ty + 1, 2 * tx + 1)
                    tx += 1
                }
            } else {
                // Vector steps: 8 tiles whose 24 output columns and three rows lie inside the map.
                while tx + 8 <= tw && 3 * tx + 24 <= ow && 3 * ty + 2 < oh {
                    let y = outputs3 { xi in load(xi, first + tx) }
                    @inline(__always) func row(_ r: (V8, V8, V8), _ offset: Int) {
                        let (a, b, c) = r
                        finish(V8(a[0], b[0], c[0], a[1], b[1], c[1], a[2], b[2]), offset)
                        finish(V8(c[2], a[3], b[3], c[3], a[4], b[4], c[4], a[5]), offset + 8)
                        finish(V8(b[5], c[5], a[6], b[6], c[6], a[7], b[7], c[7]), offset + 16)
                    }
                    row(y.0, 3 * ty * ow + 3 * tx)
                    row(y.1, (3 * ty + 1) * ow + 3 * tx)
                    row(y.2, (3 * ty + 2) * ow + 3 * tx)
                    tx += 8
                }
                while tx < tw {
                    let y = outputs3 { xi in SIMD2<Float>(repeating: products[xi * xiStride + first + tx]) }
                    @inline(__always) func row(_ r: (SIMD2<Float>, SIMD2<Float>, SIMD2<Float>), _ i: Int) {
                        put(r.0[0], 3 * ty + i, 3 * tx)
                        put(r.1[0], 3 * ty + i, 3 * tx + 1)
                        put(r.2[0], 3 * ty + i, 3 * tx + 2)
                    }
                    row(y.0, 0)
                    row(y.1, 1)
                    row(y.2, 2)
                    tx += 1
                }
            }
        }
    }

    @inline(__always) private func interleave(_ a: V8, _ b: V8) -> V16 {
        V16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
    }
}
