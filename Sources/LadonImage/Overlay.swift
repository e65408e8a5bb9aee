// Draws segmentation masks and detection boxes over an image, for `ladon infer --overlay`.

/// Drawing helpers for visual results.
public enum Overlay {
    /// The PASCAL VOC colour map (class id → RGB): the bit-interleaved palette the VOC toolkit uses.
    public static func vocColor(_ id: Int) -> (UInt8, UInt8, UInt8) {
        var r = 0, g = 0, b = 0, c = id
        for j in 0..<8 {
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        }
        return (UInt8(r), UInt8(g), UInt8(b))
    }

    /// Blends each non-background pixel (`classIDs[i] != 0`) with its class colour at `opacity`.
    /// - Parameter classIDs: one id per pixel of `image`, row-major.
    public static func segmentation(on image: RGBImage, classIDs: [Int32], opacity: Float = 0.5) -> RGBImage {
        precondition(classIDs.count == image.width * image.height, "mask size does not match the image")
        var out = image
        for i in 0..<classIDs.count where classIDs[i] != 0 {
            let (r, g, b) = vocColor(Int(classIDs[i]))
            let base = 3 * i
            out.pixels[base] = blend(out.pixels[base], r, opacity)
            out.pixels[base + 1] = blend(out.pixels[base + 1], g, opacity)
            out.pixels[base + 2] = blend(out.pixels[base + 2], b, opacity)
        }
        return out
    }

    @inline(__always)
    static func blend(_ a: UInt8, _ b: UInt8, _ t: Float) -> UInt8 {
        UInt8(clamping: Int((Float(a) * (1 - t) + Float(b) * t).rounded()))
    }
}
