// Hostile weights files and configs (docs/security.md): each is built here, small, and must give a clear error
// promptly and without a large allocation, while the matching control still reads.
import Foundation
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct HostileFileTests {
    @Test func freeCDFWidthIsBounded() {
        let spec = LadonWeightLayout.specs(for: .resnet50).first { $0.name.hasSuffix("_quantized_cdf") }!
        #expect(spec.matches([24, 67]))
        #expect(!spec.matches([24, 1_100_000_000_000]))
        #expect(!spec.matches([24, LadonTensorSpec.maxFreeExtent + 1]))
    }


    @Test func nonRegularFilesAreNotReadForever() {
        expectRefused("not a regular file") { _ = try SafeTensorsFile(path: "/dev/zero") }
        expectRefused("longer than") { _ = try LadonModelConfig.load(path: "/dev/zero") }
    }

    // MARK: Safetensors headers

    @Test func deeplyNestedOrHighRankHeadersAreRefused() throws {
        let nested = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        expectRefused("nested deeper") { _ = try SafeTensorsFile(data: SafeTensorsTests.image(nested), source: "nested") }
        let rank = "{\"t\":{\"dtype\":\"F32\",\"shape\":[" + Array(repeating: "1", count: 65).joined(separator: ",") + "],\"data_offsets\":[0,4]}}"
        expectRefused("dimensions") { _ = try SafeTensorsFile(data: SafeTensorsTests.image(rank, data: [0, 0, 0, 0]), source: "rank") }
        // An empty tensor with huge other dimensions: accepted, and nothing overflows.
        let empty = #"{"t":{"dtype":"F32","shape":[0,2147483647,2147483647,2147483647],"data_offsets":[0,0]}}"#
        let file = try SafeTensorsFile(data: SafeTensorsTests.image(empty), source: "empty")
        #expect(try file.tensor("t").count == 0)
    }

    // MARK: Model configs

    private static func config(_ edit: (inout LadonModelConfig) -> Void) -> LadonModelConfig {
        var c = LadonModelConfig.resnet50
        edit(&c)
        return c
    }

    @Test func everyConfigValueIsBounded() throws {
        try LadonModelConfig.resnet50.validate()
        // The largest Ladon body, ResNeSt-269e's, passes the bounds.
        try LadonModelConfig.resnest269e.validate()
        let hostile: [(String, (inout LadonModelConfig) -> Void)] = [
            ("bottleneckChannels", { $0.bottleneckChannels = 1 << 40; $0.encoderChannels[3] = 1 << 40; $0.decoderChannels[0] = 1 << 40 }),
            ("encoder", { $0.encoderChannels = [3, 1 << 40, 48, 24] }),
            ("encoderChannels", { $0.encoderChannels = [4, 96, 48, 24] }),
            ("decoder", { $0.decoderChannels = [24, 512, 0, 256] }),
            ("filters", { $0.entropyBottleneck.filters = [3, 1 << 30] }),
            ("filters", { $0.entropyBottleneck.filters = [] }),
            ("tailMass", { $0.entropyBottleneck.tailMass = .nan }),
            ("body.blocks", { $0.body.blocks = [4, 1 << 40, 3] }),
            ("body.planes", { $0.body.planes = [128, Int.max / 2, 512] }),
            ("body.expansion", { $0.body.expansion = 1 << 40 }),
            ("batchNormEpsilon", { $0.body.batchNormEpsilon = .infinity }),
            ("classification.numClasses", { $0.classification?.numClasses = 1 << 40 }),
            ("classList", { $0.classification?.classList = "" }),
            ("detection.numClasses", { $0.detection?.numClasses = 1 }),
            ("fpnChannels", { $0.detection?.fpnChannels = 1 << 40 }),
            ("anchorSizes", { $0.detection?.anchorSizes = [32, 64, 0, 256, 512] }),
            ("anchorSizes", { $0.detection?.anchorSizes = [32, 64, 128, 256, 1 << 40] }),
            ("aspectRatios", { $0.detection?.aspectRatios = [.infinity] }),
            ("aspectRatios", { $0.detection?.aspectRatios = [Double](repeating: 1, count: 1000) }),
            ("roiLevels", { $0.detection?.roiLevels = [.p4, .p3] }),
            ("roiLevels", { $0.detection?.roiLevels = [] }),
            ("roiOutputSize", { $0.detection?.roiOutputSize = 1 << 40 }),
            ("roiSamplingRatio", { $0.detection?.roiSamplingRatio = -1 }),
            ("representationSize", { $0.detection?.representationSize = 1 << 40 }),
            ("rpnPreNmsTopN", { $0.detection?.rpnPreNmsTopN = 1 << 40 }),
            ("detectionsPerImage", { $0.detection?.detectionsPerImage = 0 }),
            ("thresholds", { $0.detection?.rpnNmsThreshold = .nan }),
            ("thresholds", { $0.detection?.boxScoreThreshold = 2 }),
            ("rpnMinSize", { $0.detection?.rpnMinSize = -1 }),
            ("boxCoderWeights", { $0.detection?.boxCoderWeights = [10, 10, 5] }),
            ("boxCoderWeights", { $0.detection?.boxCoderWeights = [10, 10, 5, .infinity] }),
            ("segmentation.numClasses", { $0.segmentation?.numClasses = 0 }),
            ("asppChannels", { $0.segmentation?.asppChannels = 1 << 40 }),
            ("asppRates", { $0.segmentation?.asppRates = [12, 24, 1_000_000] }),
            ("asppRates", { $0.segmentation?.asppRates = [] }),
            ("preprocessing sizes", { $0.preprocessing.maxSize = 1 << 50 }),
            ("preprocessing sizes", { $0.preprocessing.minSize = 1 << 50; $0.preprocessing.maxSize = 1 << 50 }),
            ("sizeDivisible", { $0.preprocessing.sizeDivisible = 0 }),
            ("preprocessing.std", { $0.preprocessing.std = [0.2, 0, 0.2] }),
            ("preprocessing.mean", { $0.preprocessing.mean = [.nan, 0, 0] }),
            ("architecture", { $0.architecture = String(repeating: "a", count: 10_000) }),
        ]
        for (needle, edit) in hostile {
            let c = Self.config(edit)
            let word = needle.components(separatedBy: " ")[0]
            expectRefused(word) { try c.validate() }
            // Through JSON too, as a weights file's metadata would carry it (NaN and infinity do not encode).
            if let json = try? JSONEncoder().encode(c) {
                expectRefused(word) { _ = try LadonModelConfig.decode(json: json) }
            }
        }
        expectRefused("more than") { _ = try LadonModelConfig.decode(json: Data(repeating: 0x20, count: LadonModelConfig.maxJSONBytes + 1)) }
        let nested = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        expectRefused("nested deeper") { _ = try LadonModelConfig.decode(json: Data(nested.utf8)) }
    }

    @Test func preprocessorBuiltInCodeCannotTrap() throws {
        var settings = LadonModelConfig.resnet50.preprocessing
        settings.sizeDivisible = 0
        #expect(throws: LadonError.self) { try Preprocessor(settings) }
        settings = LadonModelConfig.resnet50.preprocessing
        settings.maxSize = Int.max
        #expect(throws: LadonError.self) { try Preprocessor(settings) }
        // The public size rule itself saturates instead of trapping on out-of-range arguments.
        let s = Preprocessor.resizedSize(height: 1, width: 1 << 20, minSize: Int.max, maxSize: Int.max, rule: .torchvision015)
        #expect(s.height >= 0 && s.width >= 0)
        let p = try Preprocessor(LadonModelConfig.resnet50.preprocessing)
        #expect(p.geometry(height: 1 << 20, width: 1) == nil)
        #expect(p.geometry(height: 480, width: 640)?.paddedWidth == 416)
    }
}
