// The Codable description of a Ladon model: channel widths, body, heads, preprocessing (Configs/*.json).
import Foundation

/// Everything needed to build a Ladon model and to check a weights file against it.
///
/// The defaults (``resnet50``) are the ResNet-50 Ladon of the WACV 2025 paper; `Configs/ladon-resnet50.json`
/// holds the same values. A head that is `nil` is absent (a weights file converted from fewer checkpoints).
/// The converter embeds this JSON in the weights file's `config` metadata; the model builder reads it back.
public struct LadonModelConfig: Codable, Sendable, Equatable {
    /// Name of the architecture, e.g. `ladon-resnet50`.
    public var architecture: String
    /// Latent channels of the bottleneck (24 for ResNet-50 Ladon, 32 for ResNeSt-269e Ladon).
    public var bottleneckChannels: Int
    /// Encoder conv widths `[input, conv0 out, conv2 out, conv4 out]` = `[3, 4B, 2B, B]`.
    public var encoderChannels: [Int]
    /// Decoder conv widths `[B, conv0 out, conv2 out, conv4 out]` = `[B, 512, 256, 256]`.
    public var decoderChannels: [Int]
    /// The factorized-prior entropy bottleneck (CompressAI `EntropyBottleneck`).
    public var entropyBottleneck: EntropyBottleneck
    /// The server-side ResNet stages after the decoder.
    public var body: Body
    public var classification: Classification?
    public var detection: Detection?
    public var segmentation: Segmentation?
    public var preprocessing: Preprocessing

    /// CompressAI `EntropyBottleneck(channels, filters=(3,3,3,3))`.
    public struct EntropyBottleneck: Codable, Sendable, Equatable {
        /// Hidden widths of the per-channel density MLP.
        public var filters: [Int]
        public var tailMass: Double
        public var likelihoodBound: Double
    }

    /// torchvision Bottleneck stages `layer2`, `layer3`, `layer4` (stride 2 on the 3x3, v1.5).
    public struct Body: Codable, Sendable, Equatable {
        /// `resnet50` is the only body the converter validates.
        public var name: String
        /// Blocks per stage, `[4, 6, 3]` for ResNet-50.
        public var blocks: [Int]
        /// Bottleneck widths per stage, `[128, 256, 512]`; each stage outputs `expansion * planes` channels.
        public var planes: [Int]
        public var expansion: Int
        public var batchNormEpsilon: Double
    }

    /// Average pool + `fc` over layer4.
    public struct Classification: Codable, Sendable, Equatable {
        public var numClasses: Int
        /// Key of the label list in the weights file metadata (`classes.<key>`).
        public var classList: String
    }

    /// Faster R-CNN + FPN (torchvision defaults, `min_size = max_size = 416`).
    public struct Detection: Codable, Sendable, Equatable {
        public var numClasses: Int
        public var classList: String
        public var fpnChannels: Int
        /// Anchor size per FPN level (P2..P6).
        public var anchorSizes: [Int]
        public var aspectRatios: [Double]
        /// Feature names MultiScaleRoIAlign pools from: `["0","1","2"]` = P2–P4, as the per-task models were
        /// trained and evaluated (the runtime module's `["0","1","2","3"]` adds P5; see the reference §1.2).
        public var roiLevels: [String]
        public var roiOutputSize: Int
        public var roiSamplingRatio: Int
        /// Width of `fc6`/`fc7` in the box head.
        public var representationSize: Int
        public var rpnPreNmsTopN: Int
        public var rpnPostNmsTopN: Int
        public var rpnNmsThreshold: Double
        public var rpnScoreThreshold: Double
        public var rpnMinSize: Double
        public var boxScoreThreshold: Double
        public var boxNmsThreshold: Double
        public var boxMinSize: Double
        public var detectionsPerImage: Int
        public var boxCoderWeights: [Double]
    }

    /// DeepLabV3 head on layer4 (stride 32; the aux FCN head is not used).
    public struct Segmentation: Codable, Sendable, Equatable {
        public var numClasses: Int
        public var classList: String
        public var asppChannels: Int
        public var asppRates: [Int]
    }

    /// torchvision `GeneralizedRCNNTransform`: normalise, resize, pad to a multiple of `sizeDivisible`.
    public struct Preprocessing: Codable, Sendable, Equatable {
        public var minSize: Int
        public var maxSize: Int
        public var sizeDivisible: Int
        public var mean: [Double]
        public var std: [Double]
        /// `torchvision-0.13-float32` (the legacy pin: float32 scale factor) or `torchvision-0.15-double`.
        public var resizeRule: String
    }

    /// The ResNet-50 Ladon model with all three heads.
    public static let resnet50 = LadonModelConfig(
        architecture: "ladon-resnet50",
        bottleneckChannels: 24,
        encoderChannels: [3, 96, 48, 24],
        decoderChannels: [24, 512, 256, 256],
        entropyBottleneck: EntropyBottleneck(filters: [3, 3, 3, 3], tailMass: 1e-9, likelihoodBound: 1e-9),
        body: Body(name: "resnet50", blocks: [4, 6, 3], planes: [128, 256, 512], expansion: 4, batchNormEpsilon: 1e-5),
        classification: Classification(numClasses: 1000, classList: "imagenet"),
        detection: Detection(
            numClasses: 91, classList: "coco", fpnChannels: 256, anchorSizes: [32, 64, 128, 256, 512],
            aspectRatios: [0.5, 1.0, 2.0], roiLevels: ["0", "1", "2"], roiOutputSize: 7, roiSamplingRatio: 2,
            representationSize: 1024, rpnPreNmsTopN: 1000, rpnPostNmsTopN: 1000, rpnNmsThreshold: 0.7,
            rpnScoreThreshold: 0.0, rpnMinSize: 1e-3, boxScoreThreshold: 0.05, boxNmsThreshold: 0.5,
            boxMinSize: 1e-2, detectionsPerImage: 100, boxCoderWeights: [10, 10, 5, 5]),
        segmentation: Segmentation(numClasses: 21, classList: "voc", asppChannels: 256, asppRates: [12, 24, 36]),
        preprocessing: Preprocessing(minSize: 416, maxSize: 416, sizeDivisible: 32, mean: [0.485, 0.456, 0.406],
                                     std: [0.229, 0.224, 0.225], resizeRule: "torchvision-0.13-float32"))

    /// Names of the heads present, in the reference load order.
    public var heads: [String] {
        [classification.map { _ in "classification" }, detection.map { _ in "detection" },
         segmentation.map { _ in "segmentation" }].compactMap { $0 }
    }

    /// Output channels of each body stage (`expansion * planes`).
    public var stageChannels: [Int] { body.planes.map { $0 * body.expansion } }

    /// Checks internal consistency; throws `.config` naming the first problem.
    public func validate() throws(LadonError) {
        func check(_ ok: Bool, _ message: String) throws(LadonError) { if !ok { throw .config("\(architecture): \(message)") } }
        try check(encoderChannels.count == 4 && encoderChannels.last == bottleneckChannels,
                  "encoderChannels must be [input, c1, c2, bottleneckChannels], got \(encoderChannels)")
        try check(decoderChannels.count == 4 && decoderChannels.first == bottleneckChannels,
                  "decoderChannels must be [bottleneckChannels, c1, c2, c3], got \(decoderChannels)")
        try check(body.name == "resnet50", "body '\(body.name)' is not supported (only 'resnet50'; ResNeSt-269e bodies are not implemented)")
        try check(body.blocks.count == 3 && body.planes.count == 3 && body.blocks.allSatisfy { $0 >= 1 },
                  "body needs 3 stages (layer2-4) with at least one block each, got blocks \(body.blocks), planes \(body.planes)")
        try check(([encoderChannels, decoderChannels, body.planes, entropyBottleneck.filters].joined()).allSatisfy { $0 > 0 }
                  && body.expansion > 0, "channel counts must be positive")
        if let c = classification { try check(c.numClasses > 0, "classification.numClasses must be positive") }
        if let d = detection {
            try check(d.numClasses > 0 && d.fpnChannels > 0 && d.representationSize > 0 && d.roiOutputSize > 0
                      && !d.aspectRatios.isEmpty && d.anchorSizes.count == 5 && d.boxCoderWeights.count == 4,
                      "detection sizes are invalid")
        }
        if let s = segmentation {
            try check(s.numClasses > 0 && s.asppChannels > 0 && !s.asppRates.isEmpty, "segmentation sizes are invalid")
        }
        try check(preprocessing.mean.count == 3 && preprocessing.std.count == 3
                  && preprocessing.std.allSatisfy { $0.isFinite && $0 != 0 } && preprocessing.mean.allSatisfy(\.isFinite),
                  "preprocessing needs 3 finite means and 3 finite non-zero stds")
        try check((1...8192).contains(preprocessing.minSize) && (preprocessing.minSize...8192).contains(preprocessing.maxSize),
                  "preprocessing sizes must satisfy 1 <= minSize <= maxSize <= 8192, got \(preprocessing.minSize), \(preprocessing.maxSize)")
        try check((1...256).contains(preprocessing.sizeDivisible) && preprocessing.sizeDivisible % 4 == 0,
                  "preprocessing.sizeDivisible must be a multiple of 4 in 4 ... 256 (the encoder downsamples by 4), got \(preprocessing.sizeDivisible)")
        try check(["torchvision-0.13-float32", "torchvision-0.15-double"].contains(preprocessing.resizeRule),
                  "preprocessing.resizeRule '\(preprocessing.resizeRule)' is not one of torchvision-0.13-float32, torchvision-0.15-double")
    }

    /// Decodes and validates a config from JSON.
    public static func decode(json: Data, source: String = "config") throws(LadonError) -> LadonModelConfig {
        let config: LadonModelConfig
        do {
            config = try JSONDecoder().decode(LadonModelConfig.self, from: json)
        } catch {
            throw .config("\(source) is not a valid Ladon model config: \(error)")
        }
        try config.validate()
        return config
    }

    /// Loads and validates a config file.
    public static func load(path: String) throws(LadonError) -> LadonModelConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .config("cannot read \(path): \(error.localizedDescription)")
        }
        return try decode(json: data, source: path)
    }

    /// Compact JSON with sorted keys (what goes into the weights file's `config` metadata).
    public func jsonString(pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain structs of numbers and strings cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
