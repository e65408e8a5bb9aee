// Damaged, truncated, oversized and unsupported inputs: each must give the right typed error, never a crash.
import Foundation
import Testing
@testable import LadonImage

@Suite("Damaged images")
struct DamagedImageTests {
    /// Offset of the first JPEG start-of-scan marker (FF DA).
    static func startOfScan(_ jpeg: [UInt8]) -> Int {
        (2..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA }!
    }

    static func decode(_ bytes: [UInt8], pixelLimit: Int = ImageDecoder.defaultPixelLimit) -> ImageError? {
        imageError { () throws(ImageError) in try ImageDecoder.decode(bytes: bytes, pixelLimit: pixelLimit) }
    }

    static func isTruncated(_ e: ImageError?, _ format: ImageFormat) -> Bool {
        if case .truncated(let f, _)? = e { return f == format }
        return false
    }

    static func isCorrupt(_ e: ImageError?, _ format: ImageFormat) -> Bool {
        if case .corrupt(let f, _)? = e { return f == format }
        return false
    }

    @Test("Empty input and empty file")
    func empty() throws {
        #expect(Self.decode([]) == .empty)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ladon-empty-\(UUID()).png").path
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(imageError { () throws(ImageError) in try ImageDecoder.decode(contentsOf: path) } == .empty)
    }

    @Test("Missing file and directory are unreadable")
    func unreadable() {
        let missing = "/nonexistent/ladon/cat.jpg"
        let e = imageError { () throws(ImageError) in try ImageDecoder.decode(contentsOf: missing) }
        #expect(e == .unreadable(path: missing, reason: "no such file"))
        let dir = FileManager.default.temporaryDirectory.path
        let d = imageError { () throws(ImageError) in try ImageDecoder.decode(contentsOf: dir) }
        #expect(d == .unreadable(path: dir, reason: "it is a directory"))
    }

    @Test("GIF and BMP are recognised and refused; random bytes are unknown")
    func unsupported() throws {
        #expect(Self.decode(try ImageFixtures.bytes("tiny.gif")) == .unsupportedFormat(.gif))
        #expect(Self.decode(try ImageFixtures.bytes("tiny.bmp")) == .unsupportedFormat(.bmp))
        var rng = SystemRandomNumberGenerator()
        var random = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        random[0] = 0x42; random[1] = 0x00           // not a known signature
        #expect(Self.decode(random) == .unsupportedFormat(nil))
        #expect(ImageError.unsupportedFormat(.gif).description.contains("convert the image to JPEG or PNG"))
    }

    @Test("Random data behind a JPEG or PNG signature is corrupt")
    func randomAfterSignature() {
        var state: UInt64 = 7
        let noise = (0..<2000).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        // A complete 16-byte APP0 segment, then noise where the next marker belongs.
        #expect(Self.isCorrupt(Self.decode([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array(repeating: 0, count: 14) + noise), .jpeg))
        #expect(Self.isCorrupt(Self.decode([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + noise), .png))
    }

    @Test("JPEG truncated before the scan, inside the scan, and without its EOI marker",
          arguments: ["rocket_420.jpg", "chelsea_progressive.jpg", "hopper_gray.jpg", "rocket_410.jpg"])
    func truncatedJPEG(name: String) throws {
        let jpeg = try ImageFixtures.bytes(name)
        let sos = Self.startOfScan(jpeg)
        for cut in [4, sos / 2, sos + 2, sos + 40, (sos + jpeg.count) / 2, jpeg.count - 2] {
            let e = Self.decode(Array(jpeg.prefix(cut)))
            #expect(Self.isTruncated(e, .jpeg), "\(name) cut at \(cut) (SOS at \(sos)): \(String(describing: e))")
        }
        #expect(ImageError.truncated(format: .jpeg, message: "x").description.contains("truncated"))
    }

    @Test("PNG truncated in the header, in the image data, and without IEND",
          arguments: ["astronaut_rgb.png", "astronaut_palette.png", "astronaut_rgba16.png", "astronaut_rgba16_adam7.png"])
    func truncatedPNG(name: String) throws {
        let png = try ImageFixtures.bytes(name)
        for cut in [9, 20, 40, png.count / 2, png.count - 20] {
            let e = Self.decode(Array(png.prefix(cut)))
            #expect(Self.isTruncated(e, .png), "\(name) cut at \(cut): \(String(describing: e))")
        }
    }

    @Test("The 16-bit sample reader refuses an unknown row filter and image data shorter than its header declares")
    func sixteenBitReaderErrors() throws {
        var row: [UInt8] = [9, 1, 2, 3, 4, 5, 6, 7, 8]
        row.withUnsafeMutableBufferPointer { s in
            #expect(throws: ImageError.self) { try PNGSixteenBit.unfilter(s, row: 1, previous: nil, count: 8, bpp: 8, filter: 9) }
        }
        let png = try ImageFixtures.bytes("astronaut_rgba16_adam7.png")
        var e: ImageError? = nil
        png.withUnsafeBufferPointer { bytes in
            do throws(ImageError) { _ = try PNGSixteenBit.inflateIDAT(bytes, expected: 32 * (1 + 32 * 8) * 2) } catch { e = error }
        }
        #expect(Self.isCorrupt(e, .png), "\(String(describing: e))")
        #expect(e.map { "\($0)".contains("inflates to") } == true)
    }

    @Test("Bit flips in PNG chunks fail their CRC")
    func bitFlippedPNG() throws {
        let png = try ImageFixtures.bytes("astronaut_rgb.png")
        let idat = (8..<png.count).first { Array(png[$0..<($0 + 4)]) == Array("IDAT".utf8) }! - 4
        let idatLength = png[idat..<(idat + 4)].reduce(0) { $0 << 8 | Int($1) }
        let idatCRC = idat + 8 + idatLength
        // IHDR width, IHDR color type, IDAT start, IDAT middle, IDAT's last byte, the stored CRC itself.
        for offset in [17, 25, idat + 10, idat + 8 + idatLength / 2, idatCRC - 1, idatCRC + 2] {
            var damaged = png
            damaged[offset] ^= 0x10
            let e = Self.decode(damaged)
            #expect(Self.isCorrupt(e, .png), "flip at \(offset): \(String(describing: e))")
        }
    }

    @Test("A damaged ancillary chunk (the ICC profile, which Pillow's convert ignores) does not matter")
    func damagedAncillaryChunk() throws {
        var png = try ImageFixtures.bytes("astronaut_rgb.png")
        let iccp = (8..<png.count).first { Array(png[$0..<($0 + 4)]) == Array("iCCP".utf8) }!
        png[iccp + 30] ^= 0x01
        #expect(try ImageDecoder.decode(bytes: png) == (try ImageFixtures.expected("astronaut_rgb.png")))
    }

    @Test("Bit flips in JPEG markers and tables are corrupt")
    func bitFlippedJPEG() throws {
        let jpeg = try ImageFixtures.bytes("rocket_420.jpg")
        let sos = Self.startOfScan(jpeg)
        let sof = (2..<sos).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 }!
        var wrongProcess = jpeg; wrongProcess[sof + 1] = 0xC3        // SOF0 -> SOF3 (lossless)
        var badPrecision = jpeg; badPrecision[sof + 4] = 0x0C        // 8-bit -> 12-bit samples
        var noComponents = jpeg; noComponents[sof + 9] = 0x00        // zero components
        var badScan = jpeg; badScan[sos + 4] = 0x07                  // 7 components in the scan
        for (label, damaged) in [("SOF3", wrongProcess), ("precision", badPrecision),
                                 ("components", noComponents), ("scan", badScan)] {
            let e = Self.decode(damaged)
            #expect(Self.isCorrupt(e, .jpeg), "\(label): \(String(describing: e))")
        }
    }

    @Test("Random damage anywhere never crashes: it decodes to some size or throws an ImageError")
    func fuzz() throws {
        var state: UInt64 = 0x1AD0
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % n
        }
        var outcomes: [String: Int] = [:]
        for name in ["rocket_420.jpg", "chelsea_progressive.jpg", "astronaut_rgba.png", "astronaut_palette.png"] {
            let original = try ImageFixtures.bytes(name)
            for _ in 0..<150 {
                var damaged = original
                for _ in 0..<(1 + next(4)) { damaged[next(damaged.count)] ^= UInt8(1 << next(8)) }
                if next(3) == 0 { damaged.removeLast(next(damaged.count / 2)) }
                do {
                    let image = try ImageDecoder.decode(bytes: damaged, pixelLimit: 1 << 20)
                    #expect(image.pixels.count == image.width * image.height * 3)
                    outcomes["decoded", default: 0] += 1
                } catch {
                    outcomes[String(describing: error).prefix(while: { $0 != "(" }).description, default: 0] += 1
                }
            }
        }
        #expect(outcomes.values.reduce(0, +) == 600)
        print("fuzz outcomes:", outcomes.sorted { $0.key < $1.key })
    }

    @Test("Declared dimensions above the pixel limit are refused before allocation")
    func pixelLimit() throws {
        let huge = try ImageFixtures.bytes("huge_dimensions.png")
        #expect(Self.decode(huge) == .tooLarge(width: 50_000, height: 50_000, limit: ImageDecoder.defaultPixelLimit))
        let jpeg = try ImageFixtures.bytes("rocket_420.jpg")
        #expect(Self.decode(jpeg, pixelLimit: 2000) == .tooLarge(width: 63, height: 41, limit: 2000))
        #expect((try ImageDecoder.decode(bytes: jpeg, pixelLimit: 63 * 41)).width == 63)
        let png = try ImageFixtures.bytes("astronaut_rgb.png")
        #expect(Self.decode(png, pixelLimit: 1023) == .tooLarge(width: 32, height: 32, limit: 1023))
        #expect(ImageError.tooLarge(width: 50_000, height: 50_000, limit: 100).description.contains("raise the pixel limit"))
    }
}
