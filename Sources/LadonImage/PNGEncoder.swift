// PNG encoding (RGB images, 8-bit grayscale and palette masks) through libpng's simplified write API.
import CPNG
import Foundation

/// Encodes PNG files in memory and writes them to disk. Lossless: decoding the result with
/// ``ImageDecoder`` gives back the same pixels. Thread-safe (each call owns its `png_image`).
public enum PNGEncoder {
    /// An RGB palette entry.
    public struct Color: Sendable, Equatable {
        public var red: UInt8, green: UInt8, blue: UInt8
        public init(red: UInt8, green: UInt8, blue: UInt8) { (self.red, self.green, self.blue) = (red, green, blue) }
    }

    /// How hard libpng compresses.
    public enum Compression: Sendable {
        /// zlib's fastest level and one cheap filter (`PNG_IMAGE_FLAG_FAST`): several times faster, larger files.
        case fast
        /// libpng's default (adaptive filtering, higher zlib level): smallest files, slow on large images.
        case small
        var flag: UInt32 { self == .fast ? UInt32(PNG_IMAGE_FLAG_FAST) : 0 }
    }

    /// The PNG file bytes of an RGB image (8-bit truecolor, tagged sRGB).
    public static func encode(rgb image: RGBImage, compression: Compression = .fast) throws(ImageError) -> [UInt8] {
        try checkSize(image.width, image.height)
        return try write(width: image.width, height: image.height, format: UInt32(PNG_FORMAT_FLAG_COLOR),
                         flags: compression.flag, pixels: image.pixels, colormap: nil, colormapEntries: 0)
    }

    /// The PNG file bytes of an 8-bit grayscale image, `pixels` row-major with `width * height` bytes.
    /// Meant for masks of class ids: no color-space chunk is written.
    public static func encodeGray(width: Int, height: Int, pixels: [UInt8],
                                  compression: Compression = .fast) throws(ImageError) -> [UInt8] {
        try checkSize(width, height)
        guard pixels.count == width * height else {
            throw .invalidImage("a \(width)x\(height) grayscale image needs \(width * height) bytes, got \(pixels.count)")
        }
        return try write(width: width, height: height, format: 0,
                         flags: UInt32(PNG_IMAGE_FLAG_COLORSPACE_NOT_sRGB) | compression.flag,
                         pixels: pixels, colormap: nil, colormapEntries: 0)
    }

    /// The PNG file bytes of a palette image: `indices` (one byte per pixel, row-major) index `palette`
    /// (1...256 colors). Decoding it gives RGB `palette[index]` per pixel.
    public static func encodeIndexed(width: Int, height: Int, indices: [UInt8], palette: [Color],
                                     compression: Compression = .fast) throws(ImageError) -> [UInt8] {
        try checkSize(width, height)
        guard indices.count == width * height else {
            throw .invalidImage("a \(width)x\(height) indexed image needs \(width * height) indices, got \(indices.count)")
        }
        guard (1...256).contains(palette.count) else {
            throw .invalidImage("a PNG palette holds 1...256 colors, got \(palette.count)")
        }
        if let bad = indices.first(where: { Int($0) >= palette.count }) {
            throw .invalidImage("index \(bad) is outside the \(palette.count)-color palette")
        }
        let colormap = palette.flatMap { [$0.red, $0.green, $0.blue] }
        return try write(width: width, height: height,
                         format: UInt32(PNG_FORMAT_FLAG_COLOR) | UInt32(PNG_FORMAT_FLAG_COLORMAP),
                         flags: UInt32(PNG_IMAGE_FLAG_COLORSPACE_NOT_sRGB) | compression.flag,
                         pixels: indices, colormap: colormap, colormapEntries: palette.count)
    }

    /// Encodes `image` as PNG and writes it to `path` (replacing any file there).
    public static func write(rgb image: RGBImage, to path: String) throws(ImageError) {
        try writeFile(try encode(rgb: image), to: path)
    }

    /// Encodes an 8-bit grayscale image as PNG and writes it to `path`.
    public static func writeGray(width: Int, height: Int, pixels: [UInt8], to path: String) throws(ImageError) {
        try writeFile(try encodeGray(width: width, height: height, pixels: pixels), to: path)
    }

    /// Encodes a palette image as PNG and writes it to `path`.
    public static func writeIndexed(width: Int, height: Int, indices: [UInt8], palette: [Color],
                                    to path: String) throws(ImageError) {
        try writeFile(try encodeIndexed(width: width, height: height, indices: indices, palette: palette), to: path)
    }

    static func writeFile(_ bytes: [UInt8], to path: String) throws(ImageError) {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .unwritable(path: path, reason: error.localizedDescription)
        }
    }

    private static func checkSize(_ width: Int, _ height: Int) throws(ImageError) {
        // libpng's default user limit is 1,000,000 per side; the row stride must fit an Int32.
        guard width > 0, height > 0, width <= 1_000_000, height <= 1_000_000 else {
            throw .invalidImage("a PNG must be 1...1000000 pixels on each side, got \(width)x\(height)")
        }
    }

    private static func write(width: Int, height: Int, format: UInt32, flags: UInt32, pixels: [UInt8],
                              colormap: [UInt8]?, colormapEntries: Int) throws(ImageError) -> [UInt8] {
        let channels = format & UInt32(PNG_FORMAT_FLAG_COLORMAP) != 0 ? 1
            : (format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0 ? 3 : 1)
        guard pixels.count == width * height * channels else {
            throw .invalidImage("\(width)x\(height)x\(channels) needs \(width * height * channels) bytes, got \(pixels.count)")
        }
        func attempt(capacity: Int) -> (bytes: [UInt8]?, required: Int, message: String) {
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            image.width = UInt32(width)
            image.height = UInt32(height)
            image.format = format
            image.flags = flags
            image.colormap_entries = UInt32(colormapEntries)
            defer { png_image_free(&image) }
            var size = capacity
            var ok: Int32 = 0
            var output = [UInt8](repeating: 0, count: capacity)
            output.withUnsafeMutableBytes { out in
                pixels.withUnsafeBytes { src in
                    if let colormap {
                        ok = colormap.withUnsafeBytes { cmap in
                            png_image_write_to_memory(&image, out.baseAddress, &size, 0, src.baseAddress, 0, cmap.baseAddress)
                        }
                    } else {
                        ok = png_image_write_to_memory(&image, out.baseAddress, &size, 0, src.baseAddress, 0, nil)
                    }
                }
            }
            let message = withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard ok != 0 else { return (nil, size, message) }
            output.removeSubrange(size...)
            return (output, size, message)
        }
        // Raw size plus zlib's worst-case overhead is almost always enough; otherwise libpng says how much.
        let raw = height * (width * channels + 1)
        var result = attempt(capacity: raw + raw / 100 + 4096 + 3 * colormapEntries)
        if result.bytes == nil, result.required > raw + raw / 100 + 4096 + 3 * colormapEntries {
            result = attempt(capacity: result.required)
        }
        guard let bytes = result.bytes else {
            throw .encodingFailed(format: .png, message: result.message.isEmpty ? "libpng failed" : result.message)
        }
        return bytes
    }
}
