// The three benchmark tasks of sc2bench and the metric names each reports.

/// A task of the SC2 benchmark, named as `ladon eval` names it.
public enum EvalTask: String, Codable, Sendable, CaseIterable {
    /// ImageNet (ILSVRC 2012) classification: top-1 and top-5 accuracy in percent.
    case imagenet
    /// COCO 2017 object detection: the 12 COCOeval bbox summary numbers (fractions, as pycocotools prints).
    case coco
    /// PASCAL VOC 2012 semantic segmentation: mIoU and global pixel accuracy in percent.
    case voc

    /// The metric names of the task, in the order they are reported.
    public var metricNames: [String] {
        switch self {
        case .imagenet: ["top1", "top5"]
        case .coco: ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
        case .voc: ["mIoU", "pixelAccuracy"]
        }
    }

    /// The metric the rate–accuracy chart plots for the task.
    public var headlineMetric: String {
        switch self {
        case .imagenet: "top1"
        case .coco: "AP"
        case .voc: "mIoU"
        }
    }
}
