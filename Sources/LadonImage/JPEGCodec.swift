// JPEG decoding (and encoding, for tests and tools) through the TurboJPEG API of the system libjpeg-turbo.
import CLadonJPEG
import CTurboJPEG

/// Decodes JPEG data with TurboJPEG: accurate integer DCT and fancy upsampling (the libjpeg defaults that
/// Pillow and `djpeg` use, so pixels match them), and any warning is an error, so a truncated or damaged
/// file is reported instead of decoded with grey fill. Each call owns its handle: thread-safe.
enum JPEGDecoder {
    /// TurboJPEG's own scan limit (`TJFLAG_LIMITSCANS`, 500 scans in libjpeg-turbo 2.1) stays on as a backstop.
    static let flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS

    /// Most scans (SOS markers) accepted: the limit libjpeg-turbo's own fuzzers set (`TJPARAM_SCANLIMIT` = 100).
    /// Every progressive scan walks the whole coefficient buffer, so a small file with hundreds of scans over a large
    /// image costs seconds per megapixel; real encoders write at most about a dozen. The installed TurboJPEG 2.1 has
    /// no tj3 API, so the scans are counted here, on the marker structure, before any decoding.
    static let maxScans = 100

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, pixelLimit: Int) throws(ImageError) -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw .corrupt(format: .jpeg, message: "cannot create a TurboJPEG decompressor")
        }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, bytes.baseAddress, UInt(bytes.count),
                                  &width, &height, &subsampling, &colorspace) == 0 else {
            // TurboJPEG 2.1 names only 4:4:4, 4:2:2, 4:2:0, gray, 4:4:0 and 4:1:1; libjpeg decodes the rest.
            if String(cString: tjGetErrorStr2(handle)).contains("subsampling") {
                return try LibJPEGDecoder.decode(bytes, pixelLimit: pixelLimit)
            }
            throw failure(handle, bytes)
        }
        let (w, h) = try checkedSize(width: width, height: height, bytes, pixelLimit: pixelLimit)

        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let channels = isCMYK ? 4 : 3
        let pixelFormat = isCMYK ? TJPF_CMYK : TJPF_RGB
        var status: Int32 = 0
        let decoded = [UInt8](unsafeUninitializedCapacity: w * h * channels) { out, initialized in
            status = tjDecompress2(handle, bytes.baseAddress, UInt(bytes.count), out.baseAddress,
                                   width, 0, height, Int32(pixelFormat.rawValue), flags)
            // On failure the partly written buffer is dropped as it is: bytes need no deinitialisation.
            initialized = status == 0 ? w * h * channels : 0
        }
        guard status == 0 else { throw failure(handle, bytes) }
        return RGBImage(width: w, height: h, pixels: isCMYK ? cmykToRGB(decoded) : decoded)
    }

    /// The header's size as `Int`s once the checks both decoders make before decoding pass: a non-empty image,
    /// at most `pixelLimit` pixels, at most ``maxScans`` scans.
    static func checkedSize(width: Int32, height: Int32, _ bytes: UnsafeBufferPointer<UInt8>,
                            pixelLimit: Int) throws(ImageError) -> (width: Int, height: Int) {
        guard width > 0, height > 0 else {
            let message = "the header declares a \(width)x\(height) image"
            throw endsEarly(bytes) ? .truncated(format: .jpeg, message: message) : .corrupt(format: .jpeg, message: message)
        }
        let w = Int(width), h = Int(height)
        guard w * h <= pixelLimit else { throw .tooLarge(width: w, height: h, limit: pixelLimit) }
        let scans = scanCount(bytes)
        guard scans <= maxScans else {
            throw .corrupt(format: .jpeg, message: "\(scans) scans, more than the \(maxScans) accepted (a progressive JPEG built to stall the decoder)")
        }
        return (w, h)
    }

    /// Pillow's conversion: CMYK JPEGs are assumed to follow Adobe's inverted convention (`CMYK;I`), then
    /// `r = (255 - k) - (c * (255 - k)) / 255` with Pillow's rounding (`MULDIV255`).
    static func cmykToRGB(_ cmyk: [UInt8]) -> [UInt8] {
        let n = cmyk.count / 4
        return [UInt8](unsafeUninitializedCapacity: n * 3) { out, initialized in
            cmyk.withUnsafeBufferPointer { src in
                for i in 0..<n {
                    let notK = Int(src[4 * i + 3])           // 255 - (255 - stored k)
                    for c in 0..<3 {
                        let ink = 255 - Int(src[4 * i + c])   // inverted storage
                        let t = ink * notK + 128
                        out[3 * i + c] = UInt8(notK - (((t >> 8) + t) >> 8))
                    }
                }
            }
            initialized = n * 3
        }
    }

    /// Turns TurboJPEG's last error into a typed error: `.truncated` if the data ends before its EOI
    /// marker (libjpeg's own messages for that vary: "Premature end", "missing SOS marker", ...).
    static func failure(_ handle: tjhandle, _ bytes: UnsafeBufferPointer<UInt8>) -> ImageError {
        let message = String(cString: tjGetErrorStr2(handle))
        return endsEarly(bytes) ? .truncated(format: .jpeg, message: message) : .corrupt(format: .jpeg, message: message)
    }

    /// Counts the scans (SOS markers) libjpeg could reach: the marker walk of ``endsEarly(_:)``, up to EOI or the
    /// first break in the structure (where libjpeg warns, and `TJFLAG_STOPONWARNING` stops it).
    static func scanCount(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var scans = 0
        _ = walkMarkers(b) { marker in if marker == 0xDA { scans += 1 } }
        return scans
    }

    /// Whether the JPEG's marker structure is intact but runs out of data before the EOI marker: a
    /// segment longer than the data, or entropy-coded data with no marker after it. A broken structure
    /// (no 0xFF where a marker belongs) is damage, not truncation.
    static func endsEarly(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        walkMarkers(b) { _ in }
    }

    /// Walks the marker segments after SOI, calling `visit` with each marker; returns true when the data ends
    /// before EOI with the structure intact so far, false at EOI or at damage.
    private static func walkMarkers(_ b: UnsafeBufferPointer<UInt8>, _ visit: (UInt8) -> Void) -> Bool {
        let n = b.count
        var pos = 2                                          // after SOI
        while true {
            guard pos < n else { return true }
            guard b[pos] == 0xFF else { return false }
            while pos < n && b[pos] == 0xFF { pos += 1 }     // fill bytes
            guard pos < n else { return true }
            let marker = b[pos]
            pos += 1
            visit(marker)
            switch marker {
            case 0xD9: return false                          // EOI: complete
            case 0xD0...0xD7, 0x01: continue                 // standalone markers
            case 0x00: return false
            default:
                guard pos + 2 <= n else { return true }
                let length = Int(b[pos]) << 8 | Int(b[pos + 1])
                guard length >= 2 else { return false }
                guard pos + length <= n else { return true }
                pos += length
                guard marker == 0xDA else { continue }
                // Entropy-coded data: runs to the next marker other than stuffing (FF 00) and RSTn.
                while true {
                    guard pos + 1 < n else { return true }
                    if b[pos] != 0xFF { pos += 1; continue }
                    let next = b[pos + 1]
                    if next == 0x00 || (0xD0...0xD7).contains(next) { pos += 2 } else if next == 0xFF { pos += 1 } else { break }
                }
            }
        }
    }
}

/// Encodes RGB images as baseline JPEG with TurboJPEG (4:2:0 chroma subsampling by default).
public enum JPEGEncoder {
    /// Chroma subsampling of an encoded JPEG.
    public enum Subsampling: Sendable {
        case none444, half422, quarter420
        var tj: Int32 {
            switch self {
            case .none444: return Int32(TJSAMP_444.rawValue)
            case .half422: return Int32(TJSAMP_422.rawValue)
            case .quarter420: return Int32(TJSAMP_420.rawValue)
            }
        }
    }

    /// The JPEG file bytes of `image` at `quality` (1...100).
    public static func encode(rgb image: RGBImage, quality: Int = 90,
                              subsampling: Subsampling = .quarter420) throws(ImageError) -> [UInt8] {
        guard image.width > 0, image.height > 0, image.width <= 65_500, image.height <= 65_500 else {
            throw .invalidImage("a JPEG must be 1...65500 pixels on each side, got \(image.width)x\(image.height)")
        }
        guard (1...100).contains(quality) else { throw .invalidImage("JPEG quality \(quality) is outside 1...100") }
        guard let handle = tjInitCompress() else {
            throw .encodingFailed(format: .jpeg, message: "cannot create a TurboJPEG compressor")
        }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        defer { if let output { tjFree(output) } }
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height),
                        Int32(TJPF_RGB.rawValue), &output, &size, subsampling.tj, Int32(quality),
                        TJFLAG_ACCURATEDCT)
        }
        guard status == 0, let output else {
            throw .encodingFailed(format: .jpeg, message: String(cString: tjGetErrorStr2(handle)))
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
