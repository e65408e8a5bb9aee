// Top-k, the VOC confusion matrix and the SC2 data-size figures against the real Python stack
// (Scripts/eval/make_eval_fixtures.py: torchvision's reference `accuracy` and `ConfusionMatrix`, numpy, pickle).
import Foundation
import LadonCore
import Testing
@testable import LadonEval

struct MetricFixtures: Decodable {
    struct TopK: Decodable { var logits: [[Float]], labels: [Int], top1: Double, top5: Double }
    struct Image: Decodable { var target: [UInt8], prediction: [UInt8] }
    struct Confusion: Decodable {
        var classes: Int, images: [Image], matrix: [Int64], iou: [Double], mIoU: Double, pixelAccuracy: Double
    }
    struct DataSize: Decodable {
        var bytes: [Int], latent: [[Int]], pickled: [Int]
        var meanKB: Double, stdKB: Double, medianKB: Double, p90KB: Double, sc2benchMeanKB: Double, sc2benchStdKB: Double
    }
    var topk: TopK, confusion: Confusion, dataSize: DataSize

    static func load() throws -> MetricFixtures {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/metrics", withExtension: "json"))
        return try JSONDecoder().decode(MetricFixtures.self, from: Data(contentsOf: url))
    }
}

@Suite struct MetricsTests {
    @Test func topKEqualsTorchvisionAccuracy() throws {
        let f = try MetricFixtures.load().topk
        var acc = TopKAccuracy()
        for (logits, label) in zip(f.logits, f.labels) { acc.add(label: label, top5: Kernels.topK(logits, k: 5).map(\.index)) }
        // torchvision sums in float32 and scales by 100/batch in float32: compare at float precision.
        #expect(abs(acc.top1 - f.top1) < 1e-4 && abs(acc.top5 - f.top5) < 1e-4)
        #expect(acc.samples == 40 && acc.top1 < acc.top5)
    }

    @Test func confusionMatrixEqualsTorchvision() throws {
        let f = try MetricFixtures.load().confusion
        var whole = ConfusionMatrix(classes: f.classes)
        var fromRecords = ConfusionMatrix(classes: f.classes)
        for image in f.images {
            whole.add(target: image.target, prediction: image.prediction)
            var one = ConfusionMatrix(classes: f.classes)
            one.add(target: image.target, prediction: image.prediction)
            try fromRecords.add(entries: one.nonZeroEntries)
        }
        #expect(whole.counts == f.matrix)
        #expect(fromRecords == whole)
        // Class 20 never occurs in the targets but is predicted: IoU 0, not absent.
        for (mine, theirs) in zip(whole.classIoU, f.iou) { #expect(abs(Double(mine ?? .nan) - theirs) < 1e-7) }
        #expect(abs(whole.meanIoU - f.mIoU) < 1e-4)
        #expect(abs(whole.pixelAccuracy - f.pixelAccuracy) < 1e-4)
        #expect(whole.absentClasses.isEmpty)
    }

    @Test func confusionMatrixLeavesOutAbsentClassesAndRejectsBadCells() {
        var m = ConfusionMatrix(classes: 3)
        m.add(target: [0, 0, 1, 255], prediction: [0, 1, 1, 2])
        #expect(m.absentClasses == [2])
        #expect(abs(m.meanIoU - 100 * (0.5 + 0.5) / 2) < 1e-9)
        #expect(abs(m.pixelAccuracy - 100 * 2.0 / 3.0) < 1e-4)
        #expect(throws: EvalError.self) { try m.add(entries: [[0, 3, 1]]) }
        #expect(throws: EvalError.self) { try m.add(entries: [[0, 1]]) }
        #expect(throws: EvalError.self) { try m.add(entries: [[0, 1, -5]]) }
    }

    @Test func dataSizeEqualsNumpyAndSc2benchPickle() throws {
        let f = try MetricFixtures.load().dataSize
        let latent = f.latent.map { ($0[0], $0[1]) }
        for (i, n) in f.bytes.enumerated() {
            #expect(DataSizeStatistics.sc2benchPickledBytes(stringBytes: n, latentHeight: latent[i].0, latentWidth: latent[i].1) == f.pickled[i],
                    "string of \(n) bytes, latent \(latent[i])")
        }
        let s = DataSizeStatistics(bytes: f.bytes, pixels: f.bytes.map { _ in 416 * 416 }, latentSizes: latent)
        #expect(abs(s.meanKB - f.meanKB) < 1e-9 && abs(s.stdKB - f.stdKB) < 1e-9)
        #expect(abs(s.medianKB - f.medianKB) < 1e-9 && abs(s.p90KB - f.p90KB) < 1e-9)
        #expect(abs(s.sc2benchMeanKB - f.sc2benchMeanKB) < 1e-9 && abs(s.sc2benchStdKB - f.sc2benchStdKB) < 1e-9)
        #expect(abs(s.bitsPerPixel - 8 * s.meanBytes / Double(416 * 416)) < 1e-9)
    }
}
