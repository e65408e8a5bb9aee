// Test helpers for LadonImage: committed fixtures and the expected pixels stored beside them.
import Foundation
import LadonCore
import Testing
@testable import LadonImage

/// Loads files from `Tests/LadonImageTests/Fixtures` (made by `Scripts/make_image_fixtures.py`).
enum ImageFixtures {
    static func path(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else {
            fatalError("missing fixture \(name); run Scripts/make_image_fixtures.py")
        }
        return url.path
    }
    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }
    /// Expected RGB pixels (Pillow, or `djpeg/<name>` for djpeg's) as an `RGBImage`.
    static func expected(_ key: String) throws -> RGBImage {
        let file = try SafeTensorsFile(path: path("expected.safetensors"))
        let entry = try file.entry(key)
        #expect(entry.dtype == .u8 && entry.shape.count == 3 && entry.shape[2] == 3)
        return RGBImage(width: entry.shape[1], height: entry.shape[0], pixels: try file.rawBytes(key))
    }
    static func expectedTensor(_ key: String) throws -> Tensor {
        try SafeTensorsFile(path: path("expected.safetensors")).tensor(key)
    }
}

/// Largest per-byte difference between two images of the same size (or `Int.max` if sizes differ).
func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
    guard a.width == b.width, a.height == b.height else { return Int.max }
    return zip(a.pixels, b.pixels).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
}

/// Runs `body` and returns the `ImageError` it throws, recording an issue if it returns normally.
func imageError(_ body: () throws(ImageError) -> RGBImage,
                sourceLocation: SourceLocation = #_sourceLocation) -> ImageError? {
    do {
        let image = try body()
        Issue.record("expected an ImageError, decoded \(image.width)x\(image.height)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}
