// Entry point for decoding images: format detection by magic bytes, the pixel limit, file reading.
import Foundation

/// Decodes JPEG and PNG images to 8-bit RGB, matching Pillow's `Image.open(f).convert("RGB")`.
///
/// The format is detected from the data's first bytes, never from a file name. The header is read first
/// and images above `pixelLimit` are refused before any pixel memory is allocated. Damaged, truncated or
/// unsupported input throws an ``ImageError``; nothing here traps or exits. Safe to call concurrently.
///
/// ```swift
/// let image = try ImageDecoder.decode(contentsOf: "cat.jpg")
/// let input = image.toTensor()            // [1, 3, H, W] in [0, 1]
/// ```
public enum ImageDecoder {
    /// The default pixel limit: 100 megapixels (300 MB of RGB).
    public static let defaultPixelLimit = 100_000_000

    /// Decodes the image file at `path`.
    public static func decode(contentsOf path: String,
                              pixelLimit: Int = defaultPixelLimit) throws(ImageError) -> RGBImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw .unreadable(path: path, reason: "it is a directory") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try decode(data: data, pixelLimit: pixelLimit)
    }

    /// Decodes an image held in memory.
    public static func decode(bytes: [UInt8], pixelLimit: Int = defaultPixelLimit) throws(ImageError) -> RGBImage {
        try bytes.withUnsafeBufferPointer { (b) throws(ImageError) in try decode(buffer: b, pixelLimit: pixelLimit) }
    }

    /// Decodes an image held in memory (`Data`).
    public static func decode(data: Data, pixelLimit: Int = defaultPixelLimit) throws(ImageError) -> RGBImage {
        // `Data.withUnsafeBytes` rethrows untyped errors, so carry the typed result out.
        let result: Result<RGBImage, ImageError> = data.withUnsafeBytes { raw in
            Result { () throws(ImageError) in try decode(buffer: raw.bindMemory(to: UInt8.self), pixelLimit: pixelLimit) }
        }
        return try result.get()
    }

    /// Decodes from a buffer that stays valid for the call.
    public static func decode(buffer: UnsafeBufferPointer<UInt8>,
                              pixelLimit: Int = defaultPixelLimit) throws(ImageError) -> RGBImage {
        guard buffer.count > 0 else { throw .empty }
        switch ImageFormat.detect(buffer) {
        case .jpeg?: return try JPEGDecoder.decode(buffer, pixelLimit: pixelLimit)
        case .png?: return try PNGDecoder.decode(buffer, pixelLimit: pixelLimit)
        case let other: throw .unsupportedFormat(other)
        }
    }
}
