// The segmentation metric of torchvision's references/segmentation (`utils.ConfusionMatrix`), which sc2bench's
// VOC numbers use: one int64 confusion matrix over all images, rows = target, target 255 ignored.

/// A `classes × classes` confusion matrix (rows: target class, columns: predicted class).
public struct ConfusionMatrix: Sendable, Equatable {
    public let classes: Int
    /// Row-major counts, `counts[target * classes + prediction]`.
    public private(set) var counts: [Int64]

    public init(classes: Int) {
        self.classes = classes
        counts = [Int64](repeating: 0, count: classes * classes)
    }

    /// Adds one image: `target` and `prediction` are class ids per pixel, same length. Target pixels outside
    /// `0..<classes` (VOC's 255 border) are skipped, as `k = (a >= 0) & (a < n)` does; a prediction outside that
    /// range is counted in no column (torchvision would raise).
    public mutating func add(target: [UInt8], prediction: [UInt8]) {
        precondition(target.count == prediction.count, "target and prediction differ in size")
        let n = classes
        counts.withUnsafeMutableBufferPointer { m in
            for i in target.indices {
                let t = Int(target[i]), p = Int(prediction[i])
                if t < n && p < n { m[t * n + p] += 1 }
            }
        }
    }

    /// Adds counts from a sparse list of `(target, prediction, count)` entries (the per-image records).
    public mutating func add(entries: [[Int64]]) throws(EvalError) {
        for e in entries {
            guard e.count == 3, (0..<Int64(classes)).contains(e[0]), (0..<Int64(classes)).contains(e[1]), e[2] >= 0 else {
                throw .badRecord("confusion entry \(e) is not [target, prediction, count] within \(classes) classes")
            }
            counts[Int(e[0]) * classes + Int(e[1])] += e[2]
        }
    }

    /// The non-zero cells as `[target, prediction, count]`, row-major.
    public var nonZeroEntries: [[Int64]] {
        counts.indices.compactMap { i in counts[i] == 0 ? nil : [Int64(i / classes), Int64(i % classes), counts[i]] }
    }

    /// Per-class IoU `diag / (row sum + column sum − diag)`, each computed as torchvision computes it (the int64
    /// counts converted to float32, then divided in float32); nil for a class that is in neither target nor
    /// prediction (torchvision gets NaN there).
    public var classIoU: [Float?] {
        (0..<classes).map { c in
            let diag = counts[c * classes + c]
            var row: Int64 = 0, column: Int64 = 0
            for j in 0..<classes { row += counts[c * classes + j]; column += counts[j * classes + c] }
            let union = row + column - diag
            return union == 0 ? nil : Float(diag) / Float(union)
        }
    }

    /// Mean IoU in percent over all classes (background included). When a class has no pixels in target or
    /// prediction, torchvision's mean is NaN; this mean then leaves it out and ``absentClasses`` names it.
    public var meanIoU: Double {
        let present = classIoU.compactMap { $0 }
        return present.isEmpty ? 0 : 100 * present.reduce(0) { $0 + Double($1) } / Double(present.count)
    }

    /// Classes in neither target nor prediction (excluded from ``meanIoU``).
    public var absentClasses: [Int] { classIoU.indices.filter { classIoU[$0] == nil } }

    /// Global pixel accuracy in percent: `diag.sum() / total` (float32, as torchvision).
    public var pixelAccuracy: Double {
        let total = counts.reduce(0, +)
        guard total > 0 else { return 0 }
        let diag = (0..<classes).reduce(Int64(0)) { $0 + counts[$1 * classes + $1] }
        return 100 * Double(Float(diag) / Float(total))
    }
}
