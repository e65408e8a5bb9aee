// The result of an evaluation: `ladon eval --json` prints it, `ladon report` reads it (docs/evaluation.md).
import LadonCore

/// One evaluation's figures: the task metric(s), the SC2 data size and encoder size, and the model.
public struct EvalSummary: Codable, Sendable, Equatable {
    public var task: EvalTask
    /// Samples evaluated (failed ones excluded).
    public var images: Int
    /// Samples whose image could not be read or run (listed in the records with their error).
    public var failed: Int
    /// Selected samples without a record (an unfinished run or a missing shard in `merge`).
    public var missing: Int
    /// `top1`/`top5` (percent), the 12 COCO names (fractions, as pycocotools prints), `mIoU`/`pixelAccuracy` (percent).
    public var metrics: [String: Double]
    public var dataSize: DataSizeStatistics
    public var encoderSize: EncoderSizeFigures
    public var model: ModelFigures
    /// Remarks a reader needs (classes left out of the mean, incomplete runs).
    public var notes: [String]

    public struct ModelFigures: Codable, Sendable, Equatable {
        public var fingerprint: String?
        public var beta: String?
    }

    /// The SC2 encoder size under both conventions: the encoder alone, and with the entropy bottleneck.
    public struct EncoderSizeFigures: Codable, Sendable, Equatable {
        /// Encoder convolutions + GDN parameters (weights, biases, beta, gamma).
        public var encoderParameterBytes: Int
        /// Every encoder tensor (GDN's reparametrisation buffers included).
        public var encoderBytes: Int
        /// The entropy bottleneck: density model, quantiles, CDF tables.
        public var entropyBottleneckBytes: Int
        public var encoderBits: Int
        public var encoderMB: Double
        /// Encoder + entropy bottleneck.
        public var totalBits: Int
        public var totalMB: Double

        public init(_ s: EncoderSize) {
            encoderParameterBytes = s.parameterBytes
            encoderBytes = s.encoderBytes
            entropyBottleneckBytes = s.entropyBottleneckBytes
            encoderBits = 8 * s.encoderBytes
            encoderMB = Double(s.encoderBytes) / 1_000_000
            totalBits = s.totalBits
            totalMB = Double(s.totalBytes) / 1_000_000
        }
    }

    /// Summarises `records` of `run`. `metrics` are the task's figures computed from the same records.
    public init(run: EvalRun, records: [SampleRecord], metrics: [String: Double], notes: [String] = []) {
        let ok = records.filter { $0.error == nil }
        task = run.task
        images = ok.count
        failed = records.count - ok.count
        missing = max(0, run.selectedCount - records.count)
        self.metrics = metrics
        dataSize = DataSizeStatistics(bytes: ok.map { $0.bytes ?? 0 }, pixels: ok.map { ($0.height ?? 0) * ($0.width ?? 0) },
                                      latentSizes: ok.map { ($0.latentHeight ?? 0, $0.latentWidth ?? 0) })
        encoderSize = EncoderSizeFigures(run.model.encoderSize)
        model = ModelFigures(fingerprint: run.model.fingerprint, beta: run.model.beta)
        var notes = notes
        if missing > 0 { notes.append("\(missing) of \(run.selectedCount) selected samples have no record yet (resume the run or merge the other shards)") }
        if failed > 0 { notes.append("\(failed) samples failed and are left out of every figure (see their records)") }
        self.notes = notes
    }
}

/// Metric computation from records, the same for a finished run and for `ladon eval merge`.
public enum TaskMetrics {
    public static func imagenet(_ records: [SampleRecord]) throws(EvalError) -> [String: Double] {
        var acc = TopKAccuracy()
        for r in records where r.error == nil {
            guard let label = r.label, let top5 = r.top5 else { throw .badRecord("ImageNet record \(r.index) has no label/top5") }
            acc.add(label: label, top5: top5)
        }
        return ["top1": acc.top1, "top5": acc.top5]
    }

    /// VOC: mIoU over the 21 classes and global pixel accuracy, from one confusion matrix over all records.
    public static func voc(_ records: [SampleRecord], classes: Int = 21) throws(EvalError) -> (metrics: [String: Double], notes: [String]) {
        var matrix = ConfusionMatrix(classes: classes)
        for r in records where r.error == nil {
            guard let cells = r.confusion else { throw .badRecord("VOC record \(r.index) has no confusion cells") }
            try matrix.add(entries: cells)
        }
        var notes: [String] = []
        if !matrix.absentClasses.isEmpty {
            notes.append("classes \(matrix.absentClasses) occur in neither targets nor predictions: mIoU is the mean over "
                + "the other \(classes - matrix.absentClasses.count) (torchvision's ConfusionMatrix would print nan)")
        }
        return (["mIoU": matrix.meanIoU, "pixelAccuracy": matrix.pixelAccuracy], notes)
    }
}
