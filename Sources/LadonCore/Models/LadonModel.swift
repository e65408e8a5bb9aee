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

/// The Ladon model, built from a config and a weights file (see docs/weights-format.md).
///
/// ```swift
/// let model = try LadonModel(path: "ladon-resnet50-beta1.28.safetensors")
/// let result = try model.infer(imageTensor)          // [1, 3, H, W] RGB in [0, 1]
/// ```
/// The device half is ``preprocess(_:)`` + ``encode(_:)`` + ``compress(_:)``; the server half is
/// ``decompress(_:height:width:)`` + ``features(_:)`` + the heads.
public struct LadonModel: Sendable {
    public let config: LadonModelConfig
    public let labels: ClassLabels
    /// The weights file's `fingerprint` metadata, if any.
    public let fingerprint: String?
    public let preprocessor: Preprocessor
    public let encoder: LadonEncoder
    public let entropyBottleneck: EntropyBottleneck
    public let decoder: LadonDecoder
    public let body: ResNetBody
    public let classificationHead: ClassificationHead?
    public let segmentationHead: SegmentationHead?
    public let detectionHead: DetectionHead?

    /// Loads a converted model file; the config comes from the file's metadata unless given.
    public init(path: String, config: LadonModelConfig? = nil) throws(LadonError) {
        try self.init(file: try SafeTensorsFile(path: path), config: config)
    }

    /// Builds the model from an opened weights file.
    public init(file: SafeTensorsFile, config explicitConfig: LadonModelConfig? = nil) throws(LadonError) {
        let config: LadonModelConfig
        if let c = explicitConfig {
            try c.validate()
            config = c
        } else {
            config = try LadonWeightsFormat.config(of: file)
        }
        if let format = file.metadata["format"], format != LadonWeightsFormat.format {
            throw .weights("\(file.source) has format '\(format)', expected '\(LadonWeightsFormat.format)'")
        }
        let root = WeightScope(file: file)
        self.config = config
        self.labels = try ClassLabels(file: file, config: config)
        self.fingerprint = file.metadata["fingerprint"]
        self.preprocessor = try Preprocessor(config.preprocessing)
        self.encoder = try LadonEncoder(weights: root.scope("encoder.encoder"), channels: config.encoderChannels)
        self.entropyBottleneck = try EntropyBottleneck(weights: root.scope("encoder.entropy_bottleneck"))
        guard entropyBottleneck.channels == config.bottleneckChannels else {
            throw .weights("entropy bottleneck has \(entropyBottleneck.channels) channels, config says \(config.bottleneckChannels)")
        }
        self.decoder = try LadonDecoder(weights: root.scope("shared_body.decoder"), channels: config.decoderChannels)
        self.body = try ResNetBody(weights: root.scope("shared_body"), inChannels: config.decoderChannels[3], config: config.body)
        let bodyOut = config.stageChannels[2]
        self.classificationHead = try config.classification.map { c throws(LadonError) in
            try ClassificationHead(weights: root.scope("classification_head"), inFeatures: bodyOut, numClasses: c.numClasses)
        }
        self.segmentationHead = try config.segmentation.map { s throws(LadonError) in
            try SegmentationHead(weights: root.scope("segmentation_head"), inChannels: bodyOut, config: s)
        }
        self.detectionHead = try config.detection.map { d throws(LadonError) in
            let settings = try DetectionHeadConfig(d, inChannels: [config.decoderChannels[3]] + config.stageChannels)
            return try DetectionHead(weights: root.scope("detection_head"), config: settings)
        }
    }

    // MARK: Device half

    /// Normalise, resize and pad an RGB image tensor `[1, 3, H, W]` in [0, 1].
    public func preprocess(_ image: Tensor) throws(LadonError) -> PreprocessedImage {
        try preprocessor(image)
    }

    /// The encoder: padded input → latent `[1, C, H/4 − 1, W/4 − 1]` (before quantisation).
    public func encode(_ input: PreprocessedImage) -> Tensor {
        encoder(input.tensor)
    }

    /// Entropy-codes a latent (one sample) into CompressAI's byte string.
    public func compress(_ latent: Tensor) throws(LadonError) -> [UInt8] {
        let strings = try entropyBottleneck.compress(latent)
        guard strings.count == 1 else { throw .invalidInput("expected a batch of one latent, got \(strings.count)") }
        return strings[0]
    }

    // MARK: Server half

    /// Decodes a byte string back to the dequantised latent `[1, C, height, width]`.
    public func decompress(_ bytes: [UInt8], height: Int, width: Int) throws(LadonError) -> Tensor {
        try entropyBottleneck.decompress([bytes], height: height, width: width)
    }

    /// Decoder and ResNet body on a dequantised latent.
    public func features(_ latentHat: Tensor) -> SharedFeatures {
        let d = decoder(latentHat)
        return SharedFeatures(decoder: d, layers: body(d))
    }

    /// Classification logits `[N, classes]`, or nil without a classification head.
    public func classify(_ features: SharedFeatures) -> Tensor? {
        classificationHead.map { $0(features.layers[2]) }
    }

    /// Segmentation logits at the padded input size and their argmax, or nil without a segmentation head.
    public func segment(_ features: SharedFeatures, paddedHeight: Int, paddedWidth: Int) -> SegmentationResult? {
        guard let head = segmentationHead else { return nil }
        let logits = head(features.layers[2], height: paddedHeight, width: paddedWidth)
        return SegmentationResult(logits: logits, mask: Kernels.argmaxChannels(logits))
    }

    /// COCO detections (FPN + RPN + RoI heads) for one image, or an empty list without a detection head.
    public func detect(_ features: SharedFeatures, geometry g: ImageGeometry) throws(LadonError) -> [Detection] {
        guard let head = detectionHead else { return [] }
        return try head(features: [features.decoder] + features.layers, paddedSize: (g.paddedHeight, g.paddedWidth),
                        imageSize: (g.resizedHeight, g.resizedWidth), originalSize: (g.originalHeight, g.originalWidth))
    }

    /// Runs the whole pipeline on one image: both halves, with the real bitstream in between.
    public func infer(_ image: Tensor) throws(LadonError) -> LadonResult {
        var stopwatch = Stopwatch()
        let input = try stopwatch.time("preprocess") { () throws(LadonError) in try preprocess(image) }
        let latent = stopwatch.time("encoder") { encode(input) }
        let bytes = try stopwatch.time("compress") { () throws(LadonError) in try compress(latent) }
        var result = try serve(bytes, latentHeight: latent.h, latentWidth: latent.w, geometry: ImageGeometry(input))
        result.timings.insert(contentsOf: stopwatch.laps, at: 0)
        return result
    }

    /// The server half on one entropy-coded latent: decode, decoder + body, every head.
    public func serve(_ bytes: [UInt8], latentHeight: Int, latentWidth: Int,
                      geometry: ImageGeometry) throws(LadonError) -> LadonResult {
        var stopwatch = Stopwatch()
        let latentHat = try stopwatch.time("decompress") { () throws(LadonError) in
            try decompress(bytes, height: latentHeight, width: latentWidth)
        }
        let feats = stopwatch.time("decoder+body") { features(latentHat) }
        let logits = stopwatch.time("classification") { classify(feats) }
        let seg = stopwatch.time("segmentation") {
            segment(feats, paddedHeight: geometry.paddedHeight, paddedWidth: geometry.paddedWidth)
        }
        let detections = try stopwatch.time("detection") { () throws(LadonError) in try detect(feats, geometry: geometry) }
        return LadonResult(geometry: geometry, latentShape: [latentHat.c, latentHeight, latentWidth],
                           compressed: bytes, classificationLogits: logits?.scalars, segmentation: seg,
                           detections: detections, timings: stopwatch.laps)
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
