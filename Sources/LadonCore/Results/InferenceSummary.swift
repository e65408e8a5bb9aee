// A JSON-ready summary of one image's results: what `ladon infer --json` prints and the edge server returns.
// It lives in LadonCore so that callers who only read results (JSON clients, tools) need no networking library.
import Foundation

/// One image's results in the shape of `ladon infer --json` (see the README): sizes, latent, bytes, the three
/// tasks and stage timings. `Codable`, so the edge server can send it and clients can read it.
public struct InferenceSummary: Codable, Sendable, Equatable {
    public struct Size: Codable, Sendable, Equatable { public var width: Int, height: Int }
    public struct Input: Codable, Sendable, Equatable { public var width: Int, height: Int, paddedWidth: Int, paddedHeight: Int }
    public struct Latent: Codable, Sendable, Equatable { public var channels: Int, height: Int, width: Int }
    public struct ClassScore: Codable, Sendable, Equatable {
        public var index: Int, label: String, logit: Float, probability: Float
    }
    public struct Classification: Codable, Sendable, Equatable {
        public var top5: [ClassScore]
        public var logits: [Float]?
    }
    public struct DetectedObject: Codable, Sendable, Equatable {
        /// `[x1, y1, x2, y2]` in original-image pixels.
        public var box: [Float]
        public var score: Float
        /// COCO category id.
        public var label: Int
        public var name: String
    }
    /// Which size a segmentation mask and its class counts are given at.
    public enum MaskSize: String, Codable, Sendable, CaseIterable {
        /// The original image's size (nearest-neighbour from the unpadded network output).
        case original
        /// The padded network input's size.
        case padded
    }

    public struct Segmentation: Codable, Sendable, Equatable {
        public var width: Int, height: Int
        /// The size the mask and the counts refer to.
        public var maskSize: MaskSize
        /// Class id (as a string) → pixel count.
        public var classPixels: [String: Int]
        /// The class-id mask as a base64 8-bit grayscale PNG at `width × height`, when asked for
        /// (`POST /v1/infer?mask=png`).
        public var maskPng: String?

        public init(width: Int, height: Int, maskSize: MaskSize, classPixels: [String: Int]) {
            self.width = width
            self.height = height
            self.maskSize = maskSize
            self.classPixels = classPixels
        }

        /// Counts at the original size come from the network-size mask with row/column multiplicities, so a
        /// packet claiming a huge original size costs no more than a small one.
        public init(result seg: SegmentationResult, geometry g: ImageGeometry, original: Bool) {
            let counts: [Int32: Int]
            if original {
                counts = seg.classCounts(resampledFrom: g.resizedHeight, g.resizedWidth,
                                         toHeight: g.originalHeight, width: g.originalWidth)
                self.init(width: g.originalWidth, height: g.originalHeight, maskSize: .original, classPixels: [:])
            } else {
                var c: [Int32: Int] = [:]
                for id in seg.mask { c[id, default: 0] += 1 }
                counts = c
                self.init(width: seg.width, height: seg.height, maskSize: .padded, classPixels: [:])
            }
            classPixels = Dictionary(uniqueKeysWithValues: counts.map { (String($0.key), $0.value) })
        }
    }

    public var file: String
    public var image: Size
    public var input: Input
    public var latent: Latent
    public var compressedBytes: Int
    public var compressedSha256: String
    public var classification: Classification?
    public var detection: [DetectedObject]
    public var segmentation: Segmentation?
    /// Stage name + `Ms` → milliseconds.
    public var timings: [String: Double]

    /// Summarises a result. `maskAtOriginalSize` chooses the size the class-pixel counts are taken at.
    public init(file: String, result: LadonResult, labels: ClassLabels, includeLogits: Bool, maskAtOriginalSize: Bool) {
        let g = result.geometry
        self.file = file
        image = Size(width: g.originalWidth, height: g.originalHeight)
        input = Input(width: g.resizedWidth, height: g.resizedHeight, paddedWidth: g.paddedWidth, paddedHeight: g.paddedHeight)
        latent = Latent(channels: result.latentShape[0], height: result.latentShape[1], width: result.latentShape[2])
        compressedBytes = result.compressed.count
        compressedSha256 = SHA256.hash(result.compressed).hexString
        classification = result.classificationLogits.map { logits in
            Classification(top5: Self.topClasses(logits, k: 5, labels: labels.imagenet), logits: includeLogits ? logits : nil)
        }
        detection = result.detections.map { d in
            DetectedObject(box: [d.box.x1, d.box.y1, d.box.x2, d.box.y2], score: d.score, label: d.label,
                           name: Self.label(labels.coco, d.label))
        }
        segmentation = result.segmentation.map { seg in
            Segmentation(result: seg, geometry: g, original: maskAtOriginalSize)
        }
        timings = Self.milliseconds(result.timings)
    }

    /// Stage timings as the JSON outputs give them: stage name + `Ms` → milliseconds (laps of one stage added up).
    public static func milliseconds(_ laps: [(stage: String, seconds: Double)]) -> [String: Double] {
        Dictionary(laps.map { ($0.stage + "Ms", $0.seconds * 1000) }, uniquingKeysWith: +)
    }

    /// The top-`k` classes by logit with softmax probabilities.
    public static func topClasses(_ logits: [Float], k: Int, labels: [String]) -> [ClassScore] {
        let probabilities = Kernels.softmax(logits)
        return Kernels.topK(logits, k: min(k, logits.count)).map {
            ClassScore(index: $0.index, label: label(labels, $0.index), logit: $0.value, probability: probabilities[$0.index])
        }
    }

    /// The class-id mask at the original size (nearest-neighbour from the unpadded region) or the padded size.
    public static func mask(_ seg: SegmentationResult, geometry g: ImageGeometry, original: Bool) -> (width: Int, height: Int, ids: [Int32]) {
        guard original else { return (seg.width, seg.height, seg.mask) }
        return (g.originalWidth, g.originalHeight,
                seg.mask(resampledFrom: g.resizedHeight, g.resizedWidth, toHeight: g.originalHeight, width: g.originalWidth))
    }

    /// `labels[i]`, or `class i` when the list is short.
    public static func label(_ labels: [String], _ i: Int) -> String { i >= 0 && i < labels.count ? labels[i] : "class \(i)" }

    /// Compact JSON with sorted keys (one line).
    public func jsonString() -> String {
        String(decoding: (try? Self.jsonEncoder().encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The JSON encoder for results: sorted keys, one line, non-finite numbers (a broken model) written as
    /// `"NaN"`/`"Infinity"` strings so encoding cannot fail.
    public static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    /// The matching decoder.
    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity",
                                                                        negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}
