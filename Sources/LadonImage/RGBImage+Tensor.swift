// Conversion of decoded images to model input tensors, exactly as torchvision's `to_tensor`.
import LadonCore

extension RGBImage {
    /// A `[1, 3, height, width]` tensor with values `Float(v) / 255` in `[0, 1]`: torchvision's
    /// `to_tensor(img).unsqueeze(0)`, bit for bit. No resizing or normalisation.
    public func toTensor() -> Tensor {
        let plane = width * height
        return Tensor(shape: [1, 3, height, width]) { out in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<plane {
                    out[i] = Float(src[3 * i]) / 255
                    out[plane + i] = Float(src[3 * i + 1]) / 255
                    out[2 * plane + i] = Float(src[3 * i + 2]) / 255
                }
            }
        }
    }

    /// Encodes the image as PNG bytes (see ``PNGEncoder``).
    public func pngData() throws(ImageError) -> [UInt8] { try PNGEncoder.encode(rgb: self) }

    /// Writes the image to `path` as PNG.
    public func writePNG(to path: String) throws(ImageError) { try PNGEncoder.write(rgb: self, to: path) }
}
