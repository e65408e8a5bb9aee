// Faster R-CNN anchors (torchvision `AnchorGenerator`): rounded cell anchors tiled over every feature level.

/// torchvision's `AnchorGenerator` for one image: one anchor size per level, shared aspect ratios.
///
/// Cell anchors are computed in float32 as torchvision does: `h = sqrt(ratio)`, `w = 1/h`,
/// `[-w·size, -h·size, w·size, h·size] / 2`, rounded half-to-even. A level of size `h_l × w_l` on a padded
/// image `H × W` uses the integer strides `H / h_l`, `W / w_l` (so the `pool` level at 416 gets 59, not 64)
/// and no half-stride offset. Anchors are ordered level → y → x → anchor.
package struct AnchorGenerator: Sendable, Equatable {
    /// One anchor size (pixels) per level.
    package let sizes: [Int]
    /// Height/width ratios, the same at every level.
    package let aspectRatios: [Float]
    /// Zero-centred cell anchors per level, `aspectRatios.count` each.
    package let cellAnchors: [[Box]]

    package init(sizes: [Int], aspectRatios: [Float]) {
        self.sizes = sizes
        self.aspectRatios = aspectRatios
        cellAnchors = sizes.map { size in
            aspectRatios.map { ratio in
                let hRatio = ratio.squareRoot()
                let wRatio = 1 / hRatio
                let ws = wRatio * Float(size), hs = hRatio * Float(size)
                return Box(x1: (-ws / 2).rounded(.toNearestOrEven), y1: (-hs / 2).rounded(.toNearestOrEven),
                           x2: (ws / 2).rounded(.toNearestOrEven), y2: (hs / 2).rounded(.toNearestOrEven))
            }
        }
    }

    /// Anchors per location.
    package var anchorsPerLocation: Int { aspectRatios.count }

    /// Integer strides `(paddedHeight / h, paddedWidth / w)` of a level of size `h × w`.
    package static func stride(paddedSize: (height: Int, width: Int), gridSize: (height: Int, width: Int)) -> (y: Int, x: Int) {
        (gridSize.height > 0 ? paddedSize.height / gridSize.height : 0,
         gridSize.width > 0 ? paddedSize.width / gridSize.width : 0)
    }

    /// The anchor of `level` at grid cell `(y, x)`, cell anchor `a`.
    @inlinable package func anchor(level: Int, y: Int, x: Int, a: Int, stride: (y: Int, x: Int)) -> Box {
        let cell = cellAnchors[level][a]
        let sx = Float(x * stride.x), sy = Float(y * stride.y)
        return Box(x1: sx + cell.x1, y1: sy + cell.y1, x2: sx + cell.x2, y2: sy + cell.y2)
    }

    /// All anchors of one level in (y, x, anchor) order.
    package func anchors(level: Int, gridSize: (height: Int, width: Int), paddedSize: (height: Int, width: Int)) -> [Box] {
        let s = Self.stride(paddedSize: paddedSize, gridSize: gridSize)
        var out: [Box] = []
        out.reserveCapacity(gridSize.height * gridSize.width * anchorsPerLocation)
        for y in 0..<gridSize.height {
            for x in 0..<gridSize.width {
                for a in 0..<anchorsPerLocation { out.append(anchor(level: level, y: y, x: x, a: a, stride: s)) }
            }
        }
        return out
    }

    /// All anchors of all levels, concatenated (level, y, x, anchor).
    package func anchors(gridSizes: [(height: Int, width: Int)], paddedSize: (height: Int, width: Int)) -> [Box] {
        precondition(gridSizes.count == sizes.count, "\(gridSizes.count) feature levels for \(sizes.count) anchor sizes")
        return gridSizes.indices.flatMap { anchors(level: $0, gridSize: gridSizes[$0], paddedSize: paddedSize) }
    }
}
