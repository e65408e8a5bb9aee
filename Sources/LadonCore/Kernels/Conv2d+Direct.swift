// Direct convolution: register-blocked 6 output channels × 16 (or, with AVX-512, 32) output columns, no im2col buffer.
import CLadonKernels
import Foundation

extension Kernels {
    /// Direct convolution per image. The input is first copied into zero-padded, stride-phase-split planes
    /// (`planes[ic][phase][paddedRow][x']` = padded input column `x'·strideW + phase`), so every kernel tap of
    /// neighbouring output columns is one contiguous vector load; the weights are packed as
    /// `[group][block of 6 out-channels][tap][6]`.
    ///
    /// The taps are cut into depth blocks (``directDepthBlock(taps:channels:path:)``). Output rows go in pairs; for each
    /// depth block, every tile of two half-tiles of the pair (16 columns of 8 + 8; 32 columns of 16 + 16 with AVX-512; the
    /// last columns of a row, when at most one half, make one tile with those of the next row, so a 104-wide map
    /// wastes no lanes) runs against each 6-channel block in turn (innermost, so the tile's input columns stay in cache,
    /// the packed B panel of a GEMM read straight from the planes), accumulating the block in registers and adding it
    /// to the tile (the GEMM's sums); the last block fuses bias, residual and ReLU into its store. The tile kernel is
    /// ``directPath``'s: ``cladon_conv_direct_6x16_avx2``, ``cladon_conv_direct_6x32_avx512`` or
    /// ``directMicroKernel``, all bit-identical in an FMA build over the same depth blocks.
    static func conv2dDirect(_ job: ConvJob) {
        let p = job.p
        let block = 6
        let cinG = p.inChannels / p.groups, coutG = p.outChannels / p.groups
        let (sw, dh, dw) = (p.strideWidth, p.dilationHeight, p.dilationWidth)
        let paddedH = job.h + 2 * p.paddingHeight
        let path = directPath
        let rowWidth = roundUp(job.ow, 2 * path.halfWidth) + ((p.kernelWidth - 1) * dw) / sw
        let tapCount = cinG * p.kernelHeight * p.kernelWidth
        let blocks = (coutG + block - 1) / block
        let planeCount = p.inChannels * sw * paddedH * rowWidth
        let packedCount = p.groups * blocks * tapCount * block
        // Offset of each tap's vector relative to (group's first channel, output row, output column 0).
        var offsets = [Int]()
        offsets.reserveCapacity(tapCount)
        for icg in 0..<cinG {
            for ky in 0..<p.kernelHeight {
                for kx in 0..<p.kernelWidth {
                    offsets.append(((icg * sw + (kx * dw) % sw) * paddedH + ky * dh) * rowWidth + (kx * dw) / sw)
                }
            }
        }
        let items = p.groups * ((job.oh + 1) / 2)
        let flops = 2 * coutG * tapCount * job.oh * job.ow * p.groups
        let parts = flops < 4_000_000 ? 1 : min(job.threads, items)
        KernelScratch.shared.withBuffer(count: planeCount + packedCount) { scratch in
            let planes = scratch, packed = scratch + planeCount
            // Pack weights, zero-filling the channels past coutG in the last block of each group.
            for g in 0..<p.groups {
                for blk in 0..<blocks {
                    let dst = packed + (g * blocks + blk) * tapCount * block
                    for i in 0..<block {
                        let oc = blk * block + i
                        let src = job.weight + (g * coutG + min(oc, coutG - 1)) * tapCount
                        for t in 0..<tapCount { dst[t * block + i] = oc < coutG ? src[t] : 0 }
                    }
                }
            }
            offsets.withUnsafeBufferPointer { offsetBuffer in
                let tapOffsets = offsetBuffer.baseAddress!
                for b in 0..<job.batch {
                    let input = job.input + b * p.inChannels * job.h * job.w
                    // Channels in chunks taken as threads come free (about 6 per thread), so that a thread the host
                    // slows down for a spell copies fewer of them instead of holding up the join.
                    WorkSplit.forEachChunk(p.inChannels, work: planeCount, minimumWork: 1 << 16, threads: job.threads,
                                           chunksPerPart: 6) { range in
                        for ic in range {
                            fillDirectPlanes(p, channel: input + ic * job.h * job.w, h: job.h, w: job.w,
                                             paddedH: paddedH, rowWidth: rowWidth, into: planes + ic * sw * paddedH * rowWidth)
                        }
                    }
                    let tiles = DirectTiles(job: job, batch: b, planes: UnsafePointer(planes), packed: UnsafePointer(packed),
                                            offsets: tapOffsets, tapCount: tapCount,
                                            depthBlock: directDepthBlock(taps: tapCount, channels: blocks * block, path: path),
                                            blocks: blocks,
                                            paddedH: paddedH, rowWidth: rowWidth, kernel: directKernel, path: path)
                    withFusedGDN(job.gdn, p) { gdn in
                        // ``directChunksPerThread`` chunks of output row pairs per thread, taken as threads come free.
                        WorkSplit.forEachChunk(items, chunksPerPart: directChunksPerThread, parts: parts) { range in
                            tiles.run(range, gdn: gdn)
                        }
                    }
                }
            }
        }
    }

    /// Taps per depth block of the direct tiles. The AVX2 and Swift tiles take the GEMM's (at most ``GEMMBlocking/kc``,
    /// 256, so `encoder.2`'s 2,400 taps run in ten blocks of 240). The AVX-512 tiles take as many taps at once as keep one
    /// block's packed weights of all `channels` (rounded up to whole 6-channel blocks) within ``directBlockWeightBytes``:
    /// `encoder.2` runs in one block. Each block of a tile starts its input stream again with the lines of its first
    /// taps not yet asked for; in one block `encoder.2` took 0.94× the time on the AVX-512 Xeon (one and two threads,
    /// alternated in one process), the whole encoder 0.96×, while on the AVX2 tiles it changed nothing measurable
    /// (0.99–1.00×). The sums then differ from im2col + GEMM's (blocks of 240) in the last bits.
    static func directDepthBlock(taps: Int, channels: Int, path: DirectKernelPath) -> Int {
        let blocking = GEMMBlocking.preferred
        let most: Int
        if directDepthOverride > 0 {
            most = directDepthOverride
        } else if path == .avx512 {
            most = max(blocking.kc, directBlockWeightBytes / (MemoryLayout<Float>.size * max(1, channels)))
        } else {
            return blocking.depthBlock(taps)
        }
        let blocks = max(1, (taps + most - 1) / most)
        return max(1, (taps + blocks - 1) / blocks)
    }

    /// Experiments only: `LADON_DIRECT_DEPTH=n` cuts every direct convolution's taps into even blocks of at most `n`
    /// on any tile kernel (`0`, unset or unreadable: ``directDepthBlock(taps:channels:path:)``'s rule), to time the
    /// rule on another CPU, e.g. `GEMMPerfTests/encoderLayerTimings` with `LADON_DIRECT_DEPTH=240` and without.
    static let directDepthOverride = ProcessInfo.processInfo.environment["LADON_DIRECT_DEPTH"].flatMap { Int($0) } ?? 0

    /// The packed weights of one depth block of the AVX-512 direct tiles, at most (512 KB: L2-resident with the
    /// input lines on a 1 MB L2; ``directDepthBlock(taps:channels:path:)``).
    static let directBlockWeightBytes = 512 << 10

    /// Chunks of output row pairs per thread, taken as threads come free (`encoder.0`: 4 pairs each, `encoder.2`: 2).
    /// Against 4 chunks per thread, 13 took the whole encoder 0.95–1.00× the time in 12 of 12 interleaved runs on a
    /// contended Zen 3 (median 0.966; 8 and 18 alike, 26 from 0.93 to 1.02): a thread the host slows down leaves a
    /// shorter last chunk for the join to wait on (docs/performance.md, twelfth session).
    static let directChunksPerThread = 13

    /// The `strideW` phase planes of one input channel (`paddedH × rowWidth` each): phase `φ`'s column `x'` is padded
    /// column `x'·strideW + φ`, i.e. input column `x'·strideW + φ − padW`, and row `y'` input row `y' − padH`; zero
    /// outside the input.
    static func fillDirectPlanes(_ p: Conv2dParameters, channel: UnsafePointer<Float>, h: Int, w: Int, paddedH: Int,
                                 rowWidth: Int, into planes: UnsafeMutablePointer<Float>) {
        let (sw, pw) = (p.strideWidth, p.paddingWidth)
        for phase in 0..<sw {
            // The first plane column that holds an input column, and that column's phase among the input's columns.
            let left = max(0, ceilDivide(pw - phase, sw))
            let firstColumn = left * sw + phase - pw
            let plane = planes + phase * paddedH * rowWidth
            if firstColumn >= w {
                plane.update(repeating: 0, count: paddedH * rowWidth)
                continue
            }
            cladon_copy_bordered_plane(plane, paddedH, rowWidth, p.paddingHeight, left, channel, h, w, 1, sw, 0, firstColumn)
        }
    }

    /// The fused GDN's operands as ``DirectTiles/run(_:gdn:)`` takes them (valid only inside `body`), or `nil`.
    private static func withFusedGDN(_ gdn: GDN?, _ p: Conv2dParameters, _ body: (DirectTiles.FusedGDN?) -> Void) {
        guard let gdn else { return body(nil) }
        precondition(directCanFuse(p, gdn), "conv2dDirect: this GDN cannot be fused")
        gdn.packedGamma.withPanels { gamma in
            gdn.beta.withUnsafeBufferPointer { beta in body((gamma.base, beta.baseAddress!, gdn.inverse)) }
        }
    }

    /// Whether the direct path can apply `gdn` to each finished tile of the convolution `p`: the C tiles (AVX2 or
    /// AVX-512), one group, as many output channels as the GDN and at most one GEMM depth block of them (its packed
    /// `gamma` is one, in the panels of the GEMM kernel the tiles use).
    static func directCanFuse(_ p: Conv2dParameters, _ gdn: GDN) -> Bool {
        directPath != .swift && p.groups == 1 && gdn.channels == p.outChannels
            && GEMMBlocking.preferred.depthBlock(gdn.channels) == gdn.channels && gdn.packedGamma.matches(.preferred)
    }

    /// The direct-convolution tiles this process runs: C with the GEMM's C kernels (AVX2 or AVX-512; the Swift
    /// kernel for AVX-512 when `LADON_DIRECT_KERNEL=swift`, for comparisons), else Swift.
    static var directPath: DirectKernelPath {
        #if arch(x86_64) && (os(Linux) || os(macOS))
        switch GEMMBlocking.preferred.kernel {
        case .avx2: return .avx2
        case .avx512: return DirectKernelPath.swiftForced ? .swift : .avx512
        default: return .swift
        }
        #else
        return .swift
        #endif
    }

    /// Whether direct convolutions run on the C tile kernels (AVX2 or AVX-512), not the portable Swift tile.
    static var directTilesAreC: Bool { directPath != .swift }

    /// The per-tile kernel of 16-column tiles (8 + 8): the C AVX2 one when the GEMM runs the AVX2 kernel, else
    /// ``directMicroKernel``.
    static var directKernel: DirectKernelFunction {
        #if arch(x86_64) && (os(Linux) || os(macOS))
        if directPath == .avx2 {
            return { taps, offsets, low, high, packed, cLow, cHigh, ldc, rows, lowCols, highCols, loadC, epilogue, tile in
                withCEpilogue(epilogue) {
                    cladon_conv_direct_6x16_avx2(taps, offsets, low, high, packed, cLow, cHigh, ldc, rows, lowCols, highCols,
                                                 loadC, $0, tile)
                }
            }
        }
        #endif
        return directMicroKernel
    }

    /// Computes one 6×16 direct-convolution tile as two 8-column halves: `Σ_t packed[t][i] · low[offsets[t] + j]` for
    /// `j < 8`, over `high[offsets[t] + j − 8]` for the rest, over `tapCount` taps in order; then stores the halves to
    /// `cLow` and `cHigh` (`lowCols` and `highCols` valid columns, `+ C` when `loadC`, fused epilogue relative to
    /// `cLow`). One 16-column tile of C (`high = low + 8`, `cHigh = cLow + 8`, all valid) is stored like
    /// ``gemmMicroKernel6x16``.
    @inline(never)
    static func directMicroKernel(_ tapCount: Int, _ offsets: UnsafePointer<Int>, _ low: UnsafePointer<Float>,
                                  _ high: UnsafePointer<Float>, _ packed: UnsafePointer<Float>,
                                  _ cLow: UnsafeMutablePointer<Float>, _ cHigh: UnsafeMutablePointer<Float>, _ ldc: Int,
                                  _ rows: Int, _ lowCols: Int, _ highCols: Int, _ loadC: Bool, _ epilogue: GEMMEpilogue?,
                                  _ tile: UnsafeMutablePointer<Float>) {
        typealias V = GEMMVector
        typealias H = SIMD8<Float>
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var wp = packed
        @inline(__always) func tap(_ x: V) {
            fusedMultiplyAdd(&c0, V(repeating: wp[0]), x)
            fusedMultiplyAdd(&c1, V(repeating: wp[1]), x)
            fusedMultiplyAdd(&c2, V(repeating: wp[2]), x)
            fusedMultiplyAdd(&c3, V(repeating: wp[3]), x)
            fusedMultiplyAdd(&c4, V(repeating: wp[4]), x)
            fusedMultiplyAdd(&c5, V(repeating: wp[5]), x)
            wp += 6
        }
        if high == low + 8 {
            // One 16-float load per tap (one zmm register with AVX-512).
            for t in 0..<tapCount { tap(UnsafeRawPointer(low + offsets[t]).loadUnaligned(as: V.self)) }
        } else {
            for t in 0..<tapCount {
                let o = offsets[t]
                tap(V(lowHalf: UnsafeRawPointer(low + o).loadUnaligned(as: H.self),
                      highHalf: UnsafeRawPointer(high + o).loadUnaligned(as: H.self)))
            }
        }
        let full = rows == 6 && lowCols == 8 && highCols == 8 && cHigh == cLow + 8
        storeSixRows((c0, c1, c2, c3, c4, c5), full: full, cLow, ldc, loadC, epilogue, tile)
        if !full {
            copyEdgeTile(tile, V.scalarCount, cLow, ldc, rows, lowCols, loadC, epilogue)
            if highCols > 0 {
                copyEdgeTile(tile + 8, V.scalarCount, cHigh, ldc, rows, highCols, loadC,
                             epilogue.map { e in
                                 GEMMEpilogue(bias: e.bias, residual: e.residual.map { $0 + (cHigh - cLow) }, ldr: e.ldr,
                                              relu: e.relu)
                             })
            }
        }
    }
}

/// A direct-convolution tile kernel with the contract of ``Kernels/directMicroKernel(_:_:_:_:_:_:_:_:_:_:_:_:_:_:)``:
/// `taps, offsets, low, high, packed weights, cLow, cHigh, ldc, rows, lowCols, highCols, loadC, epilogue, tile`.
typealias DirectKernelFunction = (Int, UnsafePointer<Int>, UnsafePointer<Float>, UnsafePointer<Float>,
                                  UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int,
                                  Int, Int, Int, Bool, GEMMEpilogue?, UnsafeMutablePointer<Float>) -> Void

/// The tile kernels of the direct convolution.
enum DirectKernelPath: Equatable {
    /// ``cladon_conv_direct_tiles_avx2``: 6×16 tiles of two 8-column halves, C loops, the encoder's GDN fusion.
    case avx2
    /// ``cladon_conv_direct_tiles_avx512``: 12×32 tiles (6×32 for a remainder of channels) of two 16-column halves,
    /// C loops, the GDN fusion.
    case avx512
    /// ``Kernels/directMicroKernel(_:_:_:_:_:_:_:_:_:_:_:_:_:_:)`` called from Swift per 6×16 tile.
    case swift

    /// Columns in each half of a tile.
    var halfWidth: Int { self == .avx512 ? 16 : 8 }

    #if arch(x86_64) && (os(Linux) || os(macOS))
    /// The C loop of one depth block over tiles and channel blocks (same signature for both), `nil` for `.swift`.
    var tilesFunction: (@convention(c) (Int, UnsafePointer<Int>, UnsafePointer<CLadonDirectTile>, Int,
                                        UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, Int, Bool,
                                        UnsafePointer<CLadonEpilogue>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
                                        Bool, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>) -> Void)? {
        switch self {
        case .avx2: cladon_conv_direct_tiles_avx2
        case .avx512: cladon_conv_direct_tiles_avx512
        case .swift: nil
        }
    }
    #endif

    /// `LADON_DIRECT_KERNEL=swift`: the Swift tile kernel where the AVX-512 C one would run (read once).
    static let swiftForced = ProcessInfo.processInfo.environment["LADON_DIRECT_KERNEL"] == "swift"
}

/// The output tiles of one image: work item `(group, pair of output rows)`, flattened.
struct DirectTiles {
    let job: ConvJob
    let batch: Int
    let planes: UnsafePointer<Float>
    let packed: UnsafePointer<Float>
    let offsets: UnsafePointer<Int>
    let tapCount: Int, depthBlock: Int, blocks: Int, paddedH: Int, rowWidth: Int
    /// The per-tile kernel of the `.swift` path.
    let kernel: DirectKernelFunction
    /// Which tiles run: in C, each depth block's loop over tiles and channel blocks is one call.
    let path: DirectKernelPath

    /// A GDN applied to each finished tile: gamma's packed panels, beta, inverse.
    typealias FusedGDN = (gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, inverse: Bool)

    /// Runs the tiles of `items`; with `gdn` (C tiles only) each finished tile then goes through that GDN in place.
    func run(_ items: Range<Int>, gdn: FusedGDN? = nil) {
        let p = job.p
        let cinG = p.inChannels / p.groups, coutG = p.outChannels / p.groups
        let plane = job.oh * job.ow
        let pairs = (job.oh + 1) / 2
        let half = path.halfWidth
        let fullWidth = job.ow / (2 * half) * (2 * half), tail = job.ow - fullWidth
        // An edge tile for the tile kernel (6 × 2·half) and the fused GDN's GEMM kernel (6 × 16 on AVX2, 12 × 32 on
        // AVX-512: 12 · 2·half covers both), then the fused GDN's |x| panel (coutG · 2·half).
        let tileFloats = 24 * half
        withUnsafeTemporaryAllocation(of: Float.self, capacity: tileFloats + (gdn == nil ? 0 : 2 * half * coutG)) { tileBuffer in
            let tile = tileBuffer.baseAddress!, gdnScratch = tile + tileFloats
            var tiles: [CLadonDirectTile] = []
            for item in items {
                let pair = item % pairs, g = item / pairs
                let groupPlanes = planes + g * cinG * p.strideWidth * paddedH * rowWidth
                let rows = Array(2 * pair..<min(job.oh, 2 * pair + 2))
                func input(_ oy: Int, _ ox: Int) -> UnsafePointer<Float> { groupPlanes + oy * p.strideHeight * rowWidth + ox }
                tiles.removeAll(keepingCapacity: true)
                for oy in rows {
                    for ox in stride(from: 0, to: fullWidth, by: 2 * half) {
                        tiles.append(CLadonDirectTile(low: input(oy, ox), high: input(oy, ox + half), c_low: oy * job.ow + ox,
                                                      c_high: oy * job.ow + ox + half, low_cols: half, high_cols: half))
                    }
                    if tail > half {
                        tiles.append(CLadonDirectTile(low: input(oy, fullWidth), high: input(oy, fullWidth + half),
                                                      c_low: oy * job.ow + fullWidth, c_high: oy * job.ow + fullWidth + half,
                                                      low_cols: half, high_cols: tail - half))
                    }
                }
                if tail > 0 && tail <= half {
                    // The two rows' last columns as one tile (one row's alone when the map has an odd row count).
                    let (first, second) = (rows[0], rows.last!)
                    tiles.append(CLadonDirectTile(low: input(first, fullWidth), high: input(second, fullWidth),
                                                  c_low: first * job.ow + fullWidth, c_high: second * job.ow + fullWidth,
                                                  low_cols: tail, high_cols: rows.count == 2 ? tail : 0))
                }
                let out = job.output + (batch * p.outChannels + g * coutG) * plane
                let epilogue = job.epilogue(batch: batch, channel: g * coutG, row: 0)
                let weights = packed + g * blocks * tapCount * 6
                var t0 = 0
                while t0 < tapCount {
                    let depth = min(depthBlock, tapCount - t0)
                    let last = t0 + depth == tapCount
                    let blockEpilogue = last && !epilogue.isNone ? epilogue : nil
                    #if arch(x86_64) && (os(Linux) || os(macOS))
                    if let tilesInC = path.tilesFunction {
                        let fused = last ? gdn : nil
                        Kernels.withCEpilogue(blockEpilogue) { e in
                            tilesInC(depth, offsets + t0, tiles, tiles.count, weights + t0 * 6, tapCount * 6, coutG, out,
                                     plane, t0 > 0, e, fused?.gamma, fused?.beta, fused?.inverse ?? false, gdnScratch, tile)
                        }
                        t0 += depth
                        continue
                    }
                    #endif
                    for t in tiles {
                        for blk in 0..<blocks {
                            let channel = blk * 6
                            let c = out + channel * plane
                            kernel(depth, offsets + t0, t.low, t.high, weights + (blk * tapCount + t0) * 6,
                                   c + t.c_low, c + t.c_high, plane, min(6, coutG - channel), t.low_cols, t.high_cols,
                                   t0 > 0, blockEpilogue?.offset(row: channel, column: t.c_low), tile)
                        }
                    }
                    t0 += depth
                }
            }
        }
    }
}
