// Decoding real JPEG and PNG files against Pillow's and djpeg's pixels.
import Foundation
import LadonCore
import Testing
@testable import LadonImage

@Suite("Image decoding")
struct ImageDecoderTests {
    static let jpegs = ["rocket_420.jpg", "chelsea_progressive.jpg", "chelsea_444.jpg", "hopper_gray.jpg",
                        "coffee_cmyk.jpg", "rocket_410.jpg"]
    static let exactPNGs = ["astronaut_rgb.png", "astronaut_gray.png", "astronaut_bilevel.png",
                            "astronaut_rgba.png", "astronaut_gray_alpha.png", "astronaut_palette.png",
                            "astronaut_palette_trns.png", "astronaut_gamma.png", "astronaut_rgb16.png",
                            "astronaut_gray16.png", "astronaut_gray16_trns.png", "astronaut_rgb16_trns.png",
                            "astronaut_rgba16.png", "astronaut_rgba16_filters.png", "astronaut_rgba16_adam7.png",
                            "astronaut_gray_alpha16_adam7.png"]

    @Test("JPEG pixels equal djpeg's (system libjpeg-turbo)", arguments: jpegs)
    func jpegMatchesDjpeg(name: String) throws {
        let image = try ImageDecoder.decode(contentsOf: ImageFixtures.path(name))
        let expected = try ImageFixtures.expected("djpeg/" + name)
        #expect(image.width == expected.width && image.height == expected.height)
        #expect(maxDifference(image, expected) == 0, "\(name)")
    }

    @Test("JPEG pixels equal Pillow's convert(\"RGB\")", arguments: jpegs)
    func jpegMatchesPillow(name: String) throws {
        let image = try ImageDecoder.decode(bytes: ImageFixtures.bytes(name))
        #expect(maxDifference(image, try ImageFixtures.expected(name)) == 0, "\(name)")
    }

    @Test("The libjpeg decoder (for 4:1:0 and other sampling TurboJPEG 2.1 refuses) gives TurboJPEG's pixels",
          arguments: jpegs)
    func libjpegMatchesTurboJPEG(name: String) throws {
        let bytes = try ImageFixtures.bytes(name)
        let viaLibJPEG = try bytes.withUnsafeBufferPointer { (b) throws(ImageError) in
            try LibJPEGDecoder.decode(b, pixelLimit: ImageDecoder.defaultPixelLimit)
        }
        #expect(maxDifference(viaLibJPEG, try ImageDecoder.decode(bytes: bytes)) == 0, "\(name)")
    }

    @Test("PNG pixels equal Pillow's convert(\"RGB\") for every color type", arguments: exactPNGs)
    func pngMatchesPillow(name: String) throws {
        let image = try ImageDecoder.decode(contentsOf: ImageFixtures.path(name))
        let expected = try ImageFixtures.expected(name)
        #expect(image.width == expected.width && image.height == expected.height)
        #expect(maxDifference(image, expected) == 0, "\(name)")
    }

    @Test("16-bit gray is clipped to 255 as Pillow does, also with a tRNS key color; 16-bit RGB keeps the high byte")
    func sixteenBitFollowsPillow() throws {
        // Half the gray fixture's pixels (a checkerboard) are below 256 and kept, most of the rest turn white.
        let gray = try ImageDecoder.decode(contentsOf: ImageFixtures.path("astronaut_gray16.png"))
        let white = gray.pixels.filter { $0 == 255 }.count
        #expect(white > gray.pixels.count / 3 && white < gray.pixels.count * 2 / 3)
        // The tRNS key colors occur in the images (pixel (5, 7) and (9, 4)): libpng reads those as transparent,
        // and the decoder puts the key color back.
        for (name, x, y) in [("astronaut_gray16_trns.png", 7, 5), ("astronaut_rgb16_trns.png", 4, 9)] {
            let keyed = try ImageDecoder.decode(contentsOf: ImageFixtures.path(name))
            let plain = try ImageDecoder.decode(contentsOf: ImageFixtures.path(name.replacingOccurrences(of: "_trns", with: "")))
            #expect(maxDifference(keyed, plain) == 0, "\(name)")
            #expect(keyed.pixels[3 * (y * keyed.width + x)] == plain.pixels[3 * (y * plain.width + x)])
        }
    }

    @Test("Format detection uses magic bytes, not the file name")
    func detection() throws {
        #expect(ImageFormat.detect(try ImageFixtures.bytes("rocket_420.jpg")) == .jpeg)
        #expect(ImageFormat.detect(try ImageFixtures.bytes("astronaut_rgb.png")) == .png)
        #expect(ImageFormat.detect(try ImageFixtures.bytes("tiny.gif")) == .gif)
        #expect(ImageFormat.detect(try ImageFixtures.bytes("tiny.bmp")) == .bmp)
        #expect(ImageFormat.detect([0x00, 0x01]) == nil)
        // A PNG saved under a .jpg name still decodes as PNG.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-image-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let misnamed = dir.appendingPathComponent("really-a-png.jpg").path
        try Data(try ImageFixtures.bytes("astronaut_rgb.png")).write(to: URL(fileURLWithPath: misnamed))
        let image = try ImageDecoder.decode(contentsOf: misnamed)
        #expect(image == (try ImageFixtures.expected("astronaut_rgb.png")))
    }

    @Test("toTensor equals torchvision to_tensor(img).unsqueeze(0) exactly")
    func toTensorMatchesTorchvision() throws {
        let image = try ImageDecoder.decode(contentsOf: ImageFixtures.path("astronaut_rgb.png"))
        let tensor = try image.toTensor()
        let expected = try ImageFixtures.expectedTensor("to_tensor/astronaut_rgb.png")
        #expect(tensor.shape == [1, 3, 32, 32])
        #expect(tensor.scalars == expected.scalars)
        #expect(tensor[0, 2, 5, 7] == Float(image.pixels[3 * (5 * 32 + 7) + 2]) / 255)
    }

    @Test("Concurrent decodes give the same pixels (per-call handles)")
    func concurrentDecodes() async throws {
        let jpeg = try ImageFixtures.bytes("rocket_420.jpg")
        let png = try ImageFixtures.bytes("astronaut_rgba.png")
        let reference = (try ImageDecoder.decode(bytes: jpeg), try ImageDecoder.decode(bytes: png))
        let allEqual = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    let image = try? ImageDecoder.decode(bytes: i % 2 == 0 ? jpeg : png)
                    return image == (i % 2 == 0 ? reference.0 : reference.1)
                }
            }
            var ok = true
            for await r in group { ok = ok && r }
            return ok
        }
        #expect(allEqual)
    }
}
