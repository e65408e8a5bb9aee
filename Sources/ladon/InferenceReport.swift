// Turns a LadonResult into the CLI's text and JSON output.
import ArgumentParser
import Foundation
import LadonCore

/// What `infer` and `decode` show of a result: the options both commands take.
struct ReportOptions: ParsableArguments {
    @Option(name: .customLong("top-k"), help: "Number of classes to show in text output (JSON always lists the top 5).")
    var topK = 5

    @Flag(help: "Include all classification logits in the JSON output.")
    var logits = false

    @Option(name: .customLong("mask-size"), help: "Size of --mask and of the class-pixel counts: original or padded.")
    var maskSize: MaskSize = .original

    @Option(name: .customLong("detection-threshold"),
            help: "Show detections with at least this score in text output and in an overlay (JSON lists all).")
    var detectionThreshold: Float = 0.5

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard (0...1).contains(detectionThreshold) else { throw ValidationError("--detection-threshold must be in [0, 1]") }
    }
}

struct InferenceReport {
    let file: String
    let result: LadonResult
    /// The server half that produced the result (labels, which heads exist).
    let model: ServerHalf
    let topK: Int
    let includeLogits: Bool
    let maskSize: MaskSize
    let detectionThreshold: Float

    /// Detections at or above the display threshold.
    var shownDetections: [Detection] { result.detections.filter { $0.score >= detectionThreshold } }

    func cocoName(_ id: Int) -> String { InferenceSummary.label(model.labels.coco, id) }

    /// The class-id mask at the requested size: `(width, height, ids)`.
    func maskPixels(_ seg: SegmentationResult, geometry g: ImageGeometry) -> (Int, Int, [Int32]) {
        let m = InferenceSummary.mask(seg, geometry: g, original: maskSize == .original)
        return (m.width, m.height, m.ids)
    }

    var summary: InferenceSummary {
        InferenceSummary(file: file, result: result, labels: model.labels, includeLogits: includeLogits,
                         maskAtOriginalSize: maskSize == .original)
    }

    func json() -> String { summary.jsonString() }

    func text() -> String {
        let g = result.geometry
        var lines: [String] = []
        lines.append("\(file): \(g.originalWidth)x\(g.originalHeight) → \(g.resizedWidth)x\(g.resizedHeight) (padded \(g.paddedWidth)x\(g.paddedHeight)), latent \(result.latentShape.map(String.init).joined(separator: "x")), \(result.compressed.count) bytes")
        if let logits = result.classificationLogits {
            lines.append("classification (top \(topK)):")
            for (i, c) in InferenceSummary.topClasses(logits, k: topK, labels: model.labels.imagenet).enumerated() {
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
        if let seg = summary.segmentation {
            lines.append("segmentation (\(maskSize.rawValue) size \(seg.width)x\(seg.height)):")
            for (id, n) in seg.classPixels.sorted(by: { $0.value > $1.value }) {
                lines.append(String(format: "  %6.2f%%  %@ (%@)", 100 * Double(n) / Double(max(seg.width * seg.height, 1)),
                                    InferenceSummary.label(model.labels.voc, Int(id) ?? -1), id))
            }
        }
        lines.append("timings: " + result.timings.map { String(format: "%@ %.1f ms", $0.stage, $0.seconds * 1000) }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
