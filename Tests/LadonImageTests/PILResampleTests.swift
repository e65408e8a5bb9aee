// Pillow's bilinear resize and torchvision's Resize/CenterCrop, byte for byte against the real packages
// (fixtures from Scripts/eval/make_pil_fixtures.py, Pillow 13.0.0 and torchvision 0.29).
import Foundation
import LadonCore
import Testing
@testable import LadonImage

/// The fixtures in `Fixtures/pil`: expected outputs stored whole, or as one CRC-32 per row when large.
enum PILFixtures {
    static func file(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: ImageFixtures.path("pil/\(name)"))
    }

    static func metadata<T: Decodable>(_ file: SafeTensorsFile, _ key: String, as type: T.Type) throws -> T {
        let json = try #require(file.metadata[key], "fixture metadata '\(key)' is missing")
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    /// Checks `bytes` (`rows` rows of equal length) against `<key>/output` or `<key>/rowcrc`.
    static func expect(_ bytes: [UInt8], rows: Int, matches key: String, in file: SafeTensorsFile,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        if file.entries["\(key)/output"] != nil {
            let expected = try file.rawBytes("\(key)/output")
            #expect(bytes.count == expected.count, "\(key): \(bytes.count) bytes, expected \(expected.count)",
                    sourceLocation: sourceLocation)
            let differing = zip(bytes, expected).filter { $0 != $1 }.count
            #expect(differing == 0, "\(key): \(differing) of \(expected.count) bytes differ", sourceLocation: sourceLocation)
            return
        }
        let crcs = try file.integers("\(key)/rowcrc").map { UInt32(truncatingIfNeeded: $0) }
        #expect(rows == crcs.count, "\(key): \(rows) rows, expected \(crcs.count)", sourceLocation: sourceLocation)
        guard rows == crcs.count, rows > 0, bytes.count % rows == 0 else { return }
        let rowBytes = bytes.count / rows
        let differing = (0..<rows).filter { CRC32.checksum(Array(bytes[($0 * rowBytes)..<(($0 + 1) * rowBytes)])) != crcs[$0] }
        #expect(differing.isEmpty, "\(key): \(differing.count) of \(rows) rows differ, first \(differing.first ?? -1)",
                sourceLocation: sourceLocation)
    }
}

@Suite("PILResample")
struct PILResampleTests {
    struct Case: Decodable {
        let group: String
        let `case`: String
        let input: String
        let width: Int
        let height: Int
        let size: Int?
        let cropWidth: Int?
        let cropHeight: Int?
        let hfirst: Bool?
    }

    static func load() throws -> (SafeTensorsFile, [Case]) {
        let file = try PILFixtures.file("resize.safetensors")
        return (file, try PILFixtures.metadata(file, "cases", as: [Case].self))
    }

    static func input(_ name: String, _ file: SafeTensorsFile) throws -> RGBImage {
        let entry = try file.entry("input/\(name)")
        return RGBImage(width: entry.shape[1], height: entry.shape[0], pixels: try file.rawBytes("input/\(name)"))
    }

    @Test("bilinear resize equals Pillow's Image.resize(BILINEAR), both pass orders")
    func bilinearMatchesPillow() throws {
        let (file, cases) = try Self.load()
        let bilinear = cases.filter { $0.group == "bilinear" }
        #expect(bilinear.count >= 40)
        // The fixtures cover both orders of Pillow 13 (vertical first on some) and upscaling and downscaling per axis.
        #expect(bilinear.contains { $0.hfirst == true })
        for c in bilinear {
            let image = try Self.input(c.input, file)
            let out = image.resizedPIL(width: c.width, height: c.height)
            #expect(out.width == c.width && out.height == c.height)
            try PILFixtures.expect(out.pixels, rows: out.height, matches: c.case, in: file)
            // Earlier Pillow (horizontal pass first) differs only where the fixture stores its own result.
            let legacy = image.resizedPIL(width: c.width, height: c.height, passOrder: .horizontalFirst)
            try PILFixtures.expect(legacy.pixels, rows: legacy.height, matches: c.hfirst == true ? "\(c.case)/hfirst" : c.case,
                                   in: file)
        }
    }

    @Test("Resize(size) + CenterCrop equals torchvision on PIL images, crops larger than the image included")
    func shortSideResizeAndCenterCropMatchTorchvision() throws {
        let (file, cases) = try Self.load()
        let pipelines = cases.filter { $0.group == "shortside" }
        #expect(pipelines.count >= 10)
        for c in pipelines {
            let image = try Self.input(c.input, file)
            let size = try #require(c.size), cropWidth = try #require(c.cropWidth), cropHeight = try #require(c.cropHeight)
            let resizedSize = RGBImage.shortSideResizedSize(width: image.width, height: image.height, size: size)
            #expect(resizedSize.width == c.width && resizedSize.height == c.height, "\(c.case): \(resizedSize)")
            let out = image.resizedShortSidePIL(size).centerCropped(width: cropWidth, height: cropHeight)
            #expect(out.width == cropWidth && out.height == cropHeight)
            try PILFixtures.expect(out.pixels, rows: out.height, matches: c.case, in: file)
        }
    }

    @Test("an unchanged size returns the image; one changed axis resamples only that axis")
    func unchangedAxes() throws {
        let (file, _) = try Self.load()
        let image = try Self.input("noise_37x29", file)
        #expect(image.resizedPIL(width: 37, height: 29) == image)
        #expect(image.resizedShortSidePIL(29) == image)
        #expect(image.centerCropped(width: 37, height: 29) == image)
        // Width only: every row is resampled on its own, so a row of the result depends on that row alone.
        let wide = image.resizedPIL(width: 50, height: 29)
        let oneRow = RGBImage(width: 37, height: 1, pixels: Array(image.pixels[(5 * 37 * 3)..<(6 * 37 * 3)]))
        #expect(Array(wide.pixels[(5 * 50 * 3)..<(6 * 50 * 3)]) == oneRow.resizedPIL(width: 50, height: 1).pixels)
    }

    @Test("Pillow 13's pass order: vertical first only when the height shrinks by more than twice the width")
    func passOrderRule() {
        let order = PILPassOrder.pillow13
        #expect(order.runsVerticalFirst(from: (375, 500), to: (416, 416)))       // VOC portrait squash
        #expect(!order.runsVerticalFirst(from: (500, 375), to: (416, 416)))      // VOC landscape squash
        #expect(!order.runsVerticalFirst(from: (500, 375), to: (597, 448)))      // ImageNet Resize(448): upscale
        #expect(!order.runsVerticalFirst(from: (3000, 4000), to: (448, 597)))    // large portrait photo
        #expect(order.runsVerticalFirst(from: (100, 100), to: (99, 97)))         // 3 > 1 * 2
        #expect(!order.runsVerticalFirst(from: (100, 100), to: (98, 96)))        // 4 > 2 * 2 is false
        #expect(!PILPassOrder.horizontalFirst.runsVerticalFirst(from: (375, 500), to: (416, 416)))
    }

    @Test("torchvision's output size: int(size * long / short), width short when width <= height")
    func shortSideSizeRule() {
        #expect(RGBImage.shortSideResizedSize(width: 500, height: 375, size: 448) == (597, 448))   // 597.33
        #expect(RGBImage.shortSideResizedSize(width: 375, height: 500, size: 448) == (448, 597))
        #expect(RGBImage.shortSideResizedSize(width: 500, height: 333, size: 448) == (672, 448))   // 672.67
        #expect(RGBImage.shortSideResizedSize(width: 400, height: 400, size: 448) == (448, 448))
        #expect(RGBImage.shortSideResizedSize(width: 13, height: 5, size: 8) == (20, 8))           // 20.8
    }

    @Test("CenterCrop's corner uses Python's round-half-to-even")
    func centerCropRounding() {
        // (difference, int(round(difference / 2.0)))
        for (difference, expected) in [(0, 0), (1, 0), (2, 1), (3, 2), (5, 2), (7, 4), (9, 4), (32, 16), (181, 90)] {
            #expect(RGBImage.pythonRoundHalfEven(difference) == expected, "difference \(difference)")
        }
        // A 4x3 image cropped to 6x5 is padded by 1 on each side: the border is zero, the centre the image.
        let image = RGBImage(width: 4, height: 3, pixels: (0..<36).map { UInt8($0 + 1) })
        let out = image.centerCropped(width: 6, height: 5)
        #expect(Array(out.pixels[0..<18]) == [UInt8](repeating: 0, count: 18))
        #expect(Array(out.pixels[(6 * 3 + 3)..<(6 * 3 + 15)]) == Array(image.pixels[0..<12]))
    }
}
