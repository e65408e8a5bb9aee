// Spatial resizing of NCHW tensors with PyTorch F.interpolate semantics: bilinear and legacy nearest.

extension Kernels {
    // MARK: - Bilinear

    /// `F.interpolate(x, size=(outputHeight, outputWidth), mode="bilinear", align_corners=False)`.
    ///
    /// Per axis, with `scale = Float(in) / Float(out)`: `src = max(scale·(dst + 0.5) − 0.5, 0)`,
    /// `i0 = min(⌊src⌋, in − 1)`, `i1 = i0 + (i0 < in − 1)`, `λ1 = src − i0`, `λ0 = 1 − λ1`; an axis whose size
    /// does not change is copied (`λ0 = 1`, `λ1 = 0`). The arithmetic follows ATen's generic CPU kernel
    /// (`upsample_generic_Nd_kernel_impl`, as compiled in the x86-64 PyTorch wheels, whose compiler fuses
    /// multiply-adds): each value is `fma(a, λ0, b·λ1)`, first along W, then along H. With `LADON_FMA` the
    /// result is bit-identical to PyTorch's when `outputHeight + outputWidth > 128`. ATen sends smaller
    /// outputs (and, on one thread, 3-channel inputs) to a channels-last kernel that computes `src` with a
    /// fused multiply-add and sums four products in another order; for those sizes the source index is
    /// computed the same fused way here, which leaves differences of a few ulps.
    package static func resizeBilinear(_ x: Tensor, outputHeight: Int, outputWidth: Int) -> Tensor {
        checkResize(x, outputHeight, outputWidth, "resizeBilinear")
        return bilinear(x, outputHeight: outputHeight, outputWidth: outputWidth,
                        scaleHeight: Float(x.h) / Float(outputHeight), scaleWidth: Float(x.w) / Float(outputWidth))
    }

    /// `F.interpolate(x, scale_factor=scaleFactor, mode="bilinear", align_corners=False,
    /// recompute_scale_factor=…)`: the output size is `⌊in · scaleFactor⌋` (in Double, as Python). With
    /// `recomputeScaleFactor` (torchvision's `GeneralizedRCNNTransform`) the kernel then uses `in/out` like
    /// ``resizeBilinear(_:outputHeight:outputWidth:)``; without it, it uses `Float(1 / scaleFactor)`.
    package static func resizeBilinear(_ x: Tensor, scaleFactor: Double, recomputeScaleFactor: Bool = true) -> Tensor {
        precondition(x.rank == 4, "resizeBilinear: expected NCHW, got \(x.shape)")
        precondition(scaleFactor > 0 && scaleFactor.isFinite, "resizeBilinear: bad scale factor \(scaleFactor)")
        let oh = interpolatedExtent(x.h, scaleFactor: scaleFactor)
        let ow = interpolatedExtent(x.w, scaleFactor: scaleFactor)
        if recomputeScaleFactor { return resizeBilinear(x, outputHeight: oh, outputWidth: ow) }
        checkResize(x, oh, ow, "resizeBilinear")
        let scale = Float(1.0 / scaleFactor)
        return bilinear(x, outputHeight: oh, outputWidth: ow, scaleHeight: scale, scaleWidth: scale)
    }

    /// The output extent `F.interpolate` derives from a scale factor: `⌊Double(input) · scaleFactor⌋`.
    package static func interpolatedExtent(_ input: Int, scaleFactor: Double) -> Int {
        Int((Double(input) * scaleFactor).rounded(.down))
    }

    /// Source indices and weights of linear interpolation along one axis (ATen's
    /// `compute_source_index_and_lambda`, align_corners = false).
    struct LinearTaps {
        var index0: [Int], index1: [Int], lambda0: [Float], lambda1: [Float]

        /// - Parameter fusedIndex: compute `scale·(o + 0.5) − 0.5` with one rounding, as ATen's channels-last
        ///   kernel does (set up once per output index, so the scalar fma is off the hot path).
        init(input: Int, output: Int, scale: Float, fusedIndex: Bool = false) {
            index0 = []; index1 = []; lambda0 = []; lambda1 = []
            for o in 0..<output {
                if input == output {
                    index0.append(o); index1.append(o); lambda0.append(1); lambda1.append(0)
                    continue
                }
                let unclamped = fusedIndex ? Float(-0.5).addingProduct(scale, Float(o) + 0.5) : scale * (Float(o) + 0.5) - 0.5
                let source = max(unclamped, 0)
                let i0 = min(Int(source.rounded(.down)), input - 1)
                let l1 = min(max(source - Float(i0), 0), 1)
                index0.append(i0)
                index1.append(i0 + (i0 < input - 1 ? 1 : 0))
                lambda0.append(1 - l1)
                lambda1.append(l1)
            }
        }
    }

    /// `a·w0 + b·w1` in ATen's order: the first product fused into the addition of the second.
    @inline(__always) static func lerp(_ a: Float, _ w0: Float, _ b: Float, _ w1: Float) -> Float {
        #if LADON_FMA
        return (b * w1).addingProduct(a, w0)
        #else
        return a * w0 + b * w1
        #endif
    }

    @inline(__always) static func lerp(_ a: Lanes, _ w0: Lanes, _ b: Lanes, _ w1: Lanes) -> Lanes {
        #if LADON_FMA
        return (b * w1).addingProduct(a, w0)
        #else
        return a * w0 + b * w1
        #endif
    }

    /// Separable bilinear resampling: every needed input row is interpolated along W once (two rows are
    /// cached), then output rows are blended along H with SIMD. Planes are split over ``Kernels/threadCount`` threads.
    private static func bilinear(_ x: Tensor, outputHeight oh: Int, outputWidth ow: Int,
                                 scaleHeight: Float, scaleWidth: Float) -> Tensor {
        let (n, c, h, w) = (x.n, x.c, x.h, x.w)
        let fused = oh + ow <= 128   // ATen's channels-last path, see resizeBilinear(_:outputHeight:outputWidth:)
        let ty = LinearTaps(input: h, output: oh, scale: scaleHeight, fusedIndex: fused)
        let tx = LinearTaps(input: w, output: ow, scale: scaleWidth, fusedIndex: fused)
        let planes = n * c
        return Tensor(shape: [n, c, oh, ow], unsafeUninitialized: { out in
            guard let dst = out.baseAddress, planes > 0, oh > 0, ow > 0 else { return }
            x.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress else { return }
                bilinearPlanes(planes, into: dst, oh: oh, ow: ow, ty: ty) { plane, r, buffer in
                    let line = src + (plane * h + r) * w
                    for o in 0..<ow {
                        buffer[o] = lerp(line[tx.index0[o]], tx.lambda0[o], line[tx.index1[o]], tx.lambda1[o])
                    }
                }
            }
        })
    }

    /// ``bilinearPlane(into:oh:ow:outputRows:ty:rows:fillRow:)`` for `planes` consecutive output planes of `dst`,
    /// split over ``Kernels/threadCount`` threads; `fillRow(plane, r, buffer)` interpolates that plane's input row
    /// `r` along W. Fewer planes than 4 per thread (an RGB image's 3 on 2 threads) are cut into one band of output
    /// rows per thread, so the threads get equal shares (1 + 2 planes would leave one idle a third of the time).
    private static func bilinearPlanes(_ planes: Int, into dst: UnsafeMutablePointer<Float>, oh: Int, ow: Int,
                                       ty: LinearTaps, fillRow: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let threads = Kernels.resolvedThreads(nil)
        let bands = planes < 4 * threads ? min(threads, oh) : 1
        WorkSplit.forEachRange(planes * bands, work: planes * oh * ow * 4) { range in
            let rows = UnsafeMutablePointer<Float>.allocate(capacity: 2 * ow)
            defer { rows.deallocate() }
            for item in range {
                let plane = item / bands, band = item % bands
                bilinearPlane(into: dst + plane * oh * ow, oh: oh, ow: ow,
                              outputRows: oh * band / bands..<oh * (band + 1) / bands, ty: ty, rows: rows) { r, buffer in
                    fillRow(plane, r, buffer)
                }
            }
        }
    }

    /// Rows `outputRows` of one output plane: `fillRow(r, buffer)` writes input row `r` interpolated along W (`ow`
    /// values); each needed row is made once (two are cached), then output rows are blended along H.
    private static func bilinearPlane(into dst: UnsafeMutablePointer<Float>, oh: Int, ow: Int, outputRows: Range<Int>,
                                      ty: LinearTaps, rows: UnsafeMutablePointer<Float>,
                                      fillRow: (Int, UnsafeMutablePointer<Float>) -> Void) {
        var cached = (-1, -1)   // input rows held in rows[0..<ow] and rows[ow..<2ow]
        func horizontal(_ r: Int, avoiding keep: Int) -> UnsafeMutablePointer<Float> {
            if cached.0 == r { return rows }
            if cached.1 == r { return rows + ow }
            let slot = cached.0 == keep ? 1 : 0
            let buffer = rows + slot * ow
            fillRow(r, buffer)
            if slot == 0 { cached.0 = r } else { cached.1 = r }
            return buffer
        }
        let lanes = Lanes.scalarCount, blocks = ow / lanes
        for y in outputRows {
            let r0 = ty.index0[y], r1 = ty.index1[y]
            let t0 = horizontal(r0, avoiding: r1)
            let t1 = horizontal(r1, avoiding: r0)
            let l0 = ty.lambda0[y], l1 = ty.lambda1[y]
            let row = dst + y * ow
            let a = UnsafeRawPointer(t0), b = UnsafeRawPointer(t1), d = UnsafeMutableRawPointer(row)
            let w0 = Lanes(repeating: l0), w1 = Lanes(repeating: l1)
            for blk in 0..<blocks {
                let o = blk * lanes * 4
                let v = lerp(a.loadUnaligned(fromByteOffset: o, as: Lanes.self), w0,
                             b.loadUnaligned(fromByteOffset: o, as: Lanes.self), w1)
                d.storeBytes(of: v, toByteOffset: o, as: Lanes.self)
            }
            for i in (blocks * lanes)..<ow { row[i] = lerp(t0[i], l0, t1[i], l1) }
        }
    }

    /// ``resizeBilinear(_:outputHeight:outputWidth:)`` of an 8-bit RGB image (row-major, 3 bytes per pixel) whose
    /// values are first mapped through `lookup[channel][byte]`, without making the full-size tensor: only the
    /// pixels the interpolation reads are looked up. With `lookup` the exact per-pixel values of a preprocessing
    /// (`(Float(v) / 255 − mean) / std`) the result is bit for bit that of resizing the mapped tensor; a 12-megapixel
    /// photo is read once instead of becoming 290 MB of `Float` planes. `[1, 3, outputHeight, outputWidth]`.
    package static func resizeBilinear(rgb8 pixels: UnsafeBufferPointer<UInt8>, width w: Int, height h: Int,
                                       lookup: [[Float]], outputHeight oh: Int, outputWidth ow: Int) -> Tensor {
        precondition(w > 0 && h > 0 && pixels.count == 3 * w * h && lookup.count == 3 && lookup.allSatisfy { $0.count == 256 },
                     "resizeBilinear(rgb8:): \(pixels.count) bytes for \(w)x\(h), lookup \(lookup.map(\.count))")
        precondition(oh > 0 && ow > 0, "resizeBilinear(rgb8:): output \(oh)x\(ow)")
        let fused = oh + ow <= 128
        let ty = LinearTaps(input: h, output: oh, scale: Float(h) / Float(oh), fusedIndex: fused)
        let tx = LinearTaps(input: w, output: ow, scale: Float(w) / Float(ow), fusedIndex: fused)
        return Tensor(shape: [1, 3, oh, ow], unsafeUninitialized: { out in
            guard let dst = out.baseAddress, let src = pixels.baseAddress else { return }
            bilinearPlanes(3, into: dst, oh: oh, ow: ow, ty: ty) { channel, r, buffer in
                lookup[channel].withUnsafeBufferPointer { table in
                    let line = src + 3 * r * w + channel
                    for o in 0..<ow {
                        buffer[o] = lerp(table[Int(line[3 * tx.index0[o]])], tx.lambda0[o],
                                         table[Int(line[3 * tx.index1[o]])], tx.lambda1[o])
                    }
                }
            }
        })
    }

    /// Plain reference for ``resizeBilinear(_:outputHeight:outputWidth:)``: ATen's per-pixel formula
    /// `fma(fma(x00, wx0, x01·wx1), wy0, fma(x10, wx0, x11·wx1)·wy1)`, with the fused multiply-adds written
    /// out (`addingProduct`) so that it is the bit-level specification on every build.
    package static func resizeBilinearReference(_ x: Tensor, outputHeight oh: Int, outputWidth ow: Int) -> Tensor {
        checkResize(x, oh, ow, "resizeBilinear")
        let (n, c, h, w) = (x.n, x.c, x.h, x.w)
        let fused = oh + ow <= 128
        let ty = LinearTaps(input: h, output: oh, scale: Float(h) / Float(oh), fusedIndex: fused)
        let tx = LinearTaps(input: w, output: ow, scale: Float(w) / Float(ow), fusedIndex: fused)
        func mix(_ a: Float, _ w0: Float, _ b: Float, _ w1: Float) -> Float { (b * w1).addingProduct(a, w0) }
        var out = Tensor(shape: [n, c, oh, ow])
        for plane in 0..<(n * c) {
            func at(_ y: Int, _ x0: Int) -> Float { x.scalars[(plane * h + y) * w + x0] }
            for y in 0..<oh {
                for xo in 0..<ow {
                    let (y0, y1, x0, x1) = (ty.index0[y], ty.index1[y], tx.index0[xo], tx.index1[xo])
                    let top = mix(at(y0, x0), tx.lambda0[xo], at(y0, x1), tx.lambda1[xo])
                    let bottom = mix(at(y1, x0), tx.lambda0[xo], at(y1, x1), tx.lambda1[xo])
                    out.scalars[(plane * oh + y) * ow + xo] = mix(top, ty.lambda0[y], bottom, ty.lambda1[y])
                }
            }
        }
        return out
    }

    // MARK: - Nearest

    /// `F.interpolate(x, size=(outputHeight, outputWidth), mode="nearest")` (PyTorch's legacy nearest):
    /// `src = min(⌊Float(dst) · (Float(in) / Float(out))⌋, in − 1)` per axis.
    package static func upsampleNearest(_ x: Tensor, outputHeight: Int, outputWidth: Int) -> Tensor {
        checkResize(x, outputHeight, outputWidth, "upsampleNearest")
        let (n, c, h, w) = (x.n, x.c, x.h, x.w)
        let (oh, ow) = (outputHeight, outputWidth)
        let ys = nearestIndices(input: h, output: oh), xs = nearestIndices(input: w, output: ow)
        let planes = n * c
        return Tensor(shape: [n, c, oh, ow], unsafeUninitialized: { out in
            guard let dst = out.baseAddress, planes > 0, oh > 0, ow > 0 else { return }
            x.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress else { return }
                WorkSplit.forEachRange(planes, work: planes * oh * ow) { range in
                    for plane in range {
                        let input = src + plane * h * w, output = dst + plane * oh * ow
                        for y in 0..<oh {
                            let row = output + y * ow
                            // Consecutive output rows often read the same input row: copy the finished one.
                            if y > 0 && ys[y] == ys[y - 1] {
                                row.update(from: row - ow, count: ow)
                                continue
                            }
                            let line = input + ys[y] * w
                            for o in 0..<ow { row[o] = line[xs[o]] }
                        }
                    }
                }
            }
        })
    }

    /// Plain reference for ``upsampleNearest(_:outputHeight:outputWidth:)``.
    package static func upsampleNearestReference(_ x: Tensor, outputHeight oh: Int, outputWidth ow: Int) -> Tensor {
        checkResize(x, oh, ow, "upsampleNearest")
        let (n, c, h, w) = (x.n, x.c, x.h, x.w)
        let sh = Float(h) / Float(oh), sw = Float(w) / Float(ow)
        var out = Tensor(shape: [n, c, oh, ow])
        for plane in 0..<(n * c) {
            for y in 0..<oh {
                let iy = min(Int((Float(y) * sh).rounded(.down)), h - 1)
                for xo in 0..<ow {
                    let ix = min(Int((Float(xo) * sw).rounded(.down)), w - 1)
                    out.scalars[(plane * oh + y) * ow + xo] = x.scalars[(plane * h + iy) * w + ix]
                }
            }
        }
        return out
    }

    private static func nearestIndices(input: Int, output: Int) -> [Int] {
        let scale = Float(input) / Float(output)
        return (0..<output).map { min(Int((Float($0) * scale).rounded(.down)), input - 1) }
    }

    private static func checkResize(_ x: Tensor, _ oh: Int, _ ow: Int, _ op: String) {
        precondition(x.rank == 4, "\(op): expected NCHW, got \(x.shape)")
        precondition(oh >= 1 && ow >= 1, "\(op): output size \(oh)×\(ow) must be positive")
        precondition(x.h >= 1 && x.w >= 1, "\(op): empty input \(x.shape)")
    }
}
