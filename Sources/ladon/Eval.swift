// `ladon eval`: the SC2 benchmark (ImageNet top-k, COCO bbox mAP, VOC mIoU) with data and encoder size.
import ArgumentParser
import Foundation
import LadonCore
import LadonEval
import LadonImage

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model the sc2bench way: accuracy, data size per sample and encoder size.",
        discussion: "Metrics equal the Python stack's on the same predictions (torchvision top-k, pycocotools, torchvision's confusion matrix). See docs/evaluation.md.",
        subcommands: [ImageNet.self, COCO.self, VOC.self, Merge.self])
}

/// Options every dataset evaluation shares.
struct EvalOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions

    @Option(help: "Write run.json and one JSON line per sample here; running again with the same folder resumes.")
    var output: String?

    @Option(help: "Evaluate only the first N samples of the dataset order.")
    var limit: Int?

    @Option(help: "Evaluate shard I of N (samples k with k mod N = I); combine the folders with `ladon eval merge`.")
    var shard: String?

    @Option(help: "Images evaluated at once (default: all cores; each job then uses cores/jobs kernel threads).")
    var jobs: Int?

    @Flag(help: "Print one JSON object (schema in docs/evaluation.md).")
    var json = false

    @Option(name: .customLong("pil-pass-order"),
            help: "ImageNet/VOC resize: horizontal-first (Pillow ≤ 12, the published numbers' era) or pillow13 (vertical pass first when the height shrinks much more than the width).")
    var passOrder: PILPassOrder = SC2Preprocessing.publishedPassOrder

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if let shard { do { _ = try Shard(parsing: shard) } catch { throw ValidationError(error.description) } }
    }

    var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Loads the model with kernel threads shared out between the jobs.
    func loadModel() throws -> (model: LadonModel, path: String, info: EvalRun.ModelInfo) {
        let jobs = self.jobs ?? cores
        var options = model
        if options.threads == nil { options.threads = max(1, cores / jobs) }
        return try options.load { path in
            let file = try LadonModelFile(path: path)
            let info = EvalRun.ModelInfo(path: path, fingerprint: file.fingerprint, beta: file.file.metadata["beta"],
                                         encoderSize: file.encoderSize)
            return (try LadonModel(modelFile: file), path, info)
        }
    }

    /// Evaluates the run's samples, writing records under `--output`, and returns all records.
    func evaluate(_ run: EvalRun, label: String, _ evaluate: @escaping @Sendable (Int) -> SampleRecord) throws -> [SampleRecord] {
        let store = try output.map { dir throws(EvalError) in try RecordStore(directory: dir, run: run) }
        if let store, !store.existing.isEmpty {
            FileHandle.standardError.write(Data("Resuming: \(store.existing.count) samples already in \(store.directory)\n".utf8))
        }
        let bar = ProgressBar(label: label)
        return try EvalRunner.run(indices: run.indices, jobs: jobs ?? cores, store: store,
                                  progress: { bar.update(done: $0, total: $1) }, evaluate: evaluate)
    }

    func makeRun(_ task: EvalTask, model: EvalRun.ModelInfo, dataset: EvalRun.DatasetInfo, preprocessing: String) throws -> EvalRun {
        EvalRun(task: task, model: model, dataset: dataset, limit: limit,
                shard: try shard.map { s throws(EvalError) in try Shard(parsing: s) } ?? .whole, preprocessing: preprocessing)
    }
}

/// A failed sample's record.
func failedRecord(_ index: Int, _ id: String, _ error: any Error) -> SampleRecord {
    var r = SampleRecord(index: index, id: id)
    let code = error is ImageError ? "bad_image" : error is LadonError ? "model" : "error"
    r.error = .init(code: code, message: "\(error)")
    return r
}

/// Prints a summary as text or JSON and saves it as `summary.json` in `directory` (for `ladon report`); exits 1
/// (some inputs failed) when samples failed.
func printSummary(_ s: EvalSummary, json: Bool, title: String, saveIn directory: String? = nil) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    if let directory {
        let path = (directory as NSString).appendingPathComponent("summary.json")
        do { try e.encode(s).write(to: URL(fileURLWithPath: path)) } catch {
            throw CLIError("cannot write \(path): \(error.localizedDescription)")
        }
    }
    if json {
        print(String(decoding: try e.encode(s), as: UTF8.self))
    } else {
        print(EvalSummaryText.render(s, title: title))
    }
    if s.failed > 0 { throw CLIError("\(s.failed) samples failed (their records say why)", status: .inputFailed) }
}

extension Eval {
    struct ImageNet: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "imagenet",
            abstract: "ImageNet (ILSVRC 2012) top-1/top-5 on an ImageFolder validation set (Resize 448, CenterCrop 416).")

        @Option(help: "The validation folder: one sub-folder per class (1000 WordNet ids), images inside.")
        var root: String

        @OptionGroup var options: EvalOptions

        func run() throws {
            let dataset = try ImageFolderDataset(root: root)
            let (model, _, info) = try options.loadModel()
            guard let head = model.config.classification else {
                throw CLIError("the model has no classification head; ImageNet evaluation needs one", status: .model)
            }
            if head.numClasses != dataset.classes.count {
                FileHandle.standardError.write(Data("Warning: \(root) has \(dataset.classes.count) class folders, the model \(head.numClasses) classes; labels are the sorted folder positions\n".utf8))
            }
            let run = try options.makeRun(.imagenet, model: info, dataset: .init(root: root, samples: dataset.samples.count),
                                          preprocessing: SC2Preprocessing.imagenetDescription + "; Pillow pass order \(options.passOrder.rawValue)")
            let taskModel = TaskModel(model, passOrder: options.passOrder)
            let samples = dataset.samples
            let prefix = (root as NSString).standardizingPath + "/"
            let records = try options.evaluate(run, label: "imagenet") { i in
                let (path, label) = samples[i]
                let id = path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
                var r = SampleRecord(index: i, id: id)
                do {
                    let image = try ImageDecoder.decode(contentsOf: path)
                    try taskModel.classify(image, label: label, into: &r)
                } catch { return failedRecord(i, id, error) }
                return r
            }
            let summary = EvalSummary(run: run, records: records, metrics: try TaskMetrics.imagenet(records))
            try printSummary(summary, json: options.json, title: "ImageNet \(root)", saveIn: options.output)
        }
    }

    struct VOC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "voc",
            abstract: "PASCAL VOC 2012 segmentation mIoU and pixel accuracy (images squashed to 416×416).")

        @Option(help: "The VOC2012 folder (VOCdevkit/VOC2012) with ImageSets, JPEGImages and SegmentationClass.")
        var root: String

        @Option(help: "The image set under ImageSets/Segmentation.")
        var split = "val"

        @OptionGroup var options: EvalOptions

        func run() throws {
            let dataset = try VOCSegmentationDataset(root: root, split: split)
            let (model, _, info) = try options.loadModel()
            guard let head = model.config.segmentation else {
                throw CLIError("the model has no segmentation head; VOC evaluation needs one", status: .model)
            }
            let run = try options.makeRun(.voc, model: info, dataset: .init(root: root, split: split, samples: dataset.ids.count),
                                          preprocessing: SC2Preprocessing.vocDescription + "; Pillow pass order \(options.passOrder.rawValue)")
            let taskModel = TaskModel(model, passOrder: options.passOrder)
            let classes = head.numClasses
            let records = try options.evaluate(run, label: "voc") { i in
                let id = dataset.ids[i]
                var r = SampleRecord(index: i, id: id)
                do {
                    let image = try ImageDecoder.decode(contentsOf: dataset.imagePath(id))
                    let mask = try IndexedImage(contentsOf: dataset.maskPath(id))
                    try taskModel.segment(image, mask: mask, classes: classes, into: &r)
                } catch { return failedRecord(i, id, error) }
                return r
            }
            let (metrics, notes) = try TaskMetrics.voc(records, classes: classes)
            let summary = EvalSummary(run: run, records: records, metrics: metrics, notes: notes)
            try printSummary(summary, json: options.json, title: "PASCAL VOC 2012 \(split)", saveIn: options.output)
        }
    }

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Combine the --output folders of shards (or resumed runs) and recompute the exact metrics.")

        @Argument(help: "Result folders written by `ladon eval … --output`.")
        var directories: [String]

        @Option(help: "COCO: the instances JSON, if it moved since the run (default: the path in run.json).")
        var annotations: String?

        @Option(help: "Also save the merged summary as DIR/summary.json (for `ladon report`).")
        var output: String?

        @Flag(help: "Print one JSON object.")
        var json = false

        func run() throws {
            var base: EvalRun?
            var byIndex: [Int: SampleRecord] = [:]
            for dir in directories {
                let (run, records) = try RecordStore.load(dir)
                if let b = base, let why = run.conflicts(with: b, ignoringShard: true) {
                    throw CLIError("\(dir) does not belong with \(directories[0]): \(why)", status: .failed)
                }
                base = base ?? run
                for r in records { byIndex[r.index] = r }
            }
            guard var run = base else { throw ValidationError("give at least one result folder") }
            run.shard = .whole
            let records = byIndex.values.filter { $0.index < run.selectedCount }.sorted { $0.index < $1.index }
            let summary: EvalSummary
            switch run.task {
            case .imagenet:
                summary = EvalSummary(run: run, records: records, metrics: try TaskMetrics.imagenet(records))
            case .voc:
                let (metrics, notes) = try TaskMetrics.voc(records)
                summary = EvalSummary(run: run, records: records, metrics: metrics, notes: notes)
            case .coco:
                summary = try COCO.summarize(run: run, records: records, annotations: annotations ?? run.dataset.annotations)
            }
            if let output { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
            try printSummary(summary, json: json, title: "\(run.task.rawValue) (merged from \(directories.count) folders)", saveIn: output)
        }
    }
}

extension Eval {
    struct COCO: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "coco",
            abstract: "COCO 2017 box mAP (the 12 COCOeval numbers, equal to pycocotools) on an images folder and instances JSON.")

        @Option(help: "The images folder (val2017).")
        var images: String

        @Option(help: "The instances JSON (annotations/instances_val2017.json).")
        var annotations: String

        @Option(name: .customLong("results-json"), help: "Also write the standard COCO results list here (for pycocotools' loadRes).")
        var resultsJSON: String?

        @OptionGroup var options: EvalOptions

        func run() throws {
            let annotationsPath = URL(fileURLWithPath: annotations).standardizedFileURL.path
            let groundTruth = try COCOGroundTruth(contentsOf: URL(fileURLWithPath: annotationsPath))
            let (model, _, info) = try options.loadModel()
            guard model.config.detection != nil else {
                throw CLIError("the model has no detection head; COCO evaluation needs one", status: .model)
            }
            // torchvision's CocoDetection order: image ids sorted.
            let cocoImages = groundTruth.images.sorted { $0.id < $1.id }
            let run = try options.makeRun(.coco, model: info,
                                          dataset: .init(root: images, annotations: annotationsPath, samples: cocoImages.count),
                                          preprocessing: SC2Preprocessing.cocoDescription)
            let taskModel = TaskModel(model)
            let folder = images
            let records = try options.evaluate(run, label: "coco") { i in
                let image = cocoImages[i]
                var r = SampleRecord(index: i, id: image.fileName)
                r.imageID = image.id
                do {
                    let rgb = try ImageDecoder.decode(contentsOf: (folder as NSString).appendingPathComponent(image.fileName))
                    let detections = try taskModel.detect(rgb, into: &r)
                    r.detections = COCODetection.results(imageID: image.id, detections: detections).map {
                        [Double($0.categoryID), $0.bbox.x, $0.bbox.y, $0.bbox.width, $0.bbox.height, $0.score]
                    }
                } catch {
                    var failed = failedRecord(i, image.fileName, error)
                    failed.imageID = image.id
                    return failed
                }
                return r
            }
            let summary = try Self.summarize(run: run, records: records, groundTruth: groundTruth)
            if let resultsJSON {
                try COCOResultsFile.write(try Self.detections(records), to: URL(fileURLWithPath: resultsJSON))
            }
            try printSummary(summary, json: options.json, title: "COCO \(annotations)", saveIn: options.output)
        }

        /// The detections of the successful records, in record order.
        static func detections(_ records: [SampleRecord]) throws(EvalError) -> [COCODetection] {
            var out: [COCODetection] = []
            for r in records where r.error == nil {
                guard let imageID = r.imageID, let dets = r.detections else {
                    throw .badRecord("COCO record \(r.index) has no image id or detections")
                }
                for d in dets {
                    guard d.count == 6, let category = Int(exactly: d[0]) else {
                        throw .badRecord("COCO record \(r.index) has a detection that is not [category, x, y, w, h, score]")
                    }
                    out.append(COCODetection(imageID: imageID, categoryID: category,
                                             bbox: COCOBox(x: d[1], y: d[2], width: d[3], height: d[4]), score: d[5]))
                }
            }
            return out
        }

        /// COCOeval over the images that were evaluated (failed ones left out, as if never run).
        static func summarize(run: EvalRun, records: [SampleRecord], groundTruth: COCOGroundTruth) throws -> EvalSummary {
            let evaluated = records.filter { $0.error == nil }.compactMap(\.imageID)
            let evaluation = try COCOEvaluator(groundTruth: groundTruth).evaluate(try detections(records), imageIDs: evaluated)
            var notes: [String] = []
            if evaluated.count < groundTruth.images.count {
                notes.append("COCOeval ran on the \(evaluated.count) evaluated images of \(groundTruth.images.count) (params.imgIds)")
            }
            return EvalSummary(run: run, records: records, metrics: evaluation.metrics, notes: notes)
        }

        static func summarize(run: EvalRun, records: [SampleRecord], annotations: String?) throws -> EvalSummary {
            guard let annotations else { throw CLIError("the run names no annotations file; pass --annotations") }
            return try summarize(run: run, records: records,
                                 groundTruth: try COCOGroundTruth(contentsOf: URL(fileURLWithPath: annotations)))
        }
    }
}

extension PILPassOrder: ExpressibleByArgument {}
