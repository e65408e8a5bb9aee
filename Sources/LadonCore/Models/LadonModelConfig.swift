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

    /// The body stages `layer2`, `layer3`, `layer4` after the decoder; the block type comes from ``name``.
    public struct Body: Codable, Sendable, Equatable {
        /// The block type (``Kind``): `resnet50` or `resnest269e`.
        public var name: String
        /// Blocks per stage: `[4, 6, 3]` for ResNet-50, `[30, 48, 8]` for ResNeSt-269e.
        public var blocks: [Int]
        /// Bottleneck widths per stage, `[128, 256, 512]`; each stage outputs `expansion * planes` channels.
        public var planes: [Int]
        public var expansion: Int
        public var batchNormEpsilon: Double

        /// The block types a body can have.
        public enum Kind: String, Sendable, CaseIterable {
            /// torchvision `Bottleneck` (v1.5: stride 2 on the 3×3; 1×1 strided conv + BN shortcut).
            case resnet50
            /// timm `ResNestBottleneck` as in `resnest269e`: split attention with radix 2 and cardinality 1,
            /// a 3×3/s2 average pool after it in strided blocks, and an average-pool + 1×1 conv + BN shortcut.
            case resnest269e
        }

        /// The block type named by ``name``, or nil for an unknown name.
        public var kind: Kind? { Kind(rawValue: name) }
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
        /// trained and evaluated (the runtime module's `["0","1","2","3"]` adds P5; see docs/detection.md, "RoI level set").
        public var roiLevels: [FPNLevel]
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
        public var resizeRule: ResizeRule
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
            aspectRatios: [0.5, 1.0, 2.0], roiLevels: [.p2, .p3, .p4], roiOutputSize: 7, roiSamplingRatio: 2,
            representationSize: 1024, rpnPreNmsTopN: 1000, rpnPostNmsTopN: 1000, rpnNmsThreshold: 0.7,
            rpnScoreThreshold: 0.0, rpnMinSize: 1e-3, boxScoreThreshold: 0.05, boxNmsThreshold: 0.5,
            boxMinSize: 1e-2, detectionsPerImage: 100, boxCoderWeights: [10, 10, 5, 5]),
        segmentation: Segmentation(numClasses: 21, classList: "voc", asppChannels: 256, asppRates: [12, 24, 36]),
        preprocessing: Preprocessing(minSize: 416, maxSize: 416, sizeDivisible: 32, mean: [0.485, 0.456, 0.406],
                                     std: [0.229, 0.224, 0.225], resizeRule: .torchvision013))

    /// The ResNeSt-269e Ladon model with all three heads: the paper's more accurate variant. Latent 32 channels,
    /// timm `resnest269e` layer2–4 (30/48/8 split-attention blocks); heads as ``resnet50``.
    /// `Configs/ladon-resnest269e.json` holds the same values.
    public static let resnest269e: LadonModelConfig = {
        var c = LadonModelConfig.resnet50
        c.architecture = "ladon-resnest269e"
        c.bottleneckChannels = 32
        c.encoderChannels = [3, 128, 64, 32]
        c.decoderChannels = [32, 512, 256, 256]
        c.body = Body(name: Body.Kind.resnest269e.rawValue, blocks: [30, 48, 8], planes: [128, 256, 512], expansion: 4,
                      batchNormEpsilon: 1e-5)
        return c
    }()

    /// The built-in config of a release backbone (`resnet50` or `resnest269e`), nil for other names.
    public static func builtIn(backbone: String) -> LadonModelConfig? {
        switch Body.Kind(rawValue: backbone) {
        case .resnet50: return .resnet50
        case .resnest269e: return .resnest269e
        case nil: return nil
        }
    }

    /// Names of the heads present, in the reference load order.
    public var heads: [String] {
        [classification.map { _ in "classification" }, detection.map { _ in "detection" },
         segmentation.map { _ in "segmentation" }].compactMap { $0 }
    }

    /// Output channels of each body stage (`expansion * planes`).
    public var stageChannels: [Int] { body.planes.map { $0 * body.expansion } }

    /// Upper bounds on every config value (docs/security.md). A weights file's config is untrusted input: each
    /// value becomes a loop count, a tensor extent, a convolution padding or a resize target, so each has a
    /// documented maximum, generous for every Ladon body (ResNet-50: 24 latent channels, blocks [4, 6, 3], planes
    /// up to 512; ResNeSt-269e: 32 latent channels, blocks [30, 48, 8]) and small enough that no value, or product
    /// of values, can overflow or ask for an absurd allocation.
    public enum Limits {
        /// Latent (bottleneck) channels.
        public static let bottleneckChannels = 256
        /// Any encoder, decoder, FPN, ASPP or bottleneck-plane width.
        public static let channels = 4096
        /// Blocks per body stage (ResNeSt-269e's layer3 has 48).
        public static let blocksPerStage = 64
        /// Body expansion (torchvision's Bottleneck: 4).
        public static let expansion = 8
        /// Hidden layers and hidden width of the entropy bottleneck's density MLP (CompressAI: 4 × 3).
        public static let densityLayers = 8, densityWidth = 64
        /// Classes of any head (ImageNet-21k has 21,843).
        public static let classes = 100_000
        /// ASPP dilation rates: each becomes a convolution padding, so the padded copy of layer4 grows with its square
        /// (DeepLabv3 uses 6/12/18 or 12/24/36).
        public static let asppRate = 72, asppRates = 8
        /// Anchor sizes in pixels, and the number of aspect ratios.
        public static let anchorSize = 8192, aspectRatios = 16
        /// RoIAlign output size (7) and sampling ratio (2; 0 = adaptive).
        public static let roiOutputSize = 32, roiSamplingRatio = 16
        /// The box head's `fc6`/`fc7` width (1024).
        public static let representationSize = 16_384
        /// RPN proposals per level before and after NMS, and detections per image.
        public static let proposals = 100_000, detectionsPerImage = 10_000
        /// Any size in pixels (`rpnMinSize`, `boxMinSize`) and any box-coder weight.
        public static let boxValue = 10_000.0
        /// Length of a name (`architecture`, `classList`, ...).
        public static let nameLength = 128
    }

    /// Checks internal consistency and every bound of ``Limits``; throws `.config` naming the first problem.
    public func validate() throws(LadonError) {
        func check(_ ok: Bool, _ field: String, _ requirement: @autoclosure () -> String) throws(LadonError) {
            if !ok { throw .config(.invalidValue(model: architecture, field: field, requirement: requirement())) }
        }
        func name(_ s: String, _ what: String) throws(LadonError) {
            try check(!s.isEmpty && s.utf8.count <= Limits.nameLength, what, "must be 1 ... \(Limits.nameLength) bytes long")
        }
        func within(_ values: [Int], _ range: ClosedRange<Int>, _ what: String) throws(LadonError) {
            try check(values.allSatisfy { range.contains($0) }, what, "must be in \(range.lowerBound) ... \(range.upperBound), got \(values.prefix(16))")
        }
        func within(_ values: [Double], _ range: ClosedRange<Double>, _ what: String) throws(LadonError) {
            try check(values.allSatisfy { $0.isFinite && range.contains($0) }, what, "must be finite and in \(range.lowerBound) ... \(range.upperBound), got \(values.prefix(16))")
        }
        try name(architecture, "architecture")
        try within([bottleneckChannels], 1...Limits.bottleneckChannels, "bottleneckChannels")
        try check(encoderChannels.count == 4 && encoderChannels.first == 3 && encoderChannels.last == bottleneckChannels,
                  "encoderChannels", "must be [3, c1, c2, bottleneckChannels], got \(encoderChannels.prefix(16))")
        try check(decoderChannels.count == 4 && decoderChannels.first == bottleneckChannels,
                  "decoderChannels", "must be [bottleneckChannels, c1, c2, c3], got \(decoderChannels.prefix(16))")
        try within(encoderChannels + decoderChannels, 1...Limits.channels, "encoder and decoder channels")
        let eb = entropyBottleneck
        try check((1...Limits.densityLayers).contains(eb.filters.count), "entropyBottleneck.filters", "must have 1 ... \(Limits.densityLayers) layers")
        try within(eb.filters, 1...Limits.densityWidth, "entropyBottleneck.filters")
        try check(eb.tailMass.isFinite && eb.tailMass > 0 && eb.tailMass < 0.5, "entropyBottleneck.tailMass", "must be in (0, 0.5), got \(eb.tailMass)")
        try check(eb.likelihoodBound.isFinite && eb.likelihoodBound > 0 && eb.likelihoodBound < 1,
                  "entropyBottleneck.likelihoodBound", "must be in (0, 1), got \(eb.likelihoodBound)")
        try check(body.kind != nil, "body", "'\(body.name.prefix(Limits.nameLength))' is not supported (one of \(Body.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        try check(body.blocks.count == 3 && body.planes.count == 3,
                  "body", "needs 3 stages (layer2-4), got blocks \(body.blocks.prefix(16)), planes \(body.planes.prefix(16))")
        try within(body.blocks, 1...Limits.blocksPerStage, "body.blocks")
        try within([body.expansion], 1...Limits.expansion, "body.expansion")
        try within(body.planes, 1...(Limits.channels / body.expansion), "body.planes (times expansion \(body.expansion) at most \(Limits.channels))")
        try within([body.batchNormEpsilon], 1e-12...1, "body.batchNormEpsilon")
        if body.kind == .resnest269e {
            let radix = ResNeStBottleneckBlock.resnest269eRadix
            try check(body.planes.allSatisfy { $0 % radix == 0 }, "body.planes", "of a resnest269e body must be multiples of the radix \(radix), got \(body.planes.prefix(16))")
        }
        if let c = classification {
            try within([c.numClasses], 1...Limits.classes, "classification.numClasses")
            try name(c.classList, "classification.classList")
        }
        if let d = detection {
            try within([d.numClasses], 2...Limits.classes, "detection.numClasses (background included)")
            try name(d.classList, "detection.classList")
            try within([d.fpnChannels], 1...Limits.channels, "detection.fpnChannels")
            try check(d.anchorSizes.count == 5, "detection.anchorSizes", "needs 5 sizes (P2-P5 and pool), got \(d.anchorSizes.count)")
            try within(d.anchorSizes, 1...Limits.anchorSize, "detection.anchorSizes")
            try check((1...Limits.aspectRatios).contains(d.aspectRatios.count), "detection.aspectRatios", "needs 1 ... \(Limits.aspectRatios) ratios")
            try within(d.aspectRatios, 1e-3...1e3, "detection.aspectRatios")
            let levels = d.roiLevels.map(\.index)
            try check(!levels.isEmpty && zip(levels, levels.dropFirst()).allSatisfy { $0 < $1 },
                      "detection.roiLevels", "must be increasing FPN output names \"0\" ... \"4\", got \(d.roiLevels.prefix(8).map(\.rawValue))")
            try within([d.roiOutputSize], 1...Limits.roiOutputSize, "detection.roiOutputSize")
            try within([d.roiSamplingRatio], 0...Limits.roiSamplingRatio, "detection.roiSamplingRatio")
            try within([d.representationSize], 1...Limits.representationSize, "detection.representationSize")
            try within([d.rpnPreNmsTopN, d.rpnPostNmsTopN], 1...Limits.proposals, "detection.rpnPreNmsTopN / rpnPostNmsTopN")
            try within([d.detectionsPerImage], 1...Limits.detectionsPerImage, "detection.detectionsPerImage")
            try within([d.rpnNmsThreshold, d.rpnScoreThreshold, d.boxScoreThreshold, d.boxNmsThreshold], 0...1,
                       "detection thresholds (rpnNmsThreshold, rpnScoreThreshold, boxScoreThreshold, boxNmsThreshold)")
            try within([d.rpnMinSize, d.boxMinSize], 0...Limits.boxValue, "detection.rpnMinSize / boxMinSize")
            try check(d.boxCoderWeights.count == 4, "detection.boxCoderWeights", "needs 4 values, got \(d.boxCoderWeights.count)")
            try within(d.boxCoderWeights, 1e-3...Limits.boxValue, "detection.boxCoderWeights")
        }
        if let s = segmentation {
            try within([s.numClasses], 1...Limits.classes, "segmentation.numClasses")
            try name(s.classList, "segmentation.classList")
            try within([s.asppChannels], 1...Limits.channels, "segmentation.asppChannels")
            try check((1...Limits.asppRates).contains(s.asppRates.count), "segmentation.asppRates", "needs 1 ... \(Limits.asppRates) rates")
            try within(s.asppRates, 1...Limits.asppRate, "segmentation.asppRates")
        }
        do { try preprocessing.validate() } catch let LadonError.config(.invalidValue(_, field, requirement)) {
            throw .config(.invalidValue(model: architecture, field: field, requirement: requirement))
        }
    }

    /// Largest config JSON accepted (the ResNet-50 config is under 2 KB).
    public static let maxJSONBytes = 1 << 20

    /// Decodes and validates a config from JSON.
    public static func decode(json: Data, source: String = "config") throws(LadonError) -> LadonModelConfig {
        guard json.count <= maxJSONBytes else {
            throw .config(.tooLarge(source: source, bytes: json.count, limit: maxJSONBytes))
        }
        guard SafeTensorsFile.jsonNestingDepth(json) <= 8 else {
            throw .config(.tooDeeplyNested(source: source))
        }
        let config: LadonModelConfig
        do {
            config = try JSONDecoder().decode(LadonModelConfig.self, from: json)
        } catch {
            throw .config(.notAConfig(source: source, reason: Self.describe(error)))
        }
        try config.validate()
        return config
    }

    /// A decoding failure in a few words: the field's path and what was wrong with it.
    static func describe(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "top level" : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error as? DecodingError {
        case .dataCorrupted(let c)?: return "\(path(c)): \(c.debugDescription)"
        case .keyNotFound(let key, let c)?: return "\(path(c)).\(key.stringValue) is missing".replacingOccurrences(of: "top level.", with: "")
        case .typeMismatch(let type, let c)?: return "\(path(c)) is not \(type)"
        case .valueNotFound(let type, let c)?: return "\(path(c)) is null, expected \(type)"
        default: return "\(error)"
        }
    }

    /// Loads and validates a config file.
    public static func load(path: String) throws(LadonError) -> LadonModelConfig {
        let data: Data
        do { data = try UntrustedFile.read(path, maxBytes: maxJSONBytes, allowStreams: true) } catch {
            throw .config(.unreadable(path: path, reason: error.reason))
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

extension LadonModelConfig.Preprocessing {
    /// The preprocessing bounds, shared by ``LadonModelConfig/validate()`` and ``Preprocessor/init(_:)`` (settings
    /// built in code): the sizes feed `Int(Double)` conversions and `sizeDivisible` a division.
    public func validate() throws(LadonError) {
        func check(_ ok: Bool, _ field: String, _ requirement: @autoclosure () -> String) throws(LadonError) {
            if !ok { throw .config(.invalidValue(model: nil, field: field, requirement: requirement())) }
        }
        try check(mean.count == 3 && std.count == 3, "preprocessing", "needs 3 means and 3 stds")
        try check(mean.allSatisfy { $0.isFinite && (-1e3...1e3).contains($0) },
                  "preprocessing.mean", "must be finite and in -1000.0 ... 1000.0, got \(mean.prefix(16))")
        try check(std.allSatisfy { $0.isFinite && (1e-6...1e3).contains($0) },
                  "preprocessing.std", "must be finite and in 1e-06 ... 1000.0, got \(std.prefix(16))")
        try check((1...8192).contains(minSize) && (minSize...8192).contains(maxSize),
                  "preprocessing", "sizes must satisfy 1 <= minSize <= maxSize <= 8192, got \(minSize), \(maxSize)")
        try check((1...256).contains(sizeDivisible) && sizeDivisible % 4 == 0,
                  "preprocessing.sizeDivisible", "must be a multiple of 4 in 4 ... 256 (the encoder downsamples by 4), got \(sizeDivisible)")
    }
}
