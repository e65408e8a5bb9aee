// JPEGs TurboJPEG 2.1 will not open (chroma subsampling it has no name for), decoded through libjpeg's own API.
import CLadonJPEG

/// The same pixels ``JPEGDecoder`` gives (accurate integer DCT, fancy upsampling, warnings as errors, Pillow's CMYK
/// conversion) through libjpeg's API in `CLadonJPEG`, for files whose sampling factors TurboJPEG cannot classify,
/// such as 4:1:0 (luma 4×2 over chroma): Pillow decodes those with libjpeg too.
enum LibJPEGDecoder {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, pixelLimit: Int) throws(ImageError) -> RGBImage {
        let messageSize = 256
        var message = [CChar](repeating: 0, count: messageSize)
        var width: Int32 = 0, height: Int32 = 0, cmyk: Int32 = 0
        guard cladon_jpeg_header(bytes.baseAddress, bytes.count, &width, &height, &cmyk, &message, messageSize) == 0 else {
            throw failure(message, bytes)
        }
        let (w, h) = try JPEGDecoder.checkedSize(width: width, height: height, bytes, pixelLimit: pixelLimit)
        let channels = cmyk != 0 ? 4 : 3
        var status: Int32 = 0
        let decoded = [UInt8](unsafeUninitializedCapacity: w * h * channels) { out, initialized in
            status = cladon_jpeg_decode(bytes.baseAddress, bytes.count, out.baseAddress, width, height, cmyk,
                                        &message, messageSize)
            initialized = status == 0 ? w * h * channels : 0
        }
        guard status == 0 else { throw failure(message, bytes) }
        return RGBImage(width: w, height: h, pixels: cmyk != 0 ? JPEGDecoder.cmykToRGB(decoded) : decoded)
    }

    /// libjpeg's message as a typed error: `.truncated` when the data ends before EOI (``JPEGDecoder/endsEarly(_:)``).
    static func failure(_ message: [CChar], _ bytes: UnsafeBufferPointer<UInt8>) -> ImageError {
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return JPEGDecoder.endsEarly(bytes) ? .truncated(format: .jpeg, message: text) : .corrupt(format: .jpeg, message: text)
    }
}
