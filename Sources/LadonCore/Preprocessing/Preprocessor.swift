// torchvision GeneralizedRCNNTransform at test time: normalise, resize, zero-pad to a multiple of 32.

/// How the resize scale factor is computed from the image size.
public enum ResizeRule: String, Codable, Sendable, CaseIterable {
    /// torchvision 0.13 (the released Ladon models): float32 reciprocal, `scale = min(Float(1)/min·size, …)`.
    /// The long side becomes 415 for many sizes.
    case torchvision013 = "torchvision-0.13-float32"
    /// torchvision ≥ 0.15: the scale in double precision (`min_size / float(min)`).
    case torchvision015 = "torchvision-0.15-double"

    /// Decodes the rule's name; an unknown name is an error that lists the known ones.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let rule = ResizeRule(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(name.prefix(128))' is not one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = rule
    }
}

/// The network input after preprocessing.
public struct PreprocessedImage: Sendable {
    /// `[1, 3, paddedHeight, paddedWidth]`, normalised, zero-padded bottom/right.
    public var tensor: Tensor
    /// Size of the original image.
    public var originalHeight: Int, originalWidth: Int
    /// Size after resizing, before padding (torchvision's `image_sizes`).
    public var resizedHeight: Int, resizedWidth: Int
    public var paddedHeight: Int { tensor.h }
    public var paddedWidth: Int { tensor.w }
}

/// Preprocessing exactly as torchvision's `GeneralizedRCNNTransform` (eval mode, one image).
public struct Preprocessor: Sendable {
    public let settings: LadonModelConfig.Preprocessing
    public let rule: ResizeRule
    private let mean: [Float], std: [Float]
    /// The normalised value of each byte per channel, `(Float(v) / 255 − mean) / std` (for the 8-bit RGB entry).
    private let lookup: [[Float]]

    public init(_ settings: LadonModelConfig.Preprocessing) throws(LadonError) {
        try settings.validate()
        self.settings = settings
        self.rule = settings.resizeRule
        self.mean = settings.mean.map { Float($0) }
        self.std = settings.std.map { Float($0) }
        let (mean, std) = (self.mean, self.std)
        self.lookup = (0..<3).map { ch in (0..<256).map { v in (Float(v) / 255 - mean[ch]) / std[ch] } }
    }

    /// The resized (unpadded) size for an `height × width` image under `rule`.
    public static func resizedSize(height: Int, width: Int, minSize: Int, maxSize: Int,
                                   rule: ResizeRule) -> (height: Int, width: Int, scale: Double) {
        let mn = min(height, width), mx = max(height, width)
        let scale: Double
        switch rule {
        case .torchvision013:
            // torch evaluates `python_scalar / tensor` as reciprocal(tensor) * scalar, all in float32.
            let s1 = (Float(1) / Float(mn)) * Float(minSize)
            let s2 = (Float(1) / Float(mx)) * Float(maxSize)
            scale = Double(min(s1, s2))
        case .torchvision015:
            scale = min(Double(minSize) / Double(mn), Double(maxSize) / Double(mx))
        }
        // F.interpolate(recompute_scale_factor=True): output = floor(in * scale) in double precision. Sizes that are
        // not finite or beyond 2^40 (only reachable with out-of-range arguments) become 0, which callers refuse.
        func size(_ v: Double) -> Int { v.isFinite && v >= 0 && v < Double(1 << 40) ? Int(v) : 0 }
        return (size((Double(height) * scale).rounded(.down)), size((Double(width) * scale).rounded(.down)), scale)
    }

    /// Original, resized and padded sizes for an `height × width` image, or nil when the image is too thin to
    /// resize (a side would become 0) or a size is out of range. The device half produces exactly these sizes and
    /// the server half accepts only these.
    public func geometry(height: Int, width: Int) -> ImageGeometry? {
        guard height > 0, width > 0, height <= 1 << 20, width <= 1 << 20 else { return nil }
        let size = Self.resizedSize(height: height, width: width, minSize: settings.minSize, maxSize: settings.maxSize,
                                    rule: rule)
        guard size.height > 0, size.width > 0, size.height <= 1 << 20, size.width <= 1 << 20 else { return nil }
        let d = max(settings.sizeDivisible, 1)
        return ImageGeometry(originalHeight: height, originalWidth: width,
                             resizedHeight: size.height, resizedWidth: size.width,
                             paddedHeight: (size.height + d - 1) / d * d, paddedWidth: (size.width + d - 1) / d * d)
    }

    /// Normalises, resizes (bilinear, `align_corners=False`, no antialias) and pads an image tensor in [0, 1].
    ///
    /// - Parameter image: `[1, 3, H, W]` RGB in [0, 1] (`uint8 / 255`).
    public func callAsFunction(_ image: Tensor) throws(LadonError) -> PreprocessedImage {
        guard image.rank == 4, image.n == 1, image.c == 3, image.h > 0, image.w > 0 else {
            throw .invalidInput(.tensorShape(expected: "a [1, 3, H, W] image tensor", actual: image.shape))
        }
        let (h, w) = (image.h, image.w)
        // 1. Normalise: (x - mean) / std, true division in float32.
        var x = image
        let plane = h * w
        for ch in 0..<3 {
            let m = mean[ch], s = std[ch]
            x.withUnsafeMutableBufferPointer { p in
                for i in (ch * plane)..<((ch + 1) * plane) { p[i] = (p[i] - m) / s }
            }
        }
        // 2. Resize.
        guard let g = geometry(height: h, width: w) else {
            throw .invalidInput(.unresizable(width: w, height: h, minSize: settings.minSize))
        }
        let size = (height: g.resizedHeight, width: g.resizedWidth)
        if size.height != h || size.width != w {
            x = Kernels.resizeBilinear(x, outputHeight: size.height, outputWidth: size.width)
        }
        return Self.padded(x, g)
    }

    /// The same as ``callAsFunction(_:)`` on `Tensor(rgb8: pixels, width:, height:)`, bit for bit, straight from 8-bit
    /// RGB (row-major, 3 bytes per pixel): each byte value has 256 possible normalised values per channel, so they
    /// are computed once, at init (`(Float(v) / 255 − mean) / std`, the float operations of `to_tensor` then `normalize`), and
    /// only the pixels the resize reads are looked up. No full-size `Float` copy is made: a 12-megapixel photo costs
    /// its bytes once instead of 290 MB of planes, and milliseconds instead of more than a hundred.
    public func callAsFunction(rgb8 pixels: [UInt8], width: Int, height: Int) throws(LadonError) -> PreprocessedImage {
        let plane = try Tensor.rgb8PlaneSize(byteCount: pixels.count, width: width, height: height)
        guard let g = geometry(height: height, width: width) else {
            throw .invalidInput(.unresizable(width: width, height: height, minSize: settings.minSize))
        }
        let x: Tensor
        if g.resizedHeight != height || g.resizedWidth != width {
            x = pixels.withUnsafeBufferPointer { src in
                Kernels.resizeBilinear(rgb8: src, width: width, height: height, lookup: lookup,
                                       outputHeight: g.resizedHeight, outputWidth: g.resizedWidth)
            }
        } else {
            x = Tensor(shape: [1, 3, height, width]) { out in
                pixels.withUnsafeBufferPointer { src in
                    for ch in 0..<3 {
                        for i in 0..<plane { out[ch * plane + i] = lookup[ch][Int(src[3 * i + ch])] }
                    }
                }
            }
        }
        return Self.padded(x, g)
    }

    /// `x` (the resized image) zero-padded bottom/right to `g`'s padded size (a multiple of `sizeDivisible`).
    private static func padded(_ x: Tensor, _ g: ImageGeometry) -> PreprocessedImage {
        let (h, w) = (x.h, x.w)
        let ph = g.paddedHeight, pw = g.paddedWidth
        var padded = x
        if ph != h || pw != w {
            padded = Tensor(shape: [1, 3, ph, pw])
            padded.withUnsafeMutableBufferPointer { dst in
                x.withUnsafeBufferPointer { src in
                    for ch in 0..<3 {
                        for y in 0..<h {
                            let s = (ch * h + y) * w
                            let t = (ch * ph + y) * pw
                            for i in 0..<w { dst[t + i] = src[s + i] }
                        }
                    }
                }
            }
        }
        return PreprocessedImage(tensor: padded, originalHeight: g.originalHeight, originalWidth: g.originalWidth,
                                 resizedHeight: h, resizedWidth: w)
    }
}
