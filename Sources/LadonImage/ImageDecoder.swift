// Entry point for decoding images: format detection by magic bytes, the pixel limit, file reading.
import Foundation
import LadonCore

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
///
/// Limits (docs/security.md): the pixel limit is a memory limit. Decoding and turning an image into the network's
/// input holds about ``peakBytesPerPixel`` bytes per pixel at the peak (RGB, the `Float32` tensor and its
/// normalised copy, and a progressive JPEG's coefficient buffer), so ``pixelLimit(memoryBudget:)`` gives the limit
/// for a memory budget. The server default (``defaultPixelLimit``, 100 MP ≈ 3 GB) is for edge servers;
/// ``devicePixelLimit`` (24 MP ≈ 720 MB) is what the command line's device side (`ladon infer`, `ladon encode`)
/// uses unless `--pixel-limit` says otherwise. JPEGs with more than ``maxJPEGScans`` scans are refused before
/// decoding.
public enum ImageDecoder {
    /// The default pixel limit, the server's: 100 megapixels (300 MB of RGB, about 3 GB at the peak of
    /// decoding and preprocessing; see ``peakBytesPerPixel``).
    public static let defaultPixelLimit = 100_000_000

    /// Peak bytes held per pixel from file to network input on the tensor path (`toTensor()`, then
    /// `Preprocessor.callAsFunction(_:)`): 3 (RGB) + 12 (`Float32` tensor) + 12 (its normalised copy) + up to 3 more
    /// for a progressive JPEG's coefficients (measured: 2.9 GB for 100 MP). The limits are sized for it. `ladon` and
    /// the edge service preprocess straight from the RGB bytes (`Preprocessor.callAsFunction(rgb8:width:height:)`)
    /// and hold about 3–6 bytes per pixel (12 MP JPEG: peak RSS of `ladon infer` 639 → 496 MB), so for them the limit
    /// is a wide margin.
    public static let peakBytesPerPixel = 30

    /// The pixel limit that keeps decoding and preprocessing within `bytes` of memory.
    public static func pixelLimit(memoryBudget bytes: Int) -> Int { max(bytes, 0) / peakBytesPerPixel }

    /// The device side's default: 24 megapixels, about 720 MB at the peak (a phone's full-size photo; larger
    /// images should be downscaled on the device, the network sees at most `maxSize` pixels per side anyway).
    public static let devicePixelLimit = 24_000_000

    /// Most scans a JPEG may have (libjpeg-turbo's fuzzers use the same limit); more is refused before decoding.
    public static var maxJPEGScans: Int { JPEGDecoder.maxScans }

    /// Largest image file read (512 MiB); a pipe or device is read up to this and refused beyond.
    public static let maxFileBytes = 512 << 20

    /// Decodes the image file at `path`.
    ///
    /// - Parameters:
    ///   - pixelLimit: most pixels accepted (``defaultPixelLimit``; the device side uses ``devicePixelLimit``).
    ///   - maxFileBytes: largest file read; a pipe or device (e.g. `/dev/zero`) is read up to this and refused beyond.
    public static func decode(contentsOf path: String, pixelLimit: Int = defaultPixelLimit,
                              maxFileBytes: Int = Self.maxFileBytes) throws(ImageError) -> RGBImage {
        try decode(data: try readImageFile(path, maxFileBytes: maxFileBytes), pixelLimit: pixelLimit)
    }

    /// The bytes of an image file, read with a size bound: a missing file, a directory, or a pipe or device longer
    /// than `maxFileBytes` is an ``ImageError/unreadable(path:reason:)``.
    static func readImageFile(_ path: String, maxFileBytes: Int) throws(ImageError) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw .unreadable(path: path, reason: "it is a directory") }
        do {
            return try UntrustedFile.read(path, maxBytes: max(maxFileBytes, 0), allowStreams: true)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
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
