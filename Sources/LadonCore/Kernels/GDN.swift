// Generalised divisive normalisation, CompressAI's simplified GDN1 and its inverse.

extension Kernels {
    /// GDN1 over the channels of an NCHW tensor, with *effective* parameters (already reparametrised):
    /// `norm[i] = beta[i] + Σ_j gamma[i, j]·|x[j]|` (CompressAI's `F.conv2d(|x|, gamma, beta)`);
    /// forward `y = x · (1 / norm)` (reciprocal first, as PyTorch), inverse `y = x · norm`.
    ///
    /// The pixels of each image are processed in tiles (bounded scratch memory): `|x|` of the tile is
    /// formed once, `gamma·|x|` is one ``gemm(m:n:k:a:lda:transposeA:b:ldb:transposeB:c:ldc:accumulate:threads:)``,
    /// and the bias, reciprocal and product are one fused SIMD pass. The tiles are split over ``threadCount``
    /// threads, each running its GEMMs on one thread.
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

    /// The tiled GDN from `src` to `dst` (which may be `src`: each tile reads its `|x|` into scratch before it
    /// writes, and the final pass reads and writes each element once, at the same place).
    private static func gdn(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, c: Int, hw: Int,
                            beta: [Float], gamma: Tensor, inverse: Bool, tile: Int, packedGamma: PackedMatrix?) {
        let tilesPerImage = (hw + tile - 1) / tile
        gamma.withUnsafeBufferPointer { gp in
            beta.withUnsafeBufferPointer { bp in
                guard let g = gp.baseAddress, let bias = bp.baseAddress else { return }
                // The tiles are split over the threads, each running its GEMMs on one thread, so the
                // element-wise passes (|x| and the final product) run in parallel too.
                let tiles = n * tilesPerImage
                let parts = min(resolvedThreads(nil), tiles, max(1, n * c * hw / (1 << 16)))
                WorkSplit.forEachPart(parts) { part in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * c * tile)
                    defer { scratch.deallocate() }
                    for t in stride(from: tiles * part / parts, to: tiles * (part + 1) / parts, by: 1) {
                        let (b, p0) = (t / tilesPerImage, (t % tilesPerImage) * tile)
                        let image = b * c * hw
                        gdnTile(src + image + p0, dst + image + p0, stride: hw, width: min(tile, hw - p0),
                                channels: c, gamma: g, packedGamma: packedGamma, beta: bias,
                                inverse: inverse, absolute: scratch, norm: scratch + c * tile)
                    }
                }
            }
        }
    }

    /// Pixels per tile: about 1 MB of `|x|` per tile (bounded scratch), between 256 and 2048 pixels, a
    /// multiple of 16 (SIMD). Every tile is one GEMM call that reads (and a packing GEMM copies) all of
    /// `gamma`, C² values for C²·width MACs, so wide tiles keep that overhead to a few percent.
    static func gdnTileWidth(channels: Int, pixels: Int) -> Int {
        let target = max(256, min(2048, (262_144 / max(channels, 1) + 15) / 16 * 16))
        return min(target, pixels)
    }

    /// One tile of `width` pixels; `x` and `y` point at channel 0 of the tile, channel planes `stride` apart.
    private static func gdnTile(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, stride: Int, width: Int,
                                channels c: Int, gamma: UnsafePointer<Float>, packedGamma: PackedMatrix?,
                                beta: UnsafePointer<Float>,
                                inverse: Bool, absolute: UnsafeMutablePointer<Float>, norm: UnsafeMutablePointer<Float>) {
        let lanes = Lanes.scalarCount, blocks = width / lanes
        // |x|, packed [C, width].
        for ch in 0..<c {
            let s = UnsafeRawPointer(x + ch * stride), d = UnsafeMutableRawPointer(absolute + ch * width)
            for blk in 0..<blocks {
                let o = blk * lanes * 4
                let v = s.loadUnaligned(fromByteOffset: o, as: Lanes.self)
                d.storeBytes(of: v.replacing(with: -v, where: v .< 0), toByteOffset: o, as: Lanes.self)
            }
            for i in (blocks * lanes)..<width { absolute[ch * width + i] = abs(x[ch * stride + i]) }
        }
        // norm = gamma · |x|
        if let packedGamma {
            gemm(packed: packedGamma, n: width, b: absolute, ldb: width, c: norm, ldc: width, threads: 1)
        } else {
            gemm(m: c, n: width, k: c, a: gamma, lda: c, b: absolute, ldb: width, c: norm, ldc: width, threads: 1)
        }
        // y = x · (1 / (norm + beta))  or  x · (norm + beta)
        for ch in 0..<c {
            let bias = beta[ch], biasLanes = Lanes(repeating: beta[ch])
            let s = UnsafeRawPointer(x + ch * stride), nr = UnsafeRawPointer(norm + ch * width)
            let d = UnsafeMutableRawPointer(y + ch * stride)
            for blk in 0..<blocks {
                let o = blk * lanes * 4
                let v = s.loadUnaligned(fromByteOffset: o, as: Lanes.self)
                let m = nr.loadUnaligned(fromByteOffset: o, as: Lanes.self) + biasLanes
                d.storeBytes(of: inverse ? v * m : v * (1 / m), toByteOffset: o, as: Lanes.self)
            }
            for i in (blocks * lanes)..<width {
                let v = x[ch * stride + i], m = norm[ch * width + i] + bias
                y[ch * stride + i] = inverse ? v * m : v * (1 / m)
            }
        }
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
