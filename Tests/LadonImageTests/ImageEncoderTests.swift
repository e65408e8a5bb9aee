// PNG encode -> decode round trips (lossless) and the JPEG encoder used by the perf tests.
import Foundation
import Testing
@testable import LadonImage

@Suite("Image encoding")
struct ImageEncoderTests {
    static func noise(width: Int, height: Int, channels: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<(width * height * channels)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 57)
        }
    }

    @Test("RGB PNG round trip is lossless", arguments: [(1, 1), (7, 3), (33, 17), (256, 2)])
    func rgbRoundTrip(size: (Int, Int)) throws {
        let image = RGBImage(width: size.0, height: size.1,
                             pixels: Self.noise(width: size.0, height: size.1, channels: 3, seed: UInt64(size.0)))
        let png = try PNGEncoder.encode(rgb: image)
        #expect(ImageFormat.detect(png) == .png)
        #expect(try ImageDecoder.decode(bytes: png) == image)
    }

    @Test("A decoded photograph re-encodes to the same pixels")
    func photoRoundTrip() throws {
        let photo = try ImageDecoder.decode(contentsOf: ImageFixtures.path("rocket_420.jpg"))
        #expect(try ImageDecoder.decode(bytes: try photo.pngData()) == photo)
    }

    @Test("Grayscale masks decode to gray replicated over RGB")
    func grayRoundTrip() throws {
        let (w, h) = (19, 11)
        let classIds = Self.noise(width: w, height: h, channels: 1, seed: 3)
        let png = try PNGEncoder.encodeGray(width: w, height: h, pixels: classIds)
        let decoded = try ImageDecoder.decode(bytes: png)
        #expect(decoded.width == w && decoded.height == h)
        #expect(decoded.pixels == classIds.flatMap { [$0, $0, $0] })
    }

    @Test("Palette images decode to their palette colors")
    func indexedRoundTrip() throws {
        let (w, h) = (13, 9)
        let palette = (0..<21).map { (i: Int) -> PNGEncoder.Color in
            PNGEncoder.Color(red: UInt8(i * 12), green: UInt8(255 - i * 7), blue: UInt8(i * i % 256))
        }
        let indices = Self.noise(width: w, height: h, channels: 1, seed: 5).map { $0 % 21 }
        let png = try PNGEncoder.encodeIndexed(width: w, height: h, indices: indices, palette: palette)
        #expect(png[25] == 3, "color type 3 (palette)")
        let decoded = try ImageDecoder.decode(bytes: png)
        let expected: [UInt8] = indices.flatMap { (i: UInt8) -> [UInt8] in
            let c = palette[Int(i)]
            return [c.red, c.green, c.blue]
        }
        #expect(decoded.pixels == expected)
    }

    @Test("Inconsistent images are refused with typed errors")
    func invalidInputs() {
        #expect(throws: ImageError.self) { try PNGEncoder.encodeGray(width: 4, height: 4, pixels: [1, 2, 3]) }
        #expect(throws: ImageError.self) { try PNGEncoder.encodeGray(width: 0, height: 4, pixels: []) }
        #expect(throws: ImageError.self) {
            try PNGEncoder.encodeIndexed(width: 2, height: 1, indices: [0, 5], palette: [.init(red: 0, green: 0, blue: 0)])
        }
        #expect(throws: ImageError.self) { try PNGEncoder.encodeIndexed(width: 1, height: 1, indices: [0], palette: []) }
        #expect(throws: ImageError.self) {
            try JPEGEncoder.encode(rgb: RGBImage(width: 1, height: 1, pixels: [0, 0, 0]), quality: 0)
        }
    }

    @Test("write(to:) writes a decodable file; an unwritable path is a typed error")
    func writeFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-png-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = RGBImage(width: 5, height: 4, pixels: Self.noise(width: 5, height: 4, channels: 3, seed: 9))
        let path = dir.appendingPathComponent("out.png").path
        try image.writePNG(to: path)
        #expect(try ImageDecoder.decode(contentsOf: path) == image)
        let maskPath = dir.appendingPathComponent("mask.png").path
        try PNGEncoder.writeGray(width: 2, height: 2, pixels: [0, 1, 2, 3], to: maskPath)
        #expect(try ImageDecoder.decode(contentsOf: maskPath).pixels == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
        let bad = dir.appendingPathComponent("missing-dir/out.png").path
        #expect(throws: ImageError.self) { try image.writePNG(to: bad) }
    }

    @Test("JPEG encoder output decodes to the right size, close to the source")
    func jpegEncode() throws {
        let photo = try ImageDecoder.decode(contentsOf: ImageFixtures.path("astronaut_rgb.png"))
        let jpeg = try JPEGEncoder.encode(rgb: photo, quality: 100, subsampling: .none444)
        let decoded = try ImageDecoder.decode(bytes: jpeg)
        #expect(decoded.width == photo.width && decoded.height == photo.height)
        let meanError = Double(zip(decoded.pixels, photo.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(photo.pixels.count)
        #expect(meanError < 2, "mean |error| \(meanError)")
    }
}
