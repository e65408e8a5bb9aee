// 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, 2016): 16 GEMMs of
// 1/2.25 the multiply-adds of im2col, plus input and output transforms.

/// The 16 transformed weight matrices of a 3×3 convolution, `U_ξ = (G g Gᵀ)_ξ` per (output, input) channel pair,
/// each `[outC × inC]` packed for the GEMM. `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
package struct WinogradWeights: Sendable {
    package let matrices: [PackedMatrix]

    /// Transforms `weight` (`[outC, inC, 3, 3]`); each element is computed in Double and rounded once.
    package init(_ weight: Tensor) {
        precondition(weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3, "winograd: 3×3 weights only")
        let (cout, cin) = (weight.shape[0], weight.shape[1])
        var transformed = [[Float]](repeating: [Float](repeating: 0, count: cout * cin), count: 16)
        // Rows of G: (1, 0, 0), (½, ½, ½), (½, −½, ½), (0, 0, 1).
        @inline(__always) func gRows(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double, Double) {
            (a, 0.5 * (a + b + c), 0.5 * (a - b + c), c)
        }
        weight.withUnsafeBufferPointer { wp in
            for k in 0..<cout * cin {
                let g = wp.baseAddress! + k * 9
                // G g: column j of g through G.
                var gg = [(Double, Double, Double, Double)]()
                gg.reserveCapacity(3)
                for j in 0..<3 { gg.append(gRows(Double(g[j]), Double(g[3 + j]), Double(g[6 + j]))) }
                // (G g) Gᵀ: row i of G g through G.
                let rows = [(gg[0].0, gg[1].0, gg[2].0), (gg[0].1, gg[1].1, gg[2].1), (gg[0].2, gg[1].2, gg[2].2),
                            (gg[0].3, gg[1].3, gg[2].3)]
                for (i, r) in rows.enumerated() {
                    let u = gRows(r.0, r.1, r.2)
                    transformed[i * 4][k] = Float(u.0)
                    transformed[i * 4 + 1][k] = Float(u.1)
                    transformed[i * 4 + 2][k] = Float(u.2)
                    transformed[i * 4 + 3][k] = Float(u.3)
                }
            }
        }
        matrices = transformed.map { m in
            m.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: cout, columns: cin, lda: cin) }
        }
    }
}

extension Kernels {
    /// Whether a convolution runs by ``conv2dWinograd(_:weights:bias:activation:residual:threads:)`` on an input of
    /// `height × width`: 3×3, stride 1, padding 1, no dilation, one group, at least 64 channels in and out, and at
    /// least 128 output tiles (2×2 each). Below that the GEMMs' columns are too few for the transforms to pay
    /// (ResNet's layer4 at 13×13: 49 tiles). At 416² this is ResNet-50's stride-1 3×3 convolutions of layer2 and
    /// layer3 (GEMMPerfTests/conv2dTimings: 2.0–2.6× faster than im2col on Zen 3).
    package static func usesWinograd(_ p: Conv2dParameters, height: Int, width: Int) -> Bool {
        p.kernelHeight == 3 && p.kernelWidth == 3 && p.strideHeight == 1 && p.strideWidth == 1
            && p.paddingHeight == 1 && p.paddingWidth == 1 && p.dilationHeight == 1 && p.dilationWidth == 1
            && p.groups == 1 && p.inChannels >= 64 && p.outChannels >= 64
            && ((height + 1) / 2) * ((width + 1) / 2) >= 128
    }

    /// A 3×3, stride-1, padding-1 convolution by F(2×2, 3×3): the input is cut into 4×4 tiles two pixels apart
    /// (zero outside the image), each transformed to `V = Bᵀ d B`; the 16 products `M_ξ = U_ξ · V_ξ` are GEMMs over
    /// the tiles (`[outC × inC] · [inC × tiles]`, split over the threads by ξ); each tile's 2×2 output is `Aᵀ M A`,
    /// then bias, residual and ReLU. The tiles go in chunks of whole tile rows whose `V` and `M` fit 8 MB (a detection
    /// map of 200×267 would otherwise need 440 MB of them). `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`,
    /// `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`. Not bit-identical to the direct sums (its rounding differs, within
    /// 1e-5 of the output scale on ResNet layers; the full-size parity check passes).
    package static func conv2dWinograd(_ x: Tensor, weights: WinogradWeights, bias: [Float]?, activation: Activation,
                                       residual: Tensor?, threads: Int? = nil) -> Tensor {
        let (n, cin, h, w) = (x.n, x.c, x.h, x.w)
        let cout = weights.matrices[0].rows
        precondition(weights.matrices[0].columns == cin, "winograd: input has \(cin) channels, weights \(weights.matrices[0].columns)")
        if let r = residual { precondition(r.shape == [n, cout, h, w], "winograd: residual \(r.shape)") }
        let (th, tw) = ((h + 1) / 2, (w + 1) / 2)
        let workers = resolvedThreads(threads)
        guard n > 0, h > 0, w > 0 else { return Tensor(shape: [n, cout, h, w]) }
        // Tile rows per chunk: V and M of a chunk (16 · (inC + outC) floats per tile) within 8 MB, at least one row.
        let chunkRows = max(1, min(th, (1 << 21) / (16 * (cin + cout)) / tw))
        return Tensor(shape: [n, cout, h, w], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                (residual ?? Tensor(shape: [0])).withUnsafeBufferPointer { rp in
                    KernelScratch.shared.withBuffer(count: 16 * (cin + cout) * chunkRows * tw) { scratch in
                        for b in 0..<n {
                            for ty0 in stride(from: 0, to: th, by: chunkRows) {
                                let rows = min(chunkRows, th - ty0), tiles = rows * tw
                                let v = scratch, m = scratch + 16 * cin * tiles
                                // V_ξ[ic][t], channel by channel.
                                WorkSplit.forEachRange(cin, work: 40 * cin * tiles, threads: workers) { range in
                                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * (2 * tw + 18)) { buffer in
                                        for ic in range {
                                            winogradInputTransform(xp.baseAddress! + (b * cin + ic) * h * w, h: h, w: w,
                                                                   tileRows: ty0..<ty0 + rows, tw: tw, into: v + ic * tiles,
                                                                   xiStride: cin * tiles, rows: buffer.baseAddress!)
                                        }
                                    }
                                }
                                // M_ξ = U_ξ · V_ξ, the 16 GEMMs split over the threads.
                                let parts = min(workers, 16)
                                WorkSplit.forEachPart(parts) { part in
                                    for xi in 16 * part / parts..<16 * (part + 1) / parts {
                                        gemm(packed: weights.matrices[xi], n: tiles, b: v + xi * cin * tiles, ldb: tiles,
                                             c: m + xi * cout * tiles, ldc: tiles, threads: 1)
                                    }
                                }
                                // Y = Aᵀ M A (+ bias, + residual, ReLU).
                                WorkSplit.forEachRange(cout, work: 40 * cout * tiles, threads: workers) { range in
                                    for oc in range {
                                        let plane = (b * cout + oc) * h * w
                                        winogradOutputTransform(m + oc * tiles, xiStride: cout * tiles, tileRows: ty0..<ty0 + rows,
                                                                tw: tw, h: h, w: w, bias: bias?[oc] ?? 0,
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

    /// One channel's tiles of the tile rows `tileRows`: `into[ξ · xiStride + t]` for tile `t = (ty − first row) · tw + tx`. Rows first: the four input rows of
    /// a tile row combine as `Bᵀ d` into four padded rows (`rows`, `2·tw + 18` floats each; padded column `c + 1` is
    /// input column `c`, zeros outside the image), then tile `tx` combines padded columns `2tx … 2tx + 3` as `· B`,
    /// eight tiles per step (even and odd lanes of two 16-float loads).
    private static func winogradInputTransform(_ x: UnsafePointer<Float>, h: Int, w: Int, tileRows: Range<Int>, tw: Int,
                                               into v: UnsafeMutablePointer<Float>, xiStride: Int,
                                               rows: UnsafeMutablePointer<Float>) {
        typealias V16 = SIMD16<Float>
        typealias V8 = SIMD8<Float>
        let span = 2 * tw + 18
        rows.update(repeating: 0, count: 4 * span)
        for ty in tileRows {
            let y0 = 2 * ty - 1
            @inline(__always) func row(_ i: Int) -> UnsafePointer<Float>? { y0 + i >= 0 && y0 + i < h ? x + (y0 + i) * w : nil }
            let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
            let t0 = rows + 1, t1 = rows + span + 1, t2 = rows + 2 * span + 1, t3 = rows + 3 * span + 1
            for c in 0..<w {
                let a0 = d0?[c] ?? 0, a1 = d1?[c] ?? 0, a2 = d2?[c] ?? 0, a3 = d3?[c] ?? 0
                t0[c] = a0 - a2
                t1[c] = a1 + a2
                t2[c] = a2 - a1
                t3[c] = a1 - a3
            }
            let out = v + (ty - tileRows.lowerBound) * tw
            for i in 0..<4 {
                let t = UnsafeRawPointer(rows + i * span)
                let o0 = out + (i * 4) * xiStride, o1 = o0 + xiStride, o2 = o1 + xiStride, o3 = o2 + xiStride
                var tx = 0
                while tx + 8 <= tw {
                    let a = t.loadUnaligned(fromByteOffset: 8 * tx, as: V16.self)
                    let b = t.loadUnaligned(fromByteOffset: 8 * tx + 8, as: V16.self)
                    let (c0, c1, c2, c3) = (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                    UnsafeMutableRawPointer(o0 + tx).storeBytes(of: c0 - c2, as: V8.self)
                    UnsafeMutableRawPointer(o1 + tx).storeBytes(of: c1 + c2, as: V8.self)
                    UnsafeMutableRawPointer(o2 + tx).storeBytes(of: c2 - c1, as: V8.self)
                    UnsafeMutableRawPointer(o3 + tx).storeBytes(of: c1 - c3, as: V8.self)
                    tx += 8
                }
                let f = rows + i * span
                while tx < tw {
                    let c0 = f[2 * tx], c1 = f[2 * tx + 1], c2 = f[2 * tx + 2], c3 = f[2 * tx + 3]
                    o0[tx] = c0 - c2
                    o1[tx] = c1 + c2
                    o2[tx] = c2 - c1
                    o3[tx] = c1 - c3
                    tx += 1
                }
            }
        }
    }

    /// One output channel over the tile rows `tileRows`: tile `t`'s 2×2 block from `m[ξ · xiStride + t]` (`t` counted from
    /// the first of those rows), written where it lies inside the
    /// `h × w` map, with `+ bias`, `+ residual` and ReLU (`v > 0 ? v : 0`) in the GEMM epilogue's order; eight
    /// tiles of a tile row per step where all their outputs lie inside the map.
    private static func winogradOutputTransform(_ m: UnsafePointer<Float>, xiStride: Int, tileRows: Range<Int>, tw: Int, h: Int,
                                                w: Int, bias: Float, residual: UnsafePointer<Float>?, relu: Bool,
                                                into out: UnsafeMutablePointer<Float>) {
        typealias V8 = SIMD8<Float>
        typealias V16 = SIMD16<Float>
        @inline(__always) func finish(_ value: V16, _ offset: Int) {
            var v = value + V16(repeating: bias)
            if let residual { v += UnsafeRawPointer(residual + offset).loadUnaligned(as: V16.self) }
            if relu { v.replace(with: 0, where: .!(v .> 0)) }
            UnsafeMutableRawPointer(out + offset).storeBytes(of: v, as: V16.self)
        }
        @inline(__always) func interleave(_ a: V8, _ b: V8) -> V16 {
            V16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
        }
        @inline(__always) func store(_ value: Float, _ y: Int, _ x: Int) {
            guard y < h && x < w else { return }
            var v = value + bias
            if let residual { v += residual[y * w + x] }
            out[y * w + x] = relu ? (v > 0 ? v : 0) : v
        }
        for ty in tileRows {
            var tx = 0
            // Vector steps: 8 tiles whose 16 output columns and both rows lie inside the map.
            while tx + 8 <= tw && 2 * tx + 16 <= w && 2 * ty + 1 < h {
                let t = (ty - tileRows.lowerBound) * tw + tx
                @inline(__always) func e(_ xi: Int) -> V8 { UnsafeRawPointer(m + xi * xiStride + t).loadUnaligned(as: V8.self) }
                let r00 = e(0) + e(4) + e(8), r01 = e(1) + e(5) + e(9), r02 = e(2) + e(6) + e(10), r03 = e(3) + e(7) + e(11)
                let r10 = e(4) - e(8) - e(12), r11 = e(5) - e(9) - e(13), r12 = e(6) - e(10) - e(14)
                let r13 = e(7) - e(11) - e(15)
                finish(interleave(r00 + r01 + r02, r01 - r02 - r03), 2 * ty * w + 2 * tx)
                finish(interleave(r10 + r11 + r12, r11 - r12 - r13), (2 * ty + 1) * w + 2 * tx)
                tx += 8
            }
            while tx < tw {
                let t = (ty - tileRows.lowerBound) * tw + tx
                @inline(__always) func e(_ xi: Int) -> Float { m[xi * xiStride + t] }
                // Aᵀ M: two rows of four.
                let r00 = e(0) + e(4) + e(8), r01 = e(1) + e(5) + e(9), r02 = e(2) + e(6) + e(10), r03 = e(3) + e(7) + e(11)
                let r10 = e(4) - e(8) - e(12), r11 = e(5) - e(9) - e(13), r12 = e(6) - e(10) - e(14)
                let r13 = e(7) - e(11) - e(15)
                // (Aᵀ M) A.
                store(r00 + r01 + r02, 2 * ty, 2 * tx)
                store(r01 - r02 - r03, 2 * ty, 2 * tx + 1)
                store(r10 + r11 + r12, 2 * ty + 1, 2 * tx)
                store(r11 - r12 - r13, 2 * ty + 1, 2 * tx + 1)
                tx += 1
            }
        }
    }
}
