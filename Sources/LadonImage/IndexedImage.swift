// Single-channel 8-bit images read without color conversion: segmentation masks whose pixel values are class ids.
import CPNG
import Foundation
import LadonCore

/// An 8-bit single-channel image of raw values, rows top to bottom: the class-id mask of a segmentation dataset.
///
/// PASCAL VOC's `SegmentationClass` masks are palette PNGs. Pillow opens them in mode `"P"` and the class id is
/// the *palette index* (255 marks the "ignore" border), not a color; this type reads exactly those indices,
/// never expanding the palette. 8-bit grayscale PNGs (mode `"L"`) are read as their values.
///
/// ```swift
/// let mask = try IndexedImage(contentsOf: "VOC2012/SegmentationClass/2007_000033.png")
/// let target = mask.resizedNearestPIL(width: 416, height: 416)   // as torchvision's Resize on the PIL mask
/// ```
public struct IndexedImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height` values (palette indices or gray levels), row-major.
    public var indices: [UInt8]

    /// Wraps row-major values; `indices.count` must be `width * height`.
    public init(width: Int, height: Int, indices: [UInt8]) {
        precondition(width >= 0 && height >= 0 && indices.count == width * height,
                     "IndexedImage \(width)x\(height) needs \(width * height) values, got \(indices.count)")
        self.width = width
        self.height = height
        self.indices = indices
    }

    /// The value at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> UInt8 { indices[y * width + x] }

    /// Reads the PNG file at `path` (see ``init(pngBytes:pixelLimit:)``).
    ///
    /// - Parameters:
    ///   - pixelLimit: most pixels accepted, checked from the header before decoding.
    ///   - maxFileBytes: largest file read; a pipe or device is read up to this and refused beyond.
    public init(contentsOf path: String, pixelLimit: Int = ImageDecoder.defaultPixelLimit,
                maxFileBytes: Int = ImageDecoder.maxFileBytes) throws(ImageError) {
        let data = try ImageDecoder.readImageFile(path, maxFileBytes: maxFileBytes)
        let result: Result<IndexedImage, ImageError> = data.withUnsafeBytes { raw in
            Result { () throws(ImageError) in
                try IndexedPNGDecoder.decode(raw.bindMemory(to: UInt8.self), pixelLimit: pixelLimit)
            }
        }
        self = try result.get()
    }

    /// Decodes a palette or grayscale PNG held in memory, as Pillow's `np.array(Image.open(f))` sees it.
    ///
    /// - Palette PNGs (color type 3, 1/2/4/8 bits; Pillow mode `"P"`): the palette indices, whatever the palette
    ///   or `tRNS` say; indices beyond the palette are kept, as Pillow keeps them.
    /// - Grayscale PNGs (color type 0; mode `"L"`) of 8 bits, or 2 and 4 bits scaled to 8 (`v * 0x55`,
    ///   `v * 0x11`, as Pillow unpacks them); `tRNS` and color-management chunks are ignored.
    ///
    /// Other PNGs (RGB, RGBA, gray + alpha, 1-bit gray (mode `"1"`), 16-bit gray (mode `"I;16"`)) are refused
    /// with ``ImageError/invalidImage(_:)``, as is anything that is not a PNG. Damaged or truncated data throws
    /// like ``ImageDecoder`` does; images above `pixelLimit` are refused from the header, before decoding.
    public init(pngBytes: [UInt8], pixelLimit: Int = ImageDecoder.defaultPixelLimit) throws(ImageError) {
        self = try pngBytes.withUnsafeBufferPointer { (b) throws(ImageError) in
            try IndexedPNGDecoder.decode(b, pixelLimit: pixelLimit)
        }
    }
}

/// Reads palette indices or gray levels through libpng's simplified API, like ``PNGDecoder`` (no `setjmp`;
/// each call owns its `png_image`, so it is thread-safe).
enum IndexedPNGDecoder {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, pixelLimit: Int) throws(ImageError) -> IndexedImage {
        guard bytes.count > 0 else { throw .empty }
        switch ImageFormat.detect(bytes) {
        case .png?: break
        case let other?:
            throw .invalidImage("a \(other.rawValue) file cannot hold a class-index mask; masks are read from palette or 8-bit grayscale PNGs")
        case nil: throw .unsupportedFormat(nil)
        }
        let chunks = PNGDecoder.scanChunks(bytes)
        // As in `PNGDecoder`: libpng does not check the last IDAT chunk's CRC, so check it here.
        if let last = chunks.lastIDAT, !PNGDecoder.hasValidCRC(bytes, chunk: last) {
            throw .corrupt(format: .png, message: "IDAT: CRC error")
        }
        // Gamma chunks would make libpng convert gray levels; Pillow ignores them.
        if let stripped = PNGDecoder.withoutChunks(bytes, chunks.colorManagement) {
            return try stripped.withUnsafeBufferPointer { (b) throws(ImageError) in try decodeRaw(b, pixelLimit: pixelLimit) }
        }
        return try decodeRaw(bytes, pixelLimit: pixelLimit)
    }

    /// PNG color types (IHDR byte 25).
    static let grayType: UInt8 = 0, paletteType: UInt8 = 3

    private static func decodeRaw(_ bytes: UnsafeBufferPointer<UInt8>, pixelLimit: Int) throws(ImageError) -> IndexedImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            throw PNGDecoder.failure(&image)
        }
        let w = Int(image.width), h = Int(image.height)
        guard w > 0, h > 0 else { throw .corrupt(format: .png, message: "the header declares a \(w)x\(h) image") }
        guard w * h <= pixelLimit else { throw .tooLarge(width: w, height: h, limit: pixelLimit) }
        // libpng has read IHDR, which must be the first chunk: bit depth and color type from it.
        guard let header = PNGDecoder.Header(bytes) else {
            throw .corrupt(format: .png, message: "IHDR is not the first chunk")
        }
        let bitDepth = header.bitDepth, colorType = header.colorType
        let fileFormat = image.format
        let pixelCount = w * h

        switch (colorType, bitDepth) {
        case (paletteType, _):
            // Read "color-mapped": libpng hands back the file's own indices (`PNG_CMAP_NONE`), unpacked to a
            // byte each. An RGBA color map keeps `tRNS` out of the indices (no background is composited).
            image.format = UInt32(PNG_FORMAT_FLAG_COLORMAP) | PNGDecoder.colorFlag | PNGDecoder.alphaFlag
            var colorMap = [UInt8](repeating: 0, count: 256 * 4)
            image.colormap_entries = 256
            var ok: Int32 = 0
            let indices = [UInt8](unsafeUninitializedCapacity: pixelCount) { out, initialized in
                ok = colorMap.withUnsafeMutableBytes { map in
                    png_image_finish_read(&image, nil, out.baseAddress, 0, map.baseAddress)
                }
                initialized = ok != 0 ? pixelCount : 0
            }
            guard ok != 0 else { throw PNGDecoder.failure(&image) }
            return IndexedImage(width: w, height: h, indices: indices)
        case (grayType, 2), (grayType, 4), (grayType, 8):
            // libpng expands 2- and 4-bit gray by bit replication (`* 0x55`, `* 0x11`), as Pillow's "L;2"/"L;4".
            // With `tRNS` the file counts as having alpha: read gray + alpha (nothing composited), drop alpha.
            let hasAlpha = fileFormat & PNGDecoder.alphaFlag != 0
            image.format = hasAlpha ? PNGDecoder.alphaFlag : 0
            let channels = hasAlpha ? 2 : 1
            var ok: Int32 = 0
            let decoded = [UInt8](unsafeUninitializedCapacity: pixelCount * channels) { out, initialized in
                ok = png_image_finish_read(&image, nil, out.baseAddress, 0, nil)
                initialized = ok != 0 ? pixelCount * channels : 0
            }
            guard ok != 0 else { throw PNGDecoder.failure(&image) }
            guard hasAlpha else { return IndexedImage(width: w, height: h, indices: decoded) }
            let gray = [UInt8](unsafeUninitializedCapacity: pixelCount) { out, initialized in
                for i in 0..<pixelCount { out[i] = decoded[2 * i] }
                initialized = pixelCount
            }
            return IndexedImage(width: w, height: h, indices: gray)
        default:
            throw .invalidImage("the PNG is \(describe(colorType: colorType, bitDepth: bitDepth)), not a class-index "
                                + "mask; masks are palette (P) or 8-bit grayscale (L) PNGs")
        }
    }

    /// The color type in Pillow's terms, for error messages.
    static func describe(colorType: UInt8, bitDepth: UInt8) -> String {
        switch colorType {
        case grayType where bitDepth == 1: return "1-bit grayscale (Pillow mode \"1\")"
        case grayType: return "\(bitDepth)-bit grayscale (Pillow mode \"I;16\")"
        case 2: return "RGB (\(bitDepth)-bit)"
        case 4: return "grayscale with alpha (Pillow mode \"LA\")"
        case 6: return "RGBA (\(bitDepth)-bit)"
        default: return "color type \(colorType) at \(bitDepth) bits"
        }
    }
}
