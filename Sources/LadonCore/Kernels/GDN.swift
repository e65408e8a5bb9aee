// Generalised divisive normalisation, CompressAI's simplified GDN1 and its inverse.
import CLadonKernels

extension Kernels {
    /// GDN1 over the channels of an NCHW tensor, with *effective* parameters (already reparametrised):
    /// `norm[i] = beta[i] + Σ_j gamma[i, j]·|x[j]|` (CompressAI's `F.conv2d(|x|, gamma, beta)`);
    /// forward `y = x · (1 / norm)` (reciprocal first, as PyTorch), inverse `y = x · norm`.
    ///
    /// The pixels of each image are processed in column blocks (bounded scratch memory, kept in L2): `|x|` is packed
    /// straight into the GEMM's panels, `gamma·|x|` runs on the GEMM micro-kernel, and the bias, reciprocal and
    /// product are one fused SIMD pass per block. The blocks are split over ``threadCount`` threads.
    ///
    /// - Parameters:
    ///   - x: `[N, C, H, W]`.
    ///   - beta: `C` effective offsets.
    ///   - gamma: `[C, C]` effective weights, row `i` = output channel.
    ///   - inverse: `false` for GDN (encoder), `true` for IGDN (decoder).
    ///   - packedGamma: `gamma` prepacked for the GEMM (a layer's copy), or `nil` to pack it per tile.
    package static func gdn(_ x: Tensor, beta: [Float], gamma: Tensor, inverse: Bool,
                            packedGamma: PackedMatrix? = nil) -> Tensor {
        checkGDN(x, beta: beta, gamma: gamma)
        return gdn(x, beta: beta, gamma: gamma, inverse: inverse,
                   tileWidth: gdnTileWidth(channels: x.c, pixels: x.h * x.w), packedGamma: packedGamma)
    }

    /// ``gdn(_:beta:gamma:inverse:)`` with an explicit tile width (tests use small ones).
    static func gdn(_ x: Tensor, beta: [Float], gamma: Tensor, inverse: Bool, tileWidth tile: Int,
                    packedGamma: PackedMatrix? = nil) -> Tensor {
        checkGDN(x, beta: beta, gamma: gamma)
        precondition(tile >= 1, "gdn: tile width must be positive")
        guard x.count > 0 else { return x }
        return Tensor(shape: x.shape, unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                gdn(xp.baseAddress!, out.baseAddress!, n: x.n, c: x.c, hw: x.h * x.w, beta: beta, gamma: gamma,
                    inverse: inverse, tile: tile, packedGamma: packedGamma)
            }
        })
    }

    /// ``gdn(_:beta:gamma:inverse:packedGamma:)`` written over `x` itself: no output allocation (a fresh
    /// tensor of the encoder's first GDN is 16 MB of pages to fault in), one stream of writes less. When `x`'s
    /// storage is shared it is copied first (copy on write), so other holders never see the change.
    package static func gdnInPlace(_ x: inout Tensor, beta: [Float], gamma: Tensor, inverse: Bool,
                                   packedGamma: PackedMatrix? = nil, tileWidth: Int? = nil) {
        checkGDN(x, beta: beta, gamma: gamma)
        let (n, c, hw) = (x.n, x.c, x.h * x.w)
        let tile = tileWidth ?? gdnTileWidth(channels: c, pixels: hw)
        precondition(tile >= 1, "gdn: tile width must be positive")
        guard x.count > 0 else { return }
        x.withUnsafeMutableBufferPointer { xp in
            gdn(UnsafePointer(xp.baseAddress!), xp.baseAddress!, n: n, c: c, hw: hw, beta: beta, gamma: gamma,
                inverse: inverse, tile: tile, packedGamma: packedGamma)
        }
    }

    /// The tiled GDN from `src` to `dst` (which may be `src`): the pixels of each image are cut into column blocks of
    /// `tile` pixels, split over the threads, and each block is one pass of the GEMM's own loops with nothing
    /// written to memory but the result: `|x|` is packed straight into the micro-kernel's `B` panels (all depth
    /// blocks of the column block, about 256 KB), `gamma·|x|` accumulates in a per-thread `C` block beside them
    /// (both stay in L2), and once a block's last depth block is done `y = x·(norm + beta)` (or `x·(1/(norm + beta))`)
    /// is written over its columns. A block reads its columns of `x` in full before it writes them, and threads own
    /// disjoint columns, so working in place is safe. The sums are the GEMM's (same depth blocks and order), so the
    /// result is bit-identical to `gemm(packed:)` followed by the element-wise pass.
    private static func gdn(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, c: Int, hw: Int,
                            beta: [Float], gamma: Tensor, inverse: Bool, tile: Int, packedGamma: PackedMatrix?) {
        let blocking = GEMMBlocking.preferred
        let packed = packedGamma.flatMap { $0.matches(blocking) ? $0 : nil } ?? PackedMatrix(gamma, blocking: blocking)
        let tilesPerImage = (hw + tile - 1) / tile
        let tiles = n * tilesPerImage
        let parts = min(resolvedThreads(nil), tiles, max(1, n * c * hw / (1 << 16)))
        let (mr, nr) = (blocking.mr, blocking.nr)
        let paddedTile = roundUp(tile, nr)
        beta.withUnsafeBufferPointer { bp in
            packed.withPanels { panels in
                guard let bias = bp.baseAddress else { return }
                // Column blocks taken one at a time as threads come free; one scratch block per thread.
                WorkSplit.forEachWorker(tiles, chunk: 1, parts: parts) { take in
                    // B panels of every depth block of one column block, then its C block (`c` rows × `paddedTile`).
                    KernelScratch.shared.withBuffer(count: 2 * c * paddedTile + mr * nr + 32) { scratch in
                        let packedB = scratch, norm = scratch + c * paddedTile, edge = norm + c * paddedTile + 16
                        while let range = take() {
                            for t in range {
                                let (b, p0) = (t / tilesPerImage, (t % tilesPerImage) * tile)
                                let image = b * c * hw
                                gdnBlock(src + image + p0, dst + image + p0, stride: hw, width: min(tile, hw - p0),
                                         channels: c, panels: panels, packed: packed, blocking: blocking, beta: bias,
                                         inverse: inverse, packedB: packedB, norm: norm, edge: edge)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Pixels per column block: `|x|`'s packed panels and the `C` block each about 256 KB (together half of a 1 MB L2),
    /// between 32 and 1024 pixels, a multiple of 32 (whole 12×32 and 6×16 tiles).
    static func gdnTileWidth(channels: Int, pixels: Int) -> Int {
        let target = max(32, min(1024, 65_536 / max(channels, 1) / 32 * 32))
        return min(target, pixels)
    }

    /// One column block of `width` pixels; `x` and `y` point at channel 0 of the block, channel planes `stride` apart.
    private static func gdnBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, stride: Int, width: Int,
                                 channels c: Int, panels: PackedPanels, packed: PackedMatrix, blocking: GEMMBlocking,
                                 beta: UnsafePointer<Float>, inverse: Bool, packedB: UnsafeMutablePointer<Float>,
                                 norm: UnsafeMutablePointer<Float>, edge: UnsafeMutablePointer<Float>) {
        let (nr, kc) = (blocking.nr, packed.kc)
        let ldn = roundUp(width, nr)
        // |x| into B panels: depth block k0 (depth `depth`) holds panel q at `k0·ldn + q·nr·depth`, rows of `nr` values
        // (columns past `width` zero), exactly what `packB` writes for one depth block.
        var k0 = 0
        while k0 < c {
            let depth = min(kc, c - k0)
            cladon_pack_abs_panels(0, packedB + k0 * ldn, x + k0 * stride, stride, depth, width, nr)
            k0 += depth
        }
        // norm = gamma·|x|: depth blocks outermost (the C block stays in L2), then `MC`-row blocks of gamma (in L2
        // while every B panel of the block runs against them), each B panel in L1 across the rows of the block.
        let block = blocking.kernel.blockFunction
        k0 = 0
        while k0 < c {
            let depth = min(kc, c - k0)
            let a = panels.panels(row: 0, depth: k0, depthCount: depth), bBlock = packedB + k0 * ldn
            var ic = 0
            while ic < c {
                let rowEnd = min(c, ic + blocking.mc)
                block(depth, a + ic * depth, rowEnd - ic, bBlock, width, norm + ic * ldn, ldn, k0 > 0, nil, edge)
                ic = rowEnd
            }
            k0 += depth
        }
        // y = x · (norm + beta)  or  x · (1 / (norm + beta))
        cladon_gdn_scale(0, y, x, stride, norm, ldn, beta, c, width, inverse)
    }

    /// Plain reference for ``gdn(_:beta:gamma:inverse:)``: the sum `beta + Σ gamma·|x|` and the final
    /// product in Double, rounded once to Float.
    package static func gdnReference(_ x: Tensor, beta: [Float], gamma: Tensor, inverse: Bool) -> Tensor {
        checkGDN(x, beta: beta, gamma: gamma)
        let (n, c, hw) = (x.n, x.c, x.h * x.w)
        var out = Tensor(shape: x.shape)
        for b in 0..<n {
            for i in 0..<c {
                for p in 0..<hw {
                    var norm = Double(beta[i])
                    for j in 0..<c {
                        norm += Double(gamma.scalars[i * c + j]) * Double(abs(x.scalars[(b * c + j) * hw + p]))
                    }
                    let v = Double(x.scalars[(b * c + i) * hw + p])
                    out.scalars[(b * c + i) * hw + p] = Float(inverse ? v * norm : v * (1 / norm))
                }
            }
        }
        return out
    }

    private static func checkGDN(_ x: Tensor, beta: [Float], gamma: Tensor) {
        precondition(x.rank == 4, "gdn: expected NCHW, got \(x.shape)")
        precondition(beta.count == x.c && gamma.shape == [x.c, x.c],
                     "gdn: parameters (beta \(beta.count), gamma \(gamma.shape)) do not match \(x.c) channels")
    }
}
