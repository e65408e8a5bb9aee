// Stride-1 3×3 and 2×2 convolutions by Winograd's minimal filtering (Lavin & Gray, 2016), both on 4×4 input tiles:
// F(2×2, 3×3) does 16 GEMMs per 2×2 output tile instead of 36 multiply-adds' worth, F(3×3, 2×2) 16 per 3×3 tile
// instead of 36; plus input and output transforms.
//
// Both use the points 0, 1, −1, ∞ and so share Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]:
// F(2, 3): G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
// F(3, 2): G = [[1, 0], [½, ½], [½, −½], [0, −1]], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, 0], [0, 1, 1, 1]].
// (F(3, 2) replaced F(2×2, 2×2) on points 0, 1, ∞, which did 9 GEMMs per 2×2 tile: 2.25 per output against 1.78, and
// as many transformed values per output streamed through memory.)
import CLadonKernels
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
        // `transformed[ξ · pairs + k]`: matrix ξ, element k = oc · inC + ic; eight pairs per step, split over the threads.
        let transformed = [Float](unsafeUninitializedCapacity: alpha * alpha * pairs) { dst, initialized in
            weight.withUnsafeBufferPointer { wp in
                let steps = (pairs + 7) / 8
                WorkSplit.forEachRange(steps, work: 64 * pairs, minimumWork: 1 << 16) { range in
                    for step in range {
                        Self.transform(wp.baseAddress!, r: r, pairs: 8 * step..<min(pairs, 8 * step + 8), of: pairs,
                                       into: dst.baseAddress!)
                    }
                }
            }
            initialized = alpha * alpha * pairs
        }
        matrices = transformed.withUnsafeBufferPointer { t in
            (0..<alpha * alpha).map { xi in PackedMatrix(t.baseAddress! + xi * pairs, rows: cout, columns: cin, lda: cin) }
        }
    }

    /// `(G g Gᵀ)_ξ` of up to eight (output, input) channel pairs `lanes` (their `r × r` weights at `g + k · r²`), one
    /// pair per `Double` lane, each element rounded once to `Float` into `dst[ξ · pairs + k]`: `G` times each column of
    /// `g`, then `G` times each row of that (for `r` = 3 `G v = (v₀, ½(v₀ + v₁ + v₂), ½(v₀ − v₁ + v₂), v₂)`, for `r` = 2
    /// `(v₀, ½(v₀ + v₁), ½(v₀ − v₁), −v₁)`), the same operations in every lane as for one pair.
    private static func transform(_ g: UnsafePointer<Float>, r: Int, pairs lanes: Range<Int>, of pairs: Int,
                                  into dst: UnsafeMutablePointer<Float>) {
        typealias D = SIMD8<Double>
        @inline(__always) func applyG(_ v0: D, _ v1: D, _ v2: D) -> (D, D, D, D) {
            r == 3 ? (v0, 0.5 * (v0 + v1 + v2), 0.5 * (v0 - v1 + v2), v2) : (v0, 0.5 * (v0 + v1), 0.5 * (v0 - v1), -v1)
        }
        /// Element (row, column) of every lane's `g`; zero for rows past `r` and for lanes past the pairs.
        @inline(__always) func at(_ row: Int, _ column: Int) -> D {
            var v = D(repeating: 0)
            guard row < r else { return v }
            for (lane, k) in lanes.enumerated() { v[lane] = Double(g[k * r * r + row * r + column]) }
            return v
        }
        // (G g)[i][j] for the columns j < r: `gg.j` = G times column j.
        let zero = (D(repeating: 0), D(repeating: 0), D(repeating: 0), D(repeating: 0))
        let gg0 = applyG(at(0, 0), at(1, 0), at(2, 0)), gg1 = applyG(at(0, 1), at(1, 1), at(2, 1))
        let gg2 = r == 3 ? applyG(at(0, 2), at(1, 2), at(2, 2)) : zero
        for i in 0..<4 {
            @inline(__always) func row(_ gg: (D, D, D, D)) -> D { i == 0 ? gg.0 : i == 1 ? gg.1 : i == 2 ? gg.2 : gg.3 }
            @inline(__always) func store(_ value: D, _ j: Int) {
                let rounded = SIMD8<Float>(value), plane = dst + (i * 4 + j) * pairs
                for (lane, k) in lanes.enumerated() { plane[k] = rounded[lane] }
            }
            let u = applyG(row(gg0), row(gg1), row(gg2))
            store(u.0, 0)
            store(u.1, 1)
            store(u.2, 2)
            store(u.3, 3)
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

    /// Tile rows per chunk of ``conv2dWinograd(_:weights:padding:bias:activation:residual:threads:)``: as many as keep
    /// the chunk's `V` and `M` (16 · (inC + outC) floats per tile) within 8 MB, at least one, at most `tileRows`.
    static func winogradChunkRows(tileRows: Int, tilesPerRow: Int, inChannels: Int, outChannels: Int) -> Int {
        let count = WinogradWeights.inputTile * WinogradWeights.inputTile
        return max(1, min(tileRows, (1 << 21) / (count * (inChannels + outChannels)) / tilesPerRow))
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
        let chunkRows = winogradChunkRows(tileRows: th, tilesPerRow: tw, inChannels: cin, outChannels: cout)
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

/// The tile geometry of one Winograd convolution (4×4 input tiles, m×m output tiles) and its two transforms: C kernels
/// (CLadonKernels, WinogradTransforms.c) and the plain references they are tested against.
struct WinogradGeometry {
    /// Output tile side (2 or 3), padding, input and output sizes, tiles per row.
    let m: Int, padding: Int, h: Int, w: Int, oh: Int, ow: Int, tw: Int

    var alpha: Int { WinogradWeights.inputTile }
    /// Floats of scratch the C input transform needs: 5 padded rows (4 combined input rows and a row of zeros).
    var rowBufferCount: Int { 5 * cladon_winograd_row_span(m, tw) }

    /// One input channel's tiles of the tile rows `tileRows`: `v[ξ · xiStride + t]`, `t = (ty − first row) · tw + tx`,
    /// by `cladon_winograd_input_transform` (C, sixteen tiles per vector step; `level` 0 = the best build the CPU
    /// runs). `rows` is scratch for ``rowBufferCount`` floats.
    func inputTransform(_ x: UnsafePointer<Float>, tileRows: Range<Int>, into v: UnsafeMutablePointer<Float>,
                        xiStride: Int, rows: UnsafeMutablePointer<Float>, level: Int32 = 0) {
        cladon_winograd_input_transform(level, v, xiStride, x, h, w, m, padding, tw, tileRows.lowerBound,
                                        tileRows.upperBound, rows)
    }

    /// The plain input transform the C one is tested against: for each tile, the 4 input rows from `m·ty − padding`
    /// (zero outside the image) combine as `Bᵀ d` into 4 rows, then their 4 columns from `m·tx − padding` as `· B`,
    /// in the same order of additions as the C kernel.
    func inputTransformReference(_ x: UnsafePointer<Float>, tileRows: Range<Int>, into v: UnsafeMutablePointer<Float>,
                                 xiStride: Int) {
        for ty in tileRows {
            for tx in 0..<tw {
                @inline(__always) func d(_ i: Int, _ j: Int) -> Float {
                    let (y, c) = (m * ty - padding + i, m * tx - padding + j)
                    return y >= 0 && y < h && c >= 0 && c < w ? x[y * w + c] : 0
                }
                let t = (ty - tileRows.lowerBound) * tw + tx
                for i in 0..<alpha {
                    // Row i of Bᵀ d at column j.
                    func combined(_ j: Int) -> Float {
                        let (a0, a1, a2, a3) = (d(0, j), d(1, j), d(2, j), d(3, j))
                        switch i {
                        case 0: return a0 - a2
                        case 1: return a1 + a2
                        case 2: return a2 - a1
                        default: return a1 - a3
                        }
                    }
                    let row = (0..<alpha).map(combined)
                    let o = v + i * alpha * xiStride + t
                    o[0] = row[0] - row[2]
                    o[xiStride] = row[1] + row[2]
                    o[2 * xiStride] = row[2] - row[1]
                    o[3 * xiStride] = row[1] - row[3]
                }
            }
        }
    }

    /// One output channel over the tile rows `tileRows`: tile `t`'s m×m block from `products[ξ · xiStride + t]` (`t`
    /// counted from the first of those rows), written where it lies inside the `oh × ow` map, with `+ bias`,
    /// `+ residual` and ReLU (`v > 0 ? v : 0`) in the GEMM epilogue's order, by `cladon_winograd_output_transform` (C,
    /// sixteen whole tiles per vector step; `level` 0 = the best build the CPU runs).
    func outputTransform(_ products: UnsafePointer<Float>, xiStride: Int, tileRows: Range<Int>, bias: Float,
                         residual: UnsafePointer<Float>?, relu: Bool, into out: UnsafeMutablePointer<Float>,
                         level: Int32 = 0) {
        cladon_winograd_output_transform(level, out, products, xiStride, m, oh, ow, tw, tileRows.lowerBound,
                                         tileRows.upperBound, bias, residual, relu)
    }

    /// The plain output transform the C one is tested against, tile by tile: `Aᵀ M` over M's rows (F(2, 3): rows
    /// `[1, 1, 1, 0]` and `[0, 1, −1, −1]`; F(3, 2): `[1, 1, 1, 0]`, `[0, 1, −1, 0]`, `[0, 1, 1, 1]`, the sums `e(4 + j) +
    /// e(8 + j)` shared), then the same over each row's columns, in the C kernel's order of additions.
    func outputTransformReference(_ products: UnsafePointer<Float>, xiStride: Int, tileRows: Range<Int>, bias: Float,
                                  residual: UnsafePointer<Float>?, relu: Bool, into out: UnsafeMutablePointer<Float>) {
        for ty in tileRows {
            for tx in 0..<tw {
                let first = (ty - tileRows.lowerBound) * tw + tx
                var e = [Float](repeating: 0, count: 16)
                for xi in 0..<16 { e[xi] = products[xi * xiStride + first] }
                // Rows of Aᵀ M (4 columns each), then each row's columns.
                var rows: [[Float]] = []
                var y: [[Float]] = []
                if m == 2 {
                    for j in 0..<4 {
                        let top: Float = e[j] + e[4 + j] + e[8 + j]
                        let bottom: Float = e[4 + j] - e[8 + j] - e[12 + j]
                        if j == 0 { rows = [[], []] }
                        rows[0].append(top)
                        rows[1].append(bottom)
                    }
                    for r in rows {
                        let left: Float = r[0] + r[1] + r[2], right: Float = r[1] - r[2] - r[3]
                        y.append([left, right])
                    }
                } else {
                    rows = [[], [], []]
                    for j in 0..<4 {
                        let shared: Float = e[4 + j] + e[8 + j]
                        rows[0].append(e[j] + shared)
                        rows[1].append(e[4 + j] - e[8 + j])
                        rows[2].append(shared + e[12 + j])
                    }
                    for r in rows {
                        let left: Float = r[0] + r[1] + r[2], middle: Float = r[1] - r[2], right: Float = r[1] + r[2] + r[3]
                        y.append([left, middle, right])
                    }
                }
                for i in 0..<m where m * ty + i < oh {
                    for j in 0..<m where m * tx + j < ow {
                        let at = (m * ty + i) * ow + m * tx + j
                        var v = y[i][j] + bias
                        if let residual { v += residual[at] }
                        out[at] = relu ? (v > 0 ? v : 0) : v
                    }
                }
            }
        }
    }
}
