// `ladon infer`: runs images through both halves of the model and prints all three tasks.
import ArgumentParser
import Foundation
import LadonCore
import LadonImage

enum MaskSize: String, ExpressibleByArgument, CaseIterable {
    case original, padded
}

struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify, detect and segment images with a Ladon model (device and server halves in one process).")

    @Argument(help: "JPEG or PNG images.")
    var images: [String]

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print one JSON object per image (one per line) instead of text.")
    var json = false

    @Option(name: .customLong("top-k"), help: "Number of classes to show in text output (JSON always lists the top 5).")
    var topK = 5

    @Flag(help: "Include all classification logits in the JSON output.")
    var logits = false

    @Option(help: "Write the segmentation class-id mask as an 8-bit PNG (one image only).")
    var mask: String?

    @Option(name: .customLong("mask-size"), help: "Size of --mask and of the class-pixel counts: original or padded.")
    var maskSize: MaskSize = .original

    @Option(help: "Write the image with the segmentation and the shown detections drawn over it as a PNG (one image only).")
    var overlay: String?

    @Option(name: .customLong("detection-threshold"), help: "Show detections with at least this score in text output and --overlay (JSON lists all).")
    var detectionThreshold: Float = 0.5

    @Option(name: .customLong("bin"), help: "Write the entropy-coded latent (CompressAI's exact byte string) to a file (one image only).")
    var binPath: String?

    @Option(name: .customLong("pixel-limit"), help: "Refuse images with more pixels than this (default \(ImageDecoder.devicePixelLimit), about \(ImageDecoder.devicePixelLimit * ImageDecoder.peakBytesPerPixel >> 20) MiB at the peak).")
    var pixelLimit = ImageDecoder.devicePixelLimit

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard pixelLimit >= 1 else { throw ValidationError("--pixel-limit must be at least 1") }
        guard (0...1).contains(detectionThreshold) else { throw ValidationError("--detection-threshold must be in [0, 1]") }
        if images.count > 1 && (mask != nil || overlay != nil || binPath != nil) {
            throw ValidationError("--mask, --overlay and --bin take one image")
        }
    }

    func run() throws {
        let model = try options.load { try LadonModel(path: $0) }
        var failed = 0
        for imagePath in images {
            do {
                try run(model: model, imagePath: imagePath)
            } catch {
                failed += 1
                FileHandle.standardError.write(Data("ladon: \(imagePath): \(error)\n".utf8))
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    private func run(model: LadonModel, imagePath: String) throws {
        var stopwatch = Stopwatch()
        let rgb = try stopwatch.time("decode") { () throws(ImageError) in try ImageDecoder.decode(contentsOf: imagePath, pixelLimit: pixelLimit) }
        var result = try model.infer(rgb.toTensor())
        result.timings.insert(contentsOf: stopwatch.laps, at: 0)
        let report = InferenceReport(file: imagePath, result: result, model: model.server, topK: topK,
                                     includeLogits: logits, maskSize: maskSize, detectionThreshold: detectionThreshold)
        if let binPath {
            try Data(result.compressed).write(to: URL(fileURLWithPath: binPath))
        }
        if let maskPath = mask, let seg = result.segmentation {
            let (w, h, ids) = report.maskPixels(seg, geometry: result.geometry)
            try PNGEncoder.writeGray(width: w, height: h, pixels: ids.map { UInt8(clamping: $0) }, to: maskPath)
        }
        if let overlayPath = overlay {
            var drawn = rgb
            if let seg = result.segmentation {
                let ids = seg.mask(resampledFrom: result.geometry.resizedHeight, result.geometry.resizedWidth,
                                   toHeight: rgb.height, width: rgb.width)
                drawn = Overlay.segmentation(on: drawn, classIDs: ids)
            }
            let boxes = report.shownDetections.map { d in
                Overlay.LabelledBox(x1: d.box.x1, y1: d.box.y1, x2: d.box.x2, y2: d.box.y2,
                                    label: String(format: "%@ %.2f", report.cocoName(d.label), d.score),
                                    colour: Overlay.detectionColor(d.label))
            }
            drawn = Overlay.boxes(on: drawn, boxes)
            try PNGEncoder.write(rgb: drawn, to: overlayPath)
        }
        print(json ? report.json() : report.text())
    }
}
