// Top-k classification accuracy as torchvision's and torchdistill's `accuracy(output, target, topk=(1, 5))`.

/// Counts of correct top-1 and top-5 predictions over a set of samples.
public struct TopKAccuracy: Sendable, Equatable {
    public private(set) var samples = 0
    public private(set) var correctTop1 = 0
    public private(set) var correctTop5 = 0

    public init() {}

    /// Adds one sample: `top5` is the predicted classes, best first (`Kernels.topK`: ties go to the lower class index).
    public mutating func add(label: Int, top5: [Int]) {
        samples += 1
        if top5.first == label { correctTop1 += 1 }
        if top5.prefix(5).contains(label) { correctTop5 += 1 }
    }

    /// Top-1 accuracy in percent (as the sc2bench logs print it); 0 without samples.
    public var top1: Double { samples == 0 ? 0 : 100 * Double(correctTop1) / Double(samples) }
    /// Top-5 accuracy in percent; 0 without samples.
    public var top5: Double { samples == 0 ? 0 : 100 * Double(correctTop5) / Double(samples) }
}
