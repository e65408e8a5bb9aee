// RoIAlign (torchvision `ops.roi_align`, CPU kernel): bilinear sampling of box regions into fixed-size bins.
import CLadonKernels
import Dispatch

extension Kernels {
    /// RoIAlign over one feature map, exactly as torchvision's CPU kernel (`roi_align_kernel.cpp`).
    ///
    /// For every RoI the bilinear taps and weights of all `outputSize² · grid²` sample points are computed once
    /// (`pre_calc_for_bilinear_interpolate`), then reused for every channel. Float32 operation order follows the
    /// C++ code, so results match torchvision to the last bit or two. Work is split over RoIs on ``Kernels/threadCount`` threads.
    ///
    /// - Parameters:
    ///   - feature: `[1, C, H, W]`.
    ///   - boxes: RoIs in input-image pixels (`x1, y1, x2, y2`).
    ///   - spatialScale: feature size / image size (e.g. 1/4 for P2).
    ///   - outputSize: bins per side of each pooled RoI (7 for the box head).
    ///   - samplingRatio: samples per bin side; `<= 0` means adaptive `ceil(roi size / outputSize)`
    ///     (capped at 1024 per side so absurd boxes cannot stall).
    ///   - aligned: `true` shifts coordinates by −0.5 pixel (Detectron2); Faster R-CNN uses `false`.
    /// - Returns: `[R, C, outputSize, outputSize]`.
    ///
    /// Sample points outside `[-1, H] × [-1, W]` contribute 0. Unlike the C++ kernel (undefined behaviour),
    /// NaN coordinates also contribute 0.
    package static func roiAlign(_ feature: Tensor, boxes: [Box], spatialScale: Float, outputSize: Int = 7,
                                samplingRatio: Int = 2, aligned: Bool = false) -> Tensor {
        roiAlign(feature, boxes: boxes, spatialScale: spatialScale, outputSize: outputSize, samplingRatio: samplingRatio,
                 aligned: aligned, layout: .automatic)
    }

    /// ``roiAlign(_:boxes:spatialScale:outputSize:samplingRatio:aligned:)`` with a forced evaluation order (tests).
    static func roiAlign(_ feature: Tensor, boxes: [Box], spatialScale: Float, outputSize: Int, samplingRatio: Int,
                         aligned: Bool, layout: RoIAlignLayout) -> Tensor {
        precondition(feature.rank == 4 && feature.n == 1, "roiAlign: feature must be [1, C, H, W], got \(feature.shape)")
        precondition(outputSize > 0, "roiAlign: outputSize must be positive")
        var out = Tensor(shape: [boxes.count, feature.c, outputSize, outputSize])
        if boxes.isEmpty || feature.c == 0 { return out }
        out.withUnsafeMutableBufferPointer { op in
            roiAlign(into: op.baseAddress!, rows: Array(boxes.indices), feature: feature, boxes: boxes,
                     spatialScale: spatialScale, outputSize: outputSize, samplingRatio: samplingRatio, aligned: aligned,
                     layout: layout)
        }
        return out
    }

    /// Pools `boxes[k]` into output row `rows[k]` of `output` (`[*, C, P, P]` rows); used by the multi-scale pooler
    /// to scatter each level's RoIs straight into the shared result.
    static func roiAlign(into output: UnsafeMutablePointer<Float>, rows: [Int], feature: Tensor, boxes: [Box],
                         spatialScale: Float, outputSize: Int, samplingRatio: Int, aligned: Bool,
                         layout: RoIAlignLayout = .automatic) {
        precondition(rows.count == boxes.count)
        let (channels, height, width) = (feature.c, feature.h, feature.w)
        let rowSize = channels * outputSize * outputSize
        if height == 0 || width == 0 || channels == 0 {  // nothing to sample: every row is zero
            for row in rows { (output + row * rowSize).initialize(repeating: 0, count: rowSize) }
            return
        }
        // Channels-last pays one transpose of the map and then gathers all channels of a tap with SIMD loads; it
        // wins once the RoIs take more taps per channel than the plane has pixels (e.g. 1000 RoIs on P2).
        let samples = samplingRatio > 0 ? samplingRatio * samplingRatio : 4
        let channelsLast: Bool, level: Int32
        switch layout {
        case .automatic: (channelsLast, level) = (boxes.count * outputSize * outputSize * samples * 4 > height * width, 0)
        case .planar: (channelsLast, level) = (false, 0)
        case .channelsLast: (channelsLast, level) = (true, 0)
        case .channelsLastAtLevel(let l): (channelsLast, level) = (true, l)
        }
        let source = channelsLast ? Self.channelsLast(feature) : feature.scalars
        source.withUnsafeBufferPointer { fp in
            let input = fp.baseAddress!
            // Each part writes only the rows of its own RoIs.
            WorkSplit.forEachRange(boxes.count, work: boxes.count * outputSize * outputSize * samples * channels) { range in
                var taps = RoIAlignTaps()
                for k in range {
                    taps.compute(boxes[k], spatialScale: spatialScale, height: height, width: width,
                                 pooled: outputSize, samplingRatio: samplingRatio, aligned: aligned)
                    let dst = output + rows[k] * rowSize
                    if channelsLast {
                        taps.applyChannelsLast(input: input, channels: channels, output: dst, level: level)
                    } else {
                        taps.apply(input: input, channels: channels, planeSize: height * width, output: dst)
                    }
                }
            }
        }
    }

    /// `[1, C, H, W]` → `[H·W, C]` (``transpose(_:rows:columns:into:threads:level:)``: 8×8 register blocks over the threads).
    static func channelsLast(_ feature: Tensor) -> [Float] {
        let (c, hw) = (feature.c, feature.h * feature.w)
        return [Float](unsafeUninitializedCapacity: c * hw) { out, initialized in
            feature.withUnsafeBufferPointer { src in
                guard let dst = out.baseAddress, let base = src.baseAddress else { return }
                transpose(base, rows: c, columns: hw, into: dst)
            }
            initialized = c * hw
        }
    }

    /// Straightforward RoIAlign from the per-sample formula (test oracle): for every output element, average
    /// the bilinear samples directly, with no precomputation.
    package static func roiAlignReference(_ feature: Tensor, boxes: [Box], spatialScale: Float, outputSize: Int = 7,
                                         samplingRatio: Int = 2, aligned: Bool = false) -> Tensor {
        precondition(feature.rank == 4 && feature.n == 1)
        let (channels, height, width) = (feature.c, feature.h, feature.w)
        let p = outputSize
        var out = Tensor(shape: [boxes.count, channels, p, p])
        if height == 0 || width == 0 { return out }
        for (r, box) in boxes.enumerated() {
            let g = RoIAlignGeometry(box, spatialScale: spatialScale, pooled: p, samplingRatio: samplingRatio,
                                     aligned: aligned)
            for c in 0..<channels {
                for ph in 0..<p {
                    for pw in 0..<p {
                        var sum: Float = 0
                        for iy in 0..<g.gridH {
                            let y = g.startH + Float(ph) * g.binH + (Float(iy) + 0.5) * g.binH / Float(g.gridH)
                            for ix in 0..<g.gridW {
                                let x = g.startW + Float(pw) * g.binW + (Float(ix) + 0.5) * g.binW / Float(g.gridW)
                                sum += bilinear(feature, c: c, y: y, x: x, height: height, width: width)
                            }
                        }
                        out[r, c, ph, pw] = sum / Float(max(g.gridH * g.gridW, 1))
                    }
                }
            }
        }
        return out
    }

    /// One bilinear sample, torchvision's `bilinear_interpolate` (0 outside `[-1, H] × [-1, W]`).
    private static func bilinear(_ f: Tensor, c: Int, y yIn: Float, x xIn: Float, height: Int, width: Int) -> Float {
        if yIn.isNaN || xIn.isNaN || yIn < -1 || yIn > Float(height) || xIn < -1 || xIn > Float(width) { return 0 }
        var y = max(yIn, 0), x = max(xIn, 0)
        var y0 = Int(y), x0 = Int(x), y1: Int, x1: Int
        if y0 >= height - 1 { y0 = height - 1; y1 = y0; y = Float(y0) } else { y1 = y0 + 1 }
        if x0 >= width - 1 { x0 = width - 1; x1 = x0; x = Float(x0) } else { x1 = x0 + 1 }
        let ly = y - Float(y0), lx = x - Float(x0), hy = 1 - ly, hx = 1 - lx
        return hy * hx * f[0, c, y0, x0] + hy * lx * f[0, c, y0, x1] + ly * hx * f[0, c, y1, x0] + ly * lx * f[0, c, y1, x1]
    }
}

/// Evaluation order of the RoIAlign kernel; both give identical float32 results.
enum RoIAlignLayout {
    /// Pick per call (channels-last when the RoIs outweigh the transpose).
    case automatic
    /// Channel by channel over the NCHW map (torchvision's loop order).
    case planar
    /// Over a transposed `[H·W, C]` copy, a run of channels of a tap at once.
    case channelsLast
    /// ``channelsLast`` with the C kernel built for one instruction set (1 baseline, 2 AVX2, 3 AVX-512; tests).
    case channelsLastAtLevel(Int32)
}

/// The scaled RoI and its bin/sampling grid (shared by the fast and the reference kernel).
struct RoIAlignGeometry {
    var startH: Float, startW: Float, binH: Float, binW: Float
    var gridH: Int, gridW: Int

    init(_ box: Box, spatialScale: Float, pooled: Int, samplingRatio: Int, aligned: Bool) {
        let offset: Float = aligned ? 0.5 : 0
        let startW = box.x1 * spatialScale - offset
        let startH = box.y1 * spatialScale - offset
        let endW = box.x2 * spatialScale - offset
        let endH = box.y2 * spatialScale - offset
        var roiW = endW - startW, roiH = endH - startH
        if !aligned {  // std::max(roi, 1): a NaN extent stays NaN
            roiW = roiW < 1 ? 1 : roiW
            roiH = roiH < 1 ? 1 : roiH
        }
        self.startH = startH
        self.startW = startW
        binH = roiH / Float(pooled)
        binW = roiW / Float(pooled)
        func adaptive(_ extent: Float) -> Int {
            let n = (extent / Float(pooled)).rounded(.up)
            return n.isFinite ? Int(min(max(n, 0), 1024)) : 1
        }
        gridH = samplingRatio > 0 ? samplingRatio : adaptive(roiH)
        gridW = samplingRatio > 0 ? samplingRatio : adaptive(roiW)
    }
}

/// Precomputed bilinear taps of one RoI: four positions and four weights per sample point.
struct RoIAlignTaps {
    private var positions: [Int32] = []
    private var weights: [Float] = []
    private var pooled = 0
    private var samplesPerBin = 0

    /// `pre_calc_for_bilinear_interpolate`, sample order (ph, pw, iy, ix).
    mutating func compute(_ box: Box, spatialScale: Float, height: Int, width: Int, pooled: Int,
                          samplingRatio: Int, aligned: Bool) {
        let g = RoIAlignGeometry(box, spatialScale: spatialScale, pooled: pooled, samplingRatio: samplingRatio,
                                 aligned: aligned)
        self.pooled = pooled
        samplesPerBin = g.gridH * g.gridW
        let total = pooled * pooled * samplesPerBin * 4
        positions.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        positions.reserveCapacity(total)
        weights.reserveCapacity(total)
        let (fh, fw) = (Float(height), Float(width))
        for ph in 0..<pooled {
            for pw in 0..<pooled {
                for iy in 0..<g.gridH {
                    let yy = g.startH + Float(ph) * g.binH + (Float(iy) + 0.5) * g.binH / Float(g.gridH)
                    for ix in 0..<g.gridW {
                        let xx = g.startW + Float(pw) * g.binW + (Float(ix) + 0.5) * g.binW / Float(g.gridW)
                        if yy.isNaN || xx.isNaN || yy < -1 || yy > fh || xx < -1 || xx > fw {
                            positions.append(contentsOf: [0, 0, 0, 0] as [Int32])
                            weights.append(contentsOf: [0, 0, 0, 0] as [Float])
                            continue
                        }
                        var y = yy <= 0 ? 0 : yy
                        var x = xx <= 0 ? 0 : xx
                        var yLow = Int(y), xLow = Int(x), yHigh: Int, xHigh: Int
                        if yLow >= height - 1 { yLow = height - 1; yHigh = yLow; y = Float(yLow) } else { yHigh = yLow + 1 }
                        if xLow >= width - 1 { xLow = width - 1; xHigh = xLow; x = Float(xLow) } else { xHigh = xLow + 1 }
                        let ly = y - Float(yLow), lx = x - Float(xLow)
                        let hy = 1 - ly, hx = 1 - lx
                        positions.append(Int32(yLow * width + xLow))
                        positions.append(Int32(yLow * width + xHigh))
                        positions.append(Int32(yHigh * width + xLow))
                        positions.append(Int32(yHigh * width + xHigh))
                        weights.append(hy * hx)
                        weights.append(hy * lx)
                        weights.append(ly * hx)
                        weights.append(ly * lx)
                    }
                }
            }
        }
    }

    /// Applies the taps to every channel: `output[c, ph, pw] = Σ_samples (w1·v1 + w2·v2 + w3·v3 + w4·v4) / count`.
    func apply(input: UnsafePointer<Float>, channels: Int, planeSize: Int, output: UnsafeMutablePointer<Float>) {
        let bins = pooled * pooled
        let count = Float(max(samplesPerBin, 1))
        positions.withUnsafeBufferPointer { pos in
            weights.withUnsafeBufferPointer { wt in
                for c in 0..<channels {
                    let plane = input + c * planeSize
                    let dst = output + c * bins
                    var s = 0
                    for bin in 0..<bins {
                        var value: Float = 0
                        for _ in 0..<samplesPerBin {
                            let sample = wt[s] * plane[Int(pos[s])] + wt[s + 1] * plane[Int(pos[s + 1])]
                                + wt[s + 2] * plane[Int(pos[s + 2])] + wt[s + 3] * plane[Int(pos[s + 3])]
                            value += sample
                            s += 4
                        }
                        dst[bin] = value / count
                    }
                }
            }
        }
    }

    /// The same sums over a channels-last `[H·W, C]` map (`cladon_roi_align_channels_last`: each bin's tap rows read
    /// as contiguous runs of 128 channels, accumulators in registers; same float32 operation order per element,
    /// `acc + (((w1·v1 + w2·v2) + w3·v3) + w4·v4)`, no fused multiply-add, then `/ count`). `level` picks the
    /// instruction set as in ``RoIAlignLayout/channelsLastAtLevel(_:)`` (0: the best this CPU runs).
    func applyChannelsLast(input: UnsafePointer<Float>, channels: Int, output: UnsafeMutablePointer<Float>,
                           level: Int32 = 0) {
        let count = Float(max(samplesPerBin, 1))
        if positions.isEmpty {  // no sample points (an empty grid): every bin averages nothing
            output.initialize(repeating: 0, count: channels * pooled * pooled)
            return
        }
        positions.withUnsafeBufferPointer { pos in
            weights.withUnsafeBufferPointer { wt in
                cladon_roi_align_channels_last(level, output, input, channels, pos.baseAddress!, wt.baseAddress!,
                                               pooled * pooled, samplesPerBin, count)
            }
        }
    }
}
