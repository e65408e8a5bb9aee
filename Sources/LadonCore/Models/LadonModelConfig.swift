// The architecture description a Ladon model is built from (Configs/*.json, also embedded in weight files).
import Foundation

/// Everything needed to build a Ladon model besides its weights: channel widths, the body, the heads and the
/// preprocessing. Decoded from JSON (`Configs/ladon-resnet50.json`) or from a weights file's `config` metadata.
public struct LadonModelConfig: Codable, Sendable, Equatable {
    /// A name for messages and metadata, e.g. `ladon-resnet50`.
    public var name: String
    public var bottleneck: Bottleneck
    public var body: Body
    public var classification: Classification?
    public var segmentation: Segmentation?
    public var detection: Detection?
    public var preprocessing: Preprocessing

    /// The learned encoder/decoder around the entropy bottleneck (sc2bench `FPBasedResNetBottleneck`).
    public struct Bottleneck: Codable, Sendable, Equatable {
        /// `[input, conv1 out, conv2 out, latent]`, e.g. `[3, 96, 48, 24]`.
        public var encoderChannels: [Int]
        /// `[latent, conv1 out, conv2 out, output]`, e.g. `[24, 512, 256, 256]`.
        public var decoderChannels: [Int]
        public var latentChannels: Int { encoderChannels[3] }
    }

    /// The shared body after the decoder: ResNet `layer2`…`layer4` of torchvision Bottleneck blocks.
    public struct Body: Codable, Sendable, Equatable {
        /// `resnet` (torchvision Bottleneck v1.5: stride on the 3×3).
        public var kind: String
        /// Channels entering `layer2` (the decoder's output).
        public var inChannels: Int
        /// Blocks per stage, e.g. `[4, 6, 3]` for ResNet-50 layer2…4.
        public var blocks: [Int]
        /// Bottleneck width per stage, e.g. `[128, 256, 512]`.
        public var planes: [Int]
        /// Output channels = planes × expansion (4).
        public var expansion: Int
        public var outChannels: [Int] { planes.map { $0 * expansion } }
    }

    /// Average pool + fully connected layer over `layer4`.
    public struct Classification: Codable, Sendable, Equatable {
        public var numClasses: Int
    }

    /// DeepLabv3 head over `layer4` (ASPP with image pooling, projection, 3×3 conv, classifier).
    public struct Segmentation: Codable, Sendable, Equatable {
        public var numClasses: Int
        public var atrousRates: [Int]
        /// ASPP/projection/3×3 conv width (256 in torchvision's DeepLabHead).
        public var channels: Int
    }

    /// Faster R-CNN + FPN head (see DetectionHeadConfig).
    public struct Detection: Codable, Sendable, Equatable {
        public var numClasses: Int
        public var fpnChannels: Int
        public var representationSize: Int
        /// FPN levels RoIAlign pools from, by index into (decoder, layer2, layer3, layer4): `[0, 1, 2]` = P2–P4.
        public var roiLevels: [Int]
    }

    /// torchvision `GeneralizedRCNNTransform` settings.
    public struct Preprocessing: Codable, Sendable, Equatable {
        public var minSize: Int
        public var maxSize: Int
        public var sizeDivisible: Int
        public var mean: [Float]
        public var std: [Float]
        /// How the resize scale is computed; see ``ResizeRule``.
        public var resizeRule: ResizeRule
    }

    /// Decodes a config from JSON text, validating it.
    public static func decode(json: String) throws(LadonError) -> LadonModelConfig {
        let config: LadonModelConfig
        do {
            config = try JSONDecoder().decode(LadonModelConfig.self, from: Data(json.utf8))
        } catch {
            throw .config("cannot parse model config: \(error)")
        }
        try config.validate()
        return config
    }

    /// Loads and validates a JSON config file.
    public static func load(path: String) throws(LadonError) -> LadonModelConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .config("cannot read config file \(path)")
        }
        return try decode(json: String(decoding: data, as: UTF8.self))
    }

    /// The config as pretty JSON (for metadata and `Configs/`).
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// Checks that the widths fit together.
    public func validate() throws(LadonError) {
        guard bottleneck.encoderChannels.count == 4, bottleneck.decoderChannels.count == 4,
              bottleneck.encoderChannels.allSatisfy({ $0 > 0 }), bottleneck.decoderChannels.allSatisfy({ $0 > 0 }) else {
            throw .config("\(name): bottleneck needs 4 positive encoder and 4 decoder channel counts")
        }
        guard bottleneck.encoderChannels[0] == 3 else { throw .config("\(name): the encoder must take 3 (RGB) channels") }
        guard bottleneck.decoderChannels[0] == bottleneck.encoderChannels[3] else {
            throw .config("\(name): decoder input \(bottleneck.decoderChannels[0]) != latent channels \(bottleneck.encoderChannels[3])")
        }
        guard body.kind == "resnet" else { throw .config("\(name): unsupported body '\(body.kind)' (supported: resnet)") }
        guard body.inChannels == bottleneck.decoderChannels[3] else {
            throw .config("\(name): body input \(body.inChannels) != decoder output \(bottleneck.decoderChannels[3])")
        }
        guard body.blocks.count == 3, body.planes.count == 3, body.blocks.allSatisfy({ $0 > 0 }),
              body.planes.allSatisfy({ $0 > 0 }), body.expansion > 0 else {
            throw .config("\(name): body needs 3 stages (layer2…layer4) with positive blocks and planes")
        }
        guard preprocessing.mean.count == 3, preprocessing.std.count == 3, preprocessing.std.allSatisfy({ $0 > 0 }),
              preprocessing.minSize > 0, preprocessing.maxSize >= preprocessing.minSize, preprocessing.sizeDivisible > 0 else {
            throw .config("\(name): invalid preprocessing settings")
        }
        if let s = segmentation, s.numClasses < 1 || s.atrousRates.isEmpty || s.channels < 1 {
            throw .config("\(name): invalid segmentation head settings")
        }
        if let c = classification, c.numClasses < 1 { throw .config("\(name): invalid classification head settings") }
    }

    /// The ResNet-50 Ladon model of the paper (24 bottleneck channels, 416×416 input).
    public static let resnet50 = LadonModelConfig(
        name: "ladon-resnet50",
        bottleneck: .init(encoderChannels: [3, 96, 48, 24], decoderChannels: [24, 512, 256, 256]),
        body: .init(kind: "resnet", inChannels: 256, blocks: [4, 6, 3], planes: [128, 256, 512], expansion: 4),
        classification: .init(numClasses: 1000),
        segmentation: .init(numClasses: 21, atrousRates: [12, 24, 36], channels: 256),
        detection: .init(numClasses: 91, fpnChannels: 256, representationSize: 1024, roiLevels: [0, 1, 2]),
        preprocessing: .init(minSize: 416, maxSize: 416, sizeDivisible: 32,
                             mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
                             resizeRule: .torchvision013))
}
