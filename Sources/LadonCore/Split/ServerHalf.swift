// The server half of a Ladon model: entropy decoding, the decoder, the shared body and the three heads.

/// What runs on the edge server: CompressAI's entropy decoder, the decoder, ResNet layer2–4 and the
/// classification, segmentation and detection heads. ``run(_:)`` checks an ``EncodedImage`` from a device
/// completely before any work: the model id, the latent shape, and that the sizes are exactly what this
/// model's preprocessing gives for the claimed original size (so a forged header cannot make the server
/// allocate for an image it would never have been sent).
public struct ServerHalf: Sendable {
    public let config: LadonModelConfig
    public let labels: ClassLabels
    public let fingerprint: String?
    public let modelID: [UInt8]
    public let preprocessor: Preprocessor
    public let entropyBottleneck: EntropyBottleneck
    public let decoder: LadonDecoder
    public let body: ResNetBody
    public let classificationHead: ClassificationHead?
    public let segmentationHead: SegmentationHead?
    package let detectionHead: DetectionHead?
    /// Largest original image (width × height) a packet may claim; results are mapped back to that size.
    /// Defaults to the image decoder's limit (100 megapixels).
    public var maxOriginalPixels: Int = ServerHalf.defaultMaxOriginalPixels

    /// 100 megapixels, the same as `LadonImage.ImageDecoder.defaultPixelLimit`.
    public static let defaultMaxOriginalPixels = 100_000_000

    /// Loads the server half from a whole model file.
    public init(path: String) throws(LadonError) {
        try self.init(modelFile: try LadonModelFile(path: path))
    }

    /// Builds the server half from an opened, checked whole-model file.
    public init(modelFile f: LadonModelFile) throws(LadonError) {
        guard f.kind == .full else {
            throw .weights(file: f.file.source, .deviceFileOnly)
        }
        let config = f.config, root = f.root
        self.config = config
        labels = try ClassLabels(file: f.file, config: config)
        fingerprint = f.fingerprint
        modelID = f.modelID
        preprocessor = try Preprocessor(config.preprocessing)
        entropyBottleneck = try EntropyBottleneck(weights: root.scope("encoder.entropy_bottleneck"))
        guard entropyBottleneck.channels == config.bottleneckChannels else {
            throw .weights(file: f.file.source, .bottleneckChannelMismatch(tables: entropyBottleneck.channels, config: config.bottleneckChannels))
        }
        // The decoder, body and classifier on one thread, the segmentation and detection heads on another (when the
        // kernels may use two): at full size about 100 and 140 MB of weights to read and pack, about as long as each
        // other. Each side's first error is kept; the first side's is thrown first.
        let bodyOut = config.stageChannels[2]
        let (trunk, heads) = WorkSplit.both({ () -> Result<(LadonDecoder, ResNetBody, ClassificationHead?), LadonError> in
            Result { () throws(LadonError) in
                (try LadonDecoder(weights: root.scope("shared_body.decoder"), channels: config.decoderChannels),
                 try ResNetBody(weights: root.scope("shared_body"), inChannels: config.decoderChannels[3], config: config.body),
                 try config.classification.map { c throws(LadonError) in
                     try ClassificationHead(weights: root.scope("classification_head"), inFeatures: bodyOut,
                                            numClasses: c.numClasses)
                 })
            }
        }, { () -> Result<(SegmentationHead?, DetectionHead?), LadonError> in
            Result { () throws(LadonError) in
                (try config.segmentation.map { s throws(LadonError) in
                    try SegmentationHead(weights: root.scope("segmentation_head"), inChannels: bodyOut, config: s)
                 },
                 try config.detection.map { d throws(LadonError) in
                    let settings = try DetectionHeadConfig(d, inChannels: [config.decoderChannels[3]] + config.stageChannels)
                    return try DetectionHead(weights: root.scope("detection_head"), config: settings)
                 })
            }
        })
        (decoder, body, classificationHead) = try trunk.get()
        (segmentationHead, detectionHead) = try heads.get()
    }

    // MARK: Checks

    /// The geometry this model's preprocessing gives for an original size, and the latent size that follows.
    public func expectedGeometry(originalHeight h: Int, originalWidth w: Int) -> (geometry: ImageGeometry, latentHeight: Int, latentWidth: Int)? {
        guard let g = preprocessor.geometry(height: h, width: w) else { return nil }
        return (g, g.paddedHeight / 4 - 1, g.paddedWidth / 4 - 1)
    }

    /// Refuses an encoded image from another model, or whose sizes are not exactly what this model's
    /// preprocessing and encoder give for its claimed original size.
    public func check(_ e: EncodedImage) throws(LadonError) {
        let zero = [UInt8](repeating: 0, count: 16)
        if e.modelID != zero, modelID != zero, e.modelID != modelID {
            throw .wrongModel(packetModel: e.modelID.hexString)
        }
        guard e.latentChannels == config.bottleneckChannels else {
            throw .geometry(.latentChannels(packet: e.latentChannels, model: config.bottleneckChannels))
        }
        let g = e.geometry
        let (pixels, overflow) = g.originalHeight.multipliedReportingOverflow(by: g.originalWidth)
        guard g.originalHeight > 0, g.originalWidth > 0, !overflow, pixels <= maxOriginalPixels else {
            throw .geometry(.originalSizeOutOfRange(width: g.originalWidth, height: g.originalHeight, maxPixels: maxOriginalPixels))
        }
        guard let expected = expectedGeometry(originalHeight: g.originalHeight, originalWidth: g.originalWidth) else {
            throw .geometry(.tooThin(width: g.originalWidth, height: g.originalHeight))
        }
        guard g == expected.geometry, e.latentHeight == expected.latentHeight, e.latentWidth == expected.latentWidth else {
            let x = expected.geometry
            throw .geometry(.inconsistentSizes(
                width: g.originalWidth, height: g.originalHeight,
                found: "resized \(g.resizedWidth)x\(g.resizedHeight), padded \(g.paddedWidth)x\(g.paddedHeight), latent \(e.latentWidth)x\(e.latentHeight)",
                expected: "resized \(x.resizedWidth)x\(x.resizedHeight), padded \(x.paddedWidth)x\(x.paddedHeight), latent \(expected.latentWidth)x\(expected.latentHeight)"))
        }
    }

    // MARK: Stages

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

    // MARK: The whole half

    /// Checks an encoded image (``check(_:)``), then decodes it and runs every head.
    public func run(_ e: EncodedImage) throws(LadonError) -> LadonResult {
        try check(e)
        var stopwatch = Stopwatch()
        let latentHat = try stopwatch.time("decompress") { () throws(LadonError) in
            try decompress(e.bytes, height: e.latentHeight, width: e.latentWidth)
        }
        let feats = stopwatch.time("decoder+body") { features(latentHat) }
        let logits = stopwatch.time("classification") { classify(feats) }
        let seg = stopwatch.time("segmentation") {
            segment(feats, paddedHeight: e.geometry.paddedHeight, paddedWidth: e.geometry.paddedWidth)
        }
        let detections = try stopwatch.time("detection") { () throws(LadonError) in try detect(feats, geometry: e.geometry) }
        return LadonResult(geometry: e.geometry, latentShape: [latentHat.c, e.latentHeight, e.latentWidth],
                           compressed: e.bytes, classificationLogits: logits?.scalars, segmentation: seg,
                           detections: detections, timings: stopwatch.laps)
    }
}
