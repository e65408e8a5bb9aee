// The typed errors of image decoding and encoding: each says what was wrong and what to do.

/// Image container formats recognised by their magic bytes.
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    case jpeg = "JPEG", png = "PNG", gif = "GIF", bmp = "BMP", webp = "WebP", tiff = "TIFF"

    /// Whether LadonImage can decode this format.
    public var isDecodable: Bool { self == .jpeg || self == .png }

    /// Identifies a format from the first bytes of a file; `nil` if it matches none.
    public static func detect<C: Collection>(_ bytes: C) -> ImageFormat? where C.Element == UInt8 {
        let head = Array(bytes.prefix(12))
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts(Array("RIFF".utf8)) && head.count >= 12 && Array(head[8..<12]) == Array("WEBP".utf8) { return .webp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        return nil
    }
}

/// Why an image could not be read, decoded or written.
public enum ImageError: Error, Equatable, Sendable {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The input has no bytes at all.
    case empty
    /// The bytes are a known format LadonImage does not decode (`format` set) or no known format (`nil`).
    case unsupportedFormat(ImageFormat?)
    /// The data is damaged or invalid for its format; `message` is the codec's own diagnosis.
    case corrupt(format: ImageFormat, message: String)
    /// The data ends before the image does.
    case truncated(format: ImageFormat, message: String)
    /// The header declares more pixels than the decoder's limit (checked before allocating).
    case tooLarge(width: Int, height: Int, limit: Int)
    /// An image to encode is inconsistent (size and pixel count disagree, zero size, too big for the format).
    case invalidImage(String)
    /// An encoder failed.
    case encodingFailed(format: ImageFormat, message: String)
    /// The output file could not be written.
    case unwritable(path: String, reason: String)
}

extension ImageError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "image: cannot read \(path): \(reason); check the path and its permissions"
        case .empty:
            return "image: the input is empty (0 bytes); pass a JPEG or PNG file"
        case .unsupportedFormat(let format?):
            return "image: \(format.rawValue) is not supported; convert the image to JPEG or PNG"
        case .unsupportedFormat(nil):
            return "image: not a JPEG or PNG file (unrecognised signature); convert the image to JPEG or PNG"
        case .corrupt(let format, let message):
            return "image: the \(format.rawValue) data is corrupt (\(message)); re-export or re-download the image"
        case .truncated(let format, let message):
            return "image: the \(format.rawValue) data is truncated (\(message)); the file was cut short, copy or download it again"
        case .tooLarge(let width, let height, let limit):
            return "image: \(width)x\(height) is \(width * height) pixels, above the limit of \(limit); downscale the image or raise the pixel limit"
        case .invalidImage(let message):
            return "image: \(message)"
        case .encodingFailed(let format, let message):
            return "image: \(format.rawValue) encoding failed: \(message)"
        case .unwritable(let path, let reason):
            return "image: cannot write \(path): \(reason); check the directory exists and is writable"
        }
    }
}
