// Turns a LadonResult into the CLI's text and JSON output.
import Foundation
import LadonCore

struct InferenceReport {
    let file: String
    let result: LadonResult
    let model: LadonModel
    let topK: Int
    let includeLogits: Bool
    let maskSize: MaskSize
    let detectionThreshold: Float

    struct ClassScore: Encodable { let index: Int; let label: String; let logit: Float; let probability: Float }

    /// Detections at or above the display threshold.
    var shownDetections: [Detection] { result.detections.filter { $0.score >= detectionThreshold } }

    func cocoName(_ id: Int) -> String { label(model.labels.coco, id) }

    func topClasses(_ k: Int) -> [ClassScore] {
        guard let logits = result.classificationLogits else { return [] }
        let probabilities = Kernels.softmax(logits)
        return Kernels.topK(logits, k: min(k, logits.count)).map { item in
            ClassScore(index: item.index, label: label(model.labels.imagenet, item.index),
                       logit: item.value, probability: probabilities[item.index])
        }
    }

    /// The class-id mask at the requested size: `(width, height, ids)`.
    func maskPixels(_ seg: SegmentationResult, geometry g: ImageGeometry) -> (Int, Int, [Int32]) {
        switch maskSize {
        case .padded: return (seg.width, seg.height, seg.mask)
        case .original:
            return (g.originalWidth, g.originalHeight,
                    seg.mask(resampledFrom: g.resizedHeight, g.resizedWidth, toHeight: g.originalHeight, width: g.originalWidth))
        }
    }

    /// Pixel count per class id at the requested mask size.
    func classPixels() -> (width: Int, height: Int, counts: [Int: Int]) {
        guard let seg = result.segmentation else { return (0, 0, [:]) }
        let (w, h, ids) = maskPixels(seg, geometry: result.geometry)
        var counts: [Int: Int] = [:]
        for id in ids { counts[Int(id), default: 0] += 1 }
        return (w, h, counts)
    }

    func text() -> String {
        let g = result.geometry
        var lines: [String] = []
        lines.append("\(file): \(g.originalWidth)x\(g.originalHeight) → \(g.resizedWidth)x\(g.resizedHeight) (padded \(g.paddedWidth)x\(g.paddedHeight)), latent \(result.latentShape.map(String.init).joined(separator: "x")), \(result.compressed.count) bytes")
        if result.classificationLogits != nil {
            lines.append("classification (top \(topK)):")
            for (i, c) in topClasses(topK).enumerated() {
                lines.append(String(format: "  %2d. %6.2f%%  %@ (%d)", i + 1, Double(c.probability * 100), c.label, c.index))
            }
        }
        if model.detectionHead != nil {
            let shown = shownDetections
            lines.append("detection (\(shown.count) of \(result.detections.count) with score ≥ \(detectionThreshold)):")
            if !shown.isEmpty {
                lines.append("  label             score   box (x1, y1, x2, y2) in original pixels")
            }
            for d in shown {
                let name = cocoName(d.label).padding(toLength: 16, withPad: " ", startingAt: 0)
                lines.append(String(format: "  %@  %.3f   (%.1f, %.1f, %.1f, %.1f)", name, d.score,
                                    d.box.x1, d.box.y1, d.box.x2, d.box.y2))
            }
        }
        if result.segmentation != nil {
            let (w, h, counts) = classPixels()
            lines.append("segmentation (\(maskSize.rawValue) size \(w)x\(h)):")
            for (id, n) in counts.sorted(by: { $0.value > $1.value }) {
                lines.append(String(format: "  %6.2f%%  %@ (%d)", 100 * Double(n) / Double(max(w * h, 1)),
                                    label(model.labels.voc, id), id))
            }
        }
        lines.append("timings: " + result.timings.map { String(format: "%@ %.1f ms", $0.stage, $0.seconds * 1000) }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        let g = result.geometry
        var object: [String: Any] = [
            "file": file,
            "image": ["width": g.originalWidth, "height": g.originalHeight],
            "input": ["width": g.resizedWidth, "height": g.resizedHeight, "paddedWidth": g.paddedWidth, "paddedHeight": g.paddedHeight],
            "latent": ["channels": result.latentShape[0], "height": result.latentShape[1], "width": result.latentShape[2]],
            "compressedBytes": result.compressed.count,
            "compressedSha256": SHA256.hash(result.compressed).hexString,
            "detection": result.detections.map { d -> [String: Any] in
                ["box": [d.box.x1, d.box.y1, d.box.x2, d.box.y2].map(Double.init), "score": Double(d.score),
                 "label": d.label, "name": cocoName(d.label)]
            },
            "timings": Dictionary(uniqueKeysWithValues: result.timings.map { ($0.stage + "Ms", $0.seconds * 1000) }),
        ]
        if let logits = result.classificationLogits {
            var cls: [String: Any] = ["top5": topClasses(5).map {
                ["index": $0.index, "label": $0.label, "logit": Double($0.logit), "probability": Double($0.probability)] as [String: Any]
            }]
            if includeLogits { cls["logits"] = logits.map(Double.init) }
            object["classification"] = cls
        }
        if result.segmentation != nil {
            let (w, h, counts) = classPixels()
            object["segmentation"] = ["width": w, "height": h, "maskSize": maskSize.rawValue,
                                      "classPixels": Dictionary(uniqueKeysWithValues: counts.map { (String($0.key), $0.value) })]
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private func label(_ list: [String], _ i: Int) -> String { i >= 0 && i < list.count ? list[i] : "class \(i)" }
}
