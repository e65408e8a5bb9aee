// Builds the detection head's settings from a model config's `detection` section.

extension DetectionHeadConfig {
    /// The head settings a ``LadonModelConfig/Detection`` describes, for FPN inputs of `inChannels`
    /// (decoder output, layer2, layer3, layer4).
    public init(_ d: LadonModelConfig.Detection, inChannels: [Int]) throws(LadonError) {
        self.init()
        self.inChannels = inChannels
        fpnChannels = d.fpnChannels
        representationSize = d.representationSize
        numClasses = d.numClasses
        anchorSizes = d.anchorSizes
        aspectRatios = d.aspectRatios.map { Float($0) }
        proposals.preNMSTopN = d.rpnPreNmsTopN
        proposals.postNMSTopN = d.rpnPostNmsTopN
        proposals.nmsThreshold = Float(d.rpnNmsThreshold)
        proposals.scoreThreshold = Float(d.rpnScoreThreshold)
        proposals.minSize = Float(d.rpnMinSize)
        let levels = d.roiLevels.map(\.index)
        roiLevels = levels
        // torchvision's MultiScaleRoIAlign infers its scales once, from the first image it sees, and caches them:
        // 1/4, 1/8, 1/16 … for any photo of ordinary aspect ratio (COCO's first val image included). Re-inferring per
        // image would change them for tiny or extreme-aspect inputs the trained head never saw, so a model uses the
        // cached values: level k (P(k+2)) has scale 2^-(k+2).
        poolerScales = .fixed(levels.map { Float(1) / Float(1 << ($0 + 2)) })
        roiOutputSize = d.roiOutputSize
        roiSamplingRatio = d.roiSamplingRatio
        postprocess.scoreThreshold = Float(d.boxScoreThreshold)
        postprocess.nmsThreshold = Float(d.boxNmsThreshold)
        postprocess.minSize = Float(d.boxMinSize)
        postprocess.detectionsPerImage = d.detectionsPerImage
        guard d.boxCoderWeights.count == 4 else { throw .config(.invalidValue(model: nil, field: "detection.boxCoderWeights", requirement: "needs 4 values, got \(d.boxCoderWeights.count)")) }
        let w = d.boxCoderWeights.map { Float($0) }
        postprocess.coder = BoxCoder(weights: (w[0], w[1], w[2], w[3]))
        try validate()
    }
}
