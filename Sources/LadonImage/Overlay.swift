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

    /// A labelled box to draw (coordinates in image pixels, x2/y2 exclusive edges as torchvision's xyxy).
    public struct LabelledBox: Sendable {
        public var x1: Float, y1: Float, x2: Float, y2: Float
        public var label: String
        public var colour: (UInt8, UInt8, UInt8)
        public init(x1: Float, y1: Float, x2: Float, y2: Float, label: String, colour: (UInt8, UInt8, UInt8)) {
            (self.x1, self.y1, self.x2, self.y2, self.label, self.colour) = (x1, y1, x2, y2, label, colour)
        }
    }

    /// A distinct, bright colour per COCO class id (golden-ratio hue steps).
    public static func detectionColor(_ id: Int) -> (UInt8, UInt8, UInt8) {
        let hue = (Double(id) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1)
        let h6 = hue * 6, sector = Int(h6), f = h6 - Double(sector)
        let (v, p, q, t) = (1.0, 0.25, 1.0 - 0.75 * f, 0.25 + 0.75 * f)
        let rgb: (Double, Double, Double)
        switch sector % 6 {
        case 0: rgb = (v, t, p)
        case 1: rgb = (q, v, p)
        case 2: rgb = (p, v, t)
        case 3: rgb = (p, q, v)
        case 4: rgb = (t, p, v)
        default: rgb = (v, p, q)
        }
        return (UInt8(rgb.0 * 255), UInt8(rgb.1 * 255), UInt8(rgb.2 * 255))
    }

    /// Draws each box as a 2-pixel outline with its label on a filled tab above (or inside) the top-left corner.
    public static func boxes(on image: RGBImage, _ boxes: [LabelledBox]) -> RGBImage {
        var out = image
        let (w, h) = (image.width, image.height)
        guard w > 0, h > 0 else { return out }
        func put(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            guard x >= 0, y >= 0, x < w, y < h else { return }
            let i = 3 * (y * w + x)
            out.pixels[i] = c.0; out.pixels[i + 1] = c.1; out.pixels[i + 2] = c.2
        }
        func clampPixel(_ v: Float, _ limit: Int) -> Int {
            guard v.isFinite else { return 0 }
            return Int(min(max(v, 0), Float(limit - 1)))
        }
        for b in boxes {
            let x1 = clampPixel(b.x1, w), x2 = clampPixel(b.x2, w), y1 = clampPixel(b.y1, h), y2 = clampPixel(b.y2, h)
            for t in 0..<2 {
                for x in x1...max(x1, x2) { put(x, y1 + t, b.colour); put(x, y2 - t, b.colour) }
                for y in y1...max(y1, y2) { put(x1 + t, y, b.colour); put(x2 - t, y, b.colour) }
            }
            // Label tab: dark text on the box colour.
            let text = Array(b.label.utf8)
            let tabW = text.count * BitmapFont.glyphWidth + 4, tabH = BitmapFont.glyphHeight
            let top = y1 - tabH >= 0 ? y1 - tabH : y1
            for y in top..<(top + tabH) { for x in x1..<(x1 + tabW) { put(x, y, b.colour) } }
            for (k, ch) in text.enumerated() {
                let code = Int(ch) >= 32 && Int(ch) < 127 ? Int(ch) - 32 : Int(Character("?").asciiValue!) - 32
                for row in 0..<BitmapFont.glyphHeight {
                    let bits = BitmapFont.rows[code * BitmapFont.glyphHeight + row]
                    for col in 0..<BitmapFont.glyphWidth where bits & (1 << col) != 0 {
                        put(x1 + 2 + k * BitmapFont.glyphWidth + col, top + row, (0, 0, 0))
                    }
                }
            }
        }
        return out
    }
}
