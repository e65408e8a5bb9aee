// The human-readable form of an evaluation summary.
import Foundation

/// Renders an ``EvalSummary`` as a short report.
public enum EvalSummaryText {
    public static func render(_ s: EvalSummary, title: String) -> String {
        var lines = ["\(title): \(s.images) images" + (s.failed > 0 ? ", \(s.failed) failed" : "")
            + (s.missing > 0 ? ", \(s.missing) missing" : "")]
        let model = "model: fingerprint \(s.model.fingerprint.map { String($0.prefix(16)) } ?? "none")"
            + (s.model.beta.map { ", β = \($0)" } ?? "")
        lines.append(model)
        let percent = s.task != .coco
        for name in s.task.metricNames {
            guard let v = s.metrics[name] else { continue }
            lines.append("  " + name.padding(toLength: 14, withPad: " ", startingAt: 0)
                + (percent ? String(format: "%8.3f %%", v) : String(format: "%8.4f", v)))
        }
        let d = s.dataSize
        lines.append(String(format: "data size: mean %.3f KB (std %.3f, median %.3f, p90 %.3f), %.4f bits per pixel",
                            d.meanKB, d.stdKB, d.medianKB, d.p90KB, d.bitsPerPixel))
        lines.append(String(format: "  sc2bench's pickled figure: mean %.3f KB (std %.3f)", d.sc2benchMeanKB, d.sc2benchStdKB))
        let e = s.encoderSize
        lines.append(String(format: "encoder size: %d bits (%.4f MB) for the encoder; %d bits (%.4f MB) with the entropy bottleneck",
                            e.encoderBits, e.encoderMB, e.totalBits, e.totalMB))
        for n in s.notes { lines.append("note: \(n)") }
        return lines.joined(separator: "\n")
    }
}
