// PNG decoding through libpng's simplified API (errors come back in `png_image.message`: no setjmp).
import CPNG
import LadonCore

/// Decodes every PNG color type (gray, gray+alpha, RGB, RGBA, palette, 1...16 bits, interlaced) to RGB
/// the way Pillow's `Image.open(f).convert("RGB")` does: alpha (and `tRNS`) is dropped, never composited,
/// and color-management chunks (gAMA, cHRM, sRGB, iCCP, cICP) are ignored. 16-bit samples follow Pillow:
/// 16-bit RGB keeps the high byte (`v >> 8`); 16-bit grayscale (Pillow mode `"I;16"`) is clipped,
/// `min(v, 255)`, so anything above 255 turns white, exactly as the PyTorch reference pipeline sees it (convert
/// such a file to 8 bits first for a meaningful picture). Both hold with a `tRNS` chunk. 16-bit images with an alpha
/// channel (gray + alpha, RGBA) keep the high byte too, read by ``PNGSixteenBit`` after libpng has checked the file.
/// Each call owns its `png_image`: thread-safe.
enum PNGDecoder {
    // libpng's format flags (the composite macros are not imported into Swift).
    static let alphaFlag = UInt32(PNG_FORMAT_FLAG_ALPHA)
    static let colorFlag = UInt32(PNG_FORMAT_FLAG_COLOR)
    static let linearFlag = UInt32(PNG_FORMAT_FLAG_LINEAR)

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, pixelLimit: Int) throws(ImageError) -> RGBImage {
        let chunks = scanChunks(bytes)
        // libpng stops reading once it has every row, so it never checks the last IDAT chunk's CRC (nor
        // zlib's Adler-32): a flipped bit there would decode silently. Check that CRC here.
        if let last = chunks.lastIDAT, !hasValidCRC(bytes, chunk: last) {
            throw .corrupt(format: .png, message: "IDAT: CRC error")
        }
        if let stripped = withoutChunks(bytes, chunks.colorManagement) {
            return try stripped.withUnsafeBufferPointer { (b) throws(ImageError) in
                try decodeRaw(b, chunks: chunks, pixelLimit: pixelLimit)
            }
        }
        return try decodeRaw(bytes, chunks: chunks, pixelLimit: pixelLimit)
    }

    private static func decodeRaw(_ bytes: UnsafeBufferPointer<UInt8>, chunks: ChunkScan,
                                  pixelLimit: Int) throws(ImageError) -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            throw failure(&image)
        }
        let w = Int(image.width), h = Int(image.height)
        guard w > 0, h > 0 else { throw .corrupt(format: .png, message: "the header declares a \(w)x\(h) image") }
        guard w * h <= pixelLimit else { throw .tooLarge(width: w, height: h, limit: pixelLimit) }

        let fileFormat = image.format
        let pixelCount = w * h
        let isGray = fileFormat & colorFlag == 0
        // 16-bit samples, where libpng's alpha (if any) comes from a `tRNS` key color, not an alpha channel.
        let transparentKey = fileFormat & alphaFlag != 0 ? chunks.transparentKey16 : nil
        if fileFormat & linearFlag != 0 && (fileFormat & alphaFlag == 0 || transparentKey != nil) {
            // Read the samples untouched (no gAMA, so libpng assumes linear in and out: no conversion). With a
            // key color the read has alpha, premultiplied: 65535 (opaque, samples exact) or 0 (the pixel was the
            // key color, which is put back). Gray stays one channel.
            let channels = isGray ? 1 : 3
            let stride = transparentKey == nil ? channels : channels + 1
            image.format = linearFlag | (isGray ? 0 : colorFlag) | (transparentKey == nil ? 0 : alphaFlag)
            var ok: Int32 = 0
            let wide = [UInt16](unsafeUninitializedCapacity: pixelCount * stride) { out, initialized in
                ok = png_image_finish_read(&image, nil, out.baseAddress, 0, nil)
                // On failure the partly written buffer is dropped as it is (no zero fill): integers need no deinit.
                initialized = ok != 0 ? pixelCount * stride : 0
            }
            guard ok != 0 else { throw failure(&image) }
            // Pillow: 16-bit RGB keeps the high byte, 16-bit gray ("I;16" → RGB) clips to 255.
            let toByte: (UInt16) -> UInt8 = isGray ? { UInt8(min($0, 255)) } : { UInt8(truncatingIfNeeded: $0 >> 8) }
            let rgb = [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { out, initialized in
                wide.withUnsafeBufferPointer { src in
                    for i in 0..<pixelCount {
                        let pixel = i * stride
                        let keyed = transparentKey != nil && src[pixel + channels] == 0
                        for c in 0..<3 {
                            let sample = keyed ? transparentKey![isGray ? 0 : c] : src[pixel + (isGray ? 0 : c)]
                            out[3 * i + c] = toByte(sample)
                        }
                    }
                }
                initialized = pixelCount * 3
            }
            return RGBImage(width: w, height: h, pixels: rgb)
        }
        // 8-bit (any color type) or 16-bit with alpha: read 8-bit sRGB, with alpha if the file has any,
        // so nothing is composited onto the output buffer; then drop the alpha channel.
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        let hasAlpha = fileFormat & alphaFlag != 0
        image.format = colorFlag | (hasAlpha ? alphaFlag : 0)
        let channels = hasAlpha ? 4 : 3
        var ok: Int32 = 0
        let decoded = [UInt8](unsafeUninitializedCapacity: pixelCount * channels) { out, initialized in
            ok = png_image_finish_read(&image, nil, out.baseAddress, 0, nil)
            initialized = ok != 0 ? pixelCount * channels : 0
        }
        guard ok != 0 else { throw failure(&image) }
        guard hasAlpha else { return RGBImage(width: w, height: h, pixels: decoded) }
        if fileFormat & linearFlag != 0, let header = Header(bytes), header.bitDepth == 16,
           header.colorType == 4 || header.colorType == 6 {
            // 16-bit with an alpha channel: libpng judged the file; Pillow's high bytes come from the stream itself.
            return RGBImage(width: w, height: h, pixels: try PNGSixteenBit.rgbHighBytes(bytes, header: header))
        }
        let rgb = [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { out, initialized in
            decoded.withUnsafeBufferPointer { src in
                for i in 0..<pixelCount {
                    out[3 * i] = src[4 * i]
                    out[3 * i + 1] = src[4 * i + 1]
                    out[3 * i + 2] = src[4 * i + 2]
                }
            }
            initialized = pixelCount * 3
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    /// The message libpng left in `image`, as a typed error.
    static func failure(_ image: inout png_image) -> ImageError {
        let message = withUnsafeBytes(of: &image.message) { raw -> String in
            let text = raw.prefix { $0 != 0 }
            return String(decoding: text, as: UTF8.self)
        }
        let endOfData = ["beyond end of data", "Not enough image data", "unexpected end", "Truncated"]
        if endOfData.contains(where: { message.contains($0) }) {
            return .truncated(format: .png, message: message)
        }
        return .corrupt(format: .png, message: message.isEmpty ? "libpng reported an unknown error" : message)
    }

    /// Chunk types that make libpng convert colors; Pillow ignores them.
    private static let colorManagementChunks: Set<String> = ["gAMA", "cHRM", "sRGB", "iCCP", "cICP", "mDCv", "cLLi"]

    /// What ``scanChunks(_:)`` found in the chunk list.
    struct ChunkScan {
        /// Color-management chunks to drop (whole chunk ranges).
        var colorManagement: [Range<Int>] = []
        /// The last complete IDAT chunk (length field to CRC).
        var lastIDAT: Range<Int>? = nil
        /// The (first) `tRNS` key color of a 16-bit gray (one sample) or RGB (three) image; `nil` otherwise.
        var transparentKey16: [UInt16]? = nil
    }

    /// The IHDR fields (width, height, bit depth, color type, interlace method).
    struct Header {
        var width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, interlaced: Bool

        /// Samples per pixel of the color type (gray 1, RGB 3, gray + alpha 2, RGBA 4; palette 1).
        var samples: Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType] ?? 0 }

        /// Reads IHDR, which a PNG must put first (bytes 8..<33); `nil` when it is not there.
        init?(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard bytes.count >= 29, Array(bytes[12..<16]) == Array("IHDR".utf8) else { return nil }
            func be32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[at + $1]) } }
            (width, height, bitDepth, colorType, interlaced) = (be32(16), be32(20), bytes[24], bytes[25], bytes[28] == 1)
        }
    }

    /// Calls `visit` with each chunk's type and whole range (length field to CRC) after the signature, up to and
    /// including IEND. Stops quietly at damage (a length beyond the data): libpng reports it on the bytes.
    static func walkChunks(_ bytes: UnsafeBufferPointer<UInt8>, _ visit: (_ type: String, _ chunk: Range<Int>) -> Void) {
        var position = 8
        while position + 8 <= bytes.count {
            let length = (0..<4).reduce(0) { $0 << 8 | Int(bytes[position + $1]) }
            let type = String(decoding: bytes[(position + 4)..<(position + 8)], as: UTF8.self)
            let end = position + 12 + length
            if length > Int(Int32.max) || end > bytes.count { return }
            visit(type, position..<end)
            if type == "IEND" { return }
            position = end
        }
    }

    /// Walks the chunk list: color-management chunks to drop, the last complete IDAT chunk, and a 16-bit image's
    /// `tRNS` key color.
    static func scanChunks(_ bytes: UnsafeBufferPointer<UInt8>) -> ChunkScan {
        var scan = ChunkScan()
        let header = Header(bytes)
        let keySamples = header?.bitDepth != 16 ? 0 : header?.colorType == 0 ? 1 : header?.colorType == 2 ? 3 : 0
        walkChunks(bytes) { type, chunk in
            let length = chunk.count - 12
            if type == "IDAT" { scan.lastIDAT = chunk }
            if scan.lastIDAT == nil && colorManagementChunks.contains(type) { scan.colorManagement.append(chunk) }
            if scan.lastIDAT == nil && scan.transparentKey16 == nil && type == "tRNS" && keySamples > 0 && length == 2 * keySamples {
                scan.transparentKey16 = (0..<keySamples).map {
                    UInt16(bytes[chunk.lowerBound + 8 + 2 * $0]) << 8 | UInt16(bytes[chunk.lowerBound + 9 + 2 * $0])
                }
            }
        }
        return scan
    }

    /// A copy of the PNG without the given chunks, or `nil` if there are none to drop.
    static func withoutChunks(_ bytes: UnsafeBufferPointer<UInt8>, _ drop: [Range<Int>]) -> [UInt8]? {
        guard !drop.isEmpty else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var start = 0
        for range in drop {
            out.append(contentsOf: bytes[start..<range.lowerBound])
            start = range.upperBound
        }
        out.append(contentsOf: bytes[start...])
        return out
    }

    /// Whether a chunk's stored CRC-32 matches its type and data.
    static func hasValidCRC(_ bytes: UnsafeBufferPointer<UInt8>, chunk: Range<Int>) -> Bool {
        let stored = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[chunk.upperBound - 4 + $1]) }
        return CRC32.checksum(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[(chunk.lowerBound + 4)..<(chunk.upperBound - 4)]))) == stored
    }
}
