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

    @Argument(help: "JPEG or PNG images; a folder adds its images recursively, `-` reads paths from stdin, @FILE from a list file.")
    var images: [String]

    @Option(name: .customLong("output-dir"), help: "Write every image's mask (STEM.mask.png), overlay (STEM.overlay.png) and coded latent (STEM.bin) here.")
    var outputDir: String?

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print one JSON object per image (one per line) instead of text.")
    var json = false

    @OptionGroup var shown: ReportOptions

    @Option(help: "Write the segmentation class-id mask as an 8-bit PNG (one image only).")
    var mask: String?

    @Option(help: "Write the image with the segmentation and the shown detections drawn over it as a PNG (one image only).")
    var overlay: String?

    @Option(name: .customLong("bin"), help: "Write the entropy-coded latent (CompressAI's exact byte string) to a file (one image only).")
    var binPath: String?

    @Option(name: .customLong("pixel-limit"), help: "Refuse images with more pixels than this (default \(ImageDecoder.devicePixelLimit), at most about \((ImageDecoder.devicePixelLimit * ImageDecoder.peakBytesPerPixel) >> 20) MiB at the peak).")
    var pixelLimit = ImageDecoder.devicePixelLimit

    func validate() throws {
        guard pixelLimit >= 1 else { throw ValidationError("--pixel-limit must be at least 1") }
        if outputDir != nil && (mask != nil || overlay != nil || binPath != nil) {
            throw ValidationError("--output-dir replaces --mask, --overlay and --bin")
        }
    }

    func run() throws {
        let paths = try Inputs.expand(images, extensions: Inputs.imageExtensions)
        guard !paths.isEmpty else { throw CLIError("no images to run (\(images.joined(separator: " ")) held none)", status: .inputFailed) }
        if paths.count > 1 && (mask != nil || overlay != nil || binPath != nil) {
            throw ValidationError("--mask, --overlay and --bin take one image; use --output-dir for several")
        }
        let model = try options.load { try LadonModel(path: $0) }
        var folder = try outputDir.map { try OutputFolder($0) }
        var failed = 0
        for imagePath in paths {
            do {
                var outputs = (bin: binPath, mask: mask, overlay: overlay)
                if let stem = folder?.stem(for: imagePath), let f = folder {
                    outputs = (f.path(stem, ".bin"), f.path(stem, ".mask.png"), f.path(stem, ".overlay.png"))
                }
                try run(model: model, imagePath: imagePath, binPath: outputs.bin, mask: outputs.mask, overlay: outputs.overlay)
            } catch {
                failed += 1
                reportFailure(imagePath, error, json: json)
            }
        }
        if failed > 0 { throw ExitCode(ExitStatus.inputFailed.rawValue) }
    }

    private func run(model: LadonModel, imagePath: String, binPath: String?, mask: String?, overlay: String?) throws {
        var stopwatch = Stopwatch()
        let rgb = try stopwatch.time("decode") { () throws(ImageError) in try ImageDecoder.decode(contentsOf: imagePath, pixelLimit: pixelLimit) }
        var result = try model.infer(rgb: rgb.pixels, width: rgb.width, height: rgb.height)
        result.timings.insert(contentsOf: stopwatch.laps, at: 0)
        let report = InferenceReport(file: imagePath, result: result, model: model.server, topK: shown.topK,
                                     includeLogits: shown.logits, maskSize: shown.maskSize,
                                     detectionThreshold: shown.detectionThreshold)
        if let binPath {
            try Data(result.compressed).write(to: URL(fileURLWithPath: binPath))
        }
        if let maskPath = mask, let seg = result.segmentation {
            let (w, h, ids) = report.maskPixels(seg, geometry: result.geometry)
            try PNGEncoder.writeGray(width: w, height: h, pixels: ids.map { UInt8(clamping: $0) }, to: maskPath)
        }
        if let overlayPath = overlay {
            var drawn = rgb
            var legend: [(name: String, color: (UInt8, UInt8, UInt8))] = []
            if let seg = result.segmentation {
                let ids = seg.mask(resampledFrom: result.geometry.resizedHeight, result.geometry.resizedWidth,
                                   toHeight: rgb.height, width: rgb.width)
                drawn = Overlay.segmentation(on: drawn, classIDs: ids)
                let present = Set(ids).subtracting([0]).sorted()
                legend = present.map { (InferenceSummary.label(model.labels.voc, Int($0)), Overlay.vocColor(Int($0))) }
            }
            // Unused COCO ids are named "N/A": never draw them.
            let boxes = report.shownDetections.filter { report.cocoName($0.label) != "N/A" }.map { d in
                Overlay.LabelledBox(x1: d.box.x1, y1: d.box.y1, x2: d.box.x2, y2: d.box.y2,
                                    label: String(format: "%@ %.2f", report.cocoName(d.label), d.score),
                                    color: Overlay.detectionColor(d.label))
            }
            drawn = Overlay.legend(on: Overlay.boxes(on: drawn, boxes), legend)
            try PNGEncoder.write(rgb: drawn, to: overlayPath)
        }
        print(json ? report.json() : report.text())
    }
}
