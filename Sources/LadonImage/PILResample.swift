// Pillow's resizing (libImaging/Resample.c, Geometry.c) and torchvision's `Resize`/`CenterCrop` on PIL images,
// bit for bit: the preprocessing behind sc2bench's published numbers.

extension RGBImage {
    /// Pillow's `image.resize((width, height), Image.BILINEAR)` on an RGB image, bit for bit.
    ///
    /// This is Pillow's convolution resampler (`libImaging/Resample.c`), antialiased: when an axis shrinks, the
    /// triangle filter is widened by the scale factor, so every source pixel contributes. Weights are computed in
    /// `Double`, normalised to 22-bit fixed point (`PRECISION_BITS = 32 - 8 - 2`) and applied with 32-bit integer
    /// sums, rounded and clipped to 8 bits after each of the two passes, as Pillow does. An axis whose size is
    /// unchanged is not resampled; an unchanged size returns the image.
    ///
    /// The order of the passes can change the result (by 1 here and there) and depends on the Pillow version; see
    /// ``PILPassOrder``. The default is Pillow 13's, the reference this project tests against.
    ///
    /// - Precondition: `width >= 1` and `height >= 1` (Pillow refuses 0 too).
    public func resizedPIL(width outWidth: Int, height outHeight: Int, passOrder: PILPassOrder = .pillow13) -> RGBImage {
        precondition(outWidth >= 1 && outHeight >= 1, "resize to \(outWidth)x\(outHeight): sizes must be >= 1")
        if outWidth == width && outHeight == height { return self }
        let vertical = PILBilinearCoefficients(inSize: height, outSize: outHeight)
        if passOrder.runsVerticalFirst(from: (width, height), to: (outWidth, outHeight)) {
            // The height shrinks (so there is a vertical pass); the horizontal pass then works on fewer rows.
            let image = PILResampler.vertical(self, firstRow: 0, coefficients: vertical)
            if outWidth == width { return image }
            let horizontal = PILBilinearCoefficients(inSize: width, outSize: outWidth)
            return PILResampler.horizontal(image, rows: 0..<outHeight, coefficients: horizontal)
        }
        guard outWidth != width else { return PILResampler.vertical(self, firstRow: 0, coefficients: vertical) }
        // Horizontal first, over only the source rows the vertical pass reads (Pillow's `ybox_first ..< ybox_last`).
        let rows = vertical.sourceRows
        let horizontal = PILBilinearCoefficients(inSize: width, outSize: outWidth)
        let image = PILResampler.horizontal(self, rows: rows, coefficients: horizontal)
        if outHeight == height { return image }
        return PILResampler.vertical(image, firstRow: rows.lowerBound, coefficients: vertical)
    }

    /// torchvision's `transforms.Resize(size)` on a PIL image: the short side becomes `size`, the long side
    /// `int(size * long / short)` (Python's float division, truncated), Pillow bilinear (antialiased).
    ///
    /// This is torchvision's `_compute_resized_output_size` with one size and no `max_size`
    /// (`new_short, new_long = size, int(size * long / short)`; width is the short side when `width <= height`),
    /// then `img.resize((new_w, new_h), BILINEAR)`; an image already at that size is returned as it is.
    ///
    /// - Precondition: `size >= 1` and the image is not empty.
    public func resizedShortSidePIL(_ size: Int, passOrder: PILPassOrder = .pillow13) -> RGBImage {
        let (newWidth, newHeight) = Self.shortSideResizedSize(width: width, height: height, size: size)
        return resizedPIL(width: newWidth, height: newHeight, passOrder: passOrder)
    }

    /// The output size of torchvision's `Resize(size)` for a `width × height` image (see ``resizedShortSidePIL(_:)``).
    public static func shortSideResizedSize(width: Int, height: Int, size: Int) -> (width: Int, height: Int) {
        precondition(size >= 1 && width >= 1 && height >= 1, "Resize(\(size)) of a \(width)x\(height) image")
        let (short, long) = width <= height ? (width, height) : (height, width)
        // Python's `size * long / short`: an exact integer product, then a correctly rounded division (exact
        // operands below 2^53, so `Double` division gives the same value), then `int()` truncation.
        let newLong = Int(Double(size * long) / Double(short))
        return width <= height ? (size, newLong) : (newLong, size)
    }

    /// torchvision's `transforms.CenterCrop((height, width))` on a PIL image.
    ///
    /// The crop's top-left corner is `int(round((H - height) / 2.0))`, `int(round((W - width) / 2.0))` with
    /// Python's round-half-to-even. An image smaller than the crop on either side is first padded with zeros as
    /// torchvision does (`(crop - size) // 2` before, the rest after), then cropped.
    ///
    /// - Precondition: `width >= 1` and `height >= 1`.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        precondition(cropWidth >= 1 && cropHeight >= 1, "center crop to \(cropWidth)x\(cropHeight)")
        // Padding (torchvision's `padding_ltrb`); the left/top share is what shifts the image.
        let padLeft = cropWidth > width ? (cropWidth - width) / 2 : 0
        let padTop = cropHeight > height ? (cropHeight - height) / 2 : 0
        let paddedWidth = max(width, cropWidth), paddedHeight = max(height, cropHeight)
        let top = Self.pythonRoundHalfEven(paddedHeight - cropHeight)
        let left = Self.pythonRoundHalfEven(paddedWidth - cropWidth)
        // Output pixel (x, y) is padded pixel (left + x, top + y), i.e. source pixel (left + x - padLeft, …).
        let offsetX = left - padLeft, offsetY = top - padTop
        var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
        let x0 = max(0, -offsetX), x1 = min(cropWidth, width - offsetX)
        let y0 = max(0, -offsetY), y1 = min(cropHeight, height - offsetY)
        if x0 < x1 && y0 < y1 {
            let rowBytes = (x1 - x0) * 3
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for y in y0..<y1 {
                        let from = src.baseAddress! + ((y + offsetY) * width + x0 + offsetX) * 3
                        let to = dst.baseAddress! + (y * cropWidth + x0) * 3
                        to.update(from: from, count: rowBytes)
                    }
                }
            }
        }
        return RGBImage(width: cropWidth, height: cropHeight, pixels: out)
    }

    /// `int(round(difference / 2.0))` in Python: halves go to the even neighbour.
    static func pythonRoundHalfEven(_ difference: Int) -> Int {
        let half = difference >> 1   // floor
        guard difference & 1 != 0 else { return half }
        return half & 1 == 0 ? half : half + 1
    }
}

extension IndexedImage {
    /// Pillow's `image.resize((width, height), Image.NEAREST)`, which is what a palette ("P") or "L" mask gets.
    ///
    /// Pillow scales with an affine map (`_imaging.c` `_resize` → `Geometry.c` `ImagingScaleAffine`): the
    /// source coordinate starts at `scale / 2` and *accumulates* `scale = Double(in) / Double(out)` per output
    /// pixel, and the source index is its truncation. The closed form `floor((x + 0.5) * in / out)` differs
    /// from it wherever the exact value is an integer and the running sum falls just below it (2 → 7 pixels,
    /// 256 → 416), so the sum is replayed here. A coordinate outside the source (never in practice) gives 0,
    /// Pillow's fill. An unchanged size returns the image.
    ///
    /// - Precondition: `width >= 1` and `height >= 1`.
    public func resizedNearestPIL(width outWidth: Int, height outHeight: Int) -> IndexedImage {
        precondition(outWidth >= 1 && outHeight >= 1, "resize to \(outWidth)x\(outHeight): sizes must be >= 1")
        if outWidth == width && outHeight == height { return self }
        let columns = Self.pillowNearestSources(inSize: width, outSize: outWidth)
        let rows = Self.pillowNearestSources(inSize: height, outSize: outHeight)
        var out = [UInt8](repeating: 0, count: outWidth * outHeight)
        indices.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (y, sourceRow) in rows.enumerated() where sourceRow >= 0 {
                    let from = src.baseAddress! + sourceRow * width
                    let to = dst.baseAddress! + y * outWidth
                    for (x, sourceColumn) in columns.enumerated() where sourceColumn >= 0 {
                        to[x] = from[sourceColumn]
                    }
                }
            }
        }
        return IndexedImage(width: outWidth, height: outHeight, indices: out)
    }

    /// The source index of each output pixel along one axis, or -1 outside the source (Pillow's `COORD` and
    /// running sum in `ImagingScaleAffine`).
    static func pillowNearestSources(inSize: Int, outSize: Int) -> [Int] {
        // `a[0] = (double)(box[2] - box[0]) / xsize`, the box edges being C floats.
        let scale = Double(Float(inSize)) / Double(outSize)
        var position = 0.0 + scale * 0.5
        var sources = [Int](repeating: -1, count: outSize)
        for x in 0..<outSize {
            let source = position < 0 ? -1 : Int(position)
            if source >= 0 && source < inSize { sources[x] = source }
            position += scale
        }
        return sources
    }
}

/// Which of the two passes of Pillow's convolution resize runs first. The passes round to 8 bits in between, so
/// the order can show in the result (some values differ by 1) when both axes change.
public enum PILPassOrder: String, Sendable, Equatable, CaseIterable {
    /// Pillow 13 (`ImagingResampleInner` in the 13.0.0 source, python-pillow/Pillow#9549): vertical first when
    /// the height shrinks by more than twice as many pixels as the width, `H - h > 0 && H - h > (W - w) * 2`;
    /// else horizontal first.
    /// A 375×500 portrait squashed to 416×416 (VOC) runs vertically first.
    case pillow13 = "pillow13"
    /// Earlier Pillow releases: always horizontal first, then vertical.
    case horizontalFirst = "horizontal-first"

    /// Whether a resize from `source` to `target` (width, height) runs the vertical pass first.
    public func runsVerticalFirst(from source: (width: Int, height: Int), to target: (width: Int, height: Int)) -> Bool {
        guard self == .pillow13 else { return false }
        let heightDrop = source.height - target.height, widthDrop = source.width - target.width
        return heightDrop > 0 && heightDrop > widthDrop * 2
    }
}

/// Pillow's bilinear weights for one axis (`precompute_coeffs` with `BILINEAR`, box `(0, inSize)`, then
/// `normalize_coeffs_8bpc`): for output pixel `i`, `count[i]` weights from source pixel `first[i]` on.
struct PILBilinearCoefficients {
    /// Pillow's `PRECISION_BITS`: 8 bits of result, 2 spare for overflow and sign in a 32-bit sum.
    static let precisionBits: Int32 = 32 - 8 - 2
    /// Weights per output pixel (Pillow's `ksize`); unused tails are 0.
    let taps: Int
    let first: [Int]
    let count: [Int]
    /// `outSize * taps` fixed-point weights.
    let weights: [Int32]

    init(inSize: Int, outSize: Int) {
        // The box edges are C floats in Pillow; `(double)(in1 - in0) / outSize`.
        let scale = Double(Float(inSize) - Float(0)) / Double(outSize)
        let filterScale = max(scale, 1.0)          // antialiasing: widen the filter when shrinking
        let support = 1.0 * filterScale            // the triangle filter's support is 1
        let taps = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outSize)
        var count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let inverseScale = 1.0 / filterScale
        let one = Double(1 << Self.precisionBits)
        for xx in 0..<outSize {
            let center = 0.0 + (Double(xx) + 0.5) * scale
            // C's `(int)` truncates toward zero, as Swift's `Int(_:)` does.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var sum = 0.0
            for x in 0..<max(xmax, 0) {
                let w = Self.triangle((Double(x + xmin) - center + 0.5) * inverseScale)
                k[x] = w
                sum += w
            }
            for x in 0..<max(xmax, 0) {
                let w = sum != 0 ? k[x] / sum : k[x]
                // `normalize_coeffs_8bpc`: round half away from zero, then truncate.
                weights[xx * taps + x] = w < 0 ? Int32(-0.5 + w * one) : Int32(0.5 + w * one)
            }
            first[xx] = xmin
            count[xx] = max(xmax, 0)
        }
        self.taps = taps
        self.first = first
        self.count = count
        self.weights = weights
    }

    /// Source rows (or columns) read by any output pixel: Pillow's `ybox_first ..< ybox_last`.
    var sourceRows: Range<Int> {
        guard let last = first.indices.last else { return 0..<0 }
        return first[0]..<(first[last] + count[last])
    }

    /// Pillow's `bilinear_filter`.
    @inline(__always)
    static func triangle(_ x: Double) -> Double {
        let x = x < 0 ? -x : x
        return x < 1 ? 1 - x : 0
    }
}

/// The two passes of Pillow's `ImagingResampleHorizontal_8bpc` / `ImagingResampleVertical_8bpc` for 3 bands.
enum PILResampler {
    /// `1 << (PRECISION_BITS - 1)`: the rounding term every sum starts from.
    static let half: Int32 = 1 << (PILBilinearCoefficients.precisionBits - 1)

    /// Pillow's `clip8`: the sum's integer part, clamped to 0...255.
    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> PILBilinearCoefficients.precisionBits
        return UInt8(truncatingIfNeeded: v < 0 ? 0 : (v > 255 ? 255 : v))
    }

    /// Resamples each row of `rows` to `coefficients.first.count` pixels; the result has `rows.count` rows.
    static func horizontal(_ image: RGBImage, rows: Range<Int>, coefficients c: PILBilinearCoefficients) -> RGBImage {
        let outWidth = c.first.count
        let inRowBytes = image.width * 3, outRowBytes = outWidth * 3
        // Every output pixel reads exactly `taps` source pixels: windows that would run past the right edge start
        // earlier, with zero weights in front. Adding `0 * p` changes no sum, and the loop needs no per-pixel count.
        let taps = min(c.taps, image.width)
        var start = [Int](repeating: 0, count: outWidth)
        var weights = [Int32](repeating: 0, count: outWidth * taps)
        for xx in 0..<outWidth {
            let first = min(c.first[xx], image.width - taps)
            start[xx] = first * 3
            for t in 0..<c.count[xx] {
                weights[xx * taps + c.first[xx] - first + t] = c.weights[xx * c.taps + t]
            }
        }
        let lastRowVectorWidth = start.firstIndex { $0 + 3 * taps >= inRowBytes } ?? outWidth
        let out = [UInt8](unsafeUninitializedCapacity: rows.count * outRowBytes) { dst, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                weights.withUnsafeBufferPointer { weights in
                    start.withUnsafeBufferPointer { start in
                        for (row, y) in rows.enumerated() {
                            let input = src.baseAddress! + y * inRowBytes
                            let output = dst.baseAddress! + row * outRowBytes
                            // 4 bytes per source pixel (RGB and the next R, weighted but dropped): one vector
                            // multiply-add per tap. On the image's last row, windows that end at its last pixel would
                            // read 1 byte past the end, so they go through the scalar loop below.
                            let vectorWidth = y == image.height - 1 ? lastRowVectorWidth : outWidth
                            for xx in 0..<vectorWidth {
                                let k = weights.baseAddress! + xx * taps
                                let p = UnsafeRawPointer(input + start[xx])
                                var sum = SIMD4<Int32>(repeating: half)
                                for t in 0..<taps {
                                    let bytes = p.loadUnaligned(fromByteOffset: 3 * t, as: SIMD4<UInt8>.self)
                                    sum &+= SIMD4<Int32>(truncatingIfNeeded: bytes) &* k[t]
                                }
                                output[3 * xx] = clip8(sum[0])
                                output[3 * xx + 1] = clip8(sum[1])
                                output[3 * xx + 2] = clip8(sum[2])
                            }
                            for xx in vectorWidth..<outWidth {
                                let k = weights.baseAddress! + xx * taps
                                var p = input + start[xx]
                                var s0 = half, s1 = half, s2 = half
                                for t in 0..<taps {
                                    let w = k[t]
                                    s0 &+= Int32(p[0]) &* w
                                    s1 &+= Int32(p[1]) &* w
                                    s2 &+= Int32(p[2]) &* w
                                    p += 3
                                }
                                output[3 * xx] = clip8(s0)
                                output[3 * xx + 1] = clip8(s1)
                                output[3 * xx + 2] = clip8(s2)
                            }
                        }
                    }
                }
            }
            initialized = rows.count * outRowBytes
        }
        return RGBImage(width: outWidth, height: rows.count, pixels: out)
    }

    /// Resamples the columns of `image`, whose row 0 is source row `firstRow`, to `coefficients.first.count` rows.
    static func vertical(_ image: RGBImage, firstRow: Int, coefficients c: PILBilinearCoefficients) -> RGBImage {
        let outHeight = c.first.count
        let rowBytes = image.width * 3
        // One row of 32-bit sums: the inner loop runs along the row, so it vectorises.
        var sums = [Int32](repeating: 0, count: rowBytes)
        let out = [UInt8](unsafeUninitializedCapacity: outHeight * rowBytes) { dst, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                c.weights.withUnsafeBufferPointer { weights in
                    sums.withUnsafeMutableBufferPointer { acc in
                        for yy in 0..<outHeight {
                            let k = weights.baseAddress! + yy * c.taps
                            let ymin = c.first[yy] - firstRow
                            for i in 0..<rowBytes { acc[i] = half }
                            for t in 0..<c.count[yy] {
                                let w = k[t]
                                let input = src.baseAddress! + (ymin + t) * rowBytes
                                for i in 0..<rowBytes { acc[i] &+= Int32(input[i]) &* w }
                            }
                            let output = dst.baseAddress! + yy * rowBytes
                            for i in 0..<rowBytes { output[i] = clip8(acc[i]) }
                        }
                    }
                }
            }
            initialized = outHeight * rowBytes
        }
        return RGBImage(width: image.width, height: outHeight, pixels: out)
    }
}
