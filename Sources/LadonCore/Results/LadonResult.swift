// What one image produces: geometry, the coded latent, the three tasks' outputs, stage timings.

/// Sizes of one image through preprocessing.
public struct ImageGeometry: Sendable, Equatable, Codable {
    public var originalHeight: Int, originalWidth: Int
    public var resizedHeight: Int, resizedWidth: Int
    public var paddedHeight: Int, paddedWidth: Int

    public init(_ p: PreprocessedImage) {
        originalHeight = p.originalHeight; originalWidth = p.originalWidth
        resizedHeight = p.resizedHeight; resizedWidth = p.resizedWidth
        paddedHeight = p.paddedHeight; paddedWidth = p.paddedWidth
    }

    public init(originalHeight: Int, originalWidth: Int, resizedHeight: Int, resizedWidth: Int,
                paddedHeight: Int, paddedWidth: Int) {
        self.originalHeight = originalHeight; self.originalWidth = originalWidth
        self.resizedHeight = resizedHeight; self.resizedWidth = resizedWidth
        self.paddedHeight = paddedHeight; self.paddedWidth = paddedWidth
    }
}

/// The feature maps the shared body produces (the inputs of every head).
public struct SharedFeatures: Sendable {
    /// Decoder output (ResNet layer1-sized), `[1, 256, H/4, W/4]`.
    public var decoder: Tensor
    /// `layer2`, `layer3`, `layer4` outputs.
    public var layers: [Tensor]
}

/// Segmentation output: logits at the padded network size and their argmax.
public struct SegmentationResult: Sendable {
    /// `[1, classes, paddedHeight, paddedWidth]`.
    public var logits: Tensor
    /// Class id per pixel at the padded size (row-major, `paddedHeight × paddedWidth`).
    public var mask: [Int32]
    public var height: Int { logits.h }
    public var width: Int { logits.w }

    /// How many pixels of each class the mask has once mapped to `h × w` by ``mask(resampledFrom:_:toHeight:width:)``,
    /// computed without building that mask: each source pixel counts (rows mapping to it) × (columns mapping to
    /// it). Linear in the source region plus `h + w`, so a huge original size costs nothing extra.
    public func classCounts(resampledFrom regionHeight: Int, _ regionWidth: Int, toHeight h: Int, width w: Int) -> [Int32: Int] {
        let rows = Self.multiplicities(source: regionHeight, target: h)
        let cols = Self.multiplicities(source: regionWidth, target: w)
        var counts: [Int32: Int] = [:]
        for sy in 0..<regionHeight where rows[sy] > 0 {
            var rowCounts: [Int32: Int] = [:]
            for sx in 0..<regionWidth where cols[sx] > 0 { rowCounts[mask[sy * width + sx], default: 0] += cols[sx] }
            for (id, n) in rowCounts { counts[id, default: 0] += n * rows[sy] }
        }
        return counts
    }

    /// The class ids mapped to `h × w` (as ``mask(resampledFrom:_:toHeight:width:)``) as one byte per pixel (ids
    /// clamp at 255), row by row, for writing a PNG without a 4-byte-per-pixel intermediate.
    public func classIDBytes(resampledFrom regionHeight: Int, _ regionWidth: Int, toHeight h: Int, width w: Int) -> [UInt8] {
        let cols = (0..<w).map { min(Int((Double($0) + 0.5) * Double(regionWidth) / Double(w)), regionWidth - 1) }
        return [UInt8](unsafeUninitializedCapacity: h * w) { out, count in
            for y in 0..<h {
                let sy = min(Int((Double(y) + 0.5) * Double(regionHeight) / Double(h)), regionHeight - 1)
                for x in 0..<w { out[y * w + x] = UInt8(clamping: mask[sy * width + cols[x]]) }
            }
            count = h * w
        }
    }

    /// For each source index, how many of the `target` nearest-neighbour samples pick it (the same rule as the
    /// resampler: `src = min(floor((i + 0.5) · source / target), source − 1)`).
    static func multiplicities(source: Int, target: Int) -> [Int] {
        var m = [Int](repeating: 0, count: source)
        for i in 0..<target { m[min(Int((Double(i) + 0.5) * Double(source) / Double(target)), source - 1)] += 1 }
        return m
    }

    /// The mask mapped to another size by nearest-neighbour sampling of the region `[0, regionHeight) ×
    /// [0, regionWidth)` (the unpadded, resized image) — used to return masks at the original image size.
    public func mask(resampledFrom regionHeight: Int, _ regionWidth: Int, toHeight h: Int, width w: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: h * w)
        for y in 0..<h {
            let sy = min(Int((Double(y) + 0.5) * Double(regionHeight) / Double(h)), regionHeight - 1)
            for x in 0..<w {
                let sx = min(Int((Double(x) + 0.5) * Double(regionWidth) / Double(w)), regionWidth - 1)
                out[y * w + x] = mask[sy * width + sx]
            }
        }
        return out
    }
}

/// Everything one image produces, with per-stage wall-clock timings.
public struct LadonResult: Sendable {
    public var geometry: ImageGeometry
    /// `[channels, height, width]` of the latent.
    public var latentShape: [Int]
    /// The entropy-coded latent: exactly CompressAI's `EntropyBottleneck.compress` string.
    public var compressed: [UInt8]
    /// `numClasses` raw logits, or nil when the model has no classification head.
    public var classificationLogits: [Float]?
    public var segmentation: SegmentationResult?
    /// COCO detections by decreasing score, boxes in original-image pixels (empty without a detection head).
    public var detections: [Detection]
    /// Stage name → seconds, in execution order.
    public var timings: [(stage: String, seconds: Double)]
}
