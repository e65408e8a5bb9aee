// Preprocessing straight from 8-bit RGB against the tensor path (to_tensor, then normalise and resize).
import Testing
import LadonTestSupport
@testable import LadonCore

@Suite struct PreprocessorTests {
    /// Downscaled, upscaled, unchanged and extreme shapes under both resize rules: the same padded tensor and sizes,
    /// bit for bit, as `Tensor(rgb8:)` followed by the tensor preprocessing (which the PyTorch tests cover).
    @Test(arguments: ResizeRule.allCases) func rgb8PathEqualsTensorPath(rule: ResizeRule) throws {
        var settings = LadonModelConfig.resnet50.preprocessing
        settings.resizeRule = rule
        let preprocess = try Preprocessor(settings)
        var rng = SplitMix64(seed: 7)
        for (height, width) in [(600, 512), (427, 640), (416, 416), (320, 416), (1, 1), (3, 2), (29, 41), (95, 1700),
                                (900, 33), (777, 1031)] {
            let pixels = (0..<(3 * height * width)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let viaTensor = try preprocess(try Tensor(rgb8: pixels, width: width, height: height))
            let direct = try preprocess(rgb8: pixels, width: width, height: height)
            expectIdentical(direct.tensor, viaTensor.tensor, "\(height)x\(width)")
            #expect(direct.resizedHeight == viaTensor.resizedHeight && direct.resizedWidth == viaTensor.resizedWidth)
            #expect(direct.originalHeight == height && direct.originalWidth == width)
        }
    }

    @Test func rgb8PathRefusesAWrongByteCountAndAnUnresizableImage() throws {
        let preprocess = try Preprocessor(LadonModelConfig.resnet50.preprocessing)
        #expect(throws: LadonError.self) { try preprocess(rgb8: [1, 2, 3, 4], width: 1, height: 1) }
        #expect(throws: LadonError.self) { try preprocess(rgb8: [], width: 0, height: 0) }
        // 1 × 5000: the short side would become 0 pixels.
        #expect(throws: LadonError.self) { try preprocess(rgb8: [UInt8](repeating: 9, count: 15_000), width: 5000, height: 1) }
    }
}
