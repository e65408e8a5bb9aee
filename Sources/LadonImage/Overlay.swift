// Draws segmentation masks and detection boxes over an image, for `ladon infer --overlay`.

/// Drawing helpers for visual results.
public enum Overlay {
    /// The PASCAL VOC color map (class id → RGB): the bit-interleaved palette the VOC toolkit uses.
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

    /// Blends each non-background pixel (`classIDs[i] != 0`) with its class color at `opacity`.
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
        public var color: (UInt8, UInt8, UInt8)
        public init(x1: Float, y1: Float, x2: Float, y2: Float, label: String, color: (UInt8, UInt8, UInt8)) {
            (self.x1, self.y1, self.x2, self.y2, self.label, self.color) = (x1, y1, x2, y2, label, color)
        }
    }

    /// A distinct, bright color per COCO class id (golden-ratio hue steps).
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

    /// The text scale for an image: 1 up to 600 pixels on the short side, then one more per 600, so labels stay
    /// readable on large photos.
    public static func textScale(for image: RGBImage) -> Int { max(1, min(image.width, image.height) / 600 + 1) }

    /// Black or white, whichever contrasts more with `c` (Rec. 601 luma).
    static func textColor(on c: (UInt8, UInt8, UInt8)) -> (UInt8, UInt8, UInt8) {
        0.299 * Float(c.0) + 0.587 * Float(c.1) + 0.114 * Float(c.2) > 140 ? (0, 0, 0) : (255, 255, 255)
    }

    /// Pixel-level drawing on one image, clipped to its bounds.
    struct Canvas {
        var image: RGBImage
        var width: Int { image.width }
        var height: Int { image.height }

        mutating func put(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = 3 * (y * width + x)
            image.pixels[i] = c.0; image.pixels[i + 1] = c.1; image.pixels[i + 2] = c.2
        }

        mutating func fill(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: (UInt8, UInt8, UInt8), opacity: Float = 1) {
            for yy in max(y, 0)..<max(min(y + h, height), max(y, 0)) {
                for xx in max(x, 0)..<max(min(x + w, width), max(x, 0)) {
                    let i = 3 * (yy * width + xx)
                    image.pixels[i] = blend(image.pixels[i], c.0, opacity)
                    image.pixels[i + 1] = blend(image.pixels[i + 1], c.1, opacity)
                    image.pixels[i + 2] = blend(image.pixels[i + 2], c.2, opacity)
                }
            }
        }

        /// Size of `text` at `scale` (without padding).
        static func textSize(_ text: String, scale: Int) -> (width: Int, height: Int) {
            (text.utf8.count * BitmapFont.glyphWidth * scale, BitmapFont.glyphHeight * scale)
        }

        mutating func text(_ text: String, _ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8), scale: Int) {
            for (k, ch) in text.utf8.enumerated() {
                let code = Int(ch) >= 32 && Int(ch) < 127 ? Int(ch) - 32 : Int(Character("?").asciiValue!) - 32
                for row in 0..<BitmapFont.glyphHeight {
                    let bits = BitmapFont.rows[code * BitmapFont.glyphHeight + row]
                    for col in 0..<BitmapFont.glyphWidth where bits & (1 << col) != 0 {
                        fill(x + (k * BitmapFont.glyphWidth + col) * scale, y + row * scale, scale, scale, c)
                    }
                }
            }
        }
    }

    /// Draws each box as an outline with its label on a filled tab above (or inside) the top-left corner. The tab
    /// is opaque, in the box color, with black or white text (whichever contrasts), kept inside the image, and
    /// the text scales with the image (``textScale(for:)``).
    public static func boxes(on image: RGBImage, _ boxes: [LabelledBox]) -> RGBImage {
        guard image.width > 0, image.height > 0 else { return image }
        var canvas = Canvas(image: image)
        let (w, h) = (image.width, image.height)
        let scale = textScale(for: image), thickness = 2 * scale
        func clampPixel(_ v: Float, _ limit: Int) -> Int {
            guard v.isFinite else { return 0 }
            return Int(min(max(v, 0), Float(limit - 1)))
        }
        for b in boxes {
            let x1 = clampPixel(b.x1, w), x2 = clampPixel(b.x2, w), y1 = clampPixel(b.y1, h), y2 = clampPixel(b.y2, h)
            for t in 0..<thickness {
                for x in x1...max(x1, x2) { canvas.put(x, y1 + t, b.color); canvas.put(x, y2 - t, b.color) }
                for y in y1...max(y1, y2) { canvas.put(x1 + t, y, b.color); canvas.put(x2 - t, y, b.color) }
            }
            let size = Canvas.textSize(b.label, scale: scale)
            let tabW = size.width + 4 * scale, tabH = size.height
            let left = max(0, min(x1, w - tabW))
            let top = y1 - tabH >= 0 ? y1 - tabH : min(y1, max(0, h - tabH))
            canvas.fill(left, top, tabW, tabH, b.color)
            canvas.text(b.label, left + 2 * scale, top, textColor(on: b.color), scale: scale)
        }
        return canvas.image
    }

    /// Draws a legend in the top-left corner: a color swatch and the name of each entry, on a dark translucent
    /// panel (readable on any background), e.g. the segmentation classes present in the mask.
    public static func legend(on image: RGBImage, _ entries: [(name: String, color: (UInt8, UInt8, UInt8))]) -> RGBImage {
        guard image.width > 0, image.height > 0, !entries.isEmpty else { return image }
        var canvas = Canvas(image: image)
        let scale = textScale(for: image)
        let line = BitmapFont.glyphHeight * scale + 2 * scale, pad = 4 * scale, swatch = BitmapFont.glyphHeight * scale
        let textWidth = entries.map { Canvas.textSize($0.name, scale: scale).width }.max() ?? 0
        canvas.fill(0, 0, pad * 3 + swatch + textWidth, pad * 2 + line * entries.count, (0, 0, 0), opacity: 0.6)
        for (k, e) in entries.enumerated() {
            let y = pad + k * line
            canvas.fill(pad, y, swatch, swatch, e.color)
            canvas.text(e.name, pad * 2 + swatch, y, (255, 255, 255), scale: scale)
        }
        return canvas.image
    }
}
