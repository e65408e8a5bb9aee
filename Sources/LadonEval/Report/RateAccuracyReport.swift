// `ladon report`: data size against accuracy over several evaluations (one per β model), as a table and charts.
import Foundation

/// Rate–accuracy points from evaluation summaries, with the paper's published points optionally beside them.
public struct RateAccuracyReport: Sendable {
    /// One evaluation: where it came from and its summary.
    public struct Entry: Sendable {
        public var label: String
        public var summary: EvalSummary
        public init(label: String, summary: EvalSummary) {
            self.label = label
            self.summary = summary
        }
        /// The task's headline metric (top-1 %, AP, mIoU %).
        public var metric: Double? { summary.metrics[summary.task.headlineMetric] }
    }

    public var entries: [Entry]
    /// The published variant to show beside the measured points ("resnet50", "resnest269e"), or nil for none.
    public var paperVariant: String?

    public init(entries: [Entry], paperVariant: String? = nil) {
        self.entries = entries
        self.paperVariant = paperVariant
    }

    /// Tasks present, in ``EvalTask`` order.
    public var tasks: [EvalTask] { EvalTask.allCases.filter { t in entries.contains { $0.summary.task == t } } }

    /// Entries of one task, by increasing data size.
    public func entries(for task: EvalTask) -> [Entry] {
        entries.filter { $0.summary.task == task }.sorted { $0.summary.dataSize.meanKB < $1.summary.dataSize.meanKB }
    }

    /// A Markdown table per task: β, data size (ours and sc2bench's pickled figure), the metric, images.
    public func table() -> String {
        var out: [String] = []
        for task in tasks {
            let metric = task.headlineMetric + (task == .coco ? "" : " [%]")
            out.append("### \(task.rawValue)\n")
            out.append("| result | β | images | data size [KB] | sc2bench size [KB] | bpp | \(metric) |")
            out.append("|---|---|---|---|---|---|---|")
            for e in entries(for: task) {
                let d = e.summary.dataSize
                out.append("| \(e.label) | \(e.summary.model.beta ?? "–") | \(e.summary.images) | "
                    + String(format: "%.3f ± %.3f | %.3f | %.4f | ", d.meanKB, d.stdKB, d.sc2benchMeanKB, d.bitsPerPixel)
                    + (e.metric.map { Self.format($0, task) } ?? "–") + " |")
            }
            if let variant = paperVariant {
                for p in PublishedResults.points(task: task, variant: variant) {
                    out.append("| paper \(variant) | \(p.beta) | \(p.samples.map(String.init) ?? "–") | – | "
                        + (p.dataSizeKB.map { String(format: "%.3f", $0) } ?? "–") + " | – | \(Self.format(p.metric, task)) |")
                }
            }
            out.append("")
        }
        if paperVariant != nil {
            out.append("Paper points: sc2bench's logged \"Bottleneck size [KB]\" (its pickled figure) and final test metrics, "
                + "from the legacy/logs of github.com/yoshitomo-matsubara/ladon-multi-task-sc2.")
        }
        return out.joined(separator: "\n")
    }

    static func format(_ v: Double, _ task: EvalTask) -> String { task == .coco ? String(format: "%.4f", v) : String(format: "%.3f", v) }

    /// Data size (sc2bench's pickled KB, the paper's convention) against the task metric.
    public func chart(for task: EvalTask) -> SVGChart {
        let name = ["imagenet": "ImageNet top-1 [%]", "coco": "COCO box AP", "voc": "PASCAL VOC mIoU [%]"][task.rawValue] ?? task.rawValue
        var chart = SVGChart(title: "Rate–accuracy: \(name)",
                             x: .init(title: "Data size per sample [KB, sc2bench's pickled figure]"),
                             y: .init(title: name))
        let measured = entries(for: task).compactMap { e -> SVGChart.Point? in
            e.metric.map { SVGChart.Point(x: e.summary.dataSize.sc2benchMeanKB, y: $0, label: e.summary.model.beta.map { "β=\($0)" } ?? e.label) }
        }
        chart.series.append(.lineAndMarkers("ladon-swift (measured)", measured))
        if let variant = paperVariant {
            let paper = PublishedResults.points(task: task, variant: variant).compactMap { p -> SVGChart.Point? in
                p.dataSizeKB.map { SVGChart.Point(x: $0, y: p.metric, label: "β=\(p.beta)") }
            }
            if !paper.isEmpty { chart.series.append(.lineAndMarkers("paper, \(variant) (repository logs)", paper, dashed: true, shape: .square)) }
        }
        return chart
    }
}
