// The Ladon paper's published points (Matsubara, Mendula, Levorato, WACV 2025), from the logs of the official
// repository github.com/yoshitomo-matsubara/ladon-multi-task-sc2, files
//   legacy/logs/ilsvrc2012/ladon/splittable_<variant>-fp-beta<β>_from_<variant>.txt
//   legacy/logs/coco2017/ladon/faster_rcnn_splittable_<variant>-fp-beta<β>[_fpn].txt   (`_fpn` only for resnest269e)
//   legacy/logs/pascal_voc2012/ladon/deeplabv3_splittable_<variant>[-]fp-beta<β>_two_stages.txt
//     (resnet50 files are spelled `resnet50fp`, without the dash)
// as stored at commits 4cceddc737a46acc835ae21c199a10975835018b and 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
// (each entry's `source` comment names the commit its file was read at).
//
// Every number is the final *test* evaluation that torchdistill/sc2bench log after training ("Test:" block, after
// "Loading model parameters" and "[Student: ...]"), never an in-training "Validation:" block, and the data size is the
// `sc2bench.analysis  Bottleneck size [KB]: mean M std S for N samples` line printed right after that test.
// - ImageNet: the logs test the teacher first ("[Teacher: resnet50]", e.g. Acc@1 78.158) and then the student; the
//   student's `* Acc@1 … Acc@5 …` line is the one used. Top-1 percent; top-5 in the comments.
// - COCO: the first `Average Precision (AP) @[ IoU=0.50:0.95 | area= all | maxDets=100 ]` of the final test, a fraction
//   (pycocotools prints three decimals); AP50 in the comments.
// - VOC: `mean IoU` of the final test, percent (one decimal as printed); global pixelwise accuracy in the comments.
// The ResNeSt-269e ImageNet logs at β 0.32, 1.28 and 5.12 end right after "Loading model parameters": they hold no
// test evaluation and no bottleneck size, so those three points are not in `all`; their last-epoch validation accuracy
// is kept apart in `validationOnly` (not comparable: for ResNet-50 β 1.28 the last validation read 74.678 while the
// test read 77.296).

/// One published evaluation: a model variant at one β on one task, with its data size as sc2bench logged it.
public struct PublishedResult: Sendable, Equatable {
    public var variant: String      // "resnet50" or "resnest269e"
    public var beta: String         // "1.28"
    public var task: EvalTask       // .imagenet, .coco, .voc
    public var metric: Double       // top1 percent / AP fraction / mIoU percent (EvalTask.headlineMetric)
    public var dataSizeKB: Double?  // sc2bench "Bottleneck size [KB]" mean, nil if the log has none
    public var dataSizeStdKB: Double?
    public var samples: Int?
    public var source: String       // the log path in the repository

    public init(
        variant: String, beta: String, task: EvalTask, metric: Double,
        dataSizeKB: Double?, dataSizeStdKB: Double?, samples: Int?, source: String
    ) {
        self.variant = variant
        self.beta = beta
        self.task = task
        self.metric = metric
        self.dataSizeKB = dataSizeKB
        self.dataSizeStdKB = dataSizeStdKB
        self.samples = samples
        self.source = source
    }
}

public enum PublishedResults {
    private static let imagenetDir = "legacy/logs/ilsvrc2012/ladon/"
    private static let cocoDir = "legacy/logs/coco2017/ladon/"
    private static let vocDir = "legacy/logs/pascal_voc2012/ladon/"

    public static let all: [PublishedResult] = [
        // MARK: ImageNet (ILSVRC 2012 val, 50000 samples), top-1 %
        // top-5 93.962; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnet50", beta: "0.32", task: .imagenet, metric: 77.3760,
                        dataSizeKB: 85.94058953125, dataSizeStdKB: 6.450615805028002, samples: 50000,
                        source: imagenetDir + "splittable_resnet50-fp-beta0.32_from_resnet50.txt"),
        // top-5 93.876; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "1.28", task: .imagenet, metric: 77.2960,
                        dataSizeKB: 41.849728359375, dataSizeStdKB: 3.879590425586594, samples: 50000,
                        source: imagenetDir + "splittable_resnet50-fp-beta1.28_from_resnet50.txt"),
        // top-5 93.374; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "5.12", task: .imagenet, metric: 76.0900,
                        dataSizeKB: 16.5839, dataSizeStdKB: 1.621742276213759, samples: 50000,
                        source: imagenetDir + "splittable_resnet50-fp-beta5.12_from_resnet50.txt"),
        // top-5 92.676; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnet50", beta: "10.24", task: .imagenet, metric: 75.0320,
                        dataSizeKB: 10.481008828125, dataSizeStdKB: 1.4459927544216924, samples: 50000,
                        source: imagenetDir + "splittable_resnet50-fp-beta10.24_from_resnet50.txt"),
        // top-5 90.340; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "20.48", task: .imagenet, metric: 71.0060,
                        dataSizeKB: 5.354346484375, dataSizeStdKB: 0.8271441761134879, samples: 50000,
                        source: imagenetDir + "splittable_resnet50-fp-beta20.48_from_resnet50.txt"),
        // top-5 93.518; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "10.24", task: .imagenet, metric: 77.1980,
                        dataSizeKB: 7.10057546875, dataSizeStdKB: 0.4528882826053956, samples: 50000,
                        source: imagenetDir + "splittable_resnest269e-fp-beta10.24_from_resnest269e.txt"),
        // top-5 43.888 (degenerate model: accuracy collapses at this β); commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "20.48", task: .imagenet, metric: 22.7660,
                        dataSizeKB: 0.8960898828125, dataSizeStdKB: 0.3790961274911453, samples: 50000,
                        source: imagenetDir + "splittable_resnest269e-fp-beta20.48_from_resnest269e.txt"),

        // MARK: COCO 2017 val (5000 samples), bbox AP@[.50:.95] fraction
        // AP50 0.428; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "0.32", task: .coco, metric: 0.247,
                        dataSizeKB: 65.51440625, dataSizeStdKB: 8.558312894936448, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnet50-fp-beta0.32.txt"),
        // AP50 0.422; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnet50", beta: "1.28", task: .coco, metric: 0.242,
                        dataSizeKB: 31.89981328125, dataSizeStdKB: 4.448273203197235, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnet50-fp-beta1.28.txt"),
        // AP50 0.399; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "5.12", task: .coco, metric: 0.228,
                        dataSizeKB: 12.4281140625, dataSizeStdKB: 1.7749194908781416, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnet50-fp-beta5.12.txt"),
        // AP50 0.377; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "10.24", task: .coco, metric: 0.212,
                        dataSizeKB: 7.86768046875, dataSizeStdKB: 1.2743764252916927, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnet50-fp-beta10.24.txt"),
        // AP50 0.330; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "20.48", task: .coco, metric: 0.184,
                        dataSizeKB: 4.0769078125, dataSizeStdKB: 0.7280587636835812, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnet50-fp-beta20.48.txt"),
        // AP50 0.478; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "0.32", task: .coco, metric: 0.277,
                        dataSizeKB: 56.8784142578125, dataSizeStdKB: 7.755860061371768, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnest269e-fp-beta0.32_fpn.txt"),
        // AP50 0.464; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "1.28", task: .coco, metric: 0.269,
                        dataSizeKB: 25.72020078125, dataSizeStdKB: 3.5360261362025582, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnest269e-fp-beta1.28_fpn.txt"),
        // AP50 0.435; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "5.12", task: .coco, metric: 0.250,
                        dataSizeKB: 11.5196640625, dataSizeStdKB: 1.7495785487732858, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnest269e-fp-beta5.12_fpn.txt"),
        // AP50 0.362; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "10.24", task: .coco, metric: 0.200,
                        dataSizeKB: 5.38498671875, dataSizeStdKB: 0.6865620043447908, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnest269e-fp-beta10.24_fpn.txt"),
        // AP50 0.062 (degenerate model at this β); commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "20.48", task: .coco, metric: 0.028,
                        dataSizeKB: 0.73710859375, dataSizeStdKB: 0.2572590348227343, samples: 5000,
                        source: cocoDir + "faster_rcnn_splittable_resnest269e-fp-beta20.48_fpn.txt"),

        // MARK: PASCAL VOC 2012 val (1449 samples), mIoU %
        // pixel acc 91.8; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "0.32", task: .voc, metric: 67.9,
                        dataSizeKB: 119.28348214285714, dataSizeStdKB: 14.746783596158766, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnet50fp-beta0.32_two_stages.txt"),
        // pixel acc 92.1; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnet50", beta: "1.28", task: .voc, metric: 68.6,
                        dataSizeKB: 57.85840382914942, dataSizeStdKB: 7.8385080712488335, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnet50fp-beta1.28_two_stages.txt"),
        // pixel acc 91.7; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnet50", beta: "5.12", task: .voc, metric: 66.8,
                        dataSizeKB: 22.61563133518806, dataSizeStdKB: 3.1910182451839324, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnet50fp-beta5.12_two_stages.txt"),
        // pixel acc 91.6; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnet50", beta: "10.24", task: .voc, metric: 67.2,
                        dataSizeKB: 14.148002798266045, dataSizeStdKB: 2.3723109197006944, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnet50fp-beta10.24_two_stages.txt"),
        // pixel acc 90.5; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnet50", beta: "20.48", task: .voc, metric: 63.7,
                        dataSizeKB: 7.166444935084541, dataSizeStdKB: 1.2197515941211614, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnet50fp-beta20.48_two_stages.txt"),
        // pixel acc 93.0; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "0.32", task: .voc, metric: 72.1,
                        dataSizeKB: 103.00828089954278, dataSizeStdKB: 13.106796216778713, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnest269e-fp-beta0.32_two_stages.txt"),
        // pixel acc 93.1; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "1.28", task: .voc, metric: 72.2,
                        dataSizeKB: 46.9801654697205, dataSizeStdKB: 6.254004937613996, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnest269e-fp-beta1.28_two_stages.txt"),
        // pixel acc 92.6; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "5.12", task: .voc, metric: 71.2,
                        dataSizeKB: 20.929867446299173, dataSizeStdKB: 3.1569723403729073, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnest269e-fp-beta5.12_two_stages.txt"),
        // pixel acc 92.1; commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "10.24", task: .voc, metric: 69.3,
                        dataSizeKB: 9.852809992883023, dataSizeStdKB: 1.2052880480168742, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnest269e-fp-beta10.24_two_stages.txt"),
        // pixel acc 78.2 (degenerate model at this β); commit 3f80e4380c1e6bb47a90392cc7b989de3dd6fe9a
        PublishedResult(variant: "resnest269e", beta: "20.48", task: .voc, metric: 32.2,
                        dataSizeKB: 1.1816898238008973, dataSizeStdKB: 0.4744733087895874, samples: 1449,
                        source: vocDir + "deeplabv3_splittable_resnest269e-fp-beta20.48_two_stages.txt"),
    ]

    /// ResNeSt-269e ImageNet runs whose logs stop before the test: the last-epoch *validation* top-1 (batched,
    /// in-training evaluation, no entropy coding, so no data size). Not test results; not part of `all`.
    public static let validationOnly: [PublishedResult] = [
        // last validation Acc@5 95.044; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "0.32", task: .imagenet, metric: 80.3320,
                        dataSizeKB: nil, dataSizeStdKB: nil, samples: nil,
                        source: imagenetDir + "splittable_resnest269e-fp-beta0.32_from_resnest269e.txt"),
        // last validation Acc@5 94.848; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "1.28", task: .imagenet, metric: 79.8560,
                        dataSizeKB: nil, dataSizeStdKB: nil, samples: nil,
                        source: imagenetDir + "splittable_resnest269e-fp-beta1.28_from_resnest269e.txt"),
        // last validation Acc@5 94.530; commit 4cceddc737a46acc835ae21c199a10975835018b
        PublishedResult(variant: "resnest269e", beta: "5.12", task: .imagenet, metric: 79.0880,
                        dataSizeKB: nil, dataSizeStdKB: nil, samples: nil,
                        source: imagenetDir + "splittable_resnest269e-fp-beta5.12_from_resnest269e.txt"),
    ]

    /// The published test points of one variant on one task, sorted by data size (points without a size last,
    /// then by β).
    public static func points(task: EvalTask, variant: String) -> [PublishedResult] {
        all.filter { $0.task == task && $0.variant == variant }
            .sorted { a, b in
                switch (a.dataSizeKB, b.dataSizeKB) {
                case let (x?, y?): return x < y
                case (.some, nil): return true
                case (nil, .some): return false
                case (nil, nil): return (Double(a.beta) ?? 0) < (Double(b.beta) ?? 0)
                }
            }
    }
}
