// Fuzz target: ImageDecoder on JPEG input (through LadonImage, the system libjpeg-turbo / libpng), at a 1-megapixel
// limit (libjpeg-turbo's own fuzzers use the same) so one input decodes well within the 1 s timeout under ASan.
import LadonImage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buffer = UnsafeBufferPointer(start: data, count: size)
    if let image = try? ImageDecoder.decode(buffer: buffer, pixelLimit: 1 << 20) {
        precondition(image.pixels.count == image.width * image.height * 3)
    }
    return 0
}
