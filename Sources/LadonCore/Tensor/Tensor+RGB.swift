// 8-bit RGB pixels to the model's input tensor, exactly as torchvision's `to_tensor`.

extension Tensor {
    /// `[1, 3, height, width]` with values `Float(v) / 255` from 8-bit RGB pixels (row-major, 3 bytes per pixel,
    /// no padding between rows): torchvision's `to_tensor(img).unsqueeze(0)`, bit for bit. Checks the buffer size.
    public init(rgb8 pixels: [UInt8], width: Int, height: Int) throws(LadonError) {
        let plane = try Self.rgb8PlaneSize(byteCount: pixels.count, width: width, height: height)
        self.init(shape: [1, 3, height, width]) { out in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<plane {
                    out[i] = Float(src[3 * i]) / 255
                    out[plane + i] = Float(src[3 * i + 1]) / 255
                    out[2 * plane + i] = Float(src[3 * i + 2]) / 255
                }
            }
        }
    }

    /// `width · height` after checking that 8-bit RGB of that size is `byteCount` bytes (3 per pixel, no overflow,
    /// both sides positive); the error gives the expected and actual counts.
    package static func rgb8PlaneSize(byteCount: Int, width: Int, height: Int) throws(LadonError) -> Int {
        let (plane, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !overflow, plane <= Int.max / 3, byteCount == 3 * plane else {
            throw .invalidInput(.rgbByteCount(width: width, height: height, expected: overflow || plane > Int.max / 3 ? nil : 3 * max(plane, 0), actual: byteCount))
        }
        return plane
    }
}
