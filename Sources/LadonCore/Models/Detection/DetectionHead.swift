// Ladon's COCO detection head: torchvision Faster R-CNN (FPN, RPN, RoI heads) at test time, over the shared body.

/// Sizes, thresholds and level choices of the detection head. ``ladon`` holds the values of Ladon's
/// per-task COCO model (torchvision `FasterRCNN` defaults, 91 classes).
package struct DetectionHeadConfig: Sendable, Equatable {
    /// Channels of the FPN inputs: decoder output, layer2, layer3, layer4.
    package var inChannels: [Int] = [256, 512, 1024, 2048]
    /// FPN output channels (also the RPN and RoI feature width).
    package var fpnChannels: Int = 256
    /// Width of `fc6`/`fc7`.
    package var representationSize: Int = 1024
    /// Classes including the background (COCO: 91 category ids).
    package var numClasses: Int = 91
    /// One anchor size per FPN output (P2…P5, pool).
    package var anchorSizes: [Int] = [32, 64, 128, 256, 512]
    package var aspectRatios: [Float] = [0.5, 1.0, 2.0]
    /// RPN proposal filter (per-level pre-NMS top-n, post-NMS top-n, thresholds).
    package var proposals = ProposalFilter()
    /// FPN outputs pooled by the RoI heads (0 = P2 …). Ladon's trained detector pools P2–P4 (`[0, 1, 2]`);
    /// the Ladon runtime module pools P2–P5 (`[0, 1, 2, 3]`). At 416×416 both give the same detections.
    package var roiLevels: [Int] = [0, 1, 2]
    package var roiOutputSize: Int = 7
    package var roiSamplingRatio: Int = 2
    package var canonicalScale: Float = 224
    package var canonicalLevel: Int = 4
    package var poolerScales: PoolerScales = .inferred
    /// RoI-head post-processing (score > 0.05, NMS 0.5 per class, 100 detections).
    package var postprocess = DetectionPostprocess()

    package init() {}

    /// Ladon's per-task COCO detector (P2–P4 pooling).
    package static let ladon = DetectionHeadConfig()

    /// The Ladon runtime module's pooling (P2–P5, `k_max = 5`).
    package static var ladonRuntime: DetectionHeadConfig {
        var c = DetectionHeadConfig()
        c.roiLevels = [0, 1, 2, 3]
        return c
    }

    /// Throws `.config` when the settings cannot describe a working head.
    package func validate() throws(LadonError) {
        let levels = inChannels.count + 1
        guard !inChannels.isEmpty, inChannels.allSatisfy({ $0 > 0 }) else { throw .config(.invalidValue(model: nil, field: "detection.inChannels", requirement: "must be positive and non-empty")) }
        guard fpnChannels > 0, representationSize > 0 else { throw .config(.invalidValue(model: nil, field: "detection channel widths", requirement: "(fpnChannels, representationSize) must be positive")) }
        guard numClasses >= 2 else { throw .config(.invalidValue(model: nil, field: "detection.numClasses", requirement: "must be at least 2 (background + one class)")) }
        guard anchorSizes.count == levels else {
            throw .config(.invalidValue(model: nil, field: "detection.anchorSizes", requirement: "has \(anchorSizes.count) sizes for \(levels) FPN outputs (\(inChannels.count) levels + pool)"))
        }
        guard !aspectRatios.isEmpty, aspectRatios.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw .config(.invalidValue(model: nil, field: "detection.aspectRatios", requirement: "must be positive")) }
        guard !roiLevels.isEmpty, roiLevels.allSatisfy({ (0..<levels).contains($0) }),
              zip(roiLevels, roiLevels.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw .config(.invalidValue(model: nil, field: "detection.roiLevels", requirement: "\(roiLevels) must be increasing indices below \(levels)"))
        }
        if case .fixed(let s) = poolerScales, s.count != roiLevels.count || !s.allSatisfy({ $0 > 0 && $0.isFinite }) {
            throw .config(.invalidValue(model: nil, field: "detection.poolerScales", requirement: "has \(s.count) fixed scales for \(roiLevels.count) pooled levels"))
        }
        guard roiOutputSize > 0, canonicalScale > 0 else { throw .config(.invalidValue(model: nil, field: "detection.roiOutputSize / canonicalScale", requirement: "must be positive")) }
    }
}

/// Wall-clock seconds of each stage of one detection-head call.
package struct DetectionTimings: Sendable, Equatable {
    package var fpn: Double = 0
    package var rpnHead: Double = 0
    /// Anchors, decoding, top-k, NMS.
    package var proposals: Double = 0
    package var roiAlign: Double = 0
    /// `fc6`, `fc7` and the predictor.
    package var boxHead: Double = 0
    /// Softmax, decoding, NMS, rescaling.
    package var postprocess: Double = 0
    package var total: Double { fpn + rpnHead + proposals + roiAlign + boxHead + postprocess }
}

/// Every intermediate of one detection-head call (for tests, parity reports and profiling).
package struct DetectionTrace: Sendable {
    /// FPN outputs `[P2, …, P5, pool]`, each `[1, fpnChannels, h, w]`.
    package var fpn: [Tensor] = []
    /// All anchors (level, y, x, anchor) and the count per level.
    package var anchors: [Box] = []
    package var anchorsPerLevel: [Int] = []
    /// Objectness logits per anchor and 4 box deltas per anchor, in anchor order.
    package var objectness: [Float] = []
    package var deltas: [Float] = []
    /// RPN proposals (resized-image pixels) and their sigmoid scores, by decreasing score.
    package var proposals: [Box] = []
    package var proposalScores: [Float] = []
    /// Spatial scale of each pooled level, and each proposal's level (index into `roiLevels`; nil = unpooled).
    package var poolerScales: [Float] = []
    package var proposalLevels: [Int?] = []
    /// `[R, fpnChannels, 7, 7]` pooled features, `[R, representationSize]` box features.
    package var roiFeatures = Tensor(shape: [0])
    package var boxFeatures = Tensor(shape: [0])
    /// `[R, numClasses]` logits and `[R, 4·numClasses]` deltas.
    package var classLogits = Tensor(shape: [0])
    package var boxRegression = Tensor(shape: [0])
    /// Final detections in resized-image pixels, and in original-image pixels.
    package var resizedDetections: [Detection] = []
    package var detections: [Detection] = []
    package var timings = DetectionTimings()
}

/// Ladon's detection head: FPN → RPN → multi-scale RoIAlign → TwoMLPHead → predictor → post-processing, equal to
/// torchvision's Faster R-CNN at test time for one image.
package struct DetectionHead: Sendable {
    package let config: DetectionHeadConfig
    package let fpn: FeaturePyramidNetwork
    package let anchorGenerator: AnchorGenerator
    package let rpnHead: RPNHead
    package let pooler: MultiScaleRoIAlign
    package let boxHead: BoxHead

    /// Loads the head from `weights` scoped at `detection_head` (`fpn.*`, `rpn.head.*`, `roi_heads.*`).
    package init(weights: WeightScope, config: DetectionHeadConfig = .ladon) throws(LadonError) {
        try config.validate()
        self.config = config
        fpn = try FeaturePyramidNetwork(weights: weights.scope("fpn"), inChannels: config.inChannels,
                                        outChannels: config.fpnChannels)
        anchorGenerator = AnchorGenerator(sizes: config.anchorSizes, aspectRatios: config.aspectRatios)
        rpnHead = try RPNHead(weights: weights.scope("rpn.head"), channels: config.fpnChannels,
                              anchorsPerLocation: config.aspectRatios.count)
        var pooler = MultiScaleRoIAlign(levels: config.roiLevels)
        pooler.outputSize = config.roiOutputSize
        pooler.samplingRatio = config.roiSamplingRatio
        pooler.canonicalScale = config.canonicalScale
        pooler.canonicalLevel = config.canonicalLevel
        pooler.scales = config.poolerScales
        self.pooler = pooler
        boxHead = try BoxHead(weights: weights.scope("roi_heads"),
                              inFeatures: config.fpnChannels * config.roiOutputSize * config.roiOutputSize,
                              representationSize: config.representationSize, numClasses: config.numClasses)
    }

    /// Detections for one image, by decreasing score, boxes in original-image pixels.
    ///
    /// - Parameters:
    ///   - features: decoder output, layer2, layer3, layer4, each `[1, C_i, h_i, w_i]` (channels per config).
    ///   - paddedSize: size of the padded input tensor (anchor strides come from it).
    ///   - imageSize: the unpadded resized size `(H', W')` (clipping, pooler scales).
    ///   - originalSize: the original image size (boxes are rescaled to it).
    package func callAsFunction(features: [Tensor], paddedSize: (h: Int, w: Int), imageSize: (h: Int, w: Int),
                               originalSize: (h: Int, w: Int)) throws(LadonError) -> [Detection] {
        try trace(features: features, paddedSize: paddedSize, imageSize: imageSize, originalSize: originalSize).detections
    }

    /// Runs the head and returns every intermediate stage and per-stage timings.
    package func trace(features: [Tensor], paddedSize: (h: Int, w: Int), imageSize: (h: Int, w: Int),
                      originalSize: (h: Int, w: Int)) throws(LadonError) -> DetectionTrace {
        try validate(features: features, paddedSize: paddedSize, imageSize: imageSize, originalSize: originalSize)
        var t = DetectionTrace()
        let clock = ContinuousClock()
        var start = clock.now
        func lap() -> Double {
            let now = clock.now
            defer { start = now }
            return (now - start).seconds
        }

        t.fpn = fpn(features)
        t.timings.fpn = lap()

        var objectness: [[Float]] = [], deltas: [[Float]] = []
        for level in t.fpn {
            let (o, d) = rpnHead(level)
            objectness.append(RPNHead.flattenObjectness(o))
            deltas.append(RPNHead.flattenDeltas(d))
        }
        t.timings.rpnHead = lap()

        let padded = (height: paddedSize.h, width: paddedSize.w)
        let anchors = t.fpn.indices.map {
            anchorGenerator.anchors(level: $0, gridSize: (t.fpn[$0].h, t.fpn[$0].w), paddedSize: padded)
        }
        (t.proposals, t.proposalScores) = config.proposals(objectness: objectness, deltas: deltas, anchors: anchors,
                                                           imageSize: (imageSize.h, imageSize.w))
        t.timings.proposals = lap()
        t.anchors = anchors.flatMap { $0 }
        t.anchorsPerLevel = anchors.map(\.count)
        t.objectness = objectness.flatMap { $0 }
        t.deltas = deltas.flatMap { $0 }
        _ = lap()  // trace bookkeeping is not a model stage

        t.poolerScales = pooler.spatialScales(featureHeights: config.roiLevels.map { t.fpn[$0].h },
                                              imageHeight: imageSize.h)
        (t.roiFeatures, t.proposalLevels) = pooler(fpn: t.fpn, boxes: t.proposals, imageHeight: imageSize.h)
        t.timings.roiAlign = lap()

        t.boxFeatures = boxHead.features(t.roiFeatures)
        (t.classLogits, t.boxRegression) = boxHead.predict(t.boxFeatures)
        t.timings.boxHead = lap()

        t.resizedDetections = config.postprocess(classLogits: t.classLogits, boxRegression: t.boxRegression,
                                                 proposals: t.proposals, imageSize: (imageSize.h, imageSize.w))
        t.detections = DetectionPostprocess.rescale(t.resizedDetections, from: (imageSize.h, imageSize.w),
                                                    to: (originalSize.h, originalSize.w))
        t.timings.postprocess = lap()
        return t
    }

    private func validate(features: [Tensor], paddedSize: (h: Int, w: Int), imageSize: (h: Int, w: Int),
                          originalSize: (h: Int, w: Int)) throws(LadonError) {
        guard features.count == config.inChannels.count else {
            throw .invalidInput(.featureCount(count: features.count, expected: config.inChannels.count))
        }
        for (i, f) in features.enumerated() {
            guard f.rank == 4, f.shape[0] == 1, f.shape[1] == config.inChannels[i], f.shape[2] > 0, f.shape[3] > 0 else {
                throw .invalidInput(.featureShape(index: i, shape: f.shape, channels: config.inChannels[i]))
            }
        }
        guard paddedSize.h > 0, paddedSize.w > 0, (1...paddedSize.h).contains(imageSize.h), (1...paddedSize.w).contains(imageSize.w),
              originalSize.h > 0, originalSize.w > 0 else {
            throw .invalidInput(.detectionSizes(image: [imageSize.h, imageSize.w], padded: [paddedSize.h, paddedSize.w],
                                                original: [originalSize.h, originalSize.w]))
        }
    }
}
