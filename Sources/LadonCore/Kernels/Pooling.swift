// Spatial pooling over NCHW tensors: max pooling, average pooling, adaptive average pooling, global average pooling.

extension Kernels {
    // MARK: - Max pooling

    /// The output extent of a pooling window sweep, PyTorch floor mode: `⌊(in + 2p − k) / s⌋ + 1`.
    package static func pooledExtent(_ input: Int, kernelSize: Int, stride: Int, padding: Int) -> Int {
        (input + 2 * padding - kernelSize) / stride + 1
    }

    /// 2-D max pooling with a square window, PyTorch `F.max_pool2d(x, k, s, p)` semantics (floor mode,
    /// dilation 1). Padding never wins (it acts as −∞). A NaN in a window makes that output NaN.
    ///
    /// - Precondition: `kernelSize ≥ 1`, `stride ≥ 1`, `0 ≤ padding ≤ kernelSize / 2` (as PyTorch requires),
    ///   and every spatial extent at least `kernelSize − 2·padding`.
    package static func maxPool2d(_ x: Tensor, kernelSize: Int, stride: Int, padding: Int = 0) -> Tensor {
        let (n, c, h, w) = checkMaxPool(x, kernelSize: kernelSize, stride: stride, padding: padding)
        let oh = pooledExtent(h, kernelSize: kernelSize, stride: stride, padding: padding)
        let ow = pooledExtent(w, kernelSize: kernelSize, stride: stride, padding: padding)
        let planes = n * c
        return Tensor(shape: [n, c, oh, ow], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress, let dst = out.baseAddress else { return }
                WorkSplit.forEachRange(planes, work: planes * oh * ow * kernelSize * kernelSize) { range in
                    // Vertical maxima of the window rows, padded with −∞ by `padding` on both sides, and
                    // their sliding maxima along the row.
                    let paddedWidth = w + 2 * padding
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * paddedWidth)
                    defer { scratch.deallocate() }
                    scratch.initialize(repeating: -.infinity, count: 2 * paddedWidth)
                    for plane in range {
                        maxPoolPlane(src + plane * h * w, h: h, w: w, into: dst + plane * oh * ow, oh: oh, ow: ow,
                                     kernelSize: kernelSize, stride: stride, padding: padding,
                                     column: scratch, window: scratch + paddedWidth)
                    }
                }
            }
        })
    }

    /// `m` updated with `v` the way ATen's max pooling does: `v` wins if greater or NaN.
    @inline(__always) private static func poolMax(_ m: Lanes, _ v: Lanes) -> Lanes {
        m.replacing(with: v, where: (v .> m) .| (v .!= v))
    }

    /// One channel plane, per output row: the vertical max over the window rows into `column` (SIMD along
    /// the row, padding columns stay −∞), the sliding max of `kernelSize` neighbours into `window` (SIMD),
    /// then every `stride`-th window value. All branch-free; the order of comparisons differs from ATen's
    /// only in which of two equal values is kept (visible at most as the sign of a zero maximum).
    private static func maxPoolPlane(_ src: UnsafePointer<Float>, h: Int, w: Int,
                                     into dst: UnsafeMutablePointer<Float>, oh: Int, ow: Int,
                                     kernelSize k: Int, stride s: Int, padding p: Int,
                                     column: UnsafeMutablePointer<Float>, window: UnsafeMutablePointer<Float>) {
        let lanes = Lanes.scalarCount
        let span = (ow - 1) * s + 1               // window starts that are sampled: 0, s, 2s, …
        let columnRaw = UnsafeMutableRawPointer(column + p), windowRaw = UnsafeMutableRawPointer(window)
        for y in 0..<oh {
            let y0 = max(y * s - p, 0), y1 = min(y * s - p + k, h)
            var i = 0
            while i + lanes <= w {
                var m = UnsafeRawPointer(src + y0 * w + i).loadUnaligned(as: Lanes.self)
                for r in (y0 + 1)..<y1 { m = poolMax(m, UnsafeRawPointer(src + r * w + i).loadUnaligned(as: Lanes.self)) }
                columnRaw.storeBytes(of: m, toByteOffset: i * 4, as: Lanes.self)
                i += lanes
            }
            while i < w {
                var m = src[y0 * w + i]
                for r in (y0 + 1)..<y1 {
                    let v = src[r * w + i]
                    if v > m || v.isNaN { m = v }
                }
                column[p + i] = m
                i += 1
            }
            // window[j] = max(column[j ..< j + k]) for j < span; column has w + 2p ≥ span + k − 1 entries.
            let colRaw = UnsafeRawPointer(column)
            var j = 0
            while j + lanes <= span {
                var m = colRaw.loadUnaligned(fromByteOffset: j * 4, as: Lanes.self)
                for dx in 1..<k { m = poolMax(m, colRaw.loadUnaligned(fromByteOffset: (j + dx) * 4, as: Lanes.self)) }
                windowRaw.storeBytes(of: m, toByteOffset: j * 4, as: Lanes.self)
                j += lanes
            }
            while j < span {
                var m = column[j]
                for dx in 1..<k {
                    let v = column[j + dx]
                    if v > m || v.isNaN { m = v }
                }
                window[j] = m
                j += 1
            }
            let row = dst + y * ow
            for xo in 0..<ow { row[xo] = window[xo * s] }
        }
    }

    /// Plain reference for ``maxPool2d(_:kernelSize:stride:padding:)``: the loop nest of ATen's CPU kernel.
    package static func maxPool2dReference(_ x: Tensor, kernelSize k: Int, stride s: Int, padding p: Int = 0) -> Tensor {
        let (n, c, h, w) = checkMaxPool(x, kernelSize: k, stride: s, padding: p)
        let oh = pooledExtent(h, kernelSize: k, stride: s, padding: p)
        let ow = pooledExtent(w, kernelSize: k, stride: s, padding: p)
        var out = Tensor(shape: [n, c, oh, ow])
        for plane in 0..<(n * c) {
            for y in 0..<oh {
                for xo in 0..<ow {
                    var m = -Float.infinity
                    for iy in max(y * s - p, 0)..<min(y * s - p + k, h) {
                        for ix in max(xo * s - p, 0)..<min(xo * s - p + k, w) {
                            let v = x.scalars[(plane * h + iy) * w + ix]
                            if v > m || v.isNaN { m = v }
                        }
                    }
                    out.scalars[(plane * oh + y) * ow + xo] = m
                }
            }
        }
        return out
    }

    private static func checkMaxPool(_ x: Tensor, kernelSize k: Int, stride s: Int, padding p: Int)
        -> (Int, Int, Int, Int) {
        precondition(x.rank == 4, "maxPool2d: expected NCHW, got \(x.shape)")
        precondition(k >= 1 && s >= 1 && p >= 0 && p <= k / 2,
                     "maxPool2d: kernelSize \(k), stride \(s), padding \(p) (need k ≥ 1, s ≥ 1, 0 ≤ p ≤ k/2)")
        precondition(x.h + 2 * p >= k && x.w + 2 * p >= k, "maxPool2d: input \(x.shape) smaller than window \(k)")
        return (x.n, x.c, x.h, x.w)
    }

    // MARK: - Average pooling

    /// The output extent of an average pool, PyTorch's `pooling_output_shape`: floor mode
    /// `⌊(in + 2p − k) / s⌋ + 1`; ceil mode `⌈(in + 2p − k) / s⌉ + 1`, less one if the last window would start
    /// in the right padding (`(out − 1)·s ≥ in + p`).
    package static func avgPooledExtent(_ input: Int, kernelSize k: Int, stride s: Int, padding p: Int,
                                       ceilMode: Bool) -> Int {
        var out = floorDivide(input + 2 * p - k + (ceilMode ? s - 1 : 0), s) + 1
        if ceilMode && (out - 1) * s >= input + p { out -= 1 }
        return out
    }

    /// 2-D average pooling with a square window, PyTorch `nn.AvgPool2d(k, s, p, ceil_mode, count_include_pad)`.
    ///
    /// A window is clipped to the padded extent `[−p, in + p)`; with `countIncludePad` its divisor is the clipped
    /// window's size (padding counts, so ResNeSt's 3×3/s2/p1 pool always divides by 9), otherwise the number of
    /// input elements it covers (ResNeSt's 2×2/s2 ceil-mode shortcut pool divides the last, one-wide window of an
    /// odd extent by 2 or 1). Each window is summed in float, row by row, then divided, as ATen's CPU kernel
    /// does, so results are bit-identical to PyTorch's.
    ///
    /// - Precondition: `kernelSize ≥ 1`, `stride ≥ 1`, `0 ≤ padding ≤ kernelSize / 2`, and every output
    ///   extent at least 1.
    package static func avgPool2d(_ x: Tensor, kernelSize k: Int, stride s: Int, padding p: Int = 0,
                                 ceilMode: Bool = false, countIncludePad: Bool = true) -> Tensor {
        let (oh, ow) = checkAvgPool(x, kernelSize: k, stride: s, padding: p, ceilMode: ceilMode)
        let (h, w) = (x.h, x.w), planes = x.n * x.c
        return Tensor(shape: [x.n, x.c, oh, ow], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress, let dst = out.baseAddress else { return }
                WorkSplit.forEachRange(planes, work: planes * oh * ow * k * k) { range in
                    for plane in range {
                        let input = src + plane * h * w, output = dst + plane * oh * ow
                        for y in 0..<oh {
                            let (y0, y1, yCount) = avgWindow(y, kernelSize: k, stride: s, padding: p, extent: h)
                            for xo in 0..<ow {
                                let (x0, x1, xCount) = avgWindow(xo, kernelSize: k, stride: s, padding: p, extent: w)
                                guard y0 < y1 && x0 < x1 else { output[y * ow + xo] = 0; continue }
                                var sum: Float = 0
                                for iy in y0..<y1 {
                                    for ix in x0..<x1 { sum += input[iy * w + ix] }
                                }
                                let divisor = countIncludePad ? yCount * xCount : (y1 - y0) * (x1 - x0)
                                output[y * ow + xo] = sum / Float(divisor)
                            }
                        }
                    }
                }
            }
        })
    }

    /// Plain reference for ``avgPool2d(_:kernelSize:stride:padding:ceilMode:countIncludePad:)``: the same windows
    /// and divisors, summed in Double.
    package static func avgPool2dReference(_ x: Tensor, kernelSize k: Int, stride s: Int, padding p: Int = 0,
                                          ceilMode: Bool = false, countIncludePad: Bool = true) -> Tensor {
        let (oh, ow) = checkAvgPool(x, kernelSize: k, stride: s, padding: p, ceilMode: ceilMode)
        let (h, w) = (x.h, x.w)
        var out = Tensor(shape: [x.n, x.c, oh, ow])
        for plane in 0..<(x.n * x.c) {
            for y in 0..<oh {
                for xo in 0..<ow {
                    // The window in padded coordinates, clipped to the padded extent, then to the input.
                    let py0 = y * s - p, py1 = min(py0 + k, h + p), px0 = xo * s - p, px1 = min(px0 + k, w + p)
                    var sum = 0.0, covered = 0
                    for iy in max(py0, 0)..<max(min(py1, h), max(py0, 0)) {
                        for ix in max(px0, 0)..<max(min(px1, w), max(px0, 0)) {
                            sum += Double(x.scalars[(plane * h + iy) * w + ix])
                            covered += 1
                        }
                    }
                    let divisor = countIncludePad ? (py1 - py0) * (px1 - px0) : covered
                    out.scalars[(plane * oh + y) * ow + xo] = covered == 0 ? 0 : Float(sum / Double(divisor))
                }
            }
        }
        return out
    }

    /// Input range `lo..<hi` of average-pool window `i` and its extent clipped to the padded input.
    @inline(__always) private static func avgWindow(_ i: Int, kernelSize k: Int, stride s: Int, padding p: Int,
                                                    extent: Int) -> (Int, Int, Int) {
        let start = i * s - p, end = min(start + k, extent + p)
        return (max(start, 0), min(end, extent), end - start)
    }

    private static func checkAvgPool(_ x: Tensor, kernelSize k: Int, stride s: Int, padding p: Int,
                                     ceilMode: Bool) -> (Int, Int) {
        precondition(x.rank == 4, "avgPool2d: expected NCHW, got \(x.shape)")
        precondition(k >= 1 && s >= 1 && p >= 0 && p <= k / 2,
                     "avgPool2d: kernelSize \(k), stride \(s), padding \(p) (need k ≥ 1, s ≥ 1, 0 ≤ p ≤ k/2)")
        let oh = avgPooledExtent(x.h, kernelSize: k, stride: s, padding: p, ceilMode: ceilMode)
        let ow = avgPooledExtent(x.w, kernelSize: k, stride: s, padding: p, ceilMode: ceilMode)
        precondition(oh >= 1 && ow >= 1, "avgPool2d: input \(x.shape) smaller than window \(k)")
        return (oh, ow)
    }

    // MARK: - Adaptive average pooling

    /// First input index of adaptive-pooling bin `i` of `output` bins over `input`: `⌊i·in / out⌋`.
    @inline(__always) static func adaptiveStart(_ i: Int, output: Int, input: Int) -> Int {
        (i / output) * input + ((i % output) * input) / output
    }

    /// One past the last input index of adaptive-pooling bin `i`: `⌈(i+1)·in / out⌉`.
    @inline(__always) static func adaptiveEnd(_ i: Int, output: Int, input: Int) -> Int {
        1 + ((i + 1) * input - 1) / output
    }

    /// PyTorch `F.adaptive_avg_pool2d(x, (outputHeight, outputWidth))`: bin `i` averages input rows
    /// `⌊i·H/oh⌋ ..< ⌈(i+1)·H/oh⌉` (bins overlap when the sizes do not divide). A 1×1 output takes the
    /// ``globalAveragePool(_:)`` path, as PyTorch routes it to `mean`; other sizes reproduce ATen's CPU
    /// kernel exactly (sequential float sum, then `/ kh / kw`).
    package static func adaptiveAvgPool2d(_ x: Tensor, outputHeight: Int, outputWidth: Int) -> Tensor {
        precondition(x.rank == 4 && outputHeight >= 1 && outputWidth >= 1,
                     "adaptiveAvgPool2d: input \(x.shape), output \(outputHeight)×\(outputWidth)")
        if outputHeight == 1 && outputWidth == 1 && x.h * x.w > 0 { return globalAveragePool(x) }
        return adaptiveAvgPool2dReference(x, outputHeight: outputHeight, outputWidth: outputWidth)
    }

    /// Plain reference for ``adaptiveAvgPool2d(_:outputHeight:outputWidth:)``, a line-for-line port of
    /// ATen's `cpu_adaptive_avg_pool` (contiguous NCHW), including for 1×1 outputs.
    package static func adaptiveAvgPool2dReference(_ x: Tensor, outputHeight oh: Int, outputWidth ow: Int) -> Tensor {
        precondition(x.rank == 4 && oh >= 1 && ow >= 1, "adaptiveAvgPool2d: input \(x.shape), output \(oh)×\(ow)")
        precondition(x.h >= 1 && x.w >= 1, "adaptiveAvgPool2d: empty spatial extent in \(x.shape)")
        let (n, c, h, w) = (x.n, x.c, x.h, x.w)
        var out = Tensor(shape: [n, c, oh, ow])
        for plane in 0..<(n * c) {
            let base = plane * h * w
            for y in 0..<oh {
                let y0 = adaptiveStart(y, output: oh, input: h), y1 = adaptiveEnd(y, output: oh, input: h)
                for xo in 0..<ow {
                    let x0 = adaptiveStart(xo, output: ow, input: w), x1 = adaptiveEnd(xo, output: ow, input: w)
                    var sum: Float = 0
                    for iy in y0..<y1 {
                        for ix in x0..<x1 { sum += x.scalars[base + iy * w + ix] }
                    }
                    out.scalars[(plane * oh + y) * ow + xo] = sum / Float(y1 - y0) / Float(x1 - x0)
                }
            }
        }
        return out
    }

    /// Global average pooling, `x.mean((-2, -1), keepdim=True)`: `[N, C, H, W] → [N, C, 1, 1]`.
    ///
    /// Each plane is summed in sixteen float lanes of four-way unrolled partial sums (a blocked,
    /// pairwise-like order whose error grows far slower than a sequential sum), then divided by `H·W`.
    /// PyTorch uses its own cascade sum, so results agree to a few ulps, not bit for bit.
    ///
    /// The planes are split over the threads (`threads`, or ``Kernels/threadCount``) from 64K values on: the
    /// classifier's pool over layer4 (2048 planes of 13×13, just written by the GEMM and mostly out of L2) waits on L3,
    /// not arithmetic, and each plane's sum is the same whichever thread takes it.
    package static func globalAveragePool(_ x: Tensor, threads: Int? = nil) -> Tensor {
        precondition(x.rank == 4 && x.h * x.w > 0, "globalAveragePool: expected non-empty NCHW, got \(x.shape)")
        let planes = x.n * x.c, hw = x.h * x.w
        return Tensor(shape: [x.n, x.c, 1, 1], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xp in
                guard let src = xp.baseAddress, let dst = out.baseAddress else { return }
                WorkSplit.forEachRange(planes, work: planes * hw, minimumWork: 1 << 16, threads: threads) { range in
                    for plane in range { dst[plane] = planeSum(src + plane * hw, count: hw) / Float(hw) }
                }
            }
        })
    }

    /// Plain reference for ``globalAveragePool(_:)``: a sequential sum in Double.
    package static func globalAveragePoolReference(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.h * x.w > 0, "globalAveragePool: expected non-empty NCHW, got \(x.shape)")
        let hw = x.h * x.w
        var out = Tensor(shape: [x.n, x.c, 1, 1])
        for plane in 0..<(x.n * x.c) {
            var sum = 0.0
            for i in 0..<hw { sum += Double(x.scalars[plane * hw + i]) }
            out.scalars[plane] = Float(sum / Double(hw))
        }
        return out
    }

    /// Sum of `count` floats with 4×16 independent accumulators.
    static func planeSum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        let lanes = Lanes.scalarCount, step = 4 * lanes
        var a0 = Lanes(), a1 = Lanes(), a2 = Lanes(), a3 = Lanes()
        var i = 0
        while i + step <= count {
            a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
            a1 += raw.loadUnaligned(fromByteOffset: (i + lanes) * 4, as: Lanes.self)
            a2 += raw.loadUnaligned(fromByteOffset: (i + 2 * lanes) * 4, as: Lanes.self)
            a3 += raw.loadUnaligned(fromByteOffset: (i + 3 * lanes) * 4, as: Lanes.self)
            i += step
        }
        while i + lanes <= count {
            a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
            i += lanes
        }
        var tail: Float = 0
        while i < count { tail += p[i]; i += 1 }
        return ((a0 + a1) + (a2 + a3)).sum() + tail
    }
}
