// The whole Ladon model: one encoder and entropy bottleneck, one shared body, three task heads.
import Foundation

/// Class names shipped with a converted model (ImageNet, COCO and VOC order as in torchvision).
public struct ClassLabels: Sendable, Equatable {
    public var imagenet: [String]
    public var coco: [String]
    public var voc: [String]

    public init(imagenet: [String] = [], coco: [String] = [], voc: [String] = []) {
        self.imagenet = imagenet
        self.coco = coco
        self.voc = voc
    }

    /// The lists named by the config's heads, from a weights file's `classes.<list>` metadata, falling back to
    /// the built-in torchvision lists (``LadonLabels``) when a key is absent.
    public init(file: SafeTensorsFile, config: LadonModelConfig) throws(LadonError) {
        let stored = try LadonWeightsFormat.classLists(of: file)
        func list(_ key: String?) -> [String] {
            guard let key else { return [] }
            return stored[key] ?? LadonLabels.list(key) ?? []
        }
        self.init(imagenet: list(config.classification?.classList), coco: list(config.detection?.classList),
                  voc: list(config.segmentation?.classList))
    }
}

/// The feature maps the shared body produces (the inputs of every head).
public struct SharedFeatures: Sendable {
    /// Decoder output (ResNet layer1-sized), `[1, 256, H/4, W/4]`.
    public var decoder: Tensor
    /// `layer2`, `layer3`, `layer4` outputs.
    public var layers: [Tensor]
}

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

/// The Ladon model: a ``DeviceHalf`` (preprocessing, encoder, quantisation, entropy coding) and a ``ServerHalf``
/// (entropy decoding, decoder, body, heads), loaded from one weights file through one loader
/// (``LadonModelFile``). ``infer(_:)`` is literally the server half run on the device half's output.
///
/// ```swift
/// let model = try LadonModel(path: "ladon-resnet50-beta1.28.safetensors")
/// let result = try model.infer(imageTensor)          // [1, 3, H, W] RGB in [0, 1]
/// let encoded = try model.device.encode(imageTensor) // …or the halves on two machines
/// let same = try model.server.run(encoded)
/// ```
public struct LadonModel: Sendable {
    public let device: DeviceHalf
    public let server: ServerHalf

    /// Loads a converted model file; the config comes from the file's metadata unless given.
    public init(path: String, config: LadonModelConfig? = nil) throws(LadonError) {
        try self.init(modelFile: try LadonModelFile(path: path, config: config))
    }

    /// Builds the model from an opened weights file.
    public init(file: SafeTensorsFile, config: LadonModelConfig? = nil) throws(LadonError) {
        try self.init(modelFile: try LadonModelFile(file: file, config: config))
    }

    /// Builds both halves from one checked file.
    public init(modelFile: LadonModelFile) throws(LadonError) {
        device = try DeviceHalf(modelFile: modelFile)
        server = try ServerHalf(modelFile: modelFile)
    }

    public var config: LadonModelConfig { server.config }
    public var labels: ClassLabels { server.labels }
    /// The weights file's `fingerprint` metadata, if any.
    public var fingerprint: String? { server.fingerprint }
    public var entropyBottleneck: EntropyBottleneck { device.entropyBottleneck }
    public var classificationHead: ClassificationHead? { server.classificationHead }
    public var segmentationHead: SegmentationHead? { server.segmentationHead }
    public var detectionHead: DetectionHead? { server.detectionHead }

    // MARK: Stages (the halves' own, for stage-by-stage checks)

    public func preprocess(_ image: Tensor) throws(LadonError) -> PreprocessedImage { try device.preprocess(image) }
    public func encode(_ input: PreprocessedImage) -> Tensor { device.encode(input) }
    public func compress(_ latent: Tensor) throws(LadonError) -> [UInt8] { try device.compress(latent) }
    public func decompress(_ bytes: [UInt8], height: Int, width: Int) throws(LadonError) -> Tensor {
        try server.decompress(bytes, height: height, width: width)
    }
    public func features(_ latentHat: Tensor) -> SharedFeatures { server.features(latentHat) }
    public func classify(_ features: SharedFeatures) -> Tensor? { server.classify(features) }
    public func segment(_ features: SharedFeatures, paddedHeight: Int, paddedWidth: Int) -> SegmentationResult? {
        server.segment(features, paddedHeight: paddedHeight, paddedWidth: paddedWidth)
    }
    public func detect(_ features: SharedFeatures, geometry: ImageGeometry) throws(LadonError) -> [Detection] {
        try server.detect(features, geometry: geometry)
    }

    /// Runs the whole pipeline on one image: the server half on the device half's output, with the real
    /// bitstream in between. Timings list the device stages, then the server stages.
    public func infer(_ image: Tensor) throws(LadonError) -> LadonResult {
        var stopwatch = Stopwatch()
        let encoded = try device.encode(image, stopwatch: &stopwatch)
        var result = try server.run(encoded)
        result.timings.insert(contentsOf: stopwatch.laps, at: 0)
        return result
    }
}

/// Wall-clock timing of named stages.
public struct Stopwatch: Sendable {
    public private(set) var laps: [(stage: String, seconds: Double)] = []
    private let clock = ContinuousClock()

    public init() {}

    /// Runs `body` and records its duration under `stage`.
    public mutating func time<T, E: Error>(_ stage: String, _ body: () throws(E) -> T) throws(E) -> T {
        let start = clock.now
        let value = try body()
        let d = clock.now - start
        laps.append((stage, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18))
        return value
    }
}
