// Axis-aligned boxes and torchvision's box utilities: area, IoU, BoxCoder decoding, clipping, small-box removal.
import Foundation

/// An axis-aligned box in `(x1, y1, x2, y2)` corner form (torchvision's `xyxy`), in pixels.
///
/// No `+1` conventions: the width is `x2 − x1`, as in torchvision.
public struct Box: Sendable, Equatable, Hashable {
    public var x1: Float
    public var y1: Float
    public var x2: Float
    public var y2: Float

    @inlinable public init(x1: Float, y1: Float, x2: Float, y2: Float) {
        self.x1 = x1
        self.y1 = y1
        self.x2 = x2
        self.y2 = y2
    }

    /// `x2 − x1` (may be negative for malformed boxes).
    @inlinable public var width: Float { x2 - x1 }
    /// `y2 − y1`.
    @inlinable public var height: Float { y2 - y1 }
    /// `(x2 − x1)·(y2 − y1)` in float32, as torchvision's `box_area` (no clamping).
    @inlinable public var area: Float { (x2 - x1) * (y2 - y1) }

    /// Intersection over union with torchvision's NMS arithmetic:
    /// `inter = max(0, min(x2) − max(x1))·max(0, min(y2) − max(y1))`, `IoU = inter / (area + other.area − inter)`.
    /// Two zero-area boxes give `0/0 = NaN` (never above a threshold), as in torchvision.
    @inlinable public func iou(_ other: Box) -> Float {
        let w = max(Float(0), min(x2, other.x2) - max(x1, other.x1))
        let h = max(Float(0), min(y2, other.y2) - max(y1, other.y1))
        let inter = w * h
        return inter / (area + other.area - inter)
    }

    /// The box clamped to `[0, width] × [0, height]` (torchvision `clip_boxes_to_image`: `clamp(min: 0, max: size)`).
    @inlinable public func clipped(height: Int, width: Int) -> Box {
        let w = Float(width), h = Float(height)
        return Box(x1: min(max(x1, 0), w), y1: min(max(y1, 0), h), x2: min(max(x2, 0), w), y2: min(max(y2, 0), h))
    }

    /// Whether both sides are at least `minSize` (torchvision `remove_small_boxes` keeps these).
    @inlinable public func isAtLeast(_ minSize: Float) -> Bool {
        (x2 - x1) >= minSize && (y2 - y1) >= minSize
    }

    /// The box with x scaled by `ratioWidth` and y by `ratioHeight` (torchvision `resize_boxes`).
    @inlinable public func scaled(ratioHeight: Float, ratioWidth: Float) -> Box {
        Box(x1: x1 * ratioWidth, y1: y1 * ratioHeight, x2: x2 * ratioWidth, y2: y2 * ratioHeight)
    }
}

/// torchvision's `BoxCoder` (Faster R-CNN parameterisation), decoding only.
///
/// `decode` reproduces `BoxCoder.decode_single` operation by operation in float32:
/// ```
/// w = x2 − x1; h = y2 − y1; cx = x1 + 0.5·w; cy = y1 + 0.5·h
/// dx = d0 / wx; dy = d1 / wy; dw = min(d2 / ww, clip); dh = min(d3 / wh, clip)
/// pcx = dx·w + cx; pcy = dy·h + cy; pw = exp(dw)·w; ph = exp(dh)·h
/// box = (pcx − 0.5·pw, pcy − 0.5·ph, pcx + 0.5·pw, pcy + 0.5·ph)
/// ```
public struct BoxCoder: Sendable, Equatable {
    /// `(wx, wy, ww, wh)`: `(1,1,1,1)` for the RPN, `(10,10,5,5)` for the RoI heads.
    public var weights: (Float, Float, Float, Float)
    /// Upper clamp of `dw`, `dh` before `exp`: `log(1000/16)` in float32.
    public var clip: Float

    /// `log(1000 / 16)` = 4.135166556742356, rounded to float32 (torch casts the Python scalar to the tensor dtype).
    public static let defaultClip = Float(log(1000.0 / 16.0))

    public init(weights: (Float, Float, Float, Float), clip: Float = BoxCoder.defaultClip) {
        self.weights = weights
        self.clip = clip
    }

    public static func == (a: BoxCoder, b: BoxCoder) -> Bool {
        a.weights == b.weights && a.clip == b.clip
    }

    /// Decodes one box from its reference box and four deltas.
    @inlinable public func decode(_ d0: Float, _ d1: Float, _ d2: Float, _ d3: Float, reference r: Box) -> Box {
        let widths = r.x2 - r.x1
        let heights = r.y2 - r.y1
        let ctrX = r.x1 + 0.5 * widths
        let ctrY = r.y1 + 0.5 * heights
        let dx = d0 / weights.0
        let dy = d1 / weights.1
        // torch.clamp(max:) returns NaN for NaN input; Swift's min would return the bound.
        let dwRaw = d2 / weights.2, dhRaw = d3 / weights.3
        let dw = dwRaw > clip ? clip : dwRaw
        let dh = dhRaw > clip ? clip : dhRaw
        let pcx = dx * widths + ctrX
        let pcy = dy * heights + ctrY
        let pw = Foundation.exp(dw) * widths
        let ph = Foundation.exp(dh) * heights
        let halfH = 0.5 * ph
        let halfW = 0.5 * pw
        return Box(x1: pcx - halfW, y1: pcy - halfH, x2: pcx + halfW, y2: pcy + halfH)
    }

    /// Decodes `deltas[i*4 ..< i*4+4]` against `references[i]` for every box.
    public func decode(deltas: [Float], references: [Box]) -> [Box] {
        precondition(deltas.count == references.count * 4, "decode: \(deltas.count) deltas for \(references.count) boxes")
        return references.indices.map { i in
            decode(deltas[4 * i], deltas[4 * i + 1], deltas[4 * i + 2], deltas[4 * i + 3], reference: references[i])
        }
    }
}

extension Kernels {
    /// Indices of the boxes whose width and height are both `>= minSize` (torchvision `remove_small_boxes`).
    public static func removeSmallBoxes(_ boxes: [Box], minSize: Float) -> [Int] {
        boxes.indices.filter { boxes[$0].isAtLeast(minSize) }
    }

    /// Every box clamped to `[0, width] × [0, height]` (torchvision `clip_boxes_to_image`).
    public static func clipBoxes(_ boxes: [Box], height: Int, width: Int) -> [Box] {
        boxes.map { $0.clipped(height: height, width: width) }
    }
}
