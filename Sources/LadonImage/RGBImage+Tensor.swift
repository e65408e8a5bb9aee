// Conversion of decoded images to model input tensors, exactly as torchvision's `to_tensor`.
import LadonCore

extension RGBImage {
    /// A `[1, 3, height, width]` tensor with values `Float(v) / 255` in `[0, 1]`: torchvision's
    /// `to_tensor(img).unsqueeze(0)`, bit for bit (``LadonCore/Tensor/init(rgb8:width:height:)``). No resizing or
    /// normalisation. Throws for an empty image or one whose `pixels` no longer match its size.
    public func toTensor() throws(LadonError) -> Tensor { try Tensor(rgb8: pixels, width: width, height: height) }

    /// Encodes the image as PNG bytes (see ``PNGEncoder``).
    public func pngData() throws(ImageError) -> [UInt8] { try PNGEncoder.encode(rgb: self) }

    /// Writes the image to `path` as PNG.
    public func writePNG(to path: String) throws(ImageError) { try PNGEncoder.write(rgb: self, to: path) }
}
