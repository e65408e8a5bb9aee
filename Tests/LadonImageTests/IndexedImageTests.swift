// Class-index masks: palette/gray PNG decoding without palette expansion, Pillow's NEAREST resize, and hostile
// PNGs. Expected values from Scripts/eval/make_pil_fixtures.py (Pillow 13.0.0).
import Foundation
import LadonCore
import Testing
@testable import LadonImage

@Suite("IndexedImage")
struct IndexedImageTests {
    struct MaskCase: Decodable {
        let `case`: String
        let file: String
        let width: Int
        let height: Int
    }

    static func fixtures() throws -> SafeTensorsFile { try PILFixtures.file("nearest.safetensors") }
    static func maskPath(_ name: String) -> String { ImageFixtures.path("pil/masks/\(name)") }

    @Test("palette and gray PNGs decode to the values Pillow's np.array(Image.open(f)) gives")
    func decodesLikePillow() throws {
        let file = try Self.fixtures()
        let names = file.names.filter { $0.hasPrefix("decode/") }.map { String($0.dropFirst("decode/".count)) }
        #expect(names.count >= 15)
        for name in names {
            let entry = try file.entry("decode/\(name)")
            let expected = try file.rawBytes("decode/\(name)")
            let mask = try IndexedImage(contentsOf: Self.maskPath(name))
            #expect(mask.width == entry.shape[1] && mask.height == entry.shape[0], "\(name)")
            let differing = zip(mask.indices, expected).filter { $0 != $1 }.count
            #expect(mask.indices.count == expected.count && differing == 0, "\(name): \(differing) values differ")
            #expect(try IndexedImage(pngBytes: ImageFixtures.bytes("pil/masks/\(name)")) == mask)
        }
        // The VOC mask keeps its class ids and the 255 border (a palette expansion would give colors instead).
        let voc = try IndexedImage(contentsOf: Self.maskPath("voc_p8.png"))
        #expect(voc.indices.contains(255) && voc.indices.contains(0))
        #expect(voc.indices.allSatisfy { $0 <= 20 || $0 == 255 })
    }

    @Test("RGB, RGBA, gray + alpha, 1-bit and 16-bit gray PNGs are refused with a clear error")
    func refusesOtherColorTypes() throws {
        let refused = try PILFixtures.metadata(try Self.fixtures(), "refused", as: [String].self)
        #expect(refused.count == 5)
        for name in refused {
            do {
                let mask = try IndexedImage(contentsOf: Self.maskPath(name))
                Issue.record("\(name) decoded as \(mask.width)x\(mask.height)")
            } catch {
                guard case .invalidImage(let message) = error else {
                    Issue.record("\(name): \(error)")
                    continue
                }
                #expect(message.contains("not a class-index mask"), "\(name): \(message)")
            }
        }
    }

    @Test("NEAREST resize equals Pillow's along one axis for many lengths, up and down")
    func nearestRampsMatchPillow() throws {
        let file = try Self.fixtures()
        let targets = try PILFixtures.metadata(file, "rampTargets", as: [Int].self)
        let ramps = try PILFixtures.metadata(file, "ramps", as: [Int].self)
        let columns = try PILFixtures.metadata(file, "columns", as: [Int].self)
        #expect(ramps.count >= 40 && targets.contains(416))
        for (key, lengths, alongRows) in [("ramp", ramps, true), ("column", columns, false)] {
            for n in lengths {
                let expected = try file.rawBytes("\(key)/\(n)")
                let ramp = (0..<n).map { UInt8($0 % 256) }
                let image = alongRows ? IndexedImage(width: n, height: 1, indices: ramp)
                                      : IndexedImage(width: 1, height: n, indices: ramp)
                var offset = 0
                for m in targets {
                    let out = alongRows ? image.resizedNearestPIL(width: m, height: 1)
                                        : image.resizedNearestPIL(width: 1, height: m)
                    #expect(out.indices == Array(expected[offset..<(offset + m)]), "\(key) \(n) -> \(m)")
                    offset += m
                }
            }
        }
    }

    @Test("Pillow's NEAREST accumulates the scale: floor((x + 0.5) * in / out) is wrong where that is an integer")
    func nearestIsNotTheClosedForm() {
        func closedForm(_ inSize: Int, _ outSize: Int) -> [Int] {
            (0..<outSize).map { min(Int((Double($0) + 0.5) * Double(inSize) / Double(outSize)), inSize - 1) }
        }
        // 2 -> 7: (3 + 0.5) * 2 / 7 = 1 exactly, but 1/7 + 3 * 2/7 sums to just under 1 (Pillow's index 0).
        #expect(IndexedImage.pillowNearestSources(inSize: 2, outSize: 7) == [0, 0, 0, 0, 1, 1, 1])
        #expect(closedForm(2, 7) == [0, 0, 0, 1, 1, 1, 1])
        // A VOC-sized case: 256 rows squashed to 416 differ too; 375 and 500 do not.
        #expect(IndexedImage.pillowNearestSources(inSize: 256, outSize: 416) != closedForm(256, 416))
        #expect(IndexedImage.pillowNearestSources(inSize: 375, outSize: 416) == closedForm(375, 416))
        #expect(IndexedImage.pillowNearestSources(inSize: 500, outSize: 416) == closedForm(500, 416))
    }

    @Test("NEAREST resize of palette and gray masks equals Pillow's, 255 borders kept")
    func nearestMasksMatchPillow() throws {
        let file = try Self.fixtures()
        let cases = try PILFixtures.metadata(file, "cases", as: [MaskCase].self)
        #expect(cases.count >= 10)
        for c in cases {
            let mask = try IndexedImage(contentsOf: Self.maskPath(c.file))
            let out = mask.resizedNearestPIL(width: c.width, height: c.height)
            #expect(out.width == c.width && out.height == c.height)
            try PILFixtures.expect(out.indices, rows: out.height, matches: c.case, in: file)
            if c.width == mask.width && c.height == mask.height { #expect(out == mask) }
        }
    }

    // MARK: hostile and malformed input

    static func vocBytes() throws -> [UInt8] { try ImageFixtures.bytes("pil/masks/voc_p8.png") }

    /// The PNG with IHDR patched to `width × height` and its CRC recomputed.
    static func withSize(_ png: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = png
        for i in 0..<4 {
            out[16 + i] = UInt8((width >> (8 * (3 - i))) & 0xFF)
            out[20 + i] = UInt8((height >> (8 * (3 - i))) & 0xFF)
        }
        let crc = CRC32.checksum(Array(out[12..<29]))
        for i in 0..<4 { out[29 + i] = UInt8((crc >> (8 * UInt32(3 - i))) & 0xFF) }
        return out
    }

    static func error(_ body: () throws(ImageError) -> IndexedImage, sourceLocation: SourceLocation = #_sourceLocation) -> ImageError? {
        do {
            let mask = try body()
            Issue.record("expected an ImageError, decoded \(mask.width)x\(mask.height)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    @Test("empty, non-PNG, missing and directory inputs give typed errors")
    func badInputs() throws {
        #expect(Self.error { () throws(ImageError) in try IndexedImage(pngBytes: []) } == .empty)
        #expect(Self.error { () throws(ImageError) in try IndexedImage(pngBytes: Array("not an image at all".utf8)) }
                == .unsupportedFormat(nil))
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16] + [UInt8](repeating: 0, count: 30)
        guard case .invalidImage? = Self.error({ () throws(ImageError) in try IndexedImage(pngBytes: jpeg) }) else {
            Issue.record("a JPEG should be refused as a mask")
            return
        }
        guard case .unreadable? = Self.error({ () throws(ImageError) in try IndexedImage(contentsOf: "/nonexistent/mask.png") }) else {
            Issue.record("a missing file should be unreadable")
            return
        }
        guard case .unreadable? = Self.error({ () throws(ImageError) in try IndexedImage(contentsOf: NSTemporaryDirectory()) }) else {
            Issue.record("a directory should be unreadable")
            return
        }
    }

    @Test("declared sizes above the pixel limit are refused from the header")
    func pixelLimit() throws {
        let png = try Self.vocBytes()
        #expect(Self.error { () throws(ImageError) in try IndexedImage(pngBytes: Self.withSize(png, width: 50_000, height: 50_000)) }
                == .tooLarge(width: 50_000, height: 50_000, limit: ImageDecoder.defaultPixelLimit))
        #expect(Self.error { () throws(ImageError) in try IndexedImage(pngBytes: png, pixelLimit: 100) }
                == .tooLarge(width: 37, height: 29, limit: 100))
        // Within the limit but far more pixels than the data holds: a clean error, not a crash.
        #expect(Self.error { () throws(ImageError) in try IndexedImage(pngBytes: Self.withSize(png, width: 3000, height: 3000)) } != nil)
    }

    @Test("truncated, bit-flipped and garbage PNGs never crash; damage to the pixel data is an error")
    func damagedBytes() throws {
        let png = try Self.vocBytes()
        let intact = try IndexedImage(pngBytes: png)
        for length in 0..<png.count {
            // A cut inside the pixel data must fail; a cut after it (only IEND lost) may still decode, and then right.
            if let mask = try? IndexedImage(pngBytes: Array(png[0..<length])) {
                #expect(mask == intact, "cut at \(length) decoded wrongly")
            }
        }
        let idat = try #require(png.withUnsafeBufferPointer { PNGDecoder.scanChunks($0).lastIDAT })
        var flipped = png
        flipped[idat.lowerBound + 8 + (idat.count - 12) / 2] ^= 0x10
        guard case .corrupt? = Self.error({ () throws(ImageError) in try IndexedImage(pngBytes: flipped) }) else {
            Issue.record("a flipped bit in IDAT should be reported as corrupt")
            return
        }
        for position in stride(from: 8, to: png.count, by: 1) {
            var bytes = png
            bytes[position] ^= 0x01
            _ = try? IndexedImage(pngBytes: bytes)   // any result or error, but no trap
        }
        // The PNG signature followed by pseudo-random bytes (xorshift, fixed seed).
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        for _ in 0..<200 {
            let garbage = Array(png[0..<8]) + (0..<Int(next() % 400)).map { _ in UInt8(truncatingIfNeeded: next()) }
            #expect(Self.error { () throws(ImageError) in try IndexedImage(pngBytes: garbage) } != nil)
        }
    }
}
